"""Builders for tenants, members, merchant connections and rules.

Used by the demo data of `make run` and by the tests. They write with an owner connection
(row-level security does not apply), as an operator's provisioning would.
"""

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg.sql

from pos_gateway.crypto import CredentialCipher
from pos_gateway.field.devices import issue_credential
from pos_gateway.loyalty.rulebook import publish_rule_version

DEFAULT_RULE: dict[str, Any] = {
    "conversionRate": 1.0,
    "minSpendMinorUnits": 0,
    "maxPointsPerTransaction": 500,
    "minBalanceToRedeem": 100,
    "maxRedemptionPercentage": 100,
    "roundingPolicy": "floor",
}

Conn = psycopg.Connection[Any]

# Demo and test programs run since long before any sale they are shown.
PROGRAM_START = datetime(2020, 1, 1, tzinfo=UTC)


def create_tenant(conn: Conn, name: str, country: str = "US") -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO identity.tenants (name, country, pos_provider_preference) VALUES (%s, %s, 'square')"
        " RETURNING id",
        (name, country),
    ).fetchone()
    return _returned_id(row)


def create_user(
    conn: Conn,
    *,
    email: str | None = None,
    mobile: str | None = None,
    status: str = "active",
    role: str = "consumer",
    full_name: str | None = None,
) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO identity.users (email, mobile, status, role, full_name) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id",
        (email, mobile, status, role, full_name),
    ).fetchone()
    return _returned_id(row)


def connect_square_merchant(
    conn: Conn, tenant_id: uuid.UUID, merchant_id: str, cipher: CredentialCipher
) -> uuid.UUID:
    connection_id = uuid.uuid4()

    def seal(column: str) -> str:
        return cipher.encrypt(
            f"demo-{column}-{secrets.token_hex(8)}",
            table="pos.pos_connections",
            column=column,
            row_id=str(connection_id),
        )

    conn.execute(
        "INSERT INTO pos.pos_connections (id, tenant_id, pos_type, access_token_enc, refresh_token_enc,"
        " merchant_account_id) VALUES (%s, %s, 'square', %s, %s, %s)",
        (connection_id, tenant_id, seal("access_token_enc"), seal("refresh_token_enc"), merchant_id),
    )
    return connection_id


def create_rule(
    conn: Conn,
    tenant_id: uuid.UUID,
    config: dict[str, Any] | None = None,
    effective_from: datetime = PROGRAM_START,
) -> uuid.UUID:
    """Publish a rule version: the tenant's only active one, in force from effective_from."""
    return publish_rule_version(conn, tenant_id, config or DEFAULT_RULE, effective_from).id


def add_member(conn: Conn, tenant_id: uuid.UUID, user_id: uuid.UUID, role: str) -> None:
    """Membership of a user in a tenant (role client or pos_operator)."""
    conn.execute(
        "INSERT INTO identity.tenant_users (tenant_id, user_id, role) VALUES (%s, %s, %s)",
        (tenant_id, user_id, role),
    )


def dev_cipher() -> CredentialCipher:
    """A throwaway key for local data; the cloud loads its keys from Secrets Manager."""
    return CredentialCipher(keys={"local-1": secrets.token_bytes(32)}, current_key_id="local-1")


def _returned_id(row: Any) -> uuid.UUID:
    """The id of a RETURNING id row, whatever the connection's row factory."""
    if row is None:
        raise LookupError("INSERT ... RETURNING gave no row")
    value = row["id"] if isinstance(row, dict) else row[0]
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# ---------------------------------------------------------------- field sales (seed 004)


def create_field_business(conn: Conn, tenant_id: uuid.UUID, **settings: Any) -> None:
    """The tenant's field-sales settings (control_kilos, usar_distribucion, ...; defaults otherwise)."""
    columns = ["tenant_id", *settings]
    conn.execute(
        psycopg.sql.SQL("INSERT INTO field_sales.business_settings ({}) VALUES ({})").format(
            psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns)),
            psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() * len(columns)),
        ),
        [tenant_id, *settings.values()],
    )


def add_seller(
    conn: Conn,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str = "vendedor",
    sales_point: str | None = "Carro A",
    commission_rate: str = "5.00",
) -> uuid.UUID:
    """A user's seat in the business (the seed's business_users row): role, sales point, commission."""
    row = conn.execute(
        "INSERT INTO field_sales.business_users (tenant_id, user_id, role, sales_point, commission_rate)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, user_id, role, sales_point, commission_rate),
    ).fetchone()
    return _returned_id(row)


def register_device(conn: Conn, tenant_id: uuid.UUID, seller_id: uuid.UUID, label: str = "phone") -> str:
    """A device of the seller; returns its credential (only its hash is stored)."""
    issued = issue_credential(uuid.uuid4())
    conn.execute(
        "INSERT INTO field_sales.devices (id, tenant_id, business_user_id, label, credential_hash)"
        " VALUES (%s, %s, %s, %s, %s)",
        (issued.device_id, tenant_id, seller_id, label, issued.credential_hash),
    )
    return issued.credential


def create_field_product(
    conn: Conn,
    tenant_id: uuid.UUID,
    name: str,
    base_price: str,
    *,
    stock: str = "0",
    product_type: str = "pollo",
    unit: str = "kg",
) -> uuid.UUID:
    """A product with its inventory row (stock in its unit)."""
    row = conn.execute(
        "INSERT INTO field_sales.products (tenant_id, name, type, unit, base_price)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, name, product_type, unit, base_price),
    ).fetchone()
    product_id = _returned_id(row)
    conn.execute(
        "INSERT INTO field_sales.inventory (tenant_id, product_id, quantity) VALUES (%s, %s, %s)",
        (tenant_id, product_id, stock),
    )
    return product_id


def open_distribution(
    conn: Conn, tenant_id: uuid.UUID, *, vendedor_id: uuid.UUID, created_by: uuid.UUID, kilos: str
) -> uuid.UUID:
    """Today's open distribution of kilos to a seller."""
    row = conn.execute(
        "INSERT INTO field_sales.distribuciones (id, tenant_id, vendedor_id, punto_venta, kilos_asignados,"
        " fecha, created_by)"
        " VALUES (gen_random_uuid(), %s, %s, 'Carro A', %s, current_date, %s) RETURNING id",
        (tenant_id, vendedor_id, kilos, created_by),
    ).fetchone()
    return _returned_id(row)
