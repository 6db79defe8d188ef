"""When the database is down, ingest answers 503 (the provider retries) and never a 500."""

import json
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.helpers import (
    NOTIFICATION_URL,
    SIGNATURE_KEY,
    FakeLambdaContext,
    body_of,
    payment_event,
    signed_http_event,
    webhook_without_database,
)


@pytest.fixture(scope="module")
def webhook() -> Iterator[ModuleType]:
    with webhook_without_database(
        "functions.webhook_ingest.app",
        "SQUARE_WEBHOOK_SECRET_ARN",
        {"signatureKey": SIGNATURE_KEY, "notificationUrl": NOTIFICATION_URL},
    ) as handler:
        yield handler


def test_a_database_outage_is_a_503_the_provider_retries(webhook: ModuleType) -> None:
    event = signed_http_event(body_of(payment_event(merchant_id="MLANY")))
    response = webhook.lambda_handler(event, FakeLambdaContext(function_name="webhook_ingest"))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "temporarily_unavailable"
