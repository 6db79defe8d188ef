"""Builders for tenants, members, merchant connections and rules.

Used by the demo data of `make run` and by the tests. They write with an owner connection
(row-level security does not apply), as an operator's provisioning would.
"""

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from pos_gateway.crypto import CredentialCipher
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
