"""Sync runs as the admin API and the scheduler start and steer them (role pos_gateway_admin, in
the tenant's transaction), against a real database; the engine's side of parking (role
pos_gateway_rpapos) where a test needs a parked run."""

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from local import seed
from local.database import Database
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.rpapos import runs, sync
from pos_gateway.rpapos.contract import CATALOG, OPERATIONAL, EntityType
from pos_gateway.rpapos.planner import Mode, SyncRequest, dependency_order
from pos_gateway.rpapos.runs import (
    ConnectionNotUsable,
    RunAlreadyActive,
    RunNotActive,
    RunNotFound,
    SyncRun,
)
from tests.helpers import one, unique

Conn = psycopg.Connection[Any]
CIPHER = seed.dev_cipher()
CONNECTION_TABLE = "rpapos.rpapos_connection"
CATALOG_RUN = SyncRequest(mode=Mode.CATALOG)
WINDOW = (datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC))


# ---------------------------------------------------------------- builders (shared with the sync tests)


def sealed(column: str, connection_id: uuid.UUID, plaintext: str) -> str:
    return CIPHER.encrypt(plaintext, table=CONNECTION_TABLE, column=column, row_id=str(connection_id))


def new_connection(
    owner: Conn,
    tenant_id: uuid.UUID,
    *,
    subdomain: str | None = None,
    usuario: str = "admin",
    password: str = "s3cret-Passw0rd",  # noqa: S107 - a test password
    soap_token: str | None = None,
    estacion_trabajo: int | None = 1,
    timezone: str = "UTC",
) -> uuid.UUID:
    """A connection row as the admin API writes it: credentials sealed for this row."""
    connection_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted,"
        " soap_token_encrypted, estacion_trabajo, timezone) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            connection_id,
            tenant_id,
            subdomain or unique("shop-").lower(),
            usuario,
            sealed("password_encrypted", connection_id, password),
            None if soap_token is None else sealed("soap_token_encrypted", connection_id, soap_token),
            estacion_trabajo,
            timezone,
        ),
    )
    return connection_id


def run_row(owner: Conn, run_id: uuid.UUID) -> dict[str, Any]:
    """The run's row; ``plan``: its entity types as strings (the owner loads no enum array)."""
    row = owner.execute(
        "SELECT *, entity_types::text[] AS plan FROM rpapos.rpapos_sync_run WHERE id = %s", (run_id,)
    ).fetchone()
    return dict(one(row))


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def tenant(owner: Conn) -> uuid.UUID:
    return seed.create_tenant(owner, unique("Tenant "))


@pytest.fixture
def connection_id(owner: Conn, tenant: uuid.UUID) -> uuid.UUID:
    return new_connection(owner, tenant)


def start(
    admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID, request: SyncRequest = CATALOG_RUN
) -> SyncRun:
    with tenant_transaction(admin, tenant):
        return runs.start_run(admin, tenant, connection_id, request, None)


def park(owner: Conn, engine: ConnectionFactory, tenant: uuid.UUID, run_id: uuid.UUID, token: str) -> None:
    """The engine's side: the run seen paused is parked, then its waiting task stores a token."""
    owner.execute("UPDATE rpapos.rpapos_sync_run SET status = 'paused' WHERE id = %s", (run_id,))
    assert sync.park(tenant, run_id, token, deps=sync.SyncDeps(engine, CIPHER)) == "parked"


