"""What applying one pushed operation needs and shares across collections.

Every collection module (customers, sales, abonos, distribuciones) applies an operation in its
own savepoint with an ``OperationContext``, raises ``OperationRefused`` for anything it will not
write, and returns what landed as ``Applied``. The refusals several collections give are built
here, so a device sees one code per kind of problem.
"""

from dataclasses import dataclass, field
from typing import Any, NoReturn
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from pydantic import BaseModel, ValidationError

from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.db.queries import Query
from pos_gateway.field.devices import Device
from pos_gateway.field.operations import (
    OperationRefused,
    OperationStatus,
    PushedOperation,
    RecordRef,
    invalid,
)
from pos_gateway.field.records import ServerRecord

_SQL = queries.load(__file__, "context.sql")


@dataclass(frozen=True, slots=True)
class BusinessSettings:
    """The tenant's field settings, read once per push (the migration's defaults when unset)."""

    control_kilos: bool
    usar_distribucion: bool
    permitir_venta_sin_stock: bool
    permitir_saldo_a_favor: bool
    currency: str

    @property
    def counts_distribution(self) -> bool:
        """A sale is counted against the seller's open distribution."""
        return self.control_kilos and self.usar_distribucion


@dataclass(slots=True)
class OperationContext:
    connection: Connection
    device: Device
    settings: BusinessSettings
    operation: PushedOperation
    # Raw loyalty events this operation appended: enqueued for crediting only once it landed.
    raw_event_ids: list[UUID] = field(default_factory=list)
    # Statements sent and not read yet (see ``write``, ``append_event``), read by ``settle``.
    _writes: list[tuple[Query, Cursor[DictRow]]] = field(default_factory=list)
    _events: list[Cursor[DictRow]] = field(default_factory=list)

    @property
    def tenant_id(self) -> UUID:
        return self.device.tenant_id

    def fetch_one(self, query: Query, **params: Any) -> DictRow | None:
        return self.connection.execute(query.sql, {"tenant_id": self.tenant_id, **params}).fetchone()

    def fetch_all(self, query: Query, **params: Any) -> list[DictRow]:
        return self.connection.execute(query.sql, {"tenant_id": self.tenant_id, **params}).fetchall()

    def run(self, query: Query, **params: Any) -> None:
        self.connection.execute(query.sql, {"tenant_id": self.tenant_id, **params})

    def returning(self, query: Query, **params: Any) -> DictRow:
        """A write that returns its row (it always does, inside the locks the push holds)."""
        row = self.fetch_one(query, **params)
        if row is None:
            raise LookupError(f"{query.name} returned no row")
        return row

    def send(self, query: Query, **params: Any) -> Cursor[DictRow]:
        """A statement sent now and read later: in the push's pipeline, statements sent one after
        another travel in the round trip of the first one read."""
        return self.connection.execute(query.sql, {"tenant_id": self.tenant_id, **params})

    def write(self, query: Query, **params: Any) -> None:
        """A write whose row is not needed to go on: sent now, it travels with the operation's
        next round trip; ``settle`` checks it returned its row (as ``returning`` does)."""
        self._writes.append((query, self.send(query, **params)))

    def append_event(self, query: Query, **params: Any) -> None:
        """A raw loyalty event, sent now; its id (none when it was there already) is added to
        ``raw_event_ids`` by ``settle``."""
        self._events.append(self.send(query, **params))

    def settle(self) -> None:
        """Once the operation's statements all ran (the push synced): the writes sent are read."""
        for query, cursor in self._writes:
            if cursor.fetchone() is None:
                raise LookupError(f"{query.name} returned no row")
        for cursor in self._events:
            if (row := cursor.fetchone()) is not None:
                self.raw_event_ids.append(row["id"])
        self._writes.clear()
        self._events.clear()


@dataclass(frozen=True, slots=True)
class Applied:
    """An operation that landed: the record it wrote and that record's version afterwards."""

    record_id: UUID
    server_version: int


# ---------------------------------------------------------------- parsing and refusals


def parse_data[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid(error) from error


def problem(loc: str, kind: str, message: str, **details: Any) -> dict[str, Any]:
    """One entry of an error's ``fields``: where, what kind, why (and machine-readable details)."""
    return {"loc": loc, "type": kind, "msg": message, **details}


def unknown_reference(missing: list[dict[str, Any]]) -> OperationRefused:
    return OperationRefused("unknown_reference", "the operation refers to records that do not exist", missing)


def unknown(loc: str, what: str, record_id: UUID) -> dict[str, Any]:
    return problem(loc, "unknown_reference", f"no such {what} (or it was deleted)", id=str(record_id))


def record_exists(record_id: UUID) -> OperationRefused:
    return OperationRefused(
        "record_exists",
        "a record with this id already exists (an opId already sent is answered from its first result)",
        [problem("data.id", "record_exists", "the id is taken", id=str(record_id))],
    )


def require_admin(context: OperationContext, action: str) -> None:
    if not context.device.is_admin:
        raise OperationRefused("forbidden_role", f"only an admin_negocio may {action}")


def stale_version(expected: int, current: ServerRecord) -> OperationRefused:
    """A versioned update built on an older version: the device merges ``current`` and resends."""
    return OperationRefused(
        "stale_version",
        "the record changed on the server since the device last saw it",
        [problem("data.version", "stale_version", "not the server's version", expected=expected)],
        status=OperationStatus.CONFLICT,
        current=current.to_json(),
    )


def immutable_record(context: OperationContext) -> NoReturn:
    """Sales and abonos never change once synced: a correction is a void and a new record."""
    raise OperationRefused(
        "immutable_record", "sales and abonos cannot be changed once synced: void and record again"
    )


# ---------------------------------------------------------------- voids


def voided(context: OperationContext, *, sale_id: UUID | None = None, abono_id: UUID | None = None) -> bool:
    return context.fetch_one(_SQL.void_of, sale_id=sale_id, abono_id=abono_id) is not None


def record_void(
    context: OperationContext,
    reason: str | None,
    *,
    sale_id: UUID | None = None,
    abono_id: UUID | None = None,
) -> UUID:
    """The compensating record; its id is the opId of the device's delete."""
    void_id = context.operation.op_id
    context.write(
        _SQL.insert_void,
        id=void_id,
        sale_id=sale_id,
        abono_id=abono_id,
        reason=reason or "voided on device",
        voided_by=context.device.seller_id,
        device_id=context.device.device_id,
    )
    return void_id


def void_target(context: OperationContext, what: str, find: Query) -> tuple[RecordRef, DictRow]:
    """The sale or abono a device's delete voids: an admin_negocio's, existing, not voided yet."""
    ref = parse_data(RecordRef, context.operation.data)
    require_admin(context, f"void {'an' if what[0] in 'aeiou' else 'a'} {what}")
    record = context.fetch_one(find, id=ref.id)
    if record is None:
        raise unknown_reference([unknown("data.id", what, ref.id)])
    if voided(context, **{f"{what}_id": ref.id}):
        raise already_voided(ref.id)
    return ref, record


def already_voided(record_id: UUID) -> OperationRefused:
    return OperationRefused(
        "already_voided",
        "the record was already voided",
        [problem("data.id", "already_voided", "voided once already", id=str(record_id))],
    )
