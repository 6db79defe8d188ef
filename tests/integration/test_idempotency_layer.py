"""The Postgres persistence layer against the Powertools contract, on real Postgres.

Run as the wallet API's role, under row-level security, in both of the layer's modes: each
operation in its own transaction (autocommit connection), and inside the caller's transaction.
"""

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from local import seed
from local.database import LOCAL_ROLE_PASSWORD, Database
from pos_gateway.db import tenant_transaction
from pos_gateway.db.connection import Connection
from pos_gateway.idempotency import OnceSpec, PostgresPersistenceLayer, delete_expired, run_once
from tests.helpers import one, unique

WALLET_API = "pos_gateway_wallet_api"
HANDLER = "tests.layer"
SPEC = OnceSpec(key_prefix="tests", event_key_jmespath="key", payload_validation_jmespath="[amount]")


class Payload(BaseModel):
    key: str
    amount: int


class Result(BaseModel):
    answer: str


@pytest.fixture(scope="module")
def connection(database: Database, owner: psycopg.Connection[Any]) -> Iterator[Connection]:
    # For clusters that are not trust-authenticated (the local stack sets it too).
    owner.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(WALLET_API), sql.Literal(LOCAL_ROLE_PASSWORD)
        )
    )
    factory = database.connections(WALLET_API)
    yield factory.get()
    factory.close()


@pytest.fixture
def tenant(owner) -> uuid.UUID:
    return seed.create_tenant(owner, unique("Tenant "))


def layer(connection: Connection, tenant_id: uuid.UUID | None) -> PostgresPersistenceLayer:
    store = PostgresPersistenceLayer(connection, tenant_id, HANDLER)
    store.configure(IdempotencyConfig(payload_validation_jmespath="[amount]"), key_prefix="tests")
    return store


def fresh(connection: Connection, tenant_id: uuid.UUID | None) -> PostgresPersistenceLayer:
    """Unconfigured, as run_once gets it (Powertools configures a store once)."""
    return PostgresPersistenceLayer(connection, tenant_id, HANDLER)


def records_of(owner, tenant_id: uuid.UUID, status: str = "COMPLETED") -> int:
    n: int = owner.execute(
        "SELECT count(*) AS n FROM pos.idempotency_keys WHERE key LIKE %s AND status = %s",
        (f"{tenant_id}:tests#%", status),
    ).fetchone()["n"]
    return n


def now() -> int:
    return int(time.time())


def in_progress(key: str, payload_hash: str = "hash-1", *, expiry: int = 3600, in_progress_ms: int = 30_000):
    return DataRecord(
        idempotency_key=key,
        status="INPROGRESS",
        expiry_timestamp=now() + expiry,
        in_progress_expiry_timestamp=int(time.time() * 1000) + in_progress_ms,
        payload_hash=payload_hash,
    )


def stored(owner, store: PostgresPersistenceLayer, key: str) -> dict[str, Any] | None:
    row = owner.execute(
        "SELECT tenant_id, handler, status, payload_hash, response_data FROM pos.idempotency_keys"
        " WHERE key = %s",
        (store.storage_key(key),),
    ).fetchone()
    return dict(row) if row else None


# ---------------------------------------------------------------- the persistence contract


def test_put_get_update_delete(connection, owner, tenant):
    store, key = layer(connection, tenant), unique("k")

    store._put_record(in_progress(key))
    got = store._get_record(key)
    assert (got.idempotency_key, got.status, got.payload_hash) == (key, "INPROGRESS", "hash-1")
    assert one(got.expiry_timestamp) > now()
    assert got.in_progress_expiry_timestamp is not None

    store._update_record(
        DataRecord(key, "COMPLETED", now() + 3600, response_data='{"answer": "42"}', payload_hash="hash-1")
    )
    got = store._get_record(key)
    assert (got.status, got.response_json_as_dict(), got.in_progress_expiry_timestamp) == (
        "COMPLETED",
        {"answer": "42"},
        None,
    )
    assert stored(owner, store, key) == {
        "tenant_id": tenant,
        "handler": HANDLER,
        "status": "COMPLETED",
        "payload_hash": "hash-1",
        "response_data": '{"answer": "42"}',
    }

    store._delete_record(DataRecord(key))
    with pytest.raises(IdempotencyItemNotFoundError):
        store._get_record(key)


