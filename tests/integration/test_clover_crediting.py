"""Crediting Clover updates: real Postgres (the crediting role), the fake Clover over real HTTP,
through CreditingService with its Clover branch."""

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from local import seed
from local.database import Database
from local.fake_clover import FakeClover, Scripted, clover_payment, clover_refund, connect_clover_merchant
from pos_gateway.crypto import CredentialCipher
from pos_gateway.db import ConnectionFactory
from pos_gateway.ingest.clover import CloverEventStore
from pos_gateway.loyalty import crediting_from_settings
from pos_gateway.loyalty.clover_crediting import CloverCrediting
from pos_gateway.loyalty.crediting import CreditingService
from pos_gateway.loyalty.models import ProcessingOutcome, ProcessingResult
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.clover import (
    CloverClient,
    CloverConnectionUnusable,
    CloverNotification,
    CloverUnauthorized,
    ProviderBusy,
)
from pos_gateway.providers.clover.repository import ConnectionStatus
from pos_gateway.providers.clover.settings import CloverCreditingSettings
from pos_gateway.providers.models import Provider
from tests.helpers import clear_parameter_caches, count, one, unique, unique_email

CIPHER: CredentialCipher = seed.dev_cipher()
TS = 1_763_651_046_000


@dataclass(frozen=True)
class Shop:
    tenant_id: uuid.UUID
    merchant_id: str
    connection_id: uuid.UUID


class ManualClock:
    """The monotonic clock of the Clover branch's backoff memory, moved by the tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pipeline:
    clover: FakeClover
    store: CloverEventStore
    branch: CloverCrediting
    connections: ConnectionFactory
    clock: ManualClock = field(default_factory=ManualClock)

    def credit(self, request: CreditRequest) -> ProcessingResult:
        """CreditingService with the Clover branch, on this pipeline's own connection."""
        return CreditingService(self.connections, clover=self.branch).process(request)

    def receive(self, shop: Shop, object_id: str, type_: str = "CREATE", ts: int = TS) -> CreditRequest:
        """Store one update as ingest does and return the message ingest would enqueue."""
        body = {
            "appId": "APP1",
            "merchants": {shop.merchant_id: [{"objectId": object_id, "type": type_, "ts": ts}]},
        }
        [update] = CloverNotification.model_validate(body).updates()
        [stored] = self.store.store([update], json.dumps(body))
        return CreditRequest(
            raw_event_id=one(stored.raw_event_id), tenant_id=shop.tenant_id, provider=Provider.CLOVER
        )


@pytest.fixture(scope="module")
def pipeline(database: Database) -> Iterator[Pipeline]:
    ingest_connections = database.connections("pos_gateway_ingest")
    crediting_connections = database.connections("pos_gateway_crediting")
    status_connections = database.connections("pos_gateway_crediting")
    with FakeClover() as clover:
        client = CloverClient(
            clover.base_url, connect_timeout=1.0, read_timeout=0.3, unavailable_backoff_seconds=45
        )
        clock = ManualClock()
        branch = CloverCrediting(client, lambda: CIPHER, ConnectionStatus(status_connections), clock=clock)
        yield Pipeline(clover, CloverEventStore(ingest_connections), branch, crediting_connections, clock)
    for factory in (ingest_connections, crediting_connections, status_connections):
        factory.close()


@pytest.fixture
def clover(pipeline: Pipeline) -> FakeClover:
    pipeline.clover.reset()
    pipeline.clock.now += 3600  # past any backoff an earlier test left
    return pipeline.clover


@pytest.fixture
def shop(owner: psycopg.Connection[Any], clover: FakeClover) -> Shop:
    return _shop(owner, clover)


def _shop(owner: psycopg.Connection[Any], clover: FakeClover) -> Shop:
    """A tenant (one point per dollar) with a connected Clover merchant whose token Clover knows."""
    tenant_id = seed.create_tenant(owner, unique("Clover shop "))
    seed.create_rule(owner, tenant_id, seed.DEFAULT_RULE)
    merchant_id = unique("MC")
    connection_id, token = connect_clover_merchant(owner, tenant_id, merchant_id, CIPHER)
    clover.grant_token(merchant_id, token)
    return Shop(tenant_id, merchant_id, connection_id)


def member(owner: psycopg.Connection[Any], **contact: str) -> uuid.UUID:
    return seed.create_user(owner, status="active", **contact)


