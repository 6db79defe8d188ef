"""Customers pushed by devices: created under the device's id, updated and soft-deleted with a
version check. Their debt moves with credit sales, abonos and voids (``add_debt``), always with
the customer's row locked first, and does not bump the version (it is not the device's field)."""

from decimal import Decimal
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from pos_gateway.db import queries
from pos_gateway.field.context import (
    Applied,
    OperationContext,
    parse_data,
    problem,
    record_exists,
    stale_version,
    unknown,
    unknown_reference,
)
from pos_gateway.field.operations import CustomerUpdate, NewCustomer, OperationRefused, RecordRef
from pos_gateway.field.records import CustomerRecord

_SQL = queries.load(__file__, "customers.sql")
_OWN_FIELDS = ("name", "dni", "phone", "email", "address", "notes")


def lock(context: OperationContext, customer_id: UUID) -> DictRow | None:
    """The customer, deleted or not, locked until the push commits."""
    return context.fetch_one(_SQL.lock_customer, id=customer_id)


def send_lock(context: OperationContext, customer_id: UUID) -> Cursor[DictRow]:
    """``lock``, sent now and read later (with the operation's other reads, in one round trip)."""
    return context.send(_SQL.lock_customer, id=customer_id)


def lock_live(context: OperationContext, customer_id: UUID, loc: str) -> DictRow:
    return live(send_lock(context, customer_id).fetchone(), customer_id, loc)


def live(row: DictRow | None, customer_id: UUID, loc: str) -> DictRow:
    """A locked customer row that is not deleted, else the operation's unknown reference."""
    if row is None or row["deleted_at"] is not None:
        raise unknown_reference([unknown(loc, "customer", customer_id)])
    return row


def add_debt(context: OperationContext, customer_id: UUID, delta: Decimal) -> None:
    """Sent with the operation's next round trip (the customer is locked already)."""
    context.write(_SQL.add_debt, id=customer_id, delta=delta)


def create(context: OperationContext) -> Applied:
    customer = parse_data(NewCustomer, context.operation.data)
    if lock(context, customer.id) is not None:
        raise record_exists(customer.id)
    row = context.returning(
        _SQL.insert_customer,
        id=customer.id,
        created_by=context.device.seller_id,
        **customer.model_dump(include=set(_OWN_FIELDS)),
    )
    return Applied(customer.id, row["version"])


def update(context: OperationContext) -> Applied:
    change = parse_data(CustomerUpdate, context.operation.data)
    _lock_at_version(context, change.id, change.version)
    changes = change.changes()
    row = context.returning(
        _SQL.update_customer,
        id=change.id,
        version=change.version,
        **{f"set_{name}": name in changes for name in _OWN_FIELDS},
        **{name: changes.get(name) for name in _OWN_FIELDS},
    )
    return Applied(change.id, row["version"])


def delete(context: OperationContext) -> Applied:
    """A soft delete, refused while the customer owes (or is owed) anything."""
    ref = parse_data(RecordRef, context.operation.data)
    if ref.version is None:
        raise OperationRefused(
            "validation_failed",
            "the operation is not valid",
            [problem("data.version", "missing", "a customer's delete carries the version the device saw")],
        )
    current = _lock_at_version(context, ref.id, ref.version)
    if current["debt"] != 0:
        raise OperationRefused(
            "customer_has_debt",
            "a customer with a debt (or a credit balance) cannot be deleted",
            [problem("data.id", "customer_has_debt", "settle the debt first", debt=str(current["debt"]))],
        )
    row = context.returning(_SQL.delete_customer, id=ref.id, version=ref.version)
    return Applied(ref.id, row["version"])


def _lock_at_version(context: OperationContext, customer_id: UUID, version: int) -> DictRow:
    """The live customer, locked; a conflict when the device built on another version."""
    row = lock_live(context, customer_id, "data.id")
    if row["version"] != version:
        raise stale_version(version, CustomerRecord.model_validate(row))
    return row
