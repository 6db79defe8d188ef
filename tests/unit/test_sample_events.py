"""The sample events in events/ keep matching the template and the code that reads them."""

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from local import template
from pos_gateway.field.operations import (
    Collection,
    NewAbono,
    NewCustomer,
    NewSale,
    parse_operation,
    parse_push_body,
)
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.square import is_valid_signature, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_URL = "https://abc123defg.execute-api.us-east-1.amazonaws.com/dev/webhooks/square"
SAMPLE_KEY = "demo-signature-key"


def _load(relative: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / relative).read_text())
    return loaded


def test_signed_sample_verifies_and_parses() -> None:
    event = _load("webhook_ingest/square_payment_completed.json")
    body = str(event["body"]).encode()
    headers = event["headers"]
    assert isinstance(headers, dict)

    assert is_valid_signature(SAMPLE_KEY, SAMPLE_URL, body, headers["x-square-hmacsha256-signature"])
    assert parse_event(body).type == "payment.updated"


def test_forged_sample_does_not_verify() -> None:
    event = _load("webhook_ingest/square_forged_signature.json")
    headers = event["headers"]
    assert isinstance(headers, dict)

    assert not is_valid_signature(
        SAMPLE_KEY, SAMPLE_URL, str(event["body"]).encode(), headers["x-square-hmacsha256-signature"]
    )


def test_http_samples_target_routes_of_the_template() -> None:
    route_keys = {route.route_key for route in template.load().routes}

    for path in [*(EVENTS / "webhook_ingest").glob("*.json"), *(EVENTS / "field_sync").glob("*.json")]:
        assert json.loads(path.read_text())["routeKey"] in route_keys, path.name


def test_sqs_sample_holds_one_credit_request_and_one_poison_record() -> None:
    records = _load("reward_crediting/sqs_batch.json")["Records"]
    assert isinstance(records, list)

    assert CreditRequest.model_validate_json(records[0]["body"]).provider == "square"
    with pytest.raises(ValidationError):
        CreditRequest.model_validate_json(records[1]["body"])


@pytest.mark.parametrize("path", sorted((EVENTS / "square").glob("*.json")), ids=lambda p: p.name)
def test_demo_webhook_bodies_are_square_events(path: Path) -> None:
    assert parse_event(path.read_bytes()).merchant_id.startswith("ML")


def test_field_push_sample_is_a_valid_push() -> None:
    event = _load("field_sync/push.json")
    items = parse_push_body(str(event["body"]).encode())
    shapes: dict[Collection, type[BaseModel]] = {
        Collection.CUSTOMERS: NewCustomer,
        Collection.SALES: NewSale,
        Collection.ABONOS: NewAbono,
    }

    for item in items:
        operation = parse_operation(item)
        assert operation.target is not None
        shapes[operation.target].model_validate(operation.data)
