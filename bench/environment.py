"""The AWS the handlers see: moto in this process, an unreachable endpoint in import probes."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICE_NAME = "pos_gateway_bench"

# Fake credentials (moto accepts any) and the Powertools settings the handlers read at import.
FAKE_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": "PosGatewayBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def configure_environment() -> None:
    """Offline AWS (moto) and the Powertools settings the handlers read at import."""
    os.environ.update(FAKE_AWS)
    # The bench purges its fake queue often; real SQS allows one purge a minute.
    os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)


def probe_environment() -> dict[str, str]:
    """What a deployed handler gets, with every AWS call pointed at a closed port.

    An import that talked to AWS (or, through a secret, to the database) would fail.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(FAKE_AWS)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)]),
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
            "DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-db",
            "SQUARE_WEBHOOK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-square",
            "INGEST_QUEUE_URL": "http://127.0.0.1:9/123456789012/bench-ingest",
            # The Square poller's and token refresher's (pos_gateway.backfill.settings).
            "ENCRYPTION_KEYS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-keys",
            "SQUARE_OAUTH_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-oauth",
            # The admin API's.
            "DEAD_LETTER_QUEUE_URL": "http://127.0.0.1:9/123456789012/bench-dlq",
        }
    )
    return env
