"""Pull: the changes a device has not seen yet, in commit-safe order, with tombstones.

Every tracked row carries the transaction that last wrote it and a sequence number (migration
0027). A page serves only rows whose transaction is older than every transaction still running
(the snapshot's xmin), ordered by (change_xid, change_seq) across all collections, and the
cursor is the last position served. A transaction still open when a page is read has an xid at
or above that horizon, so whatever it commits sorts after the cursor: nothing is ever skipped.
A record changed again moves forward, so it appears once per page, at its latest state.
"""

import base64
import binascii
import hashlib
import hmac
import json
import struct
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.field import records
from pos_gateway.field.devices import Device
from pos_gateway.http import ApiError, validation_fields

_SQL = queries.load(__file__, "pull.sql")

DEFAULT_LIMIT = 200
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 64


class ChangeCollection(StrEnum):
    PRODUCTS = "products"
    INVENTORY = "inventory"
    CUSTOMERS = "customers"
    DISTRIBUCIONES = "distribuciones"
    SALES = "sales"
    ABONOS = "abonos"
    VOIDS = "voids"


_RECORDS: dict[ChangeCollection, type[records.ServerRecord]] = {
    ChangeCollection.PRODUCTS: records.ProductRecord,
    ChangeCollection.INVENTORY: records.InventoryRecord,
    ChangeCollection.CUSTOMERS: records.CustomerRecord,
    ChangeCollection.DISTRIBUCIONES: records.DistribucionRecord,
    ChangeCollection.SALES: records.SaleRecord,
    ChangeCollection.ABONOS: records.AbonoRecord,
    ChangeCollection.VOIDS: records.VoidRecord,
}
_IMMUTABLE = {ChangeCollection.SALES, ChangeCollection.ABONOS, ChangeCollection.VOIDS}


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Change(_Camel):
    collection: ChangeCollection
    id: UUID  # for inventory, the product's id
    deleted: bool  # a tombstone: the device drops the record
    server_version: int | None
    data: dict[str, Any] | None  # records.py's rendering; None for a tombstone


class PullPage(_Camel):
    changes: list[Change]
    # Always set: the position after this page (the one given when nothing was new).
    next_cursor: str
    # True when more changes are ready now: pull again at once.
    has_more: bool


class InvalidCursor(ApiError):
    status_code = 400
    code = "invalid_cursor"


class PullQuery(BaseModel):
    """The query string of a pull: ``?cursor=...&limit=...``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


def parse_pull_query(parameters: Mapping[str, str] | None) -> PullQuery:
    """The pull's query parameters; 422 ``validation_failed`` when they are not (the cursor
    itself is checked by ``pull``, 400 ``invalid_cursor``)."""
    try:
        return PullQuery.model_validate(dict(parameters or {}))
    except ValidationError as error:
        raise ApiError(
            "the query parameters are not valid",
            validation_fields(error),
            status_code=422,
            code="validation_failed",
        ) from error


# ---------------------------------------------------------------- the cursor


class Scope(IntEnum):
    """What a cursor's position was walked for: the seller's own records or the whole tenant's."""

    OWN = 0
    TENANT = 1


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """The last (change_xid, change_seq) served; pages continue strictly after it."""

    xid: int
    seq: int


START = Position(0, 0)

# version, scope, change_xid (xid8 is unsigned 64-bit), change_seq; then a check of 8 bytes.
_LAYOUT = struct.Struct(">BBQQ")
_VERSION = 1
_CHECK_SIZE = 8
_CHECK_KEY = b"pos-gateway/field/pull-cursor/v1"
_MAX_SEQ = 2**63 - 1


