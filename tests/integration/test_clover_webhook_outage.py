"""When the database is down, the Clover webhook answers 503 (Clover may deliver again), never a 500."""

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from local.aws import free_port
from tests.helpers import FakeLambdaContext, clear_parameter_caches, fresh_import

REGION = "us-east-1"
EVENTS = Path(__file__).resolve().parents[2] / "events" / "clover"


@pytest.fixture(scope="module")
def webhook_without_database() -> Iterator[ModuleType]:
    unreachable = {
        "host": "127.0.0.1",
        "port": free_port(),  # nothing listens there
        "dbname": "pos_gateway",
        "username": "pos_gateway_ingest",
        "password": "unused",
        "connect_timeout": 1,
    }
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="ingest")["QueueUrl"]
        database = secrets.create_secret(Name="db/ingest", SecretString=json.dumps(unreachable))["ARN"]
        clover = secrets.create_secret(
            Name="clover-webhook", SecretString=json.dumps({"authCode": "demo-clover-auth-code"})
        )["ARN"]
        clear_parameter_caches()
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("DB_SECRET_ARN", database)
        env.setenv("INGEST_QUEUE_URL", queue_url)
        env.setenv("CLOVER_WEBHOOK_SECRET_ARN", clover)
        yield fresh_import("functions.clover_webhook.app")
        clear_parameter_caches()


@pytest.mark.parametrize("sample", ["http_payment_updates.json", "http_verification.json"])
def test_a_database_outage_is_a_503(webhook_without_database: ModuleType, sample: str) -> None:
    event = json.loads((EVENTS / sample).read_text())

    response = webhook_without_database.lambda_handler(
        event, FakeLambdaContext(function_name="clover_webhook")
    )

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "temporarily_unavailable"
