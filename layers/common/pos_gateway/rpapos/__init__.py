"""RPApos sync: the contract with the service, its REST and SOAP clients, planning and loading.

Nothing here imports zeep at package import: only pos_gateway.rpapos.soap does, and only the
RPApos functions import that module.
"""