def encode_cursor(position: Position, scope: Scope, tenant_id: UUID, seller_id: UUID) -> str:
    """An opaque cursor. The check binds it to the tenant and seller: garbage, a changed byte or
    another seller's cursor is refused instead of silently skipping records. (The key is not a
    secret: a forged cursor could only move the caller's own position within its own data.)"""
    payload = _LAYOUT.pack(_VERSION, scope, position.xid, position.seq)
    token = payload + _check(payload, tenant_id, seller_id)
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(cursor: str, tenant_id: UUID, seller_id: UUID) -> tuple[Scope, Position]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _invalid_cursor()
    try:
        token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as error:
        raise _invalid_cursor() from error
    payload, check = token[: _LAYOUT.size], token[_LAYOUT.size :]
    if len(token) != _LAYOUT.size + _CHECK_SIZE or not hmac.compare_digest(
        check, _check(payload, tenant_id, seller_id)
    ):
        raise _invalid_cursor()
    version, scope, xid, seq = _LAYOUT.unpack(payload)
    # change_seq is a bigint: a larger number cannot be one we issued.
    if version != _VERSION or scope not in {member.value for member in Scope} or seq > _MAX_SEQ:
        raise _invalid_cursor()
    return Scope(scope), Position(xid, seq)


def _check(payload: bytes, tenant_id: UUID, seller_id: UUID) -> bytes:
    message = tenant_id.bytes + seller_id.bytes + payload
    return hmac.new(_CHECK_KEY, message, hashlib.sha256).digest()[:_CHECK_SIZE]


def _invalid_cursor() -> InvalidCursor:
    return InvalidCursor(
        "the cursor is not one this API issued to this device's seller",
        [{"loc": "cursor", "type": "invalid_cursor", "msg": "not a cursor from a previous pull"}],
    )


def _scope(device: Device) -> Scope:
    return Scope.TENANT if device.is_admin else Scope.OWN


def start_position(device: Device, cursor: str | None) -> Position:
    """Where the page starts. A cursor walked for another scope (the seller became an admin, or
    stopped being one) starts over: the records it now may see lie behind the old position."""
    if not cursor:
        return START
    scope, position = decode_cursor(cursor, device.tenant_id, device.seller_id)
    return position if scope is _scope(device) else START


# ---------------------------------------------------------------- the page


def pull(
    connections: ConnectionFactory, device: Device, cursor: str | None, limit: int = DEFAULT_LIMIT
) -> PullPage:
    """The next page of changes the device may see after ``cursor`` (from the start without one)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    position = start_position(device, cursor)
    parameters = {
        "tenant_id": device.tenant_id,
        "seller_id": None if device.is_admin else device.seller_id,
        "after_xid": str(position.xid),  # xid8 has no cast from bigint; text has one
        "after_seq": position.seq,
        "limit": limit + 1,  # one more says whether another page is ready
    }
    connection = connections.get()
    # The page is one statement (one snapshot, one horizon). Sale items are read after it:
    # they are append-only and committed with their sale, so they agree with the page.
    with tenant_transaction(connection, device.tenant_id):
        rows = connection.execute(_SQL.changes.sql, parameters).fetchall()
        page = rows[:limit]
        sale_ids = [row["id"] for row in page if row["collection"] == ChangeCollection.SALES]
        items = (
            connection.execute(
                _SQL.sale_items.sql, {"tenant_id": device.tenant_id, "sale_ids": sale_ids}
            ).fetchall()
            if sale_ids
            else []
        )
    lines: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        lines[item["sale_id"]].append(item)
    if page:
        position = Position(int(page[-1]["position_xid"]), page[-1]["position_seq"])
    return PullPage(
        changes=[_change(row, lines) for row in page],
        next_cursor=encode_cursor(position, _scope(device), device.tenant_id, device.seller_id),
        has_more=len(rows) > limit,
    )


def _change(row: Mapping[str, Any], lines: Mapping[UUID, list[dict[str, Any]]]) -> Change:
    collection = ChangeCollection(row["collection"])
    if collection in _IMMUTABLE:
        version: int | None = records.IMMUTABLE_VERSION
    else:
        version = row["version"]  # NULL for inventory: stock has no version
    data = None
    if not row["deleted"]:
        # jsonb numbers keep their scale ("9.9000"); parsed as Decimal they stay exact.
        fields = json.loads(row["data"], parse_float=Decimal)
        if collection is ChangeCollection.SALES:
            fields["items"] = lines.get(row["id"], [])
        data = _RECORDS[collection].model_validate(fields).to_json()
    return Change(
        collection=collection, id=row["id"], deleted=row["deleted"], server_version=version, data=data
    )
