"""Polled payments dressed as webhooks, and the typed settings of the poller and the refresher."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from pos_gateway.backfill.envelope import UnusablePayment, polled_event, polled_event_id
from pos_gateway.backfill.refresher import OAuthClient
from pos_gateway.backfill.settings import SquarePollerSettings, TokenRefresherSettings
from pos_gateway.providers.square import parse_event, payment_record
from pos_gateway.providers.square.api import ListedPayment
from tests.helpers import body_of, payment_event

CREATED = datetime(2026, 11, 20, 15, 4, 5, tzinfo=UTC)


def listed(**overrides: Any) -> ListedPayment:
    raw: dict[str, Any] = {
        "id": "pay_A1",
        "created_at": "2026-11-20T15:04:05Z",
        "updated_at": "2026-11-20T15:04:09.250Z",
        "amount_money": {"amount": 1999, "currency": "USD"},
        "status": "COMPLETED",
        "buyer_email_address": "Alice@Example.com",
        "location_id": "L1",
        **overrides,
    }
    updated = datetime.fromisoformat(raw["updated_at"]) if raw.get("updated_at") else None
    return ListedPayment(raw["id"], datetime.fromisoformat(raw["created_at"]), updated, raw)


def test_the_event_id_depends_on_the_payment_and_its_state_only():
    at = datetime(2026, 11, 20, 15, 4, 9, 250000, tzinfo=UTC)
    same_instant = at.astimezone(timezone(timedelta(hours=-8)))

    assert polled_event_id("pay_A1", at) == polled_event_id("pay_A1", same_instant)
    assert polled_event_id("pay_A1", at).startswith("poll:")
    assert polled_event_id("pay_A1", at) != polled_event_id("pay_A1", at + timedelta(milliseconds=1))
    assert polled_event_id("pay_A1", at) != polled_event_id("pay_B2", at)


def test_polling_the_same_state_twice_gives_the_same_event():
    assert polled_event("MLONE", listed()) == polled_event("MLONE", listed())


def test_a_polled_payment_reads_as_the_payment_updated_webhook_would():
    payment = listed()

    polled = polled_event("MLONE", payment)

    event = parse_event(polled.body.encode())
    assert (polled.event_type, event.type, event.merchant_id) == (
        "payment.updated",
        "payment.updated",
        "MLONE",
    )
    assert event.event_id == polled.event_id
    assert event.created_at == payment.updated_at
    assert event.data.id == "pay_A1"
    assert json.loads(polled.body)["data"]["object"]["payment"] == payment.raw


def test_webhook_and_poll_of_one_payment_normalize_to_the_same_transaction_key():
    webhook = payment_event(merchant_id="MLONE", payment_id="pay_A1", event_type="payment.updated")

    from_webhook = payment_record(parse_event(body_of(webhook)))
    from_poll = payment_record(parse_event(polled_event("MLONE", listed()).body.encode()))

    assert from_poll.idempotency_key == from_webhook.idempotency_key == "square:MLONE:pay_A1"
    assert from_poll.completed


def test_without_updated_at_the_creation_time_is_the_state():
    polled = polled_event("MLONE", listed(updated_at=None))

    assert polled.event_id == polled_event_id("pay_A1", CREATED)


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount_money": None},
        {"amount_money": {"amount": -1, "currency": "USD"}},
        {"status": ""},
        {"buyer_email_address": "nul\x00byte@example.com"},
    ],
)
def test_a_payment_crediting_could_not_read_is_unusable(overrides):
    with pytest.raises(UnusablePayment, match="pay_A1"):
        polled_event("MLONE", listed(**overrides))


ENV = {
    "DB_SECRET_ARN": "arn:db",
    "INGEST_QUEUE_URL": "https://sqs/ingest",
    "ENCRYPTION_KEYS_SECRET_ARN": "arn:keys",
}


def test_poller_settings_default_to_square_production_and_bounded_runs():
    settings = SquarePollerSettings.model_validate(ENV)

    assert settings.square_api_base_url == "https://connect.squareup.com"
    assert (settings.overlap_seconds, settings.first_lookback_seconds) == (600, 86400)
    assert (settings.max_connections, settings.max_pages_per_location, settings.page_size) == (50, 10, 100)


def test_poller_settings_read_their_variables():
    settings = SquarePollerSettings.model_validate(
        {**ENV, "SQUARE_API_BASE_URL": "http://127.0.0.1:8123", "SQUARE_POLL_PAGE_SIZE": "25"}
    )

    assert (settings.square_api_base_url, settings.page_size) == ("http://127.0.0.1:8123", 25)


@pytest.mark.parametrize(
    "bad",
    [
        {"SQUARE_POLL_PAGE_SIZE": "101"},
        {"SQUARE_POLL_MAX_PAGES": "0"},
        {"SQUARE_API_BASE_URL": "connect.squareup.com"},
        {"SQUARE_API_VERSION": "latest"},
        {"INGEST_QUEUE_URL": ""},
    ],
)
def test_poller_settings_refuse_bad_values(bad):
    with pytest.raises(ValidationError):
        SquarePollerSettings.model_validate({**ENV, **bad})


def test_refresher_settings_need_the_oauth_secret_and_default_to_seven_days():
    with pytest.raises(ValidationError):
        TokenRefresherSettings.model_validate({"DB_SECRET_ARN": "arn:db", "ENCRYPTION_KEYS_SECRET_ARN": "k"})

    settings = TokenRefresherSettings.model_validate(
        {"DB_SECRET_ARN": "arn:db", "ENCRYPTION_KEYS_SECRET_ARN": "k", "SQUARE_OAUTH_SECRET_ARN": "arn:oauth"}
    )
    assert settings.refresh_window_days == 7


def test_the_oauth_client_comes_from_its_secret_and_hides_the_secret():
    client = OAuthClient.from_secret({"clientId": "sq0idp-app", "clientSecret": "sq0csp-hidden"})

    assert client.client_id == "sq0idp-app"
    assert "sq0csp-hidden" not in repr(client)
    with pytest.raises(ValueError, match="clientSecret"):
        OAuthClient.from_secret({"clientId": "sq0idp-app"})
