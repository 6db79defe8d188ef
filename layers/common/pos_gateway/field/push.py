"""POST /sync/push: a device's queued operations, applied in one transaction, each on its own.

- The tenant's pushes apply one after another (an advisory lock taken first): devices of one
  business never deadlock on each other's rows, and commits have a clear order.
- Each operation runs in its own savepoint, in the order sent. A refusal (``OperationRefused``:
  error or conflict) rolls back that operation only and becomes its result.
- Once per opId: an operation that landed is stored with its result and the SHA-256 of what was
  sent; the same opId again is answered from there (``replayed``) and writes nothing, with other
  content it is refused (``op_id_reused``). Refused operations store nothing, so a device may
  send them again (say, once stock arrived).
- Loyalty raw events the landed sales and voids appended are enqueued for crediting after the
  commit; one that fails to enqueue is left to the outbox sweeper.

The batch runs in pipeline mode: a statement whose result is not read yet travels with the next
round trip, so an operation costs its reads plus one Sync, at which its writes' errors surface
(still its own: every operation ends with a Sync). The landed operations are recorded with one
insert at the end.
"""

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from aws_lambda_powertools import Logger
from psycopg import Pipeline
from psycopg.errors import PipelineAborted

from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.db.connection import Connection
from pos_gateway.field import abonos, customers, distribuciones, sales
from pos_gateway.field.context import (
    Applied,
    BusinessSettings,
    OperationContext,
    immutable_record,
    problem,
)
from pos_gateway.field.devices import Device
from pos_gateway.field.operations import (
    COLLECTION_NAMES,
    Collection,
    OperationRefused,
    OperationResult,
    OperationStatus,
    OperationType,
    PushedOperation,
    PushResponse,
    PushSummary,
    op_id_of,
    parse_operation,
    parse_push_body,
)
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider

logger = Logger(child=True)

_SQL = queries.load(__file__, "push.sql")
_DEVICES_SQL = queries.load(__file__, "devices.sql")

# Long enough for another device's push of up to 500 operations to commit.
LOCK_TIMEOUT = "20s"

Handler = Callable[[OperationContext], Applied]

_HANDLERS: dict[Collection, dict[OperationType, Handler]] = {
    Collection.CUSTOMERS: {
        OperationType.CREATE: customers.create,
        OperationType.UPDATE: customers.update,
        OperationType.DELETE: customers.delete,
    },
    Collection.SALES: {
        OperationType.CREATE: sales.create,
        OperationType.UPDATE: immutable_record,
        OperationType.DELETE: sales.void,
    },
    Collection.ABONOS: {
        OperationType.CREATE: abonos.create,
        OperationType.UPDATE: immutable_record,
        OperationType.DELETE: abonos.void,
    },
    Collection.DISTRIBUCIONES: {
        OperationType.CREATE: distribuciones.create,
        OperationType.UPDATE: distribuciones.update,
        OperationType.DELETE: distribuciones.unsupported_delete,
    },
}

# What is kept of a landed operation's result (index and replayed belong to each answer).
_STORED_RESULT = {"op_id", "status", "record_id", "server_version"}


class PushService:
    def __init__(
        self, connections: ConnectionFactory, enqueue: Callable[[CreditRequest], bool] | None = None
    ) -> None:
        self._connections = connections
        self._enqueue = enqueue

    def push(self, device: Device, body: bytes) -> PushResponse:
        """Apply a push body (ApiError when it is not one); DatabaseError when the transaction
        fails as a whole (nothing of the batch landed then: the device sends it again)."""
        items = parse_push_body(body)
        connection = self._connections.get()
        with (
            tenant_transaction(connection, device.tenant_id, pipeline=True, lock_timeout=LOCK_TIMEOUT),
            connection.pipeline() as pipeline,  # the transaction's own: its handle, for Syncs
        ):
            batch = _Batch.begin(connection, pipeline, device, items)
            results = [batch.apply(index, item) for index, item in enumerate(items)]
            batch.record_landed()
        self._enqueue_for_crediting(device.tenant_id, batch.raw_event_ids)
        return PushResponse(results=results, summary=summarize(results))

    def _enqueue_for_crediting(self, tenant_id: UUID, raw_event_ids: list[UUID]) -> None:
        if self._enqueue is None:
            return
        for raw_event_id in raw_event_ids:
            request = CreditRequest(raw_event_id=raw_event_id, tenant_id=tenant_id, provider=Provider.FIELD)
            try:
                enqueued = self._enqueue(request)
            except Exception:
                # Committed and unprocessed: the outbox sweeper enqueues it later.
                logger.exception(
                    "enqueue failed; left for the sweeper", extra={"raw_event_id": str(raw_event_id)}
                )
                continue
            if not enqueued:
                logger.warning(
                    "not enqueued; left for the sweeper", extra={"raw_event_id": str(raw_event_id)}
                )


