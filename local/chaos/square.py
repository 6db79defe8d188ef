"""The Square poller under provider faults, alongside the webhooks.

Every Square payment the run makes also exists in the fake Square from the moment its first
webhook is sent; some payments' webhooks never come at all (missed): they reach the service only
through the poller. The poller runs every few seconds while the senders run, and the fake Square
answers some of its calls 429, 5xx, or nothing for longer than the poller's read timeout (a hang).
After the drain one clean poll runs; the invariants then check every payment, missed ones
included, was credited exactly once."""

import json
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.chaos.workload import SQUARE_MERCHANTS, VALID, Event, Workload
from local.stack import LocalStack
from pos_gateway.backfill.envelope import polled_event_id

POLLER = "SquarePollerFunction"
READ_TIMEOUT_SECONDS = 2.0  # the poller's, set for the run: a hang costs a poll a few seconds only
HANG_SECONDS = READ_TIMEOUT_SECONDS + 1.5


@dataclass
class SquareOutcome:
    missed: list[Event] = field(default_factory=list)  # payments only the poller could find
    at_square: list[Event] = field(default_factory=list)  # every payment made (missed included)
    polled_event_keys: set[str] = field(default_factory=set)  # the raw event ids polling may store
    polls: int = 0
    failed_polls: int = 0  # runs that raised (a crash injected into the poller, say)
    final_poll: dict[str, Any] = field(default_factory=dict)  # the clean poll's report
    status_429: int = 0
    status_5xx: int = 0
    hangs: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def final_poll_clean(self) -> bool:
        return bool(self.final_poll) and int(self.final_poll.get("failed", 1)) == 0


class SquarePolling(threading.Thread):
    def __init__(
        self, stack: LocalStack, workload: Workload, seed: int, every: float, missed_share: float
    ) -> None:
        super().__init__(name="chaos-square-poller", daemon=True)
        self._stack, self._every = stack, every
        self._rng = random.Random(seed * 31 + 5)
        self._lock = threading.Lock()
        self._happened: set[str] = set()
        self.stopping = threading.Event()
        payments = [e for e in workload.events if e.provider == "square" and e.kind == VALID and e.payment_id]
        chooser = random.Random(seed * 17 + 3)
        self.outcome = SquareOutcome(missed=[e for e in payments if chooser.random() < missed_share])
        self.missed_keys = {e.key for e in self.outcome.missed}

    def happened(self, event: Event) -> None:
        """The payment exists at Square from now on (called before its first webhook is sent, and
        instead of any webhook for a missed one)."""
        if event.provider != "square" or event.kind != VALID or not event.payment_id or not event.tenant:
            return
        with self._lock:
            if event.key in self._happened:
                return
            self._happened.add(event.key)
            self.outcome.at_square.append(event)
        payment = json.loads(event.body)["data"]["object"]["payment"]
        merchant = SQUARE_MERCHANTS[event.tenant]
        self._stack.fake_square.add_payment(
            merchant,
            f"L{merchant}",
            payment_id=payment["id"],
            created_at=_instant(payment["created_at"]),
            updated_at=_instant(payment["updated_at"]),
            amount=payment["amount_money"]["amount"],
            email=payment.get("buyer_email_address"),
        )

    def run(self) -> None:
        # One of each first, so even a short run meets all three; then at random.
        first = [0.1, 0.3, 0.6]
        while not self.stopping.wait(self._every * self._rng.uniform(0.5, 1.5)):
            self._script_trouble(first.pop(0) if first else self._rng.random())
            self._poll()

    def _script_trouble(self, roll: float) -> None:
        fake = self._stack.fake_square
        if roll < 0.25:
            fake.fail(429)
        elif roll < 0.5:
            fake.fail(self._rng.choice([500, 503]), times=self._rng.randint(1, 2))
        elif roll < 0.65:
            fake.fail(503, hang=HANG_SECONDS)

    def _poll(self) -> dict[str, Any]:
        self.outcome.polls += 1
        try:
            report = self._stack.run_schedule(POLLER)
        except Exception as exc:  # a crash injected into the poller: the next run does its work
            self.outcome.failed_polls += 1
            if len(self.outcome.errors) < 5:
                self.outcome.errors.append(f"poll failed: {str(exc).splitlines()[0][:160]}")
            return {}
        return dict(report) if isinstance(report, dict) else {}

    def finish(self) -> SquareOutcome:
        """After the drain: a clean poll (nothing scripted), then what the checks need."""
        fake = self._stack.fake_square
        fake.clear_failures()
        for _ in range(3):  # a crash injected into the poller is retried, as the next run would
            self.outcome.final_poll = self._poll()
            if self.outcome.final_poll:
                break
        for request in fake.requests:
            if request.hung:
                self.outcome.hangs += 1
            elif request.status == 429:
                self.outcome.status_429 += 1
            elif request.status >= 500:
                self.outcome.status_5xx += 1
        for merchant in SQUARE_MERCHANTS.values():
            for payment in fake.payments(merchant):
                self.outcome.polled_event_keys.add(
                    polled_event_id(payment["id"], _instant(payment["updated_at"]))
                )
        return self.outcome


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
