"""SQL access of the poller and the token refresher: SECURITY DEFINER functions, nothing else.

Both roles work across tenants, so neither holds a privilege on a table; each function says
exactly what it may read or change (db/migrations/0010_square_backfill.sql).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from pos_gateway.db import ConnectionFactory, NotFound, queries, tenant_transaction

_SQL = queries.load(__file__)

OutOfService = Literal["token_expired", "error"]


@dataclass(frozen=True, slots=True)
class PollTarget:
    connection_id: UUID
    tenant_id: UUID
    merchant_account_id: str
    access_token_enc: str = field(repr=False)
    payments_watermark_at: datetime | None


@dataclass(frozen=True, slots=True)
class PolledEvent:
    """A synthesized Square event envelope, as the raw event table stores it."""

    event_id: str
    event_type: str
    body: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class DueToken:
    connection_id: UUID
    tenant_id: UUID
    access_token_enc: str = field(repr=False)
    refresh_token_enc: str = field(repr=False)
    token_expires_at: datetime


class ConnectionGone(NotFound):
    """The connection was disconnected, deleted or taken out of service meanwhile."""


@contextmanager
def _connection_gone() -> Iterator[None]:
    try:
        yield
    except pg_errors.NoDataFound as exc:
        raise ConnectionGone(str(exc).splitlines()[0]) from exc


class PollerStore:
    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def claim(self, limit: int) -> list[PollTarget]:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(_SQL.claim_connections.sql, {"limit": limit}).fetchall()
        return [
            PollTarget(
                row["connection_id"],
                row["tenant_id"],
                row["merchant_account_id"],
                row["access_token_enc"],
                row["payments_watermark_at"],
            )
            for row in rows
        ]

    def location_watermarks(self, connection_id: UUID) -> dict[str, datetime]:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(
                _SQL.location_watermarks.sql, {"connection_id": connection_id}
            ).fetchall()
        return {row["location_id"]: row["payments_watermark_at"] for row in rows}

    def store_page(
        self,
        connection_id: UUID,
        location_id: str,
        events: Sequence[PolledEvent],
        watermark_at: datetime | None,
    ) -> list[UUID]:
        """One transaction: the page's raw events (deduplicated) and then the location's watermark."""
        payload = [{"event_id": e.event_id, "event_type": e.event_type, "body": e.body} for e in events]
        connection = self._connections.get()
        with _connection_gone(), tenant_transaction(connection, None):
            rows = connection.execute(
                _SQL.store_page.sql,
                {
                    "connection_id": connection_id,
                    "location_id": location_id,
                    "events": Jsonb(payload),
                    "watermark_at": watermark_at,
                },
            ).fetchall()
        return [row["raw_event_id"] for row in rows]

    def record_outcome(
        self, connection_id: UUID, *, error: str | None = None, status: OutOfService | None = None
    ) -> bool:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            row = connection.execute(
                _SQL.record_poll_outcome.sql,
                {"connection_id": connection_id, "status": status, "error": error},
            ).fetchone()
        return bool(row and row["updated"])


class TokenStore:
    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def due(self, expiring_before: datetime, limit: int) -> list[DueToken]:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(
                _SQL.tokens_due.sql, {"expiring_before": expiring_before, "limit": limit}
            ).fetchall()
        return [
            DueToken(
                row["connection_id"],
                row["tenant_id"],
                row["access_token_enc"],
                row["refresh_token_enc"],
                row["token_expires_at"],
            )
            for row in rows
        ]

    def store_refreshed(
        self,
        connection_id: UUID,
        *,
        previous_access_token_enc: str,
        access_token_enc: str,
        refresh_token_enc: str,
        token_expires_at: datetime,
    ) -> bool:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            row = connection.execute(
                _SQL.store_refreshed_tokens.sql,
                {
                    "connection_id": connection_id,
                    "previous_access_token_enc": previous_access_token_enc,
                    "access_token_enc": access_token_enc,
                    "refresh_token_enc": refresh_token_enc,
                    "token_expires_at": token_expires_at,
                },
            ).fetchone()
        return bool(row and row["updated"])

    def record_failure(self, connection_id: UUID, *, error: str, status: OutOfService | None) -> bool:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            row = connection.execute(
                _SQL.record_refresh_failure.sql,
                {"connection_id": connection_id, "status": status, "error": error},
            ).fetchone()
        return bool(row and row["updated"])
