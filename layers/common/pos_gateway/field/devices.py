"""Device credentials: ``fsd_<device id hex>_<secret>``, shown once, stored as SHA-256.

The secret carries 256 random bits, so a plain SHA-256 of the whole credential is a safe
verifier (no password-style stretching is needed) and lets the lookup be one indexed read.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from pos_gateway.db import queries, tenant_transaction
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "devices.sql")
_PREFIX = "fsd_"
_CREDENTIAL = re.compile(r"^fsd_(?P<device>[0-9a-f]{32})_(?P<secret>[A-Za-z0-9_-]{43})$")


class SellerRole(StrEnum):
    ADMIN_NEGOCIO = "admin_negocio"
    VENDEDOR = "vendedor"


class DeviceUnauthorized(ApiError):
    status_code = 401
    code = "device_unauthorized"


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    device_id: UUID
    credential: str  # shown to the caller once, never stored
    credential_hash: bytes


@dataclass(frozen=True, slots=True)
class Device:
    """The authenticated caller of a sync request: a device of a seller in a tenant."""

    tenant_id: UUID
    device_id: UUID
    seller_id: UUID  # field_sales.business_users.id
    role: SellerRole
    currency: str
    country: str  # the tenant's ISO country: local phone numbers are read in it

    @property
    def is_admin(self) -> bool:
        return self.role is SellerRole.ADMIN_NEGOCIO


def issue_credential(device_id: UUID) -> IssuedCredential:
    credential = f"{_PREFIX}{device_id.hex}_{secrets.token_urlsafe(32)}"
    return IssuedCredential(device_id, credential, credential_hash(credential))


def credential_hash(credential: str) -> bytes:
    return hashlib.sha256(credential.encode()).digest()


def bearer_credential(authorization: str | None) -> tuple[UUID, bytes]:
    """The device id and credential hash of an ``Authorization: Bearer fsd_...`` header."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    match = _CREDENTIAL.match(value.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        raise DeviceUnauthorized("a device credential is required: Authorization: Bearer fsd_...")
    return UUID(match["device"]), credential_hash(value.strip())


def authenticate(connection: Connection, authorization: str | None) -> Device:
    """The device behind the header; 401 when the credential is unknown, revoked, or its seller,
    user or tenant is no longer active (all alike: a refusal tells nothing more)."""
    device_id, digest = bearer_credential(authorization)
    with tenant_transaction(connection, None):
        row = connection.execute(
            _SQL.authenticate_device.sql, {"device_id": device_id, "credential_hash": digest}
        ).fetchone()
    if row is None:
        raise DeviceUnauthorized("the device credential is not valid (unknown, revoked or inactive)")
    return Device(
        tenant_id=row["tenant_id"],
        device_id=row["device_id"],
        seller_id=row["business_user_id"],
        role=SellerRole(row["role"]),
        currency=row["currency"],
        country=row["country"],
    )
