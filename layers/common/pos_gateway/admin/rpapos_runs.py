"""RPApos sync runs as operators steer them: start, pause, resume, cancel, read; image import jobs.

The run engine (pos_gateway.rpapos.runs) changes the run in the request's transaction; the
Step Functions calls come after that transaction commits, so the execution never reads a run
that is not there yet:

- start: the run is inserted ``running`` and audited (``sync_run.start``); after the commit
  StartExecution runs it, named after the run (one run, one execution name: the service never
  starts it twice) with ``{"tenant_id": ..., "sync_run_id": ...}``, as the scheduler starts its
  runs. Starting the execution first and committing after would let the execution look for a
  run that is not committed yet (and leave an orphan execution when the commit fails). When
  StartExecution fails, nothing would ever run the run: a second change ends it ``failed``,
  notes why on the connection's ``last_error`` (the admin role may not write the run's) and
  audits ``sync_run.start_failed``; the answer is 502 ``sync_start_failed`` and the connection is
  free for a new run. Only a crash between the commit and the call (or a database failure in
  the second change) leaves a run ``running`` with no execution: its ``execution_arn`` stays
  NULL, which the engine's ``attach`` step would have set.
- resume / cancel of a parked run: the engine hands back the execution's callback token; after
  the commit SendTaskSuccess wakes the execution with ``{"sync_run_id": ...}``. A token the
  service no longer knows (the wait timed out, the execution ended) is logged and ignored: the
  execution is not waiting any more. Any other failure leaves the execution waiting on a token
  no row holds: a second change parks the run again with its token (``sync_run.wake_failed``),
  and the answer is 503 ``step_functions_unavailable``: resuming (or cancelling) again retries.
"""

import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from pos_gateway.admin.access import not_found
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError, plain_json
from pos_gateway.rpapos import runs
from pos_gateway.rpapos.planner import SyncRequest
from pos_gateway.rpapos.runs import RunControl, SyncRun

_SQL = queries.load(__file__, "rpapos_runs.sql")
logger = Logger(child=True)

# SendTaskSuccess answers these when nothing waits on the token any more.
TOKEN_GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})
MAX_ERROR_LENGTH = 1000

Control = Literal["pause", "resume", "cancel"]


class SyncRunPage(BaseModel):
    items: list[SyncRun]
    next_cursor: str | None


class ImportJob(BaseModel):
    """A catalog import (for images: one import row per PLU)."""

    id: UUID
    tenant_id: UUID
    import_type: str
    status: Literal["pending", "running", "completed", "failed"]
    options: dict[str, Any]
    total_rows: int
    success_count: int
    error_count: int
    last_error: str | None
    created_by: UUID | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SyncRunActive(ApiError):
    status_code = 409
    code = "sync_run_active"


class SyncNotConfigured(ApiError):
    status_code = 503
    code = "sync_not_configured"


class SyncStartFailed(ApiError):
    status_code = 502
    code = "sync_start_failed"


class StepFunctionsUnavailable(ApiError):
    status_code = 503
    code = "step_functions_unavailable"


class WakeFailed(Exception):
    """SendTaskSuccess failed, and the execution may still be waiting on the token."""


# ---------------------------------------------------------------- reads


def get_run(connection: Connection, run_id: UUID) -> SyncRun:
    return runs.get_run(connection, run_id)


def list_runs(connection: Connection, connection_id: UUID, *, limit: int, cursor: str | None) -> SyncRunPage:
    if connection.execute(_SQL.connection_exists.sql, {"connection_id": connection_id}).fetchone() is None:
        raise not_found("RPApos connection")
    rows, following = fetch_page(
        connection,
        _SQL.list_runs.sql,
        {"connection_id": connection_id},
        limit=limit,
        cursor=cursor,
        at="started_at",
    )
    return SyncRunPage(items=[SyncRun.model_validate(row) for row in rows], next_cursor=following)


def image_import_job(connection: Connection, run_id: UUID) -> ImportJob:
    row = connection.execute(_SQL.image_import_job.sql, {"run_id": run_id}).fetchone()
    if row is None:
        raise not_found("product image import job for this sync run")
    return ImportJob(**{**row, "options": plain_json(row["options"])})


# ---------------------------------------------------------------- changes


