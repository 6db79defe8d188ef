"""When the database is down, the Clover webhook answers 503 (Clover may deliver again), never a 500."""

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import FakeLambdaContext, webhook_without_database

EVENTS = Path(__file__).resolve().parents[2] / "events" / "clover"


@pytest.fixture(scope="module")
def webhook() -> Iterator[ModuleType]:
    with webhook_without_database(
        "functions.clover_webhook.app", "CLOVER_WEBHOOK_SECRET_ARN", {"authCode": "demo-clover-auth-code"}
    ) as handler:
        yield handler


@pytest.mark.parametrize("sample", ["http_payment_updates.json", "http_verification.json"])
def test_a_database_outage_is_a_503(webhook: ModuleType, sample: str) -> None:
    event = json.loads((EVENTS / sample).read_text())

    response = webhook.lambda_handler(event, FakeLambdaContext(function_name="clover_webhook"))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "temporarily_unavailable"