def balance(owner: psycopg.Connection[Any], tenant_id: uuid.UUID, user_id: uuid.UUID) -> int:
    row = owner.execute(
        "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
        (tenant_id, user_id),
    ).fetchone()
    return int(row["points_balance"]) if row else 0


def written(owner: psycopg.Connection[Any], tenant_id: uuid.UUID) -> dict[str, int]:
    """What crediting can write in a tenant, counted."""
    tables = [
        "pos.transactions",
        "pos.refunds",
        "pos.idempotency_keys",
        "loyalty.wallets",
        "loyalty.reward_events",
        "loyalty.wallet_ledger",
    ]
    counts = {
        t: count(owner, f"SELECT count(*) AS n FROM {t} WHERE tenant_id = %s", (tenant_id,)) for t in tables
    }
    counts["processed"] = count(
        owner,
        "SELECT count(*) AS n FROM pos.pos_webhook_events_raw WHERE tenant_id = %s AND processed",
        (tenant_id,),
    )
    return counts


def connection_state(owner: psycopg.Connection[Any], shop: Shop) -> dict[str, Any]:
    return dict(
        one(
            owner.execute(
                "SELECT status, last_error FROM pos.pos_connections WHERE id = %s", (shop.connection_id,)
            ).fetchone()
        )
    )