def wait_for_a_lock_wait(owner: Conn, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = one(
            owner.execute(
                "SELECT count(*) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
        )
        if waiting["n"]:
            return
        time.sleep(0.01)
    raise AssertionError("nobody waited on a lock")


# ---------------------------------------------------------------- starting


def test_a_catalog_run_starts_planned_with_every_entity_pending(
    owner: Conn, admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    user = seed.create_user(owner, email=f"{unique('op')}@example.test".lower(), role="admin")
    with tenant_transaction(admin, tenant):
        run = runs.start_run(admin, tenant, connection_id, CATALOG_RUN, user)

    assert (run.tenant_id, run.connection_id, run.mode, run.status) == (
        tenant,
        connection_id,
        Mode.CATALOG,
        "running",
    )
    assert run.entity_types == dependency_order(CATALOG)
    assert (run.paused, run.cancel_requested, run.completed_at, run.created_by) == (False, False, None, user)
    # Not started: the engine reads a NULL cursor as the first entity, page 1.
    assert (run.cursor, run.current_entity) == (None, None)
    assert set(run.per_entity_stats) == {entity.value for entity in CATALOG}
    for stats in run.per_entity_stats.values():
        assert stats.model_dump() == {
            "extracted": 0, "loaded": 0, "failed": 0, "skipped": 0, "archived_only": 0, "status": "pending"
        }  # fmt: skip
    assert "task_token" not in SyncRun.model_fields
    assert run_row(owner, run.id)["task_token"] is None
    with tenant_transaction(admin, tenant):
        assert runs.get_run(admin, run.id) == run


def test_a_historical_run_keeps_its_window_and_plans_the_documents(
    admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    run = start(
        admin,
        tenant,
        connection_id,
        SyncRequest(mode=Mode.HISTORICAL, date_from=WINDOW[0], date_to=WINDOW[1]),
    )

    assert (run.date_from, run.date_to) == WINDOW
    assert set(run.entity_types) == OPERATIONAL


def test_a_custom_run_plans_the_chosen_types_in_dependency_order(
    admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    chosen = (EntityType.MESA, EntityType.USUARIO, EntityType.AREA)
    run = start(admin, tenant, connection_id, SyncRequest(mode=Mode.CUSTOM, entity_types=chosen))

    assert run.entity_types.index(EntityType.AREA) < run.entity_types.index(EntityType.MESA)
    assert set(run.per_entity_stats) == {"mesa", "usuario", "area"}


def test_a_connection_has_one_active_run_at_a_time(
    owner: Conn, admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    first = start(admin, tenant, connection_id)

    with pytest.raises(RunAlreadyActive) as refused:
        start(admin, tenant, connection_id)

    assert refused.value.status_code == 409
    assert refused.value.code == "sync_run_already_active"
    assert refused.value.active_run_id == first.id
    # Another connection of the tenant is independent; an ended run frees the connection.
    start(admin, tenant, new_connection(owner, tenant))
    with tenant_transaction(admin, tenant):
        runs.cancel_run(admin, first.id)
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET status = 'cancelled', completed_at = now() WHERE id = %s",
        (first.id,),
    )
    assert start(admin, tenant, connection_id).id != first.id


def test_two_starts_racing_get_one_run_and_a_conflict_from_the_unique_index(
    database: Database, owner: Conn, admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    outcome: dict[str, Any] = {}
    first_inserted = threading.Event()

    def second_start() -> None:
        with database.connect_as("pos_gateway_admin") as other, tenant_transaction(other, tenant):
            first_inserted.wait(5)
            try:
                runs.start_run(other, tenant, connection_id, CATALOG_RUN, None)
            except RunAlreadyActive as exc:
                outcome["refused"] = exc
            # The savepoint kept the caller's transaction usable.
            outcome["after"] = other.execute("SELECT 1 AS ok").fetchone()

    racer = threading.Thread(target=second_start)
    racer.start()
    with tenant_transaction(admin, tenant):
        run = runs.start_run(admin, tenant, connection_id, CATALOG_RUN, None)
        first_inserted.set()
        # The racer saw no active run (uncommitted) and now waits on the unique index.
        wait_for_a_lock_wait(owner)
    racer.join(10)

    refused = outcome.get("refused")
    assert isinstance(refused, RunAlreadyActive)
    assert refused.active_run_id is None  # the index refused it, not the check before
    assert outcome["after"] == {"ok": 1}
    with tenant_transaction(admin, tenant):
        assert runs.get_run(admin, run.id).status == "running"


def test_a_deleted_connection_or_another_tenants_is_not_found(
    owner: Conn, admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    other_tenant = seed.create_tenant(owner, unique("Other "))
    with pytest.raises(RunNotFound):
        start(admin, other_tenant, connection_id)
    owner.execute(
        "UPDATE rpapos.rpapos_connection SET deleted_at = now(), status = 'disconnected' WHERE id = %s",
        (connection_id,),
    )
    with pytest.raises(RunNotFound):
        start(admin, tenant, connection_id)


def test_a_disconnected_connection_cannot_start_a_run(
    owner: Conn, admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    owner.execute(
        "UPDATE rpapos.rpapos_connection SET status = 'disconnected' WHERE id = %s", (connection_id,)
    )

    with pytest.raises(ConnectionNotUsable):
        start(admin, tenant, connection_id)


def test_a_run_of_another_tenant_is_not_found(
    owner: Conn, admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    run = start(admin, tenant, connection_id)
    other_tenant = seed.create_tenant(owner, unique("Other "))

    for steer in (runs.get_run, runs.pause_run, runs.resume_run, runs.cancel_run):
        with pytest.raises(RunNotFound), tenant_transaction(admin, other_tenant):
            steer(admin, run.id)


# ---------------------------------------------------------------- steering


def test_pause_then_resume_of_a_run_not_yet_parked(
    admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    run = start(admin, tenant, connection_id)

    with tenant_transaction(admin, tenant):
        paused = runs.pause_run(admin, run.id)
        again = runs.pause_run(admin, run.id)  # pausing twice changes nothing
    with tenant_transaction(admin, tenant):
        resumed = runs.resume_run(admin, run.id)
        idle = runs.resume_run(admin, run.id)  # nor does resuming a running run

    assert (paused.paused, paused.status, again.paused) == (True, "running", True)
    assert (resumed.run.paused, resumed.run.status, resumed.task_token) == (False, "running", None)
    assert (idle.run.paused, idle.task_token) == (False, None)


def test_resume_hands_back_the_parked_executions_token_once(
    owner: Conn,
    admin: Conn,
    engine_connections: ConnectionFactory,
    tenant: uuid.UUID,
    connection_id: uuid.UUID,
) -> None:
    run = start(admin, tenant, connection_id)
    with tenant_transaction(admin, tenant):
        runs.pause_run(admin, run.id)
    park(owner, engine_connections, tenant, run.id, "task-token-1")

    with tenant_transaction(admin, tenant):
        resumed = runs.resume_run(admin, run.id)

    assert resumed.task_token == "task-token-1"
    assert "task-token-1" not in repr(resumed)
    assert (resumed.run.status, resumed.run.paused) == ("running", False)
    assert run_row(owner, run.id)["task_token"] is None
    # A late park (the task that stored it was resumed meanwhile) is told to resume at once.
    assert (
        sync.park(tenant, run.id, "task-token-2", deps=sync.SyncDeps(engine_connections, CIPHER)) == "resume"
    )
    assert run_row(owner, run.id)["task_token"] is None


def test_cancelling_a_parked_run_ends_it_at_once_and_returns_its_token(
    owner: Conn,
    admin: Conn,
    engine_connections: ConnectionFactory,
    tenant: uuid.UUID,
    connection_id: uuid.UUID,
) -> None:
    run = start(admin, tenant, connection_id)
    with tenant_transaction(admin, tenant):
        runs.pause_run(admin, run.id)
    park(owner, engine_connections, tenant, run.id, "task-token-3")

    with tenant_transaction(admin, tenant):
        cancelled = runs.cancel_run(admin, run.id)

    assert cancelled.task_token == "task-token-3"
    assert (cancelled.run.status, cancelled.run.cancel_requested) == ("cancelled", True)
    assert cancelled.run.completed_at is not None
    assert run_row(owner, run.id)["task_token"] is None
    # An ended run is steered no more.
    for steer in (runs.pause_run, runs.resume_run, runs.cancel_run):
        with pytest.raises(RunNotActive), tenant_transaction(admin, tenant):
            steer(admin, run.id)
    # And the connection may start its next run.
    start(admin, tenant, connection_id)


def test_cancelling_a_running_run_only_asks_the_engine(
    admin: Conn, tenant: uuid.UUID, connection_id: uuid.UUID
) -> None:
    run = start(admin, tenant, connection_id)

    with tenant_transaction(admin, tenant):
        cancelling = runs.cancel_run(admin, run.id)
        twice = runs.cancel_run(admin, run.id)

    assert (cancelling.run.status, cancelling.run.cancel_requested, cancelling.task_token) == (
        "running",
        True,
        None,
    )
    assert twice.run == cancelling.run
    with pytest.raises(RunNotActive), tenant_transaction(admin, tenant):
        runs.pause_run(admin, run.id)  # a run being cancelled is not paused