def test_a_live_record_keeps_its_key(connection, tenant):
    store, key = layer(connection, tenant), unique("k")
    store._put_record(in_progress(key))

    with pytest.raises(IdempotencyItemAlreadyExistsError) as caught:
        store._put_record(in_progress(key))
    assert one(caught.value.old_data_record).status == "INPROGRESS"


def test_a_different_payload_under_a_live_key_fails_validation(connection, tenant):
    store, key = layer(connection, tenant), unique("k")
    store._put_record(in_progress(key, "hash-1"))

    with pytest.raises(IdempotencyValidationError):
        store._put_record(in_progress(key, "hash-2"))


def test_an_expired_record_is_replaced(connection, owner, tenant):
    store, key = layer(connection, tenant), unique("k")
    store._update_record(DataRecord(key, "COMPLETED", now() - 10, response_data="{}", payload_hash="old"))
    assert store._get_record(key).status == "EXPIRED"

    store._put_record(in_progress(key, "new"))

    assert one(stored(owner, store, key))["payload_hash"] == "new"
    assert store._get_record(key).status == "INPROGRESS"


def test_an_abandoned_in_progress_record_is_replaced(connection, owner, tenant):
    store, key = layer(connection, tenant), unique("k")
    store._put_record(in_progress(key, "first", in_progress_ms=-1000))

    store._put_record(in_progress(key, "second"))

    assert one(stored(owner, store, key))["payload_hash"] == "second"


def test_keys_are_scoped_per_tenant(connection, owner, tenant):
    other = seed.create_tenant(owner, unique("Tenant "))
    mine, theirs, key = layer(connection, tenant), layer(connection, other), unique("k")

    mine._put_record(in_progress(key, "mine"))
    with pytest.raises(IdempotencyItemNotFoundError):
        theirs._get_record(key)
    theirs._put_record(in_progress(key, "theirs"))  # the same client key, another tenant

    assert mine.storage_key(key) == f"{tenant}:{key}"
    assert (mine._get_record(key).payload_hash, theirs._get_record(key).payload_hash) == ("mine", "theirs")


def test_crediting_keys_are_still_written_with_the_new_columns_defaulted(database, owner, tenant):
    factory = database.connections("pos_gateway_crediting")
    conn, key = factory.get(), f"square:{unique('ML')}:{unique('pay_')}"
    with tenant_transaction(conn, tenant):
        # A row as written before the Powertools columns existed (key, tenant, handler, snapshot).
        conn.execute(
            "INSERT INTO pos.idempotency_keys (key, tenant_id, handler, result_snapshot)"
            " VALUES (%s, %s, %s, %s)",
            (key, tenant, "square_webhook", Jsonb({"pointsEarned": 5})),
        )
    factory.close()

    row = owner.execute(
        "SELECT status, payload_hash, response_data, in_progress_expires_at, result_snapshot,"
        " expires_at > now() + interval '29 days' AS thirty_days FROM pos.idempotency_keys WHERE key = %s",
        (key,),
    ).fetchone()
    assert row == {
        "status": "COMPLETED",
        "payload_hash": "",
        "response_data": None,
        "in_progress_expires_at": None,
        "result_snapshot": {"pointsEarned": 5},
        "thirty_days": True,
    }


# ---------------------------------------------------------------- run_once, both modes


def counting_work(answers: list[str], answer: str = "done"):
    def work() -> Result:
        answers.append(answer)
        return Result(answer=f"{answer} #{len(answers)}")

    return work


def test_work_runs_once_per_key_record_by_record(connection, tenant):
    answers: list[str] = []
    payload = Payload(key=unique("k"), amount=5)

    first = run_once(fresh(connection, tenant), SPEC, payload, counting_work(answers), Result)
    again = run_once(fresh(connection, tenant), SPEC, payload, counting_work(answers), Result)

    assert (first.replayed, again.replayed) == (False, True)
    assert first.value == again.value == Result(answer="done #1")
    assert answers == ["done"]
    with pytest.raises(IdempotencyValidationError):
        run_once(
            fresh(connection, tenant),
            SPEC,
            Payload(key=payload.key, amount=6),
            counting_work(answers),
            Result,
        )
    assert answers == ["done"]