@dataclass(frozen=True, slots=True)
class _Landed:
    request_hash: str
    result: dict[str, Any]  # the stored part of its OperationResult, as JSON


@dataclass(frozen=True, slots=True)
class _Record:
    """A sync_operations row of an operation that landed in this batch (inserted at its end)."""

    op_id: UUID
    collection: str
    operation_type: str
    record_id: UUID
    request_hash: str
    result: str  # JSON
    client_created_at: datetime


class _Batch:
    """One push's transaction: the tenant locked, its settings and already-landed opIds read."""

    def __init__(
        self,
        connection: Connection,
        pipeline: Pipeline,
        device: Device,
        settings: BusinessSettings,
        landed: dict[UUID, _Landed],
    ) -> None:
        self._connection = connection
        self._pipeline = pipeline
        self._device = device
        self._settings = settings
        self._landed = landed
        self._records: list[_Record] = []
        self.raw_event_ids: list[UUID] = []

    @classmethod
    def begin(cls, connection: Connection, pipeline: Pipeline, device: Device, items: list[Any]) -> "_Batch":
        tenant = {"tenant_id": device.tenant_id}
        op_ids = list({op_id for item in items if (op_id := op_id_of(item)) is not None})
        # One round trip: nothing is read before the last statement's results arrive.
        connection.execute(_SQL.lock_tenant_pushes.sql, tenant)
        connection.execute(_DEVICES_SQL.touch_device.sql, {**tenant, "device_id": device.device_id})
        settings_read = connection.execute(_SQL.business_settings.sql, tenant)
        landed_read = connection.execute(_SQL.landed_operations.sql, {**tenant, "op_ids": op_ids})
        settings = settings_read.fetchone()
        if settings is None:
            raise LookupError("business_settings returned no row")
        landed = {row["op_id"]: _Landed(row["request_hash"], row["result"]) for row in landed_read}
        return cls(connection, pipeline, device, BusinessSettings(**settings), landed)

    def record_landed(self) -> None:
        """The sync_operations rows of the operations that landed, in one insert (only operations
        whose savepoint was released are here)."""
        if not self._records:
            return
        records = self._records
        self._connection.execute(
            _SQL.record_operations.sql,
            {
                "tenant_id": self._device.tenant_id,
                "device_id": self._device.device_id,
                "op_ids": [record.op_id for record in records],
                "collections": [record.collection for record in records],
                "operation_types": [record.operation_type for record in records],
                "record_ids": [record.record_id for record in records],
                "request_hashes": [record.request_hash for record in records],
                "results": [record.result for record in records],
                "client_created_ats": [record.client_created_at for record in records],
            },
        )
        self._records = []

    def apply(self, index: int, item: Any) -> OperationResult:
        op_id = op_id_of(item)
        sent_hash = request_hash(item)
        landed = self._landed.get(op_id) if op_id is not None else None
        if op_id is not None and landed is not None:
            return _replay(index, op_id, landed, sent_hash)
        record_id: UUID | None = None
        try:
            operation = parse_operation(item)
            record_id = _record_id_of(operation.data)
            return self._land(index, operation, _handler_of(operation), sent_hash)
        except OperationRefused as refusal:
            return refused(index, op_id, record_id, refusal)

    def _land(
        self, index: int, operation: PushedOperation, handler: Handler, sent_hash: str
    ) -> OperationResult:
        context = OperationContext(self._connection, self._device, self._settings, operation)
        # A savepoint: a refusal (or a value the database refuses) undoes this operation only.
        self._connection.execute(_SQL.savepoint.sql)
        try:
            try:
                applied = handler(context)
            except OperationRefused:
                # A write sent before the refusal that failed comes first (as when it ran at once).
                self._pipeline.sync()
                raise
            self._connection.execute(_SQL.release_savepoint.sql)
            # Every statement of the operation has run: its errors surface here, not in the next.
            self._pipeline.sync()
        except (psycopg.IntegrityError, psycopg.DataError) as error:
            self._roll_back(failed=True)
            raise database_refusal(error) from error
        except OperationRefused:
            self._roll_back(failed=False)
            raise
        context.settle()
        result = OperationResult(
            index=index,
            op_id=operation.op_id,
            status=OperationStatus.SYNCED,
            record_id=applied.record_id,
            server_version=applied.server_version,
        )
        stored = result.model_dump(mode="json", by_alias=True, include=_STORED_RESULT)
        self._records.append(
            _Record(
                op_id=operation.op_id,
                collection=_collection_of(operation).value,
                operation_type=operation.operation_type.value,
                record_id=applied.record_id,
                request_hash=sent_hash,
                result=json.dumps(stored),
                client_created_at=operation.client_created_at,
            )
        )
        self._landed[operation.op_id] = _Landed(sent_hash, stored)
        self.raw_event_ids += context.raw_event_ids
        return result

    def _roll_back(self, *, failed: bool) -> None:
        """Undo the operation's savepoint (sent with the next operation's first round trip).

        After a database error the pipeline is aborted until a Sync, and the transaction failed
        until the rollback to the savepoint: the Sync first (the statements the error skipped
        report ``PipelineAborted`` there, nothing new)."""
        if failed:
            with contextlib.suppress(PipelineAborted):
                self._pipeline.sync()
        self._connection.execute(_SQL.rollback_to_savepoint.sql)
        self._connection.execute(_SQL.release_savepoint.sql)


