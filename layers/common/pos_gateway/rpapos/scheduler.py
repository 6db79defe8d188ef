"""The RPApos scheduler: an incremental run for every connection whose sync interval has elapsed.

Each tick (EventBridge rate(5 minutes)) lists the due connections across tenants through
``rpapos.rpapos_scheduler_due_connections`` (ids only: row-level security hides every row
without a tenant context), creates each run in its own tenant's transaction with
``runs.start_run``, and once that has committed starts the run's execution (named after the
run, so the execution can never read a run that is not there yet).

One active run per connection: the listing skips connections with a run running or paused,
``start_run`` checks again, and the partial unique index decides a race between two ticks. A run
whose execution cannot be started is ended failed at once (its reason on the connection's
last_error), so the connection is due again one interval later instead of blocked.
"""

import json
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.aws_secrets import database_credentials
from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.rpapos import runs
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.settings import RpaposSchedulerSettings

_SQL = queries.load(__file__, "scheduler.sql")
logger = Logger(child=True)

MAX_ERROR_CHARS = 1000

# (execution name, execution input) -> the execution's ARN; raises when it could not be started.
StartExecution = Callable[[str, Mapping[str, Any]], str]


class DueConnection(BaseModel):
    model_config = ConfigDict(frozen=True)

    connection_id: UUID
    tenant_id: UUID


# An execution records its ARN on the run in its first task, within seconds of its start.
UNSTARTED_GRACE_SECONDS = 900
UNSTARTED_ERROR = "the run's execution never started (its start was lost); start the run again"


class ScheduleReport(BaseModel):
    """What one tick did."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    due: int = 0
    started: int = 0
    # Busy (a run started meanwhile), disconnected or deleted since the listing.
    skipped: int = 0
    # Runs left running with no execution past the grace period (their start was lost): failed.
    abandoned: int = 0
    start_failures: int = Field(default=0, alias="startFailures")


def execution_input(tenant_id: UUID, run_id: UUID) -> dict[str, str]:
    """What the state machine starts from (statemachine/rpapos_sync.asl.json)."""
    return {"tenant_id": str(tenant_id), "sync_run_id": str(run_id)}


class RpaposScheduler:
    def __init__(
        self,
        connections: ConnectionFactory,
        start_execution: StartExecution,
        *,
        max_runs: int,
        unstarted_grace_seconds: int = UNSTARTED_GRACE_SECONDS,
    ) -> None:
        self._connections = connections
        self._start_execution = start_execution
        self._max_runs = max_runs
        self._unstarted_grace_seconds = unstarted_grace_seconds

    def tick(self) -> ScheduleReport:
        abandoned = self._end_unstarted_runs()
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(_SQL.due_connections.sql, {"limit": self._max_runs}).fetchall()
        due = [DueConnection.model_validate(row) for row in rows]
        started = skipped = failures = 0
        for candidate in due:
            run = self._create_run(candidate)
            if run is None:
                skipped += 1
            elif self._start(run):
                started += 1
            else:
                failures += 1
        return ScheduleReport(
            due=len(due), started=started, skipped=skipped, start_failures=failures, abandoned=abandoned
        )

    def _end_unstarted_runs(self) -> int:
        """Fail the runs whose execution never started, so their connections are free again."""
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(
                _SQL.unstarted_runs.sql,
                {"grace_seconds": self._unstarted_grace_seconds, "limit": self._max_runs},
            ).fetchall()
        for row in rows:
            logger.warning("rpapos sync run never started", extra={"sync_run_id": str(row["sync_run_id"])})
            self._fail_unstarted(row["sync_run_id"], row["tenant_id"], UNSTARTED_ERROR)
        return len(rows)

    def _create_run(self, due: DueConnection) -> runs.SyncRun | None:
        connection = self._connections.get()
        try:
            with tenant_transaction(connection, due.tenant_id):
                return runs.start_run(
                    connection, due.tenant_id, due.connection_id, SyncRequest(mode=Mode.INCREMENTAL), None
                )
        except (runs.RunAlreadyActive, runs.ConnectionNotUsable, runs.RunNotFound) as exc:
            logger.info(
                "rpapos connection skipped",
                extra={"connection_id": str(due.connection_id), "reason": str(exc)},
            )
            return None

    def _start(self, run: runs.SyncRun) -> bool:
        try:
            arn = self._start_execution(str(run.id), execution_input(run.tenant_id, run.id))
        except Exception as exc:  # whatever the SDK raises, the run must not stay running
            reason = f"the scheduled sync could not be started: {type(exc).__name__}: {exc}"
            logger.exception("rpapos sync run not started", extra={"sync_run_id": str(run.id)})
            self._fail_unstarted(run.id, run.tenant_id, " ".join(reason.split())[:MAX_ERROR_CHARS])
            return False
        logger.info("rpapos sync run started", extra={"sync_run_id": str(run.id), "execution_arn": arn})
        return True

    def _fail_unstarted(self, run_id: UUID, tenant_id: UUID, reason: str) -> None:
        connection = self._connections.get()
        with tenant_transaction(connection, tenant_id):
            row = connection.execute(
                _SQL.fail_unstarted_run.sql, {"run_id": run_id, "error": reason}
            ).fetchone()
            if row is not None:
                connection.execute(
                    _SQL.note_connection_error.sql, {"connection_id": row["connection_id"], "error": reason}
                )


def rpapos_scheduler_from_settings(settings: RpaposSchedulerSettings, sfn_client: Any) -> RpaposScheduler:
    def start_execution(name: str, execution_input: Mapping[str, Any]) -> str:
        answer = sfn_client.start_execution(
            stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps(dict(execution_input))
        )
        return str(answer["executionArn"])

    connections = ConnectionFactory(
        database_credentials(settings.db_secret_arn, settings.secret_max_age_seconds)
    )
    return RpaposScheduler(connections, start_execution, max_runs=settings.max_runs)
