"""RPApos sync runs as the admin API and the scheduler start and steer them.

Every function runs inside the caller's ``tenant_transaction`` (role pos_gateway_admin) and
writes only the columns that role is granted (db/migrations/0020_rpapos.sql). The sync engine
(pos_gateway.rpapos.sync, role pos_gateway_rpapos) does the work; here a run is

- started: planned (pos_gateway.rpapos.planner) and inserted ``running``, with every planned
  entity's stats at zero and ``pending`` (and the synthetic ``product_images`` when the run
  includes the product image import, ``include_images``); its cursor stays NULL, which the
  engine reads as "the first entity, page 1" (the admin role may not write the cursor). At
  most one running or paused run per connection: a second one is refused with
  ``RunAlreadyActive`` (also when two starts race: the partial unique index decides, inside a
  savepoint, so the caller's transaction stays usable);
- paused: ``paused`` is set; the engine sees it before its next page, marks the run ``paused``
  and parks (the state machine stores a callback token with ``sync.park``);
- resumed: ``paused`` is cleared and the run is ``running`` again; the stored callback token,
  if the run was parked, is returned so the caller wakes the execution (SendTaskSuccess);
- cancelled: ``cancel_requested`` is set; the engine ends the run ``cancelled`` after the
  current page. A parked run has no page in flight: it ends ``cancelled`` at once, and its
  token is returned so the caller wakes the execution, which then sees the run ended.

The callback token is never part of a ``SyncRun`` (whoever holds it can steer the execution).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError
from pos_gateway.rpapos.contract import EntityType
from pos_gateway.rpapos.planner import Mode, SyncRequest, plan

_SQL = queries.load(__file__, "runs.sql")

ONE_ACTIVE_RUN_INDEX = "rpapos_sync_run_one_active_per_connection"
PRODUCT_IMAGES: Final = "product_images"  # the image import's key in per_entity_stats (no entity type)
ACTIVE_STATUSES = frozenset({"running", "paused"})
ENDED_STATUSES = frozenset({"completed", "failed", "cancelled"})

RunStatus = Literal["running", "paused", "completed", "failed", "cancelled"]
EntityStatus = Literal["pending", "running", "completed", "archived_only", "failed"]


# ---------------------------------------------------------------- errors


class RunNotFound(ApiError):
    """No such run (or connection) in the caller's tenant."""

    status_code = 404
    code = "not_found"


class RunConflict(ApiError):
    """The run (or connection) is not in a state that allows the request; nothing was written."""

    status_code = 409
    code = "sync_run_conflict"


class RunAlreadyActive(RunConflict):
    code = "sync_run_already_active"

    def __init__(self, connection_id: UUID, active_run_id: UUID | None = None) -> None:
        which = f" ({active_run_id})" if active_run_id is not None else ""
        super().__init__(f"connection {connection_id} already has a running or paused sync run{which}")
        self.connection_id = connection_id
        self.active_run_id = active_run_id


class RunNotActive(RunConflict):
    code = "sync_run_not_active"


class ConnectionNotUsable(RunConflict):
    code = "rpapos_connection_not_usable"


# ---------------------------------------------------------------- models


class EntityStats(BaseModel):
    """One entity's progress in a run (per_entity_stats[entity]): extracted = loaded + skipped +
    failed + archived_only (records of contract.ARCHIVE_ONLY types, archived, never loaded)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    extracted: int = 0
    loaded: int = 0
    failed: int = 0
    skipped: int = 0
    archived_only: int = 0
    status: str = "pending"


class SyncRun(BaseModel):
    """A sync run as the API shows it: every column but the callback token."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    tenant_id: UUID
    connection_id: UUID
    mode: Mode
    status: RunStatus
    paused: bool
    cancel_requested: bool
    entity_types: tuple[EntityType, ...]
    # The product image import runs after every planned entity (current_entity NULL meanwhile).
    include_images: bool
    current_entity: EntityType | None
    cursor: dict[str, Any] | None
    # Keyed by entity type; may hold synthetic keys (product_images) that are not enum values.
    per_entity_stats: dict[str, EntityStats]
    date_from: datetime | None
    date_to: datetime | None
    execution_arn: str | None
    last_error: str | None
    started_at: datetime
    completed_at: datetime | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class RunControl:
    """The run after a resume or cancel, and the callback token to wake its execution with
    (SendTaskSuccess), when the run was parked; None when there is nothing to wake."""

    run: SyncRun
    task_token: str | None = field(default=None, repr=False)


def initial_stats(
    entity_types: tuple[EntityType, ...], include_images: bool = False
) -> dict[str, dict[str, Any]]:
    stats = {entity.value: EntityStats().model_dump() for entity in entity_types}
    if include_images:
        stats[PRODUCT_IMAGES] = EntityStats().model_dump()
    return stats


# ---------------------------------------------------------------- starting


