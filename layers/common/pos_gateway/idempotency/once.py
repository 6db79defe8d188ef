"""Run a piece of work at most once per key, inside the caller's database transaction.

Design: the caller opens ONE tenant transaction and passes its connection. Powertools then
claims the key (an INPROGRESS row), runs the work, and completes the record — all as savepoints
of that transaction, so the business writes and the completed record commit together or not at
all. Consequences:

- A crash or timeout never leaves a stale INPROGRESS record behind: the rollback takes it away,
  and the client's retry runs the work afresh.
- A concurrent request with the same key blocks on the key's unique-index entry until the first
  transaction ends, then replays the committed answer (or, after a rollback, does the work).
  It never gets "in progress" and the work never runs twice.
- A request whose work raises (a business refusal) leaves no record: a retry is evaluated again.
- A different payload under a live key fails with ``IdempotencyValidationError``.

The price is that a duplicate holds a connection while it waits; the caller bounds that wait
with ``lock_timeout``. The in-progress expiry still follows the Lambda's remaining time, so the
same layer also works record-by-record in autocommit mode.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.idempotency.serialization.custom_dict import CustomDictSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

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


def run_once[T: BaseModel](
    store: PostgresPersistenceLayer,
    spec: OnceSpec,
    payload: BaseModel,
    work: Callable[[], T],
    result_type: type[T],
    lambda_context: LambdaContext | None = None,
) -> Once[T]:
    replayed = False

    def note_replay(response: Any, idempotent_data: DataRecord) -> Any:
        nonlocal replayed
        replayed = True
        return response

    config = IdempotencyConfig(
        event_key_jmespath=spec.event_key_jmespath,
        payload_validation_jmespath=spec.payload_validation_jmespath,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=int(spec.ttl.total_seconds()),
        hash_function="sha256",
        lambda_context=lambda_context or _NoLambdaContext(),
        response_hook=note_replay,
    )

    def execute(*, payload: BaseModel) -> T:
        return work()

    serializer = CustomDictSerializer(
        to_dict=lambda value: value.model_dump(mode="json", by_alias=True),
        from_dict=result_type.model_validate,
    )
    run = idempotent_function(
        execute,
        data_keyword_argument="payload",
        persistence_store=store,
        config=config,
        output_serializer=serializer,
        key_prefix=spec.key_prefix,
    )
    value = cast(T, run(payload=payload))
    return Once(value, replayed)
