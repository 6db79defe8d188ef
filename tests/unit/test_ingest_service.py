"""The ingest service with in-memory store, queue and clock: no sockets."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.repository import RawEventStore, StoredEvent, VerifiedEvent
from pos_gateway.ingest.service import (
    IngestOutcome,
    InvalidSignature,
    MalformedEvent,
    SquareWebhookIngest,
    StaleEvent,
)
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from tests.helpers import MAX_EVENT_AGE, body_of, fixed_clock, payment_event, sign, webhook_config

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TENANT = uuid.uuid4()
RAW_ID = uuid.uuid4()


class FakeStore(RawEventStore):
    """A RawEventStore without a database: records what it was given."""

    def __init__(self, result: StoredEvent | None = None) -> None:  # no connections, on purpose
        self.result = result or StoredEvent(raw_event_id=RAW_ID, tenant_id=TENANT)
        self.calls: list[VerifiedEvent] = []

    def store(self, event: VerifiedEvent) -> StoredEvent:
        self.calls.append(event)
        return self.result


class FakeQueue(IngestQueue):
    """An IngestQueue without SQS: records what it was sent, or fails with `error`."""

    def __init__(self, error: Exception | None = None) -> None:  # no SQS client, on purpose
        self.error = error
        self.sent: list[CreditRequest] = []

    def enqueue(self, request: CreditRequest) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(request)


def service(
    store: FakeStore, queue: FakeQueue, key: str | None = None, now: datetime = NOW
) -> SquareWebhookIngest:
    config = webhook_config() if key is None else webhook_config(key)
    return SquareWebhookIngest(config=lambda: config, store=store, queue=queue, clock=fixed_clock(now))


def a_body(**overrides) -> bytes:
    return body_of(payment_event(merchant_id="MLTEST01", created_at=NOW - timedelta(minutes=1), **overrides))


def test_accepted_event_is_stored_verbatim_and_enqueued():
    store, queue = FakeStore(), FakeQueue()
    body = a_body(event_id="evt-1")
    signature = sign(body)

    result = service(store, queue).receive(body, signature)

    assert (result.outcome, result.raw_event_id, result.enqueued) == (IngestOutcome.ACCEPTED, RAW_ID, True)
    assert store.calls == [
        VerifiedEvent(
            provider=Provider.SQUARE,
            provider_event_id="evt-1",
            event_type="payment.created",
            merchant_account_id="MLTEST01",
            raw_body=body.decode("utf-8"),
            signature_header=signature,
        )
    ]
    assert queue.sent == [CreditRequest(raw_event_id=RAW_ID, tenant_id=TENANT, provider=Provider.SQUARE)]


@pytest.mark.parametrize(
    "signature_of",
    [
        lambda body: None,
        lambda body: "",
        lambda body: sign(body, key="not-the-key"),
        lambda body: sign(body, url="https://api.example.test/prod/webhooks/square"),
        lambda body: sign(body + b" "),
        lambda body: "garbage",
    ],
    ids=["missing", "empty", "wrong-key", "wrong-url", "other-body", "garbage"],
)
def test_bad_signatures_are_rejected_before_anything_is_stored(signature_of):
    store, queue = FakeStore(), FakeQueue()
    body = a_body()
    with pytest.raises(InvalidSignature) as excinfo:
        service(store, queue).receive(body, signature_of(body))
    assert (excinfo.value.status_code, excinfo.value.code) == (401, "invalid_signature")
    assert store.calls == []
    assert queue.sent == []


def test_signature_is_checked_before_the_body_is_parsed():
    store = FakeStore()
    with pytest.raises(InvalidSignature):
        service(store, FakeQueue()).receive(b"not json", "forged")
    assert store.calls == []


def test_stale_event_is_rejected():
    store, queue = FakeStore(), FakeQueue()
    body = body_of(payment_event(merchant_id="M", created_at=NOW - MAX_EVENT_AGE - timedelta(seconds=1)))
    with pytest.raises(StaleEvent) as excinfo:
        service(store, queue).receive(body, sign(body))
    assert (excinfo.value.status_code, excinfo.value.code) == (401, "stale_event")
    assert store.calls == []
    assert queue.sent == []


def test_an_old_but_not_stale_event_is_accepted():
    store = FakeStore()
    body = body_of(payment_event(merchant_id="M", created_at=NOW - MAX_EVENT_AGE + timedelta(seconds=1)))
    assert service(store, FakeQueue()).receive(body, sign(body)).outcome is IngestOutcome.ACCEPTED
    assert len(store.calls) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"{", ""),
        (b"[]", ""),
        (
            body_of(
                {"type": "payment.created", "event_id": "e", "created_at": "2026-11-22T11:59:00Z", "data": {}}
            ),
            "merchant_id",
        ),
    ],
    ids=["truncated-json", "array", "no-merchant"],
)
def test_malformed_body_is_rejected_with_details(body, loc):
    store, queue = FakeStore(), FakeQueue()
    with pytest.raises(MalformedEvent) as excinfo:
        service(store, queue).receive(body, sign(body))
    error = excinfo.value
    assert (error.status_code, error.code) == (400, "malformed_event")
    assert loc in [detail["loc"] for detail in error.fields]
    assert all(set(detail) == {"loc", "type", "msg"} for detail in error.fields)
    assert store.calls == []


def test_malformed_payment_details_name_the_field():
    event = payment_event(merchant_id="M", created_at=NOW - timedelta(minutes=1))
    event["data"]["object"]["payment"]["amount_money"]["amount"] = -5
    body = body_of(event)
    with pytest.raises(MalformedEvent) as excinfo:
        service(FakeStore(), FakeQueue()).receive(body, sign(body))
    assert [(d["loc"], d["type"]) for d in excinfo.value.fields] == [
        ("payment.amount_money.amount", "greater_than_equal")
    ]


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", a_body(email="nul\x00@example.com")],
    ids=["not-utf8", "escaped-nul"],
)
def test_bodies_postgres_cannot_store_are_malformed(body):
    store = FakeStore()
    with pytest.raises(MalformedEvent):
        service(store, FakeQueue()).receive(body, sign(body))
    assert store.calls == []


def test_duplicate_is_not_enqueued():
    store, queue = FakeStore(StoredEvent(raw_event_id=None, tenant_id=TENANT)), FakeQueue()
    body = a_body()
    result = service(store, queue).receive(body, sign(body))
    assert (result.outcome, result.raw_event_id, result.enqueued) == (IngestOutcome.DUPLICATE, None, False)
    assert len(store.calls) == 1
    assert queue.sent == []


def test_unknown_merchant_is_quarantined_and_not_enqueued():
    store, queue = FakeStore(StoredEvent(raw_event_id=RAW_ID, tenant_id=None)), FakeQueue()
    body = a_body()
    result = service(store, queue).receive(body, sign(body))
    assert (result.outcome, result.raw_event_id, result.enqueued) == (
        IngestOutcome.QUARANTINED,
        RAW_ID,
        False,
    )
    assert queue.sent == []


@pytest.mark.parametrize("error", [RuntimeError("sqs down"), TimeoutError(), ConnectionError("reset")])
def test_queue_failure_still_accepts_and_reports_not_enqueued(error):
    store, queue = FakeStore(), FakeQueue(error)
    body = a_body()
    result = service(store, queue).receive(body, sign(body))
    assert (result.outcome, result.raw_event_id, result.enqueued) == (IngestOutcome.ACCEPTED, RAW_ID, False)
    assert len(store.calls) == 1


def test_config_is_read_per_request_so_a_rotated_key_applies():
    keys = iter(["old-key", "new-key"])
    store = FakeStore()
    ingest = SquareWebhookIngest(
        config=lambda: webhook_config(next(keys)), store=store, queue=FakeQueue(), clock=fixed_clock(NOW)
    )
    body = a_body()
    assert ingest.receive(body, sign(body, key="old-key")).outcome is IngestOutcome.ACCEPTED
    with pytest.raises(InvalidSignature):
        ingest.receive(body, sign(body, key="old-key"))
