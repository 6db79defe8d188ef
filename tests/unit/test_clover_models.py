"""Clover's webhook messages, auth code, payment normalization and backoff: no sockets."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pos_gateway.loyalty.clover_crediting import clover_crediting_from_settings, combined
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.providers.clover import (
    CloverNotification,
    CloverPayment,
    CloverVerification,
    MerchantUpdate,
    is_valid_auth_code,
    normalize_email,
    normalize_phone,
    payment_record,
    refund_records,
    retry_after,
)
from pos_gateway.providers.clover.settings import CloverCreditingSettings
from pos_gateway.providers.models import Provider

EVENTS = Path(__file__).resolve().parents[2] / "events" / "clover"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


# ---------------------------------------------------------------- webhook messages


def test_a_delivery_holds_one_update_per_merchant_change() -> None:
    notification = CloverNotification.model_validate(sample("notification_two_merchants.json"))

    updates = notification.updates()

    assert [u.provider_event_id for u in updates] == [
        "MCLOVERDEMO01:P:PAYDEMO000001:CREATE:1763651046000",
        "MCLOVERDEMO01:P:PAYDEMO000001:UPDATE:1763651052000",
        "MCLOVERDEMO02:P:PAYDEMO000002:CREATE:1763651101000",
        "MCLOVERDEMO02:O:ORDDEMO000002:UPDATE:1763651101500",
    ]
    assert [u.event_type for u in updates] == [
        "payment.create",
        "payment.update",
        "payment.create",
        "order.update",
    ]
    assert [u.is_payment_change for u in updates] == [True, True, True, False]
    assert updates[0].update.bare_id == "PAYDEMO000001"


def test_an_update_round_trips_through_its_raw_payload() -> None:
    update = CloverNotification.model_validate(sample("notification_two_merchants.json")).updates()[1]

    payload = update.to_payload()

    assert payload == {
        "merchantId": "MCLOVERDEMO01",
        "appId": "DEMOAPP0000001",
        "objectId": "P:PAYDEMO000001",
        "type": "UPDATE",
        "ts": 1763651052000,
    }
    assert MerchantUpdate.from_payload(json.loads(json.dumps(payload))) == update


def test_deletes_and_other_objects_are_not_payment_changes() -> None:
    body = {
        "merchants": {
            "M1": [
                {"objectId": "P:X1", "type": "DELETE", "ts": 1},
                {"objectId": "C:X2", "type": "CREATE", "ts": 2},
            ]
        }
    }

    updates = CloverNotification.model_validate(body).updates()

    assert [u.is_payment_change for u in updates] == [False, False]
    assert [u.event_type for u in updates] == ["payment.delete", "customer.create"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"merchants": []},
        {"merchants": {"M1": [{"objectId": "PAY1", "type": "CREATE", "ts": 1}]}},
        {"merchants": {"M1": [{"objectId": "P:PAY1", "type": "CREATE", "ts": -1}]}},
        {"merchants": {"M1": [{"objectId": "P:PAY1", "type": "create", "ts": 1}]}},
        {"merchants": {"M 1": [{"objectId": "P:PAY1", "type": "CREATE", "ts": 1}]}},
        {"merchants": {"M1": [{"objectId": "P:PAY\u00001", "type": "CREATE", "ts": 1}]}},
    ],
)
def test_malformed_messages_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CloverNotification.model_validate(body)


def test_the_verification_post_is_its_own_shape() -> None:
    assert CloverVerification.model_validate(sample("verification.json")).verification_code == (
        "5b0e8a4e-5d2f-4c1a-9a37-2f4f9c1d7e10"
    )
    with pytest.raises(ValidationError):
        CloverVerification.model_validate({"verificationCode": "x'; DROP"})
    with pytest.raises(ValidationError):
        CloverVerification.model_validate({"verificationCode": "5b0e8a4e-5d2f", "merchants": {}})


@pytest.mark.parametrize(
    ("expected", "received", "valid"),
    [
        ("code-1234", "code-1234", True),
        ("code-1234", " code-1234 ", True),
        ("code-1234", "code-1235", False),
        ("code-1234", "", False),
        ("code-1234", None, False),
        ("", "", False),
        ("", None, False),
        ("code-1234", "cøde-1234", False),
    ],
)
def test_auth_code_comparison(expected: str, received: str | None, valid: bool) -> None:
    assert is_valid_auth_code(expected, received) is valid


def test_http_samples_carry_the_route_and_their_bodies() -> None:
    for name in ("http_payment_updates.json", "http_wrong_auth_code.json", "http_verification.json"):
        event = sample(name)
        assert event["routeKey"] == "POST /webhooks/clover", name
    body = json.loads(sample("http_payment_updates.json")["body"])
    assert len(CloverNotification.model_validate(body).updates()) == 4


# ---------------------------------------------------------------- payments


def test_a_successful_payment_normalizes_to_a_completed_record() -> None:
    payment = CloverPayment.model_validate(sample("payment_success_with_refund.json"))

    record = payment_record("MCLOVERDEMO01", payment)

    assert record.provider is Provider.CLOVER
    assert record.merchant_account_id == "MCLOVERDEMO01"
    assert record.provider_transaction_id == "PAYDEMO000001"
    assert record.completed is True
    assert record.amount_minor_units == 4250  # tipAmount (300) excluded
    assert record.currency == "USD"
    assert record.transaction_at == datetime.fromtimestamp(1763651045, tz=UTC)
    assert record.customer.email == "alice@example.com"
    assert record.customer.mobile == "+14155550134"
    assert record.customer.external_customer_id == "CUSTDEMO00001"
    assert record.idempotency_key == "clover:MCLOVERDEMO01:PAYDEMO000001"


def test_the_payments_refunds_normalize_to_refund_records() -> None:
    payment = CloverPayment.model_validate(sample("payment_success_with_refund.json"))

    [refund] = refund_records("MCLOVERDEMO01", payment)

    assert refund.provider_refund_id == "REFDEMO000001"
    assert refund.provider_transaction_id == "PAYDEMO000001"
    assert refund.completed is True
    assert refund.amount_minor_units == 1250
    assert refund.refunded_at == datetime.fromtimestamp(1763651050, tz=UTC)


def test_only_success_is_completed() -> None:
    payment = CloverPayment.model_validate(sample("payment_failed.json"))

    assert payment_record("MCLOVERDEMO02", payment).completed is False


def test_without_its_order_a_payment_is_anonymous_in_the_default_currency() -> None:
    payment = CloverPayment.model_validate({"id": "P1", "amount": 100, "result": "SUCCESS", "createdTime": 0})

    record = payment_record("M1", payment, default_currency="CAD")

    assert record.currency == "CAD"
    assert record.customer.is_anonymous()
    assert refund_records("M1", payment) == []


def test_zero_voided_and_failed_refunds_take_nothing_back() -> None:
    refunds = [
        {"id": "R0", "amount": 0, "createdTime": 1},
        {"id": "R1", "amount": 100, "createdTime": 1, "voided": True},
        {"id": "R2", "amount": 100, "createdTime": 1, "status": "FAIL"},
        {"id": "R3", "amount": 100, "createdTime": 1, "status": "SUCCESS"},
    ]
    payment = CloverPayment.model_validate(
        {"id": "P1", "amount": 500, "result": "SUCCESS", "createdTime": 0, "refunds": {"elements": refunds}}
    )

    assert [r.completed for r in refund_records("M1", payment)] == [False, False, False, True]


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 (415) 555-0134", "+14155550134"),
        ("415.555.0134", "+14155550134"),
        ("1-415-555-0134", "+14155550134"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+52 55 1234 5678", "+525512345678"),
        ("555-0134", None),
        ("+0123456789", None),
        ("call me", None),
        ("", None),
        (None, None),
    ],
)
def test_phones_normalize_to_e164_when_possible(raw: str | None, e164: str | None) -> None:
    assert normalize_phone(raw) == e164


def test_national_numbers_need_a_known_country() -> None:
    assert normalize_phone("4155550134", default_country_code="52") is None


@pytest.mark.parametrize(
    ("raw", "email"),
    [(" Alice@Example.COM ", "alice@example.com"), ("not an email", None), ("", None), (None, None)],
)
def test_emails_normalize_lowercase(raw: str | None, email: str | None) -> None:
    assert normalize_email(raw) == email


# ---------------------------------------------------------------- backoff


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7),
        (" 120 ", 120),
        ("0", 1),
        ("86400", 900),
        ("Fri, 20 Nov 2026 12:00:30 GMT", 30),
        ("Fri, 20 Nov 2026 11:00:00 GMT", 1),
        ("soon", 10),
        ("-5", 10),
        (None, 10),
    ],
)
def test_retry_after_is_read_and_bounded(header: str | None, seconds: int) -> None:
    assert retry_after(header, 10, now=NOW) == seconds


# ---------------------------------------------------------------- one result per raw event


RAW = uuid.uuid4()
TXN = uuid.uuid4()


def result(outcome: ProcessingOutcome, **kwargs: Any) -> ProcessingResult:
    return ProcessingResult(RAW, outcome, **kwargs)


def test_a_new_earn_keeps_its_outcome_with_the_reversals_points() -> None:
    earned = result(ProcessingOutcome.CREDITED, transaction_id=TXN, points_earned=40)
    reversed_ = result(ProcessingOutcome.REVERSED, transaction_id=TXN, points_reversed=10, points_shortfall=2)

    assert combined(earned, [reversed_]) == result(
        ProcessingOutcome.CREDITED,
        transaction_id=TXN,
        points_earned=40,
        points_reversed=10,
        points_shortfall=2,
    )


def test_a_known_payment_with_a_new_refund_is_a_reversal() -> None:
    earned = result(ProcessingOutcome.DUPLICATE_TRANSACTION)
    old = result(ProcessingOutcome.DUPLICATE_REFUND, transaction_id=TXN)
    new = result(ProcessingOutcome.REVERSED, transaction_id=TXN, points_reversed=5)

    assert combined(earned, [old, new]) == result(
        ProcessingOutcome.REVERSED, transaction_id=TXN, points_reversed=5
    )


def test_a_known_payment_with_known_refunds_is_a_duplicate() -> None:
    earned = result(ProcessingOutcome.DUPLICATE_TRANSACTION)
    old = result(ProcessingOutcome.DUPLICATE_REFUND, transaction_id=TXN)

    assert combined(earned, [old]).outcome is ProcessingOutcome.DUPLICATE_TRANSACTION
    assert combined(earned, []).outcome is ProcessingOutcome.DUPLICATE_TRANSACTION


# ---------------------------------------------------------------- settings


def test_crediting_settings_default_to_production_clover_and_wire_nothing_without_keys() -> None:
    settings = CloverCreditingSettings.model_validate({"DB_SECRET_ARN": "arn:db"})

    assert settings.clover_api_base_url == "https://api.clover.com"
    assert (settings.clover_connect_timeout_seconds, settings.clover_read_timeout_seconds) == (3.0, 10.0)
    assert clover_crediting_from_settings(settings) is None
    with pytest.raises(ValidationError):
        CloverCreditingSettings.model_validate(
            {"DB_SECRET_ARN": "arn:db", "CLOVER_API_BASE_URL": "api.clover.com"}
        )
