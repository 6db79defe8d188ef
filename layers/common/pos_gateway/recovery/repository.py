"""SQL access for recovery: claiming stuck raw events, noting why crediting failed."""

from dataclasses import dataclass
from uuid import UUID

from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.providers.models import Provider

_SQL = queries.load(__file__)


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    raw_event_id: UUID
    tenant_id: UUID
    provider: Provider
    parked: bool  # swept too often: parked for operators, not enqueued again


class StuckEventClaims:
    """The sweeper's only access: a SECURITY DEFINER function that claims rows across tenants."""

    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def claim(self, *, grace_seconds: int, max_sweeps: int, limit: int) -> list[ClaimedEvent]:
        connection = self._connections.get()
        with tenant_transaction(connection, None):
            rows = connection.execute(
                _SQL.claim_stuck_raw_events.sql,
                {"grace_seconds": grace_seconds, "max_sweeps": max_sweeps, "limit": limit},
            ).fetchall()
        return [
            ClaimedEvent(row["id"], row["tenant_id"], Provider(row["provider"]), row["parked"])
            for row in rows
        ]


class RawEventFailures:
    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def record(self, raw_event_id: UUID, tenant_id: UUID, error: str) -> bool:
        """Write the error on the unprocessed event in its own transaction; False if none matched."""
        connection = self._connections.get()
        with tenant_transaction(connection, tenant_id):
            cursor = connection.execute(
                _SQL.record_crediting_failure.sql, {"raw_event_id": raw_event_id, "error": error}
            )
        return cursor.rowcount == 1
