"""Raw webhook events: the durable record of everything a provider sent us."""

from dataclasses import dataclass
from uuid import UUID

from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.providers.models import Provider

_SQL = queries.load(__file__)


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    provider: Provider
    provider_event_id: str
    event_type: str
    merchant_account_id: str
    raw_body: str
    signature_header: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    raw_event_id: UUID | None  # None when the provider event id was already stored
    tenant_id: UUID | None  # None when the merchant is not connected (quarantined)


class RawEventStore:
    def __init__(self, connections: ConnectionFactory) -> None:
        self._connections = connections

    def store(self, event: VerifiedEvent) -> StoredEvent:
        """Route the event to its tenant and append it, in one transaction."""
        connection = self._connections.get()
        with tenant_transaction(connection, None, pipeline=True):
            route = connection.execute(
                _SQL.route_to_tenant.sql,
                {"provider": event.provider.value, "merchant_account_id": event.merchant_account_id},
            ).fetchone()
            tenant_id = route["tenant_id"] if route else None
            inserted = connection.execute(
                _SQL.insert_raw_event.sql,
                {
                    "tenant_id": tenant_id,
                    "provider": event.provider.value,
                    "event_type": event.event_type,
                    "provider_event_id": event.provider_event_id,
                    "merchant_account_id": event.merchant_account_id,
                    "raw_body": event.raw_body,
                    "signature_header": event.signature_header,
                },
            ).fetchone()
        return StoredEvent(raw_event_id=inserted["id"] if inserted else None, tenant_id=tenant_id)
