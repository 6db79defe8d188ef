"""A customer's debt as the sums say: Σ balance due of credit sales − Σ abonos, voids excluded.

Computed from the records rather than read from ``customers.debt`` (which the push keeps in the
same transaction as each sale, abono and void), so the route doubles as the check of that copy.
"""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.field.devices import Device
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "debt.sql")


class CustomerNotFound(ApiError):
    status_code = 404
    code = "not_found"


class CustomerDebt(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    customer_id: UUID
    debt: Decimal  # credit_sales − abonos; negative is a credit balance (saldo a favor)
    credit_sales: Decimal  # Σ balance_due of credito sales not voided
    abonos: Decimal  # Σ abonos not voided
    currency: str
    as_of: datetime


def customer_debt(connections: ConnectionFactory, device: Device, customer_id: UUID) -> CustomerDebt:
    """The debt of a customer of the device's tenant; 404 when it is unknown, deleted or another
    tenant's (alike: the answer tells nothing about other tenants)."""
    connection = connections.get()
    with tenant_transaction(connection, device.tenant_id):
        row = connection.execute(
            _SQL.customer_debt.sql, {"tenant_id": device.tenant_id, "customer_id": customer_id}
        ).fetchone()
    if row is None:
        raise CustomerNotFound(
            "no such customer", [{"loc": "customerId", "type": "not_found", "msg": "not found"}]
        )
    return CustomerDebt(
        customer_id=row["customer_id"],
        debt=row["debt"],
        credit_sales=row["credit_sales"],
        abonos=row["abonos"],
        currency=device.currency,
        as_of=row["as_of"],
    )
