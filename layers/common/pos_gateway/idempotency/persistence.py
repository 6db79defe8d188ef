"""A Powertools idempotency persistence layer on ``pos.idempotency_keys``.

The layer works on one connection for one tenant at a time: the one it was made with, or the
one ``bound`` gives it for a request (so a store, its configuration and Powertools' decorated
function are built once per container). It has two modes, chosen per operation by the
connection's state unless ``bound`` says which:

- Record by record (no transaction open on the connection): each operation is a transaction of
  its own in the tenant's context. This is the plain Powertools contract: the claim writes an
  INPROGRESS record that others see, the completion updates it, a failure deletes it.
- Inside the caller's transaction (``run_once``, the redemption service): every operation is a
  plain statement of that transaction, on its connection, in the tenant context it set — no
  savepoint, no second ``set_config`` (the claim refuses to run in another tenant's context).
  The claim writes nothing: ``pos.claim_idempotency_key`` locks the key until the transaction
  ends and reads its record. The completion writes the record once, COMPLETED; it commits (or
  rolls back) with the caller's writes. A concurrent claim of the key waits on the lock until
  the holder's transaction ends, then reads the committed record (or, after a rollback, claims).

Why the second mode keeps Powertools' contract: an INPROGRESS record written inside the caller's
transaction is never visible to anyone else — others only ever see no record, then a COMPLETED
one — so its only effect was the wait a concurrent claim had on its unique-index entry. The
key's lock gives exactly that wait, and the record-by-record claim takes the same lock, so the
two modes never claim one key together. Powertools still drives every step (claim, work,
completion or deletion); ``_put_record`` still returns only when the key is free and raises
``IdempotencyItemAlreadyExistsError`` with the live record (payload checked) otherwise.

Keys are scoped per tenant: the stored key is ``{tenant_id}:{powertools key}`` (``platform:``
without a tenant), and row-level security keeps each tenant to its own records. Crediting's
``{provider}:{merchantId}:{providerTxnId}`` keys (``provider_keys``) can never collide with these.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from psycopg import Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow

from pos_gateway.db import queries, tenant_transaction
from pos_gateway.db.connection import Connection

_SQL = queries.load(__file__)

# How long a record is kept (and a key refused for a different payload): pos.idempotency_keys'
# own default, for crediting and redemptions alike.
DEFAULT_TTL = timedelta(days=30)

_INPROGRESS = STATUS_CONSTANTS["INPROGRESS"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Binding:
    connection: Connection
    tenant_id: UUID | None
    in_transaction: bool | None  # None: decided per operation by the connection's state
    sent_claim: tuple[str, Cursor[DictRow]] | None = None  # a claim sent ahead: its key, its answer

    def joined(self) -> bool:
        if self.in_transaction is not None:
            return self.in_transaction
        return self.connection.info.transaction_status != TransactionStatus.IDLE


class PostgresPersistenceLayer(BasePersistenceLayer):
    # The statements a joined claim and a completion send (a subclass may use its own).
    _claim_sql: str = _SQL.claim.sql
    _complete_sql: str = _SQL.complete_record.sql

    def __init__(
        self,
        connection: Connection | None = None,
        tenant_id: UUID | None = None,
        handler: str = "",
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not handler:
            raise ValueError("an idempotency store needs a handler name")
        self._handler = handler
        self._clock = clock
        self._default = _Binding(connection, tenant_id, None) if connection is not None else None
        # Per thread and per task: a store shared by concurrent requests never mixes them up.
        self._binding: ContextVar[_Binding | None] = ContextVar("idempotency_binding", default=None)

    @contextmanager
    def bound(
        self, connection: Connection, tenant_id: UUID | None, *, in_transaction: bool
    ) -> Iterator[None]:
        """Serve one request on ``connection`` for ``tenant_id``; ``in_transaction``: the caller's."""
        token = self._binding.set(_Binding(connection, tenant_id, in_transaction))
        try:
            yield
        finally:
            self._binding.reset(token)

    def send_claim(self, data: dict[str, Any]) -> None:
        """Inside the caller's transaction: send the claim of ``data``'s key now.

        In a pipeline it travels in the round trip of whatever the caller reads next; the claim
        Powertools then makes reads this answer instead of asking again. Needs ``configure``.
        """
        binding = self._bound()
        if not binding.joined():
            return
        key = self._get_hashed_idempotency_key(data=data)
        if key is None:
            return
        binding.sent_claim = (key, self._send(binding, self._claim_sql, self._claim_params(binding, key)))

    def storage_key(self, idempotency_key: str) -> str:
        return self._storage_key(self._bound(), idempotency_key)

    # ------------------------------------------------------------ the Powertools operations

    def _get_record(self, idempotency_key: str) -> DataRecord:
        binding = self._bound()
        with self._own_transaction(binding):
            row = self._send(
                binding, _SQL.get_record.sql, {"key": self._storage_key(binding, idempotency_key)}
            )
            found = row.fetchone()
        if found is None:
            raise IdempotencyItemNotFoundError(f"no idempotency record for {idempotency_key}")
        return _data_record(idempotency_key, found)

    def _put_record(self, data_record: DataRecord) -> None:
        """Claim the key, or raise ItemAlreadyExists carrying the live record (payload checked)."""
        binding = self._bound()
        if binding.joined():
            existing_row = self._claim(binding, data_record.idempotency_key)
            if existing_row is None or self._claimable(existing_row):
                return  # the completion writes (or replaces) the record
            existing = _data_record(data_record.idempotency_key, existing_row)
        else:
            if self._put_in_progress(binding, data_record):
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
        binding = self._bound()
        params = {**self._identity(binding, data_record), "response_data": data_record.response_data or None}
        with self._own_transaction(binding):
            # Its answer is not read: in a caller's pipeline it travels with the COMMIT, and a
            # failure fails that commit (nothing of the work is kept).
            self._send(binding, self._complete_sql, params)

    def _delete_record(self, data_record: DataRecord) -> None:
        binding = self._bound()
        if binding.joined():
            # The claim wrote nothing; the key's lock ends with the caller's transaction.
            return
        with self._own_transaction(binding):
            self._send(
                binding,
                _SQL.delete_record.sql,
                {"key": self._storage_key(binding, data_record.idempotency_key)},
            )

    # ------------------------------------------------------------ helpers

    def _bound(self) -> _Binding:
        binding = self._binding.get() or self._default
        if binding is None:
            raise RuntimeError("the idempotency store is not bound to a connection (use bound())")
        return binding

    def _own_transaction(self, binding: _Binding) -> AbstractContextManager[Any]:
        if binding.joined():
            return nullcontext()
        return tenant_transaction(binding.connection, binding.tenant_id)

    @staticmethod
    def _send(binding: _Binding, sql: str, params: dict[str, Any]) -> Cursor[DictRow]:
        return binding.connection.execute(sql, params)

    def _claim(self, binding: _Binding, idempotency_key: str) -> dict[str, Any] | None:
        sent, binding.sent_claim = binding.sent_claim, None
        if sent is not None and sent[0] == idempotency_key:
            return sent[1].fetchone()
        params = self._claim_params(binding, idempotency_key)
        return self._send(binding, self._claim_sql, params).fetchone()

    def _claim_params(self, binding: _Binding, idempotency_key: str) -> dict[str, Any]:
        return {"key": self._storage_key(binding, idempotency_key), "tenant_id": binding.tenant_id}

    def _claimable(self, row: dict[str, Any]) -> bool:
        """An expired record, or an in-progress one its invocation abandoned (as put_in_progress)."""
        now = self._clock()
        if row["expires_at"] <= now:
            return True
        in_progress: datetime | None = row["in_progress_expires_at"]
        return bool(row["status"] == _INPROGRESS and in_progress is not None and in_progress < now)

    def _put_in_progress(self, binding: _Binding, data_record: DataRecord) -> bool:
        params = {
            **self._identity(binding, data_record),
            "in_progress_expires_at": _from_millis(data_record.in_progress_expiry_timestamp),
            "now": self._clock(),
        }
        with tenant_transaction(binding.connection, binding.tenant_id):
            return self._send(binding, _SQL.put_in_progress.sql, params).fetchone() is not None

    def _storage_key(self, binding: _Binding, idempotency_key: str) -> str:
        return f"{binding.tenant_id or 'platform'}:{idempotency_key}"

    def _identity(self, binding: _Binding, data_record: DataRecord) -> dict[str, Any]:
        return {
            "key": self._storage_key(binding, data_record.idempotency_key),
            "tenant_id": binding.tenant_id,
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
