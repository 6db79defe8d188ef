"""Run a piece of work at most once per key, inside the caller's database transaction.

Design: the caller opens ONE tenant transaction and passes its connection. Powertools then
claims the key, runs the work, and completes the record — all as statements of that
transaction (see ``persistence``: the claim locks the key, the completion is the record's one
write), so the business writes and the completed record commit together or not at all.
Consequences:

- A crash or timeout never leaves a stale record behind: the rollback takes everything away,
  and the client's retry runs the work afresh.
- A concurrent request with the same key blocks on the key until the first transaction ends,
  then replays the committed answer (or, after a rollback, does the work). It never gets
  "in progress" and the work never runs twice.
- A request whose work raises (a business refusal) leaves no record: a retry is evaluated again.
- A different payload under a live key fails with ``IdempotencyValidationError``.

The price is that a duplicate holds a connection while it waits; the caller bounds that wait
with ``lock_timeout``. Outside a transaction the same store works record by record (an
INPROGRESS record expiring with the Lambda's remaining time), the plain Powertools contract.

``OnceRunner`` builds the Powertools configuration, serializer and decorated function once (per
container); ``run_once`` is the one-shot form for a store already bound to a connection.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.serialization.custom_dict import CustomDictSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from pos_gateway.db.connection import Connection
from pos_gateway.idempotency.persistence import DEFAULT_TTL, PostgresPersistenceLayer


@dataclass(frozen=True, slots=True)
class OnceSpec:
    """Which fields of the payload name the key, and which a replay must repeat exactly."""

    key_prefix: str  # stable across deployments (Powertools would use the function's name)
    event_key_jmespath: str
    payload_validation_jmespath: str
    ttl: timedelta = DEFAULT_TTL


@dataclass(frozen=True, slots=True)
class Once[T]:
    value: T
    replayed: bool  # served from the stored record, without running the work


class _NoLambdaContext(LambdaContext):
    """Remaining time when no Lambda context is at hand (tests, scripts): a function's timeout."""

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


_NO_LAMBDA_CONTEXT = _NoLambdaContext()


def _execute(*, payload: BaseModel, work: Callable[[], Any]) -> Any:
    """What Powertools decorates: the payload names the key, the work comes with each call."""
    return work()


class OnceRunner[T: BaseModel]:
    """Powertools' idempotent function over one store, configured once (one per container)."""

    def __init__(self, spec: OnceSpec, result_type: type[T], store: PostgresPersistenceLayer) -> None:
        self._store = store
        self._config = IdempotencyConfig(
            event_key_jmespath=spec.event_key_jmespath,
            payload_validation_jmespath=spec.payload_validation_jmespath,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=int(spec.ttl.total_seconds()),
            hash_function="sha256",
        )
        # As Powertools' handler would on the first call: keys can be computed before it runs.
        store.configure(self._config, key_prefix=spec.key_prefix)
        serializer = CustomDictSerializer(
            to_dict=lambda value: value.model_dump(mode="json", by_alias=True),
            from_dict=result_type.model_validate,
        )
        self._run = idempotent_function(
            _execute,
            data_keyword_argument="payload",
            persistence_store=store,
            config=self._config,
            output_serializer=serializer,
            key_prefix=spec.key_prefix,
        )

    @contextmanager
    def in_transaction(self, connection: Connection, tenant_id: UUID | None) -> Iterator[None]:
        """Serve the requests run in this block inside the caller's transaction on ``connection``."""
        with self._store.bound(connection, tenant_id, in_transaction=True):
            yield

    def send_claim(self, payload: BaseModel) -> None:
        """Send the key's claim ahead of statements the caller reads first (see ``run``)."""
        self._store.send_claim(payload.model_dump(mode="json"))  # the data Powertools hashes

    def run(
        self, payload: BaseModel, work: Callable[[], T], lambda_context: LambdaContext | None = None
    ) -> Once[T]:
        ran = False

        def tracked() -> T:
            nonlocal ran
            ran = True
            return work()

        self._config.register_lambda_context(lambda_context or _NO_LAMBDA_CONTEXT)
        value = cast(T, self._run(payload=payload, work=tracked))
        return Once(value, replayed=not ran)


def run_once[T: BaseModel](
    store: PostgresPersistenceLayer,
    spec: OnceSpec,
    payload: BaseModel,
    work: Callable[[], T],
    result_type: type[T],
    lambda_context: LambdaContext | None = None,
) -> Once[T]:
    """Once, through a store made with its connection and tenant (record by record or joined)."""
    return OnceRunner(spec, result_type, store).run(payload, work, lambda_context)
