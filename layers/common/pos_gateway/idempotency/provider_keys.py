"""Provider-level idempotency keys: the Powertools layer with keys stored as the provider names them.

Crediting records each provider payment and refund under ``{provider}:{merchantId}:{providerTxnId}``
(``{provider}:{merchantId}:refund:{refundId}``), literally, as the seed does: the key is taken from
the payload unhashed and stored without the tenant prefix (a merchant account belongs to one
tenant; the record's tenant_id and row-level security keep tenants apart). Records are written
only inside the crediting transaction, with the business writes they describe; that transaction
already holds the provider transaction's or refund's unique row, which serializes every delivery
of the key, so the claim only reads the record (see ``read_provider_key``).
"""

import threading
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyKeyError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from pydantic import BaseModel

from pos_gateway.db import queries
from pos_gateway.idempotency.once import OnceRunner, OnceSpec
from pos_gateway.idempotency.persistence import PostgresPersistenceLayer, _Binding

_SQL = queries.load(__file__, "queries.sql")


class ProviderKeyPersistenceLayer(PostgresPersistenceLayer):
    _claim_sql = _SQL.read_provider_key.sql
    _complete_sql = _SQL.complete_provider_key.sql

    def _get_hashed_idempotency_key(self, data: dict[str, Any]) -> str | None:
        """The provider's key itself: not hashed, not prefixed with the function's name."""
        compiled = self.event_key_compiled_jmespath
        key = compiled.search(data) if compiled is not None else data
        if not isinstance(key, str) or not key:
            raise IdempotencyKeyError("No provider idempotency key in the payload")
        return key

    def _storage_key(self, binding: _Binding, idempotency_key: str) -> str:
        return idempotency_key

    def _put_record(self, data_record: DataRecord) -> None:
        if not self._bound().joined():
            raise RuntimeError("provider keys are recorded inside the crediting transaction only")
        super()._put_record(data_record)

    def _claimable(self, row: dict[str, Any]) -> bool:
        # A record without an answer (written before crediting went through Powertools) has
        # nothing to replay: the work runs, and the completion leaves that record as it is.
        return row["response_data"] is None or super()._claimable(row)


class ProviderKeyRunners:
    """Powertools runners over provider keys, one per (spec, handler), each built on first use."""

    def __init__(self) -> None:
        self._runners: dict[tuple[str, str], OnceRunner[Any]] = {}
        self._lock = threading.Lock()

    def runner[T: BaseModel](self, spec: OnceSpec, handler: str, result_type: type[T]) -> OnceRunner[T]:
        key = (spec.key_prefix, handler)
        runner = self._runners.get(key)
        if runner is None:
            with self._lock:
                runner = self._runners.get(key)
                if runner is None:
                    store = ProviderKeyPersistenceLayer(handler=handler)
                    runner = self._runners[key] = OnceRunner(spec, result_type, store)
        return cast(OnceRunner[T], runner)
