"""Square envelopes and payments: validated at the edge, normalized for the loyalty pipeline."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from pos_gateway.providers.models import Provider
from pos_gateway.providers.square import parse_event, payment_record
from tests.helpers import body_of, demo_body, demo_files, payment_event


def demo_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(demo_body("02_alice_payment_completed.json"))
    return event


def errors_of(body: bytes) -> list[ErrorDetails]:
    with pytest.raises(ValidationError) as excinfo:
        parse_event(body)
    return excinfo.value.errors(include_url=False)


def locs_of(body: bytes) -> set[tuple[int | str, ...]]:
    return {error["loc"] for error in errors_of(body)}


@pytest.mark.parametrize("path", demo_files(), ids=lambda path: path.name)
def test_parses_every_demo_body(path):
    raw = json.loads(path.read_bytes())
    event = parse_event(path.read_bytes())
    assert event.merchant_id == raw["merchant_id"]
    assert event.event_id == raw["event_id"]
    assert event.type == raw["type"]
    assert event.created_at.tzinfo is not None
    if event.is_refund:
        assert event.refund().id == raw["data"]["object"]["refund"]["id"]
    else:
        assert event.is_payment
        assert event.payment().id == raw["data"]["object"]["payment"]["id"]


def test_there_are_demo_bodies():
    assert len(demo_files()) >= 9


def test_non_payment_events_need_no_payment_object():
    body = body_of(
        {
            "merchant_id": "M1",
            "type": "customer.created",
            "event_id": "e-1",
            "created_at": "2026-11-20T15:04:06Z",
            "data": {"type": "customer", "id": "C1", "object": {"customer": {"id": "C1"}}},
        }
    )
    event = parse_event(body)
    assert not event.is_payment


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"merchant_id": "M1",}', b"\xff\xfe"],
    ids=["empty", "truncated", "text", "trailing-comma", "binary"],
)
def test_rejects_malformed_json(body):
    assert [error["type"] for error in errors_of(body)] == ["json_invalid"]


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_rejects_json_that_is_not_an_object(body):
    assert [error["type"] for error in errors_of(body)] == ["model_type"]


@pytest.mark.parametrize("field", ["merchant_id", "event_id", "type", "created_at", "data"])
def test_rejects_a_missing_envelope_field(field):
    event = demo_event()
    del event[field]
    errors = errors_of(body_of(event))
    assert {(error["loc"], error["type"]) for error in errors} == {((field,), "missing")}


@pytest.mark.parametrize("field", ["merchant_id", "event_id", "type"])
def test_rejects_an_empty_envelope_field(field):
    event = demo_event()
    event[field] = ""
    assert (field,) in locs_of(body_of(event))


@pytest.mark.parametrize(
    "created_at", ["2026-11-20T15:04:06", "2026-11-20 15:04:06", "yesterday", "2026-13-40T00:00:00Z"]
)
def test_rejects_a_naive_or_invalid_created_at(created_at):
    event = demo_event()
    event["created_at"] = created_at
    assert locs_of(body_of(event)) == {("created_at",)}


def test_naive_created_at_is_reported_as_not_timezone_aware():
    event = demo_event()
    event["created_at"] = "2026-11-20T15:04:06"
    assert [error["type"] for error in errors_of(body_of(event))] == ["timezone_aware"]


def test_rejects_a_malformed_event_type():
    event = demo_event()
    event["type"] = "Payment Created"
    assert locs_of(body_of(event)) == {("type",)}


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda p: p["amount_money"].update(amount=-1), ("payment", "amount_money", "amount")),
        (lambda p: p["amount_money"].update(amount=10**16), ("payment", "amount_money", "amount")),
        (lambda p: p["amount_money"].update(amount="12.50"), ("payment", "amount_money", "amount")),
        (lambda p: p["amount_money"].update(currency="usd"), ("payment", "amount_money", "currency")),
        (lambda p: p["amount_money"].update(currency="US"), ("payment", "amount_money", "currency")),
        (lambda p: p["amount_money"].pop("currency"), ("payment", "amount_money", "currency")),
        (lambda p: p.pop("amount_money"), ("payment", "amount_money")),
        (lambda p: p.pop("id"), ("payment", "id")),
        (lambda p: p.update(id=""), ("payment", "id")),
        (lambda p: p.pop("status"), ("payment", "status")),
        (lambda p: p.update(created_at="2026-11-20T15:04:05"), ("payment", "created_at")),
    ],
    ids=[
        "negative-amount",
        "huge-amount",
        "decimal-string-amount",
        "lowercase-currency",
        "short-currency",
        "no-currency",
        "no-amount-money",
        "no-id",
        "empty-id",
        "no-status",
        "naive-created-at",
    ],
)
def test_rejects_a_payment_event_without_a_valid_payment(mutate, loc):
    event = demo_event()
    mutate(event["data"]["object"]["payment"])
    assert loc in locs_of(body_of(event))


@pytest.mark.parametrize("data_object", [None, {}, {"refund": {"id": "R1"}}])
def test_rejects_a_payment_event_with_no_payment_object(data_object):
    event = demo_event()
    event["data"]["object"] = data_object
    assert ("payment",) in locs_of(body_of(event))


def test_payment_record_normalizes_a_completed_payment():
    event = parse_event(
        body_of(
            payment_event(
                merchant_id="MLTEST",
                payment_id="pay_1",
                amount=2599,
                tip=500,
                currency="EUR",
                email="  Bob.Smith@Example.COM ",
                customer_id="CUST_BOB",
                created_at=datetime(2026, 11, 20, 15, 4, 6, tzinfo=UTC),
            )
        )
    )
    record = payment_record(event)
    assert record.provider is Provider.SQUARE
    assert record.merchant_account_id == "MLTEST"
    assert record.provider_transaction_id == "pay_1"
    assert record.completed is True
    assert record.amount_minor_units == 2599  # amount_money: the tip is not part of it
    assert record.currency == "EUR"
    assert record.transaction_at == datetime(2026, 11, 20, 15, 4, 5, tzinfo=UTC)
    assert record.customer.email == "bob.smith@example.com"
    assert record.customer.mobile is None
    assert record.customer.external_customer_id == "CUST_BOB"
    assert record.idempotency_key == "square:MLTEST:pay_1"


@pytest.mark.parametrize("status", ["APPROVED", "PENDING", "CANCELED", "FAILED", "completed"])
def test_only_completed_payments_are_completed(status):
    record = payment_record(parse_event(body_of(payment_event(merchant_id="M", status=status))))
    assert record.completed is False


def test_demo_bodies_normalize_as_expected():
    approved = payment_record(parse_event(demo_body("01_alice_payment_created_approved.json")))
    completed = payment_record(parse_event(demo_body("02_alice_payment_completed.json")))
    bob = payment_record(parse_event(demo_body("05_bob_large_payment_capped.json")))
    walk_in = payment_record(parse_event(demo_body("06_anonymous_walk_in.json")))
    assert (approved.completed, completed.completed) == (False, True)
    assert approved.idempotency_key == completed.idempotency_key == "square:MLBLUEBOTTLE01:pay_BB_0001"
    assert bob.customer.email == "bob@example.com"
    assert bob.amount_minor_units == 78050
    assert walk_in.customer.is_anonymous()


@pytest.mark.parametrize("email", [None, "", "   "])
def test_absent_or_blank_email_is_anonymous(email):
    record = payment_record(parse_event(body_of(payment_event(merchant_id="M", email=email))))
    assert record.customer.email is None
    assert record.customer.is_anonymous()