def test_failed_work_leaves_no_record_and_runs_again(connection, owner, tenant):
    payload = Payload(key=unique("k"), amount=5)

    def fail() -> Result:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        run_once(fresh(connection, tenant), SPEC, payload, fail, Result)
    assert records_of(owner, tenant, "INPROGRESS") == records_of(owner, tenant) == 0

    answers: list[str] = []
    assert not run_once(fresh(connection, tenant), SPEC, payload, counting_work(answers), Result).replayed
    assert answers == ["done"]


def test_inside_a_transaction_the_record_commits_with_it(connection, owner, tenant):
    payload = Payload(key=unique("k"), amount=5)

    def work_then_fail() -> None:
        with tenant_transaction(connection, tenant):
            run_once(fresh(connection, tenant), SPEC, payload, counting_work([]), Result)
            raise RuntimeError("after the work")  # the caller's transaction fails later on

    with pytest.raises(RuntimeError, match="after the work"):
        work_then_fail()
    assert records_of(owner, tenant) == 0

    with tenant_transaction(connection, tenant):
        once = run_once(fresh(connection, tenant), SPEC, payload, counting_work([]), Result)
        assert records_of(owner, tenant) == 0  # others see nothing before the commit
    assert not once.replayed
    assert records_of(owner, tenant) == 1


def test_a_concurrent_duplicate_waits_and_replays(database, connection, owner, tenant):
    """The design claim: the second request blocks on the key, then serves the first's answer."""
    payload = Payload(key=unique("k"), amount=5)
    answers: list[str] = []
    first_done, release = threading.Event(), threading.Event()
    second_factory = database.connections(WALLET_API)

    def first() -> Any:
        with tenant_transaction(connection, tenant):
            once = run_once(fresh(connection, tenant), SPEC, payload, counting_work(answers, "first"), Result)
            first_done.set()
            release.wait(timeout=30)
        return once

    def second() -> Any:
        conn = second_factory.get()
        first_done.wait(timeout=30)
        with tenant_transaction(conn, tenant):
            return run_once(fresh(conn, tenant), SPEC, payload, counting_work(answers, "second"), Result)

    with ThreadPoolExecutor(max_workers=2) as pool:
        firsts, seconds = pool.submit(first), pool.submit(second)
        wait_for_a_lock_wait(owner, database.name)
        release.set()
        one_, two = firsts.result(timeout=30), seconds.result(timeout=30)
    second_factory.close()

    assert answers == ["first"]
    assert (one_.replayed, two.replayed) == (False, True)
    assert one_.value == two.value


def wait_for_a_lock_wait(owner, dbname: str) -> None:
    """Until a wallet API session waits on a lock (polling the catalog, not a sleep-and-hope)."""
    for _ in range(1000):
        waiting = owner.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s AND usename = %s"
            " AND wait_event_type = 'Lock'",
            (dbname, WALLET_API),
        ).fetchone()["n"]
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the duplicate never waited on the key")


# ---------------------------------------------------------------- cleanup


def test_delete_expired_removes_expired_keys_of_every_tenant(connection, owner, tenant):
    other = seed.create_tenant(owner, unique("Tenant "))
    expired = [unique("old-"), unique("old-"), unique("old-")]
    live = [unique("live-"), unique("live-")]
    for key, owner_tenant in zip(expired, [tenant, other, None], strict=True):
        owner.execute(
            "INSERT INTO pos.idempotency_keys (key, tenant_id, handler, expires_at)"
            " VALUES (%s, %s, 'tests', now() - interval '1 second')",
            (key, owner_tenant),
        )
    for key, owner_tenant in zip(live, [tenant, None], strict=True):
        owner.execute(
            "INSERT INTO pos.idempotency_keys (key, tenant_id, handler) VALUES (%s, %s, 'tests')",
            (key, owner_tenant),
        )

    deleted = delete_expired(connection, batch_size=2, max_batches=50)

    assert deleted >= len(expired)
    remaining = {
        row["key"]
        for row in owner.execute(
            "SELECT key FROM pos.idempotency_keys WHERE key = ANY(%s)", (expired + live,)
        ).fetchall()
    }
    assert remaining == set(live)
