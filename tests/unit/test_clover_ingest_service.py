"""The Clover ingest service with an in-memory store and queue: no sockets."""

import json
import uuid
from typing import Any

import pytest

from pos_gateway.ingest.clover import (
    CloverEventStore,
    CloverWebhookAck,
    CloverWebhookConfig,
    CloverWebhookIngest,
    InvalidAuthCode,
    StoredUpdate,
    UnknownApp,
)
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.ingest.service import MalformedEvent
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.clover import MerchantUpdate
from pos_gateway.providers.models import Provider

AUTH = "auth-code-0307e264"
TENANT = uuid.uuid4()


class FakeStore(CloverEventStore):
    """Stores nothing: known merchants get a tenant, ids already seen are duplicates."""

    def __init__(self, known: set[str], seen: set[str] | None = None) -> None:  # no connections, on purpose
        self.known = known
        self.seen = seen or set()
        self.bodies: list[str] = []
        self.codes: list[str] = []

    def store(self, updates: list[MerchantUpdate], raw_body: str) -> list[StoredUpdate]:
        self.bodies.append(raw_body)
        stored = []
        for update in updates:
            new = update.provider_event_id not in self.seen
            self.seen.add(update.provider_event_id)
            tenant = TENANT if update.merchant_id in self.known else None
            stored.append(StoredUpdate(update, uuid.uuid4() if new else None, tenant))
        return stored

    def store_verification(self, code: str) -> None:
        self.codes.append(code)


class FakeQueue(IngestQueue):
    def __init__(self, error: Exception | None = None) -> None:  # no SQS client, on purpose
        self.error = error
        self.sent: list[CreditRequest] = []

    def enqueue(self, request: CreditRequest) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(request)


def service(store: FakeStore, queue: FakeQueue, app_id: str | None = None) -> CloverWebhookIngest:
    config = CloverWebhookConfig(auth_code=AUTH, app_id=app_id)
    return CloverWebhookIngest(lambda: config, store, queue)


def body(merchants: dict[str, list[dict[str, Any]]], app_id: str = "APP1") -> bytes:
    return json.dumps({"appId": app_id, "merchants": merchants}).encode()


def update(object_id: str = "P:PAY1", type_: str = "CREATE", ts: int = 1_763_651_046_000) -> dict[str, Any]:
    return {"objectId": object_id, "type": type_, "ts": ts}


def test_the_verification_post_is_kept_without_auth() -> None:
    store, queue = FakeStore(set()), FakeQueue()

    result = service(store, queue).receive(b'{"verificationCode":"ce7643c1-83ea-4218"}', None)

    assert result.verification
    assert store.codes == ["ce7643c1-83ea-4218"]
    assert store.bodies == []
    assert queue.sent == []
    assert CloverWebhookAck.of(result).model_dump() == {
        "status": "verification_received",
        "received": 0,
        "accepted": 0,
        "duplicates": 0,
        "quarantined": 0,
    }


@pytest.mark.parametrize("auth", [None, "", "wrong", AUTH[:-1]])
def test_deliveries_without_the_auth_code_are_refused_before_anything_is_stored(auth: str | None) -> None:
    store, queue = FakeStore({"M1"}), FakeQueue()

    with pytest.raises(InvalidAuthCode) as refused:
        service(store, queue).receive(body({"M1": [update()]}), auth)

    assert refused.value.status_code == 401
    assert store.bodies == []
    assert store.codes == []
    assert queue.sent == []


def test_an_empty_auth_code_in_the_secret_accepts_nothing() -> None:
    store, queue = FakeStore({"M1"}), FakeQueue()
    ingest = CloverWebhookIngest(lambda: CloverWebhookConfig.from_secret({}), store, queue)

    with pytest.raises(InvalidAuthCode):
        ingest.receive(body({"M1": [update()]}), "")


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'{"merchants": {"M1": [{"objectId": "PAY1"}]}}',
        b'{"verificationCode": 7}',
    ],
)
def test_malformed_bodies_are_400_with_nothing_stored(raw: bytes) -> None:
    store, queue = FakeStore({"M1"}), FakeQueue()

    with pytest.raises(MalformedEvent) as refused:
        service(store, queue).receive(raw, AUTH)

    assert refused.value.status_code == 400
    assert store.bodies == []
    assert store.codes == []
    assert queue.sent == []


def test_every_update_of_every_merchant_is_stored_and_enqueued() -> None:
    store, queue = FakeStore({"M1", "M2"}), FakeQueue()
    raw = body(
        {"M1": [update("P:A"), update("P:A", "UPDATE")], "M2": [update("P:B"), update("O:C", "UPDATE")]}
    )

    result = service(store, queue).receive(raw, AUTH)

    assert (result.received, result.accepted, result.duplicates, result.quarantined) == (4, 4, 0, 0)
    assert store.bodies == [raw.decode()]
    assert [r.raw_event_id for r in queue.sent] == list(result.raw_event_ids)
    assert {(r.tenant_id, r.provider) for r in queue.sent} == {(TENANT, Provider.CLOVER)}


def test_redeliveries_and_unknown_merchants_are_not_enqueued() -> None:
    store = FakeStore({"M1"}, seen={"M1:P:A:CREATE:1763651046000"})
    queue = FakeQueue()

    result = service(store, queue).receive(body({"M1": [update("P:A")], "MX": [update("P:Z")]}), AUTH)

    assert (result.received, result.accepted, result.duplicates, result.quarantined) == (2, 0, 1, 1)
    assert queue.sent == []


def test_an_enqueue_failure_is_counted_and_the_rest_still_answered() -> None:
    store, queue = FakeStore({"M1"}), FakeQueue(error=RuntimeError("sqs down"))

    result = service(store, queue).receive(body({"M1": [update("P:A"), update("P:B")]}), AUTH)

    assert (result.accepted, result.enqueue_failures) == (2, 2)


def test_an_empty_delivery_stores_nothing() -> None:
    store, queue = FakeStore({"M1"}), FakeQueue()

    result = service(store, queue).receive(body({}), AUTH)

    assert result.received == 0
    assert store.bodies == []


def test_a_configured_app_id_refuses_other_apps() -> None:
    store, queue = FakeStore({"M1"}), FakeQueue()

    with pytest.raises(UnknownApp):
        service(store, queue, app_id="APP1").receive(body({"M1": [update()]}, app_id="APP2"), AUTH)
    assert store.bodies == []

    assert service(store, queue, app_id="APP1").receive(body({"M1": [update()]}), AUTH).accepted == 1