# ---------------------------------------------------------------- results


def request_hash(item: Any) -> str:
    """SHA-256 (hex) of an operation as sent: canonical JSON, keys sorted, decimals as strings."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=_decimal_as_string)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _decimal_as_string(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _replay(index: int, op_id: UUID, landed: _Landed, sent_hash: str) -> OperationResult:
    if landed.request_hash != sent_hash:
        refusal = OperationRefused(
            "op_id_reused",
            "this opId already landed with other content: a new operation needs a new opId",
            [problem("opId", "op_id_reused", "already used by another operation")],
        )
        return refused(index, op_id, None, refusal)
    return OperationResult.model_validate({**landed.result, "index": index, "replayed": True})


def refused(
    index: int, op_id: UUID | None, record_id: UUID | None, refusal: OperationRefused
) -> OperationResult:
    current = refusal.current
    return OperationResult(
        index=index,
        op_id=op_id,
        status=refusal.status,
        record_id=record_id,
        server_version=current.get("version") if current is not None else None,
        error=refusal.detail,
        current=current,
    )


def database_refusal(error: psycopg.Error) -> OperationRefused:
    """A value the checks above let through and a constraint did not (named, never echoed)."""
    constraint = error.diag.constraint_name
    return OperationRefused(
        "rejected_by_database",
        "the database refused the operation's values",
        [problem("data", constraint or error.sqlstate or "invalid", "refused by the database")],
    )


def summarize(results: list[OperationResult]) -> PushSummary:
    return PushSummary(
        synced=sum(result.status is OperationStatus.SYNCED for result in results),
        error=sum(result.status is OperationStatus.ERROR for result in results),
        conflict=sum(result.status is OperationStatus.CONFLICT for result in results),
        replayed=sum(result.replayed for result in results),
    )


def _handler_of(operation: PushedOperation) -> Handler:
    return _HANDLERS[_collection_of(operation)][operation.operation_type]


def _collection_of(operation: PushedOperation) -> Collection:
    collection = operation.target
    if collection is None:
        raise OperationRefused(
            "unknown_collection",
            "the collection is not one the push knows",
            [problem("collection", "unknown_collection", f"one of {', '.join(sorted(COLLECTION_NAMES))}")],
        )
    return collection


def _record_id_of(data: dict[str, Any]) -> UUID | None:
    """The id of the record an operation is about, when readable (also for refused ones)."""
    value = data.get("id")
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
