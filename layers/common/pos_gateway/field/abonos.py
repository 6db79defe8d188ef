"""Abonos (debt payments) pushed by devices: created once, never changed; a delete is a void
(admin_negocio only). An abono takes its amount off the customer's debt, never below zero unless
the business allows credit balances (``permitir_saldo_a_favor``)."""

from pos_gateway.db import queries
from pos_gateway.field import customers
from pos_gateway.field.context import (
    Applied,
    OperationContext,
    parse_data,
    problem,
    record_exists,
    record_void,
    void_target,
)
from pos_gateway.field.operations import NewAbono, OperationRefused
from pos_gateway.field.records import IMMUTABLE_VERSION

_SQL = queries.load(__file__, "abonos.sql")


def create(context: OperationContext) -> Applied:
    abono = parse_data(NewAbono, context.operation.data)
    # Both reads in one round trip (the customer locked even when the id turns out taken: the
    # savepoint's rollback releases it).
    existing = context.send(_SQL.find_abono, id=abono.id)
    locked = customers.send_lock(context, abono.client_id)
    if existing.fetchone() is not None:
        raise record_exists(abono.id)
    customer = customers.live(locked.fetchone(), abono.client_id, "data.clientId")
    if abono.amount > customer["debt"] and not context.settings.permitir_saldo_a_favor:
        raise OperationRefused(
            "abono_exceeds_debt",
            "the abono is larger than the customer's debt",
            [
                problem(
                    "data.amount",
                    "abono_exceeds_debt",
                    "at most the debt",
                    debt=str(customer["debt"]),
                    amount=str(abono.amount),
                )
            ],
        )
    context.write(
        _SQL.insert_abono,
        id=abono.id,
        client_id=abono.client_id,
        seller_id=context.device.seller_id,
        amount=abono.amount,
        payment_method=abono.payment_method.value,
        notes=abono.notes,
        currency=context.settings.currency,
        paid_at=abono.paid_at or context.operation.client_created_at,
        device_id=context.device.device_id,
    )
    customers.add_debt(context, abono.client_id, -abono.amount)
    return Applied(abono.id, IMMUTABLE_VERSION)


def void(context: OperationContext) -> Applied:
    """The abono's compensating record: its amount is owed again."""
    ref, abono = void_target(context, "abono", _SQL.find_abono)
    customers.lock(context, abono["client_id"])
    customers.add_debt(context, abono["client_id"], abono["amount"])
    record_void(context, ref.reason, abono_id=ref.id)
    return Applied(ref.id, IMMUTABLE_VERSION)
