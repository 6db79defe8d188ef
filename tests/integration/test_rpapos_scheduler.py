"""The RPApos scheduler and the state machine's tasks against a real database (role
pos_gateway_rpapos): which connections are due (db/migrations/0024_rpapos_scheduler.sql), one run
per connection however the ticks race, runs whose execution cannot start, and the tasks' glue
around the engine (the run's tenant, the execution recorded, a failure recorded, a park)."""

import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
import pytest

from local import seed
from local.database import Database
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.rpapos import runs
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.rpapos.scheduler import RpaposScheduler, ScheduleReport
from pos_gateway.rpapos.sync import SyncDeps, SyncRunNotFound
from pos_gateway.rpapos.tasks import SyncTasks, TaskInput
from tests.helpers import one, unique
from tests.integration.test_rpapos_runs import CIPHER, new_connection, run_row

Conn = psycopg.Connection[Any]
FUNCTIONS = (
    "rpapos_scheduler_due_connections(integer)",
    "rpapos_sync_run_tenant(uuid)",
    "rpapos_unstarted_runs(integer,integer)",
)


@pytest.fixture(scope="module")
def rpapos_role(database: Database) -> Iterator[ConnectionFactory]:
    factory = database.connections("pos_gateway_rpapos")
    yield factory
    factory.close()


@pytest.fixture(autouse=True)
def quiet(owner: Conn) -> None:
    """No connection or run of earlier tests is due or abandoned: each test sees only its own."""
    owner.execute("UPDATE rpapos.rpapos_connection SET sync_interval_minutes = NULL")
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET execution_arn = 'arn:aws:states:earlier-test'"
        " WHERE status = 'running' AND execution_arn IS NULL"
    )


