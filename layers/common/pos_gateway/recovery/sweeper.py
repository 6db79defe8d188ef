"""Outbox sweeper: raw events stuck unprocessed go back on the ingest queue, in bounded batches.

An event is stuck when ingest stored it but the enqueue failed, or when crediting keeps failing
it. Each sweep re-sends the same ``CreditRequest`` ingest would have sent (crediting is
idempotent); an event swept ``max_sweeps`` times is parked instead and left for operators.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.messages import CreditRequest
from pos_gateway.recovery.repository import ClaimedEvent, StuckEventClaims

logger = Logger(child=True)

SQS_BATCH_LIMIT = 10


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    grace_seconds: int
    max_sweeps: int
    batch_size: int
    max_batches: int


class SweepReport(BaseModel):
    """What one sweep did."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    requeued: int = 0
    parked: int = 0
    enqueue_failures: int = Field(default=0, alias="enqueueFailures")
    batches: int = 0


class CreditRequestQueue:
    """The ingest queue, written in SQS batches of ten."""

    def __init__(self, queue_url: str, sqs_client: Any) -> None:
        self._queue_url = queue_url
        self._sqs = sqs_client

    def send(self, requests: Sequence[CreditRequest]) -> list[CreditRequest]:
        """Send every request; returns those SQS did not take."""
        failed: list[CreditRequest] = []
        for start in range(0, len(requests), SQS_BATCH_LIMIT):
            chunk = requests[start : start + SQS_BATCH_LIMIT]
            try:
                response = self._sqs.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(n), "MessageBody": r.to_json()} for n, r in enumerate(chunk)],
                )
            except Exception:
                logger.exception("sending a batch to the ingest queue failed", extra={"size": len(chunk)})
                failed.extend(chunk)
                continue
            failed.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        return failed


class OutboxSweeper:
    def __init__(self, claims: StuckEventClaims, queue: CreditRequestQueue, policy: SweepPolicy) -> None:
        self._claims = claims
        self._queue = queue
        self._policy = policy

    def sweep(self) -> SweepReport:
        """Claim and re-enqueue stuck events, batch by batch, until none is left or the bound is hit.

        A claim commits before the send: an event whose send fails has still used a sweep and
        comes back after the grace period.
        """
        policy = self._policy
        requeued = parked = failures = batches = 0
        while batches < policy.max_batches:
            claimed = self._claims.claim(
                grace_seconds=policy.grace_seconds, max_sweeps=policy.max_sweeps, limit=policy.batch_size
            )
            batches += 1
            to_send = [_request(event) for event in claimed if not event.parked]
            failed = self._queue.send(to_send)
            for event in claimed:
                if event.parked:
                    logger.warning("raw event parked", extra=_log_fields(event, policy.max_sweeps))
            requeued += len(to_send) - len(failed)
            parked += len(claimed) - len(to_send)
            failures += len(failed)
            if len(claimed) < policy.batch_size:
                break
        report = SweepReport(requeued=requeued, parked=parked, enqueue_failures=failures, batches=batches)
        logger.info("sweep done", extra=report.model_dump())
        return report


def _request(event: ClaimedEvent) -> CreditRequest:
    return CreditRequest(raw_event_id=event.raw_event_id, tenant_id=event.tenant_id, provider=event.provider)


def _log_fields(event: ClaimedEvent, max_sweeps: int) -> dict[str, str | int]:
    return {"raw_event_id": str(event.raw_event_id), "tenant_id": str(event.tenant_id), "sweeps": max_sweeps}
