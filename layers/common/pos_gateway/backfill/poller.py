"""Square payments polling: what webhooks missed reaches crediting through the same raw event table.

For each active Square connection (least recently polled first): decrypt its access token, list
its locations, then list each location's payments created since the location's watermark minus
an overlap, page by page. Each page is stored in one transaction (raw events, deduplicated under
the webhook key, then the watermark), and only then are its new events enqueued for crediting.
A page that fails is not stored and leaves the watermark where the last stored page put it.

One connection failing never stops the others: a 401 takes the connection out of polling
(``token_expired``), a 429 / 5xx / timeout is recorded as its last error and retried next run.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.backfill.envelope import UnusablePayment, polled_event
from pos_gateway.backfill.repository import (
    ConnectionGone,
    OutOfService,
    PolledEvent,
    PollerStore,
    PollTarget,
)
from pos_gateway.crypto import CredentialCipher, DecryptionError
from pos_gateway.db import DatabaseUnavailable
from pos_gateway.ingest.queue import IngestQueue
from pos_gateway.messages import CreditRequest
from pos_gateway.providers.models import Provider
from pos_gateway.providers.square.api import (
    ListedPayment,
    PaymentsQuery,
    SquareApi,
    SquareApiError,
    SquareUnauthorized,
)

logger = Logger(child=True)

CONNECTIONS_TABLE = "pos.pos_connections"
ACCESS_TOKEN_COLUMN = "access_token_enc"  # noqa: S105 (a column name)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    overlap: timedelta
    first_lookback: timedelta
    max_connections: int
    max_pages_per_location: int
    page_size: int
    reserve_milliseconds: int = 0


class PollReport(BaseModel):
    """What one run did."""

    # Counted up during the run, then returned as it is.
    model_config = ConfigDict(populate_by_name=True)

    connections: int = 0
    succeeded: int = 0
    failed: int = 0
    token_expired: int = Field(default=0, alias="tokenExpired")
    pages: int = 0
    payments: int = 0
    stored: int = 0
    unusable: int = 0
    enqueue_failures: int = Field(default=0, alias="enqueueFailures")
    stopped_early: bool = Field(default=False, alias="stoppedEarly")


class _OutOfTime(Exception):
    """The invocation's reserve is reached: stop before the next call."""


def _now() -> datetime:
    return datetime.now(UTC)


def _no_deadline() -> int:
    return 2**31


@dataclass
class _Run:
    time_left_ms: Callable[[], int]
    reserve_ms: int
    tally: PollReport = field(default_factory=PollReport)

    def check_time(self) -> None:
        if self.time_left_ms() < self.reserve_ms:
            self.tally.stopped_early = True
            raise _OutOfTime


class SquarePoller:
    def __init__(
        self,
        store: PollerStore,
        api: SquareApi,
        cipher: Callable[[], CredentialCipher],
        queue: IngestQueue,
        policy: PollPolicy,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._api = api
        self._cipher = cipher
        self._queue = queue
        self._policy = policy
        self._clock = clock

    def poll(self, time_left_ms: Callable[[], int] = _no_deadline) -> PollReport:
        run = _Run(time_left_ms, self._policy.reserve_milliseconds)
        try:
            run.check_time()
            targets = self._store.claim(self._policy.max_connections)
            for target in targets:
                run.check_time()
                run.tally.connections += 1
                self._poll_connection(target, run)
        except _OutOfTime:
            logger.warning("poll stopped: the invocation's time is nearly up")
        report = run.tally
        logger.info("square poll done", extra=report.model_dump())
        return report

    def _poll_connection(self, target: PollTarget, run: _Run) -> None:
        log = {"connection_id": str(target.connection_id), "merchant_id": target.merchant_account_id}
        try:
            access_token = self._cipher().decrypt(
                target.access_token_enc,
                table=CONNECTIONS_TABLE,
                column=ACCESS_TOKEN_COLUMN,
                row_id=str(target.connection_id),
            )
        except DecryptionError:
            logger.error("access token does not decrypt; connection set to error", extra=log)
            self._fail(run, target, "access token does not decrypt with the loaded keys", "error")
            return
        try:
            self._poll_locations(target, access_token, run)
        except SquareUnauthorized as exc:
            logger.warning("Square refused the access token; connection set to token_expired", extra=log)
            run.tally.token_expired += 1
            self._fail(run, target, str(exc), "token_expired")
        except SquareApiError as exc:
            logger.warning("polling failed; retried next run", extra={**log, "error": str(exc)})
            self._fail(run, target, str(exc), None)
        except ConnectionGone:
            logger.info("connection left service while it was polled", extra=log)
        except (_OutOfTime, DatabaseUnavailable):
            raise
        except Exception as exc:
            logger.exception("polling failed unexpectedly", extra=log)
            self._fail(run, target, f"unexpected {type(exc).__name__}", None)
        else:
            run.tally.succeeded += 1
            self._store.record_outcome(target.connection_id)

    def _fail(self, run: _Run, target: PollTarget, error: str, status: OutOfService | None) -> None:
        run.tally.failed += 1
        self._store.record_outcome(target.connection_id, error=error, status=status)

    def _poll_locations(self, target: PollTarget, access_token: str, run: _Run) -> None:
        locations = self._api.list_locations(access_token)
        watermarks = self._store.location_watermarks(target.connection_id)
        end = self._clock()
        for location in locations:
            since = (
                watermarks.get(location.id)
                or target.payments_watermark_at
                or end - self._policy.first_lookback
            )
            self._poll_location(target, access_token, location.id, since - self._policy.overlap, end, run)

    def _poll_location(
        self,
        target: PollTarget,
        access_token: str,
        location_id: str,
        begin: datetime,
        end: datetime,
        run: _Run,
    ) -> None:
        cursor: str | None = None
        for _ in range(self._policy.max_pages_per_location):
            run.check_time()
            page = self._api.list_payments(
                access_token,
                PaymentsQuery(
                    location_id=location_id,
                    begin_time=begin,
                    end_time=end,
                    cursor=cursor,
                    limit=self._policy.page_size,
                ),
            )
            run.tally.pages += 1
            run.tally.payments += len(page.payments)
            events = self._events(target, page.payments, run)
            watermark = max((p.created_at for p in page.payments), default=None)
            stored = self._store.store_page(target.connection_id, location_id, events, watermark)
            run.tally.stored += len(stored)
            self._enqueue(target.tenant_id, stored, run)
            if page.cursor is None:
                return
            cursor = page.cursor
        logger.info(
            "page limit reached; the location continues next run",
            extra={"connection_id": str(target.connection_id), "location_id": location_id},
        )

    def _events(self, target: PollTarget, payments: list[ListedPayment], run: _Run) -> list[PolledEvent]:
        events = []
        for payment in payments:
            try:
                events.append(polled_event(target.merchant_account_id, payment))
            except UnusablePayment as exc:
                run.tally.unusable += 1
                logger.warning(
                    "listed payment skipped",
                    extra={"connection_id": str(target.connection_id), "reason": str(exc)},
                )
        return events

    def _enqueue(self, tenant_id: UUID, raw_event_ids: list[UUID], run: _Run) -> None:
        for raw_event_id in raw_event_ids:
            try:
                self._queue.enqueue(
                    CreditRequest(raw_event_id=raw_event_id, tenant_id=tenant_id, provider=Provider.SQUARE)
                )
            except Exception:
                # Stored and unprocessed: the outbox sweeper enqueues it later.
                run.tally.enqueue_failures += 1
                logger.exception(
                    "enqueue failed; left for the sweeper", extra={"raw_event_id": str(raw_event_id)}
                )