def _state(run: SyncRun | dict[str, Any]) -> dict[str, Any]:
    source = run.model_dump() if isinstance(run, SyncRun) else run
    return {key: source[key] for key in ("status", "paused", "cancel_requested")}


def start(change: Change, connection_id: UUID, request: SyncRequest) -> SyncRun:
    try:
        run = runs.start_run(change.connection, change.tenant, connection_id, request, change.actor.user_id)
    except runs.RunAlreadyActive as exc:
        which = f" ({exc.active_run_id})" if exc.active_run_id is not None else ""
        raise SyncRunActive(f"the connection already has a running or paused sync run{which}") from None
    change.audit(
        "sync_run.start",
        target_type="sync_run",
        target_id=run.id,
        before=None,
        after={
            "connection_id": run.connection_id,
            "mode": run.mode,
            "entity_types": list(run.entity_types),
            "date_from": run.date_from,
            "date_to": run.date_to,
            **_state(run),
        },
    )
    return run


def execution_input(run: SyncRun) -> dict[str, str]:
    """What the state machine starts from (statemachine/rpapos_sync.asl.json), as the scheduler
    starts it: the run and its tenant (which spares the execution looking it up)."""
    return {"tenant_id": str(run.tenant_id), "sync_run_id": str(run.id)}


def start_execution(sfn: Any, state_machine_arn: str, run: SyncRun) -> str:
    """StartExecution of the committed run; its ARN. boto's errors are the caller's to handle."""
    answer = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=str(run.id),
        input=json.dumps(execution_input(run)),
    )
    arn: str = answer["executionArn"]
    return arn


def start_failure_reason(error: BotoCoreError | ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    return f"the sync could not be started: StartExecution failed ({code or type(error).__name__})"


def record_start_failure(change: Change, run_id: UUID, reason: str) -> None:
    before = _lock(change, run_id)
    row = change.connection.execute(_SQL.fail_unstarted_run.sql, {"run_id": run_id}).fetchone()
    if row is not None:
        change.connection.execute(
            _SQL.note_connection_error.sql,
            {"connection_id": row["connection_id"], "last_error": reason[:MAX_ERROR_LENGTH]},
        )
    change.audit(
        "sync_run.start_failed",
        target_type="sync_run",
        target_id=run_id,
        before=_state(before),
        after={**_state(runs.get_run(change.connection, run_id)), "error": reason},
    )


def control(change: Change, run_id: UUID, action: Control) -> RunControl:
    before = _lock(change, run_id)
    if action == "pause":
        result = RunControl(runs.pause_run(change.connection, run_id))
    elif action == "resume":
        result = runs.resume_run(change.connection, run_id)
    else:
        result = runs.cancel_run(change.connection, run_id)
    change.audit(
        f"sync_run.{action}",
        target_type="sync_run",
        target_id=run_id,
        before=_state(before),
        after={**_state(result.run), "wakes_execution": result.task_token is not None},
    )
    return result


def wake(sfn: Any, task_token: str, run_id: UUID) -> None:
    """SendTaskSuccess to the parked execution. Raises WakeFailed when it may still be waiting."""
    try:
        sfn.send_task_success(taskToken=task_token, output=json.dumps({"sync_run_id": str(run_id)}))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in TOKEN_GONE:
            logger.warning(
                "no execution waits on the run's token any more", extra={"run": str(run_id), "code": code}
            )
            return
        raise WakeFailed(code) from exc
    except BotoCoreError as exc:
        raise WakeFailed(type(exc).__name__) from exc


def record_wake_failure(change: Change, run_id: UUID, task_token: str, reason: str) -> None:
    before = _lock(change, run_id)
    reparked = change.connection.execute(
        _SQL.repark_run.sql, {"run_id": run_id, "task_token": task_token}
    ).fetchone()
    change.audit(
        "sync_run.wake_failed",
        target_type="sync_run",
        target_id=run_id,
        before=_state(before),
        after={
            **_state(runs.get_run(change.connection, run_id)),
            "reparked": reparked is not None,
            "error": reason,
        },
    )


def _lock(change: Change, run_id: UUID) -> dict[str, Any]:
    row = change.connection.execute(_SQL.lock_run_state.sql, {"run_id": run_id}).fetchone()
    if row is None:
        raise not_found("sync run")
    return dict(row)
