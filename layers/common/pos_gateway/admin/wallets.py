"""Wallets as operators see them: balance and version, the ledger, freezes and point adjustments.

An adjustment is a new ledger entry (``created_by_admin``), never an edit: a mistaken one is
undone by an entry the other way. Both adjustments and freezes name the wallet version the
operator saw; a wallet that moved since answers 409 with its current version.
"""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from pos_gateway.admin.access import not_found
from pos_gateway.admin.inputs import Reason, RequestBody, Version
from pos_gateway.admin.listing import fetch_page
from pos_gateway.admin.session import Change
from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError

_SQL = queries.load(__file__, "wallets.sql")

MAX_ADJUSTMENT_POINTS = 10_000_000


class Wallet(BaseModel):
    id: UUID
    tenant_id: UUID
    user_id: UUID
    points_balance: int
    status: Literal["active", "frozen"]
    version: int
    created_at: datetime
    updated_at: datetime


class LedgerEntry(BaseModel):
    id: UUID
    entry_type: Literal["credit", "debit"]
    points: int
    balance_after: int
    description: str | None
    source_transaction_id: UUID | None
    reward_event_id: UUID | None
    created_by_admin: UUID | None
    created_at: datetime


class WalletPage(BaseModel):
    items: list[Wallet]
    next_cursor: str | None


class LedgerPage(BaseModel):
    items: list[LedgerEntry]
    next_cursor: str | None


class StatusChange(RequestBody):
    reason: Reason
    expected_version: Version | None = None


class Adjustment(RequestBody):
    direction: Literal["credit", "debit"]
    points: int = Field(strict=True, ge=1, le=MAX_ADJUSTMENT_POINTS)
    reason: Reason
    expected_version: Version


class AdjustmentResult(BaseModel):
    wallet: Wallet
    ledger_entry: LedgerEntry


class WalletConflict(ApiError):
    status_code = 409


def _stale(current: int) -> WalletConflict:
    return WalletConflict(
        f"the wallet changed since it was read: it is now at version {current}",
        [{"loc": "body.expected_version", "type": "stale_version", "msg": f"current version is {current}"}],
        code="stale_version",
    )


def get_wallet(connection: Connection, wallet_id: UUID) -> Wallet:
    row = connection.execute(_SQL.get_wallet.sql, {"wallet_id": wallet_id}).fetchone()
    if row is None:
        raise not_found("wallet")
    return Wallet(**row)


def list_wallets(
    connection: Connection, *, user_id: UUID | None, limit: int, cursor: str | None
) -> WalletPage:
    rows, following = fetch_page(
        connection, _SQL.list_wallets.sql, {"user_id": user_id}, limit=limit, cursor=cursor
    )
    return WalletPage(items=[Wallet(**row) for row in rows], next_cursor=following)


def ledger(connection: Connection, wallet_id: UUID, *, limit: int, cursor: str | None) -> LedgerPage:
    get_wallet(connection, wallet_id)
    rows, following = fetch_page(
        connection, _SQL.ledger_page.sql, {"wallet_id": wallet_id}, limit=limit, cursor=cursor
    )
    return LedgerPage(items=[LedgerEntry(**row) for row in rows], next_cursor=following)


def _locked(change: Change, wallet_id: UUID) -> dict[str, Any]:
    row = change.connection.execute(_SQL.lock_wallet.sql, {"wallet_id": wallet_id}).fetchone()
    if row is None:
        raise not_found("wallet")
    return dict(row)


def _state(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("points_balance", "status", "version")}


def set_status(
    change: Change, wallet_id: UUID, status: Literal["active", "frozen"], request: StatusChange
) -> Wallet:
    before = _locked(change, wallet_id)
    if request.expected_version is not None and before["version"] != request.expected_version:
        raise _stale(before["version"])
    if before["status"] == status:
        raise WalletConflict(f"the wallet is already {status}", code=f"wallet_already_{status}")
    after = change.connection.execute(
        _SQL.set_status.sql, {"wallet_id": wallet_id, "status": status}
    ).fetchone()
    if after is None:
        raise not_found("wallet")
    change.audit(
        "wallet.freeze" if status == "frozen" else "wallet.unfreeze",
        target_type="wallet",
        target_id=wallet_id,
        before=_state(before),
        after=_state(after),
        reason=request.reason,
    )
    return Wallet(**after)


def adjust(change: Change, wallet_id: UUID, request: Adjustment) -> AdjustmentResult:
    before = _locked(change, wallet_id)
    if before["version"] != request.expected_version:
        raise _stale(before["version"])
    if request.direction == "debit" and request.points > before["points_balance"]:
        raise WalletConflict(
            f"the wallet holds {before['points_balance']} points, fewer than the {request.points} to debit",
            [{"loc": "body.points", "type": "insufficient_points", "msg": "more than the balance"}],
            code="insufficient_points",
        )
    entry = change.connection.execute(
        _SQL.insert_adjustment.sql,
        {
            "tenant_id": before["tenant_id"],
            "wallet_id": wallet_id,
            "entry_type": request.direction,
            "points": request.points,
            "description": request.reason,
            "created_by_admin": change.actor.user_id,
        },
    ).fetchone()
    after = change.connection.execute(_SQL.get_wallet.sql, {"wallet_id": wallet_id}).fetchone()
    if entry is None or after is None:
        raise LookupError("adjustment rows missing right after insert")
    change.audit(
        "wallet.adjust",
        target_type="wallet",
        target_id=wallet_id,
        before=_state(before),
        after={
            **_state(after),
            "ledger_entry_id": entry["id"],
            "direction": request.direction,
            "points": request.points,
        },
        reason=request.reason,
    )
    return AdjustmentResult(wallet=Wallet(**after), ledger_entry=LedgerEntry(**entry))