def test_a_successful_payment_credits_its_member_exactly(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    email = unique_email("alice")
    alice = member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYOK1", amount=4299, tip=500, email=email.upper()))

    result = pipeline.credit(pipeline.receive(shop, "P:PAYOK1"))

    assert (result.outcome, result.points_earned) == (ProcessingOutcome.CREDITED, 42)
    assert balance(owner, shop.tenant_id, alice) == 42
    txn = one(
        owner.execute(
            "SELECT provider, provider_transaction_id, amount_minor_units, currency, user_id, customer_ref"
            " FROM pos.transactions WHERE tenant_id = %s",
            (shop.tenant_id,),
        ).fetchone()
    )
    assert (txn["provider"], txn["provider_transaction_id"], txn["amount_minor_units"], txn["user_id"]) == (
        "clover",
        "PAYOK1",
        4299,
        alice,
    )
    assert txn["customer_ref"]["email"] == email
    assert (
        count(
            owner,
            "SELECT count(*) AS n FROM pos.idempotency_keys WHERE key = %s",
            (f"clover:{shop.merchant_id}:PAYOK1",),
        )
        == 1
    )
    [request] = clover.requests
    assert request.bearer_valid
    assert request.path.endswith("/payments/PAYOK1")


def test_a_member_is_found_by_phone_in_e164(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    mobile = "+1415" + str(uuid.uuid4().int)[:7]
    bob = member(owner, mobile=mobile)
    national = f"({mobile[2:5]}) {mobile[5:8]}-{mobile[8:]}"
    clover.put_payment(shop.merchant_id, clover_payment("PAYPHONE1", amount=1000, phone=national))

    result = pipeline.credit(pipeline.receive(shop, "P:PAYPHONE1"))

    assert result.outcome is ProcessingOutcome.CREDITED
    assert balance(owner, shop.tenant_id, bob) == 10


def test_a_payment_that_did_not_succeed_earns_nothing(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    email = unique_email("carol")
    carol = member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYFAIL1", amount=5000, result="FAIL", email=email))

    result = pipeline.credit(pipeline.receive(shop, "P:PAYFAIL1"))

    assert result.outcome is ProcessingOutcome.NOT_COMPLETED
    assert balance(owner, shop.tenant_id, carol) == 0
    assert written(owner, shop.tenant_id)["pos.transactions"] == 0


def test_refunds_in_the_payment_reverse_their_share(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    email = unique_email("dana")
    dana = member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYREF1", amount=4000, email=email))
    first = pipeline.credit(pipeline.receive(shop, "P:PAYREF1"))
    # Later the payment is partly refunded, and Clover tells us the payment changed.
    clover.put_payment(
        shop.merchant_id,
        clover_payment(
            "PAYREF1", amount=4000, email=email, refunds=[clover_refund(refund_id="REF1", amount=1000)]
        ),
    )

    second = pipeline.credit(pipeline.receive(shop, "P:PAYREF1", "UPDATE", TS + 5000))

    assert (first.outcome, first.points_earned) == (ProcessingOutcome.CREDITED, 40)
    assert (second.outcome, second.points_reversed) == (ProcessingOutcome.REVERSED, 10)
    assert balance(owner, shop.tenant_id, dana) == 30
    assert (
        count(
            owner,
            "SELECT count(*) AS n FROM pos.refunds WHERE tenant_id = %s AND provider_refund_id = 'REF1'",
            (shop.tenant_id,),
        )
        == 1
    )


def test_a_payment_first_seen_already_refunded_earns_and_reverses_at_once(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    email = unique_email("erin")
    erin = member(owner, email=email)
    clover.put_payment(
        shop.merchant_id,
        clover_payment(
            "PAYREF2",
            amount=2000,
            email=email,
            refunds=[clover_refund(amount=500), clover_refund(amount=500)],
        ),
    )

    result = pipeline.credit(pipeline.receive(shop, "P:PAYREF2"))

    assert (result.outcome, result.points_earned, result.points_reversed) == (
        ProcessingOutcome.CREDITED,
        20,
        10,
    )
    assert balance(owner, shop.tenant_id, erin) == 10


@pytest.mark.parametrize(
    ("answer", "wait"),
    [(Scripted(429, {"Retry-After": "7"}), 7), (Scripted(502), 45), (Scripted(hang=True), 45)],
    ids=["rate-limited", "server-error", "timeout"],
)
def test_a_busy_clover_raises_with_a_backoff_and_nothing_is_written(
    pipeline: Pipeline,
    clover: FakeClover,
    shop: Shop,
    owner: psycopg.Connection[Any],
    answer: Scripted,
    wait: int,
) -> None:
    email = unique_email("fay")
    member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYBUSY1", amount=3000, email=email))
    request = pipeline.receive(shop, "P:PAYBUSY1")
    clover.script(answer)

    with pytest.raises(ProviderBusy) as busy:
        pipeline.credit(request)

    assert busy.value.retry_after_seconds == wait
    assert set(written(owner, shop.tenant_id).values()) == {0}
    assert connection_state(owner, shop) == {"status": "active", "last_error": None}
    # Redelivered before the backoff has passed: Clover is not asked (asking early lengthens it).
    pipeline.clock.now += wait - 1
    with pytest.raises(ProviderBusy) as early:
        pipeline.credit(request)
    assert early.value.retry_after_seconds == 1
    assert len(clover.requests) == 1
    # Once it has passed, Clover answers again and the same message credits.
    pipeline.clock.now += 1
    assert pipeline.credit(request).points_earned == 30


def test_a_rate_limit_holds_back_only_its_merchant_an_outage_every_merchant(
    pipeline: Pipeline, clover: FakeClover, owner: psycopg.Connection[Any]
) -> None:
    shops = [_shop(owner, clover) for _ in range(2)]
    for shop in shops:
        clover.put_payment(shop.merchant_id, clover_payment("PAYSCOPE", amount=100))
    first, second = (pipeline.receive(shop, "P:PAYSCOPE") for shop in shops)
    clover.script(Scripted(429, {"Retry-After": "30"}), merchant_id=shops[0].merchant_id)

    with pytest.raises(ProviderBusy):
        pipeline.credit(first)
    assert pipeline.credit(second).outcome is ProcessingOutcome.ANONYMOUS

    pipeline.clock.now += 31
    clover.script(Scripted(503, {"Retry-After": "60"}))
    with pytest.raises(ProviderBusy):
        pipeline.credit(first)
    with pytest.raises(ProviderBusy) as held:
        pipeline.credit(pipeline.receive(shops[1], "P:PAYSCOPE", "UPDATE"))
    assert held.value.retry_after_seconds == 60
    assert len(clover.requests) == 3


def test_a_refused_token_marks_the_connection_and_writes_nothing_else(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    email = unique_email("gil")
    member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAY401", amount=3000, email=email))
    request = pipeline.receive(shop, "P:PAY401")
    clover.revoke_token(shop.merchant_id)

    with pytest.raises(CloverUnauthorized):
        pipeline.credit(request)

    state = connection_state(owner, shop)
    assert state["status"] == "token_expired"
    assert "401" in state["last_error"]
    assert set(written(owner, shop.tenant_id).values()) == {0}
    # Until an operator reconnects the merchant, Clover is not asked again.
    with pytest.raises(CloverConnectionUnusable):
        pipeline.credit(request)
    assert len(clover.requests) == 1


def test_the_same_update_twice_and_two_updates_of_one_payment_credit_once(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    email = unique_email("hal")
    hal = member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYONCE", amount=2500, email=email))
    created = pipeline.receive(shop, "P:PAYONCE")
    updated = pipeline.receive(shop, "P:PAYONCE", "UPDATE", TS + 1)

    outcomes = [pipeline.credit(r).outcome for r in (created, created, updated)]

    assert outcomes == [
        ProcessingOutcome.CREDITED,
        ProcessingOutcome.ALREADY_PROCESSED,
        ProcessingOutcome.DUPLICATE_TRANSACTION,
    ]
    assert balance(owner, shop.tenant_id, hal) == 25
    assert written(owner, shop.tenant_id)["loyalty.wallet_ledger"] == 1
    assert len(clover.requests) == 2  # the redelivered message did not call Clover


def test_updates_that_are_not_payment_changes_are_ignored_without_calling_clover(
    pipeline: Pipeline, clover: FakeClover, shop: Shop
) -> None:
    results = [
        pipeline.credit(pipeline.receive(shop, "O:ORDER1", "UPDATE")),
        pipeline.credit(pipeline.receive(shop, "P:PAYGONE", "DELETE")),
    ]

    assert {r.outcome for r in results} == {ProcessingOutcome.IGNORED_EVENT_TYPE}
    assert clover.requests == []


def test_a_merchant_without_a_clover_connection_is_not_credited(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any]
) -> None:
    request = pipeline.receive(shop, "P:PAYNOCONN")
    # Disconnected between ingest and crediting.
    owner.execute("UPDATE pos.pos_connections SET deleted_at = now() WHERE id = %s", (shop.connection_id,))

    with pytest.raises(CloverConnectionUnusable):
        pipeline.credit(request)

    assert clover.requests == []


def test_the_branch_wired_from_settings_reads_its_keys_and_reaches_clover(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any], database: Database
) -> None:
    email = unique_email("ivy")
    ivy = member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYWIRED", amount=1500, email=email))
    request = pipeline.receive(shop, "P:PAYWIRED")
    keys = {
        "currentKeyId": CIPHER.current_key_id,
        "keys": {k: base64.b64encode(v).decode() for k, v in CIPHER.keys.items()},
    }
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        db = secrets.create_secret(
            Name="db/crediting", SecretString=json.dumps(database.secret("pos_gateway_crediting"))
        )
        key_ring = secrets.create_secret(Name="encryption-keys", SecretString=json.dumps(keys))
        clear_parameter_caches()
        settings = CloverCreditingSettings.model_validate(
            {
                "DB_SECRET_ARN": db["ARN"],
                "ENCRYPTION_KEYS_SECRET_ARN": key_ring["ARN"],
                "CLOVER_API_BASE_URL": clover.base_url,
                "CLOVER_READ_TIMEOUT_SECONDS": "2",
            }
        )
        wired = crediting_from_settings(settings)

        result = wired.process(request)
        clear_parameter_caches()

    assert (result.outcome, result.points_earned) == (ProcessingOutcome.CREDITED, 15)
    assert balance(owner, shop.tenant_id, ivy) == 15
    assert settings.clover_default_currency == "USD"


def test_concurrent_workers_on_two_updates_of_one_payment_credit_once(
    pipeline: Pipeline, clover: FakeClover, shop: Shop, owner: psycopg.Connection[Any], database: Database
) -> None:
    email = unique_email("jo")
    jo = member(owner, email=email)
    clover.put_payment(shop.merchant_id, clover_payment("PAYRACE", amount=3300, email=email))
    requests = [
        pipeline.receive(shop, "P:PAYRACE", kind, TS + i) for i, kind in enumerate(("CREATE", "UPDATE"))
    ]
    factories = [database.connections("pos_gateway_crediting") for _ in requests]
    barrier = threading.Barrier(len(requests))

    def work(index: int) -> ProcessingOutcome:
        worker = Pipeline(clover, pipeline.store, pipeline.branch, factories[index])
        factories[index].get()
        barrier.wait(timeout=10)
        return worker.credit(requests[index]).outcome

    try:
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            outcomes = sorted(pool.map(work, range(len(requests))))
    finally:
        for factory in factories:
            factory.close()

    assert outcomes == sorted([ProcessingOutcome.CREDITED, ProcessingOutcome.DUPLICATE_TRANSACTION])
    assert balance(owner, shop.tenant_id, jo) == 33
