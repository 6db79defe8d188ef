"""When the database is down, ingest answers 503 (the provider retries) and never a 500."""

import json
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from local.aws import free_port
from tests.helpers import (
    NOTIFICATION_URL,
    SIGNATURE_KEY,
    FakeLambdaContext,
    body_of,
    clear_parameter_caches,
    fresh_import,
    payment_event,
    signed_http_event,
)

REGION = "us-east-1"


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
        square = secrets.create_secret(
            Name="square-webhook",
            SecretString=json.dumps({"signatureKey": SIGNATURE_KEY, "notificationUrl": NOTIFICATION_URL}),
        )["ARN"]
        clear_parameter_caches()
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("DB_SECRET_ARN", database)
        env.setenv("INGEST_QUEUE_URL", queue_url)
        env.setenv("SQUARE_WEBHOOK_SECRET_ARN", square)
        yield fresh_import("functions.webhook_ingest.app")
        clear_parameter_caches()


def test_a_database_outage_is_a_503_the_provider_retries(webhook_without_database: ModuleType) -> None:
    event = signed_http_event(body_of(payment_event(merchant_id="MLANY")))
    response = webhook_without_database.lambda_handler(
        event, FakeLambdaContext(function_name="webhook_ingest")
    )

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "temporarily_unavailable"
