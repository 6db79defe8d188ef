"""The local stack: embedded Postgres, moto-backed AWS, a local API gateway and SQS poller.

Development only; never deployed. The handlers it runs are the same code as in the cloud.
"""
