"""A Powertools idempotency persistence layer on ``pos.idempotency_keys``.

The layer is bound to one connection and one tenant. Each operation runs in
``tenant_transaction``: on its own (autocommit) connection that is a transaction of its own;
inside a transaction the caller already opened, it is a savepoint of that transaction, so the
record commits (or rolls back) together with the caller's writes. ``run_once`` uses the second
form; the first is the plain Powertools contract (see the integration tests).

Keys are scoped per tenant: the stored key is ``{tenant_id}:{powertools key}`` (``platform:``
without a tenant), and row-level security keeps each tenant to its own records. Crediting's
``{provider}:{merchantId}:{providerTxnId}`` keys can never collide with these.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from psycopg.pq import TransactionStatus

from pos_gateway.db import queries, tenant_transaction
from pos_gateway.db.connection import Connection

_SQL = queries.load(__file__)

# How long a record is kept (and a key refused for a different payload): pos.idempotency_keys'
# own default, for crediting and redemptions alike.
DEFAULT_TTL = timedelta(days=30)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PostgresPersistenceLayer(BasePersistenceLayer):
    def __init__(
        self,
        connection: Connection,
        tenant_id: UUID | None,
        handler: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._connection = connection
        self._tenant_id = tenant_id
        self._handler = handler
        self._clock = clock

    def storage_key(self, idempotency_key: str) -> str:
        return f"{self._tenant_id or 'platform'}:{idempotency_key}"

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with tenant_transaction(self._connection, self._tenant_id):
            row = self._connection.execute(
                _SQL.get_record.sql, {"key": self.storage_key(idempotency_key)}
            ).fetchone()
        if row is None:
            raise IdempotencyItemNotFoundError(f"no idempotency record for {idempotency_key}")
        return _data_record(idempotency_key, row)

    def _put_record(self, data_record: DataRecord) -> None:
        """Claim the key, or raise ItemAlreadyExists carrying the live record (payload checked)."""
        with tenant_transaction(self._connection, self._tenant_id):
            claimed = self._connection.execute(
                _SQL.put_in_progress.sql,
                {
                    **self._identity(data_record),
                    "in_progress_expires_at": _from_millis(data_record.in_progress_expiry_timestamp),
                    "now": self._clock(),
                },
            ).fetchone()
        if claimed is not None:
            return
        try:
            existing = self._get_record(data_record.idempotency_key)
        except IdempotencyItemNotFoundError:
            # Deleted between the two statements: Powertools reads again and retries.
            raise IdempotencyItemAlreadyExistsError() from None
        # As the DynamoDB layer does: a different payload under the key fails here, at once.
        self._validate_payload(data_payload=data_record, stored_data_record=existing)
        raise IdempotencyItemAlreadyExistsError(old_data_record=existing)

    def _update_record(self, data_record: DataRecord) -> None:
        with tenant_transaction(self._connection, self._tenant_id):
            self._connection.execute(
                _SQL.complete_record.sql,
                {**self._identity(data_record), "response_data": data_record.response_data or None},
            )

    def _delete_record(self, data_record: DataRecord) -> None:
        if self._connection.info.transaction_status == TransactionStatus.INERROR:
            # The caller's transaction failed: its rollback removes the in-progress record.
            return
        with tenant_transaction(self._connection, self._tenant_id):
            self._connection.execute(
                _SQL.delete_record.sql, {"key": self.storage_key(data_record.idempotency_key)}
            )

    def _identity(self, data_record: DataRecord) -> dict[str, Any]:
        return {
            "key": self.storage_key(data_record.idempotency_key),
            "tenant_id": self._tenant_id,
            "handler": self._handler,
            "expires_at": _from_seconds(data_record.expiry_timestamp) or self._clock() + DEFAULT_TTL,
            "payload_hash": data_record.payload_hash or "",
        }


def delete_expired(connection: Connection, *, batch_size: int = 1000, max_batches: int = 10) -> int:
    """Delete expired keys of every tenant, one short transaction per batch; returns the count.

    Crediting's keys expire too: its duplicates are refused by unique constraints, the keys only
    record what a delivery produced.
    """
    deleted = 0
    for _ in range(max_batches):
        with tenant_transaction(connection, None):
            row = connection.execute(_SQL.delete_expired.sql, {"limit": batch_size}).fetchone()
        batch = int(row["deleted"]) if row else 0
        deleted += batch
        if batch < batch_size:
            break
    return deleted


def _data_record(idempotency_key: str, row: dict[str, Any]) -> DataRecord:
    in_progress: datetime | None = row["in_progress_expires_at"]
    return DataRecord(
        idempotency_key=idempotency_key,
        status=row["status"],
        expiry_timestamp=int(row["expires_at"].timestamp()),
        in_progress_expiry_timestamp=int(in_progress.timestamp() * 1000) if in_progress else None,
        response_data=row["response_data"] or "",
        payload_hash=row["payload_hash"],
    )


def _from_seconds(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None


def _from_millis(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp / 1000, UTC) if timestamp is not None else None