def start_run(
    connection: Connection,
    tenant_id: UUID,
    connection_id: UUID,
    request: SyncRequest,
    created_by: UUID | None,
    *,
    execution_arn: str | None = None,
) -> SyncRun:
    """Plan and insert a ``running`` run of the connection.

    ``execution_arn``: the Step Functions execution that will run it, when the caller knows it
    before starting it (an execution named after nothing but the run's id cannot be: start it
    after this commits, or name it yourself and pass its ARN).
    """
    found = connection.execute(_SQL.connection_for_run.sql, {"connection_id": connection_id}).fetchone()
    if found is None or found["deleted_at"] is not None:
        raise RunNotFound(f"no such RPApos connection {connection_id}")
    if found["status"] == "disconnected":
        raise ConnectionNotUsable(f"RPApos connection {connection_id} is disconnected")
    active = connection.execute(
        _SQL.active_run_of_connection.sql, {"connection_id": connection_id}
    ).fetchone()
    if active is not None:
        raise RunAlreadyActive(connection_id, active["id"])
    planned = plan(request, last_synced_at=found["last_synced_at"])
    parameters = {
        "tenant_id": tenant_id,
        "connection_id": connection_id,
        "mode": planned.mode.value,
        "entity_types": [entity.value for entity in planned.entity_types],
        "include_images": planned.include_images,
        "per_entity_stats": Jsonb(initial_stats(planned.entity_types, planned.include_images)),
        "date_from": planned.date_from,
        "date_to": planned.date_to,
        "execution_arn": execution_arn,
        "created_by": created_by,
    }
    try:
        with connection.transaction():  # a savepoint: a lost race leaves the caller's transaction usable
            row = connection.execute(_SQL.insert_run.sql, parameters).fetchone()
    except pg_errors.UniqueViolation as exc:
        if exc.diag.constraint_name != ONE_ACTIVE_RUN_INDEX:
            raise
        raise RunAlreadyActive(connection_id) from None
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT ... RETURNING gave no row")
    return get_run(connection, row["id"])


# ---------------------------------------------------------------- reading


def get_run(connection: Connection, run_id: UUID) -> SyncRun:
    row = connection.execute(_SQL.get_run.sql, {"run_id": run_id}).fetchone()
    if row is None:
        raise RunNotFound(f"no such sync run {run_id}")
    return SyncRun.model_validate(row)


# ---------------------------------------------------------------- steering


def pause_run(connection: Connection, run_id: UUID) -> SyncRun:
    """Ask the run to pause before its next page. Pausing a run already paused changes nothing;
    an ended run, or one being cancelled, cannot be paused."""
    locked = _lock(connection, run_id)
    if locked["status"] in ENDED_STATUSES:
        raise RunNotActive(f"sync run {run_id} has ended ({locked['status']}): it cannot be paused")
    if locked["cancel_requested"]:
        raise RunNotActive(f"sync run {run_id} is being cancelled: it cannot be paused")
    if not locked["paused"]:
        connection.execute(_SQL.request_pause.sql, {"run_id": run_id})
    return get_run(connection, run_id)


def resume_run(connection: Connection, run_id: UUID) -> RunControl:
    """Let a paused run go on. Returns the callback token of the parked execution, if it is
    parked: the caller sends it SendTaskSuccess (after this transaction commits). Resuming a
    run that is not paused changes nothing; an ended run cannot be resumed."""
    locked = _lock(connection, run_id)
    if locked["status"] in ENDED_STATUSES:
        raise RunNotActive(f"sync run {run_id} has ended ({locked['status']}): it cannot be resumed")
    if not locked["paused"] and locked["status"] != "paused":
        return RunControl(get_run(connection, run_id))
    connection.execute(_SQL.clear_pause.sql, {"run_id": run_id})
    return RunControl(get_run(connection, run_id), locked["task_token"])


def cancel_run(connection: Connection, run_id: UUID) -> RunControl:
    """Ask the run to stop after its current page; a parked run ends ``cancelled`` at once and
    its callback token is returned (the woken execution sees the run ended). Cancelling twice
    changes nothing; an ended run cannot be cancelled."""
    locked = _lock(connection, run_id)
    if locked["status"] in ENDED_STATUSES:
        raise RunNotActive(f"sync run {run_id} has ended ({locked['status']}): it cannot be cancelled")
    if locked["status"] == "paused":
        connection.execute(_SQL.cancel_parked.sql, {"run_id": run_id})
        return RunControl(get_run(connection, run_id), locked["task_token"])
    if not locked["cancel_requested"]:
        connection.execute(_SQL.request_cancel.sql, {"run_id": run_id})
    return RunControl(get_run(connection, run_id))


def _lock(connection: Connection, run_id: UUID) -> dict[str, Any]:
    row = connection.execute(_SQL.lock_run.sql, {"run_id": run_id}).fetchone()
    if row is None:
        raise RunNotFound(f"no such sync run {run_id}")
    return dict(row)