class Starter:
    """StartExecution as the scheduler calls it, recorded; fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.failing: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self, name: str, execution_input: Mapping[str, Any]) -> str:
        if self.failing is not None:
            raise self.failing
        with self._lock:
            self.started.append((name, dict(execution_input)))
        return f"arn:aws:states:us-east-1:123456789012:execution:rpapos-sync:{name}"


def connection(
    owner: Conn,
    *,
    interval: int | None = 60,
    status: str = "active",
    synced_minutes_ago: int | None = None,
    deleted: bool = False,
) -> tuple[uuid.UUID, uuid.UUID]:
    tenant_id = seed.create_tenant(owner, unique("Tenant "))
    connection_id = new_connection(owner, tenant_id)
    owner.execute(
        "UPDATE rpapos.rpapos_connection SET sync_interval_minutes = %s, status = %s,"
        " last_synced_at = now() - make_interval(mins => %s::int),"
        " deleted_at = CASE WHEN %s THEN now() END WHERE id = %s",
        (interval, status, synced_minutes_ago, deleted, connection_id),
    )
    return tenant_id, connection_id


def add_run(
    owner: Conn, tenant_id: uuid.UUID, connection_id: uuid.UUID, *, status: str, minutes_ago: int
) -> uuid.UUID:
    ended = status in ("completed", "failed", "cancelled")
    row = owner.execute(
        "INSERT INTO rpapos.rpapos_sync_run"
        " (tenant_id, connection_id, mode, status, entity_types, started_at, completed_at)"
        " VALUES (%s, %s, 'incremental', %s, '{plu}', now() - make_interval(mins => %s),"
        " CASE WHEN %s THEN now() END) RETURNING id",
        (tenant_id, connection_id, status, minutes_ago, ended),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def due(factory: ConnectionFactory, limit: int = 100) -> list[uuid.UUID]:
    conn = factory.get()
    with tenant_transaction(conn, None):
        rows = conn.execute(
            "SELECT connection_id FROM rpapos.rpapos_scheduler_due_connections(%s)", (limit,)
        ).fetchall()
    return [row["connection_id"] for row in rows]


# ---------------------------------------------------------------- the SECURITY DEFINER functions


def test_the_functions_run_as_the_migrator_for_the_sync_role_only(owner: Conn) -> None:
    for signature in FUNCTIONS:
        function = one(
            owner.execute(
                "SELECT prosecdef, pg_get_userbyid(proowner) AS owner, proconfig, proacl::text[] AS acl"
                " FROM pg_proc WHERE oid = %s::regprocedure",
                (f"rpapos.{signature}",),
            ).fetchone()
        )
        assert function["prosecdef"], signature
        assert function["owner"] == "pos_gateway_migrator", signature
        assert function["proconfig"] == ["search_path=pg_catalog, pg_temp"], signature
        grantees = {entry.split("=", 1)[0] for entry in function["acl"]}
        assert grantees == {"pos_gateway_migrator", "pos_gateway_rpapos"}, signature  # not PUBLIC ("")


def test_the_listing_says_ids_only_and_refuses_a_silly_limit(rpapos_role: ConnectionFactory) -> None:
    conn = rpapos_role.get()
    with tenant_transaction(conn, None):
        cursor = conn.execute("SELECT * FROM rpapos.rpapos_scheduler_due_connections(1)")
        columns = [column.name for column in cursor.description or []]
    assert columns == ["connection_id", "tenant_id"]
    for limit in (0, 1001):
        with pytest.raises(Exception, match="invalid scheduler limit"):
            due(rpapos_role, limit)


@pytest.mark.usefixtures("quiet")
def test_due_connections_are_active_live_idle_and_past_their_interval(
    owner: Conn, rpapos_role: ConnectionFactory
) -> None:
    # Given connections in every situation
    _, never_synced = connection(owner)
    _, synced_long_ago = connection(owner, synced_minutes_ago=120)
    _, synced_recently = connection(owner, synced_minutes_ago=10)
    _, no_interval = connection(owner, interval=None)
    _, disconnected = connection(owner, status="disconnected")
    _, in_error = connection(owner, status="error")
    _, deleted = connection(owner, deleted=True)
    tenant, running = connection(owner, synced_minutes_ago=120)
    add_run(owner, tenant, running, status="running", minutes_ago=300)
    tenant, paused = connection(owner, synced_minutes_ago=120)
    add_run(owner, tenant, paused, status="paused", minutes_ago=300)
    tenant, failed_recently = connection(owner)
    add_run(owner, tenant, failed_recently, status="failed", minutes_ago=10)
    tenant, failed_long_ago = connection(owner, synced_minutes_ago=500)
    add_run(owner, tenant, failed_long_ago, status="failed", minutes_ago=90)

    # When the scheduler lists them
    listed = due(rpapos_role)

    # Then only the due ones come, never synced first, then the longest waiting
    assert listed == [never_synced, synced_long_ago, failed_long_ago]
    assert due(rpapos_role, limit=2) == [never_synced, synced_long_ago]
    for busy in (
        synced_recently,
        no_interval,
        disconnected,
        in_error,
        deleted,
        running,
        paused,
        failed_recently,
    ):
        assert busy not in listed


def test_the_tenant_of_a_run_is_found_without_a_tenant_context(
    owner: Conn, rpapos_role: ConnectionFactory
) -> None:
    tenant, connection_id = connection(owner)
    run_id = add_run(owner, tenant, connection_id, status="running", minutes_ago=1)
    conn = rpapos_role.get()
    with tenant_transaction(conn, None):
        assert conn.execute("SELECT count(*) AS n FROM rpapos.rpapos_sync_run").fetchone() == {"n": 0}
        found = conn.execute("SELECT rpapos.rpapos_sync_run_tenant(%s) AS t", (run_id,)).fetchone()
        missing = conn.execute("SELECT rpapos.rpapos_sync_run_tenant(%s) AS t", (uuid.uuid4(),)).fetchone()
    assert found == {"t": tenant}
    assert missing == {"t": None}


# ---------------------------------------------------------------- the scheduler


@pytest.mark.usefixtures("quiet")
def test_a_tick_starts_one_incremental_run_per_due_connection(
    owner: Conn, rpapos_role: ConnectionFactory
) -> None:
    # Given two due connections and one not due
    first_tenant, first = connection(owner)
    second_tenant, second = connection(owner, synced_minutes_ago=61)
    connection(owner, synced_minutes_ago=1)
    starter = Starter()

    # When the scheduler ticks
    report = RpaposScheduler(rpapos_role, starter, max_runs=10).tick()

    # Then each due connection has one running incremental run, started under its own name
    assert report == ScheduleReport(due=2, started=2)
    assert report.model_dump(by_alias=True) == {
        "due": 2, "started": 2, "skipped": 0, "startFailures": 0, "abandoned": 0
    }  # fmt: skip
    created = {
        row["connection_id"]: row
        for row in owner.execute(
            "SELECT id, tenant_id, connection_id, mode, status FROM rpapos.rpapos_sync_run"
            " WHERE connection_id = ANY(%s)",
            ([first, second],),
        ).fetchall()
    }
    assert {row["mode"] for row in created.values()} == {"incremental"}
    assert {row["status"] for row in created.values()} == {"running"}
    assert sorted(starter.started, key=lambda s: s[0]) == sorted(
        [
            (
                str(created[first]["id"]),
                {"tenant_id": str(first_tenant), "sync_run_id": str(created[first]["id"])},
            ),
            (
                str(created[second]["id"]),
                {"tenant_id": str(second_tenant), "sync_run_id": str(created[second]["id"])},
            ),
        ]
    )

    # When it ticks again: both are busy, nothing is due
    assert RpaposScheduler(rpapos_role, starter, max_runs=10).tick() == ScheduleReport()


@pytest.mark.usefixtures("quiet")
def test_racing_ticks_start_one_run(owner: Conn, database: Database) -> None:
    # Given a due connection and several schedulers ticking at once (each its own connection)
    _, connection_id = connection(owner)
    starter = Starter()
    factories = [database.connections("pos_gateway_rpapos") for _ in range(4)]
    barrier = threading.Barrier(len(factories))
    reports: list[ScheduleReport] = []

    def tick(factory: ConnectionFactory) -> None:
        factory.get()
        barrier.wait(timeout=10)
        reports.append(RpaposScheduler(factory, starter, max_runs=10).tick())

    threads = [threading.Thread(target=tick, args=(factory,)) for factory in factories]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for factory in factories:
            factory.close()

    # Then exactly one run exists and one execution was started
    assert len(reports) == len(factories)
    assert sum(report.started for report in reports) == 1
    assert len(starter.started) == 1
    count = one(
        owner.execute(
            "SELECT count(*) AS n FROM rpapos.rpapos_sync_run WHERE connection_id = %s", (connection_id,)
        ).fetchone()
    )
    assert count["n"] == 1


@pytest.mark.usefixtures("quiet")
def test_a_run_whose_execution_cannot_start_ends_failed_and_frees_the_connection(
    owner: Conn, rpapos_role: ConnectionFactory
) -> None:
    # Given a due connection and Step Functions refusing to start anything
    _, connection_id = connection(owner)
    starter = Starter()
    starter.failing = RuntimeError("ExecutionLimitExceeded")

    # When the scheduler ticks
    report = RpaposScheduler(rpapos_role, starter, max_runs=10).tick()

    # Then the run it created is failed, with why, on the run and the connection
    assert report == ScheduleReport(due=1, started=0, start_failures=1)
    run = one(
        owner.execute(
            "SELECT status, last_error, completed_at FROM rpapos.rpapos_sync_run WHERE connection_id = %s",
            (connection_id,),
        ).fetchone()
    )
    assert run["status"] == "failed"
    assert run["completed_at"] is not None
    assert run["last_error"] == (
        "the scheduled sync could not be started: RuntimeError: ExecutionLimitExceeded"
    )
    last_error = one(
        owner.execute(
            "SELECT last_error FROM rpapos.rpapos_connection WHERE id = %s", (connection_id,)
        ).fetchone()
    )
    assert last_error["last_error"] == run["last_error"]
    # and the connection is not blocked: it is due again once its interval has passed
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET started_at = now() - interval '2 hours' WHERE connection_id = %s",
        (connection_id,),
    )
    assert connection_id in due(rpapos_role)


# ---------------------------------------------------------------- the state machine's tasks


class Sfn:
    def __init__(self) -> None:
        self.successes: list[dict[str, Any]] = []

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        self.successes.append(kwargs)
        return {}


@pytest.fixture
def tasks(rpapos_role: ConnectionFactory) -> SyncTasks:
    return SyncTasks(lambda: SyncDeps(rpapos_role, CIPHER), Sfn())


def catalog_run(admin: Conn, owner: Conn) -> tuple[uuid.UUID, uuid.UUID]:
    tenant_id, connection_id = connection(owner, interval=None)
    with tenant_transaction(admin, tenant_id):
        run = runs.start_run(admin, tenant_id, connection_id, SyncRequest(mode=Mode.CATALOG), None)
    return tenant_id, run.id


def test_attach_finds_the_runs_tenant_and_records_the_execution(
    owner: Conn, admin: Conn, tasks: SyncTasks
) -> None:
    tenant_id, run_id = catalog_run(admin, owner)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:rpapos-sync:{run_id}-3"

    answer = tasks.run(TaskInput(action="attach", sync_run_id=run_id, execution_arn=arn))

    assert answer == {"tenant_id": str(tenant_id), "sync_run_id": str(run_id)}
    assert run_row(owner, run_id)["execution_arn"] == arn
    # A tenant named wrongly in the input changes nothing: the run's own is used.
    assert tasks.run(TaskInput(action="attach", sync_run_id=run_id, tenant_id=uuid.uuid4()))[
        "tenant_id"
    ] == str(tenant_id)
    with pytest.raises(SyncRunNotFound):
        tasks.run(TaskInput(action="attach", sync_run_id=uuid.uuid4()))


def test_fail_records_the_caught_error_once(owner: Conn, admin: Conn, tasks: SyncTasks) -> None:
    tenant_id, run_id = catalog_run(admin, owner)
    cause = '{"errorType": "RunNotFinished", "errorMessage": "sync run is running and not at its end"}'
    task = TaskInput.model_validate(
        {
            "action": "fail",
            "sync_run_id": str(run_id),
            "tenant_id": None,
            "error": {"Error": "RunNotFinished", "Cause": cause},
        }
    )

    assert tasks.run(task) == {"failed": True}
    assert tasks.run(task) == {"failed": False}  # ended already: kept as it is

    run = run_row(owner, run_id)
    assert run["status"] == "failed"
    assert run["last_error"] == "RunNotFinished: sync run is running and not at its end"
    assert tasks.run(TaskInput(action="fail", sync_run_id=uuid.uuid4())) == {"failed": False}
    assert tasks.run(TaskInput(action="fail", sync_run_id=run_id, tenant_id=uuid.uuid4())) == {
        "failed": False
    }
    assert tenant_id


def test_park_stores_the_token_or_answers_it_when_the_run_goes_on(
    owner: Conn, admin: Conn, tasks: SyncTasks
) -> None:
    tenant_id, run_id = catalog_run(admin, owner)
    sfn = tasks.sfn_client
    assert isinstance(sfn, Sfn)

    # A run that is not parked (resumed meanwhile): the task answers its own token
    assert tasks.run(TaskInput(action="park", sync_run_id=run_id, tenant_id=tenant_id, task_token="t-1")) == {
        "parked": False
    }
    assert sfn.successes == [{"taskToken": "t-1", "output": f'{{"sync_run_id": "{run_id}"}}'}]

    # A parked run: the token is stored for resume or cancel
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET paused = true, status = 'paused' WHERE id = %s", (run_id,)
    )
    assert tasks.run(TaskInput(action="park", sync_run_id=run_id, tenant_id=tenant_id, task_token="t-2")) == {
        "parked": True
    }
    assert run_row(owner, run_id)["task_token"] == "t-2"
    assert len(sfn.successes) == 1


def test_a_run_whose_start_was_lost_is_ended_and_frees_its_connection(
    owner: Conn, rpapos_role: ConnectionFactory, quiet: None
) -> None:
    # Given runs left running: one with no execution for 20 minutes (its start was lost), one with
    # no execution for a minute (its execution is starting), one attached to an execution long ago
    tenant, lost_connection = connection(owner, interval=None)
    lost = add_run(owner, tenant, lost_connection, status="running", minutes_ago=20)
    young_tenant, young_connection = connection(owner, interval=None)
    young = add_run(owner, young_tenant, young_connection, status="running", minutes_ago=1)
    busy_tenant, busy_connection = connection(owner, interval=None)
    busy = add_run(owner, busy_tenant, busy_connection, status="running", minutes_ago=60)
    owner.execute("UPDATE rpapos.rpapos_sync_run SET execution_arn = 'arn:x' WHERE id = %s", (busy,))

    # When the scheduler ticks
    report = RpaposScheduler(rpapos_role, Starter(), max_runs=10).tick()

    # Then only the lost run ended failed, saying why, on the run and its connection
    assert report.abandoned == 1
    ended = one(
        owner.execute(
            "SELECT status, completed_at, last_error FROM rpapos.rpapos_sync_run WHERE id = %s", (lost,)
        ).fetchone()
    )
    assert ended["status"] == "failed"
    assert ended["completed_at"] is not None
    assert "never started" in ended["last_error"]
    noted = one(
        owner.execute(
            "SELECT last_error FROM rpapos.rpapos_connection WHERE id = %s", (lost_connection,)
        ).fetchone()
    )
    assert "never started" in noted["last_error"]
    for untouched in (young, busy):
        assert (
            one(
                owner.execute(
                    "SELECT status FROM rpapos.rpapos_sync_run WHERE id = %s", (untouched,)
                ).fetchone()
            )["status"]
            == "running"
        )


def test_the_unstarted_listing_refuses_a_grace_shorter_than_a_minute(rpapos_role: ConnectionFactory) -> None:
    conn = rpapos_role.get()
    with pytest.raises(psycopg.errors.InvalidParameterValue), tenant_transaction(conn, None):
        conn.execute("SELECT * FROM rpapos.rpapos_unstarted_runs(10, 5)")
