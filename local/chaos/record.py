"""The run's own record of what it sent and what it was answered (thread-safe)."""

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from local.chaos.workload import VALID, Event


@dataclass(frozen=True)
class Answer:
    key: str
    kind: str
    provider: str
    status: int  # 0: no answer (connection error, timeout)
    outcome: str  # accepted / duplicate / quarantined, an error code, or the exception's name
    seconds: float
    started: float = 0.0  # time.monotonic() when sent


@dataclass(frozen=True)
class WalletOperation:
    operation: str  # redemption / adjustment
    wallet_id: str
    points: int  # signed: what the wallet should move by when accepted
    status: int
    key: str = ""  # a redemption's idempotency key
    started: float = 0.0  # time.monotonic() when sent, and how long until answered
    seconds: float = 0.0


@dataclass
class FieldRecord:
    """What the field devices synced, for the invariants to check against the database."""

    tenant_id: str
    tenant_name: str
    member_mobile: str
    synced_op_ids: set[str] = field(default_factory=set)  # each must have its operation-log row
    # Raw event ids of sales with a customer and of the voids of such sales.
    sale_events: set[str] = field(default_factory=set)
    member_sales: dict[str, Decimal] = field(default_factory=dict)  # sale id -> total, to credit once
    unsynced: int = 0  # the devices' own count after the last sync
    mismatches: list[str] = field(default_factory=list)  # devices vs server, after the last pull
    # Sale ids voided (by the admin's device): a member sale among them is reversed once, in full.
    voided: set[str] = field(default_factory=set)


@dataclass
class RpaposRecord:
    """The RPApos catalog runs made alongside (local/chaos/rpapos.py), for the invariants."""

    tenant_id: str
    expected_products: int  # the fake's PLUs + SKUs (soft-deleted ones included): one product each
    run_id: str | None = None
    run_status: str = "not started"
    run_stats: dict[str, Any] = field(default_factory=dict)  # per_entity_stats of the first run
    run_seconds: float | None = None
    start_failures: int = 0  # runs the admin API did not start
    second_run_id: str | None = None  # a second catalog run after the first: it must write nothing
    second_status: str = "not started"
    second_stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Record:
    events: dict[str, Event] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    wallet_operations: list[WalletOperation] = field(default_factory=list)
    # Set by the run: the poison message's raw event id and the valid payment written for it.
    poison: Event | None = None
    poison_raw_id: str | None = None
    # Set by the run when a field device took part (local/chaos/field.py).
    field_sync: FieldRecord | None = None
    # Set by the run when an RPApos sync ran alongside.
    rpapos: RpaposRecord | None = None
    # Every Square payment the run made, which the poller finds whether its webhook got in or never
    # came, and the raw event ids the poller may store for them (local/chaos/square.py).
    polled: list[Event] = field(default_factory=list)
    polled_event_keys: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def operated(self, operation: WalletOperation) -> None:
        with self._lock:
            self.wallet_operations.append(operation)

    # -- reading ---------------------------------------------------------------------------
    def answered_2xx(self) -> set[str]:
        return {a.key for a in self.answers if 200 <= a.status < 300}

    def sent(self) -> set[str]:
        return {a.key for a in self.answers}

    def valid_keys_answered(self) -> set[str]:
        """Distinct valid events some delivery of which was answered 2xx."""
        ok = self.answered_2xx()
        return {key for key, event in self.events.items() if event.kind == VALID and key in ok}

    def valid_5xx(self, excused: Callable[[float, float], bool] = lambda started, ended: False) -> int:
        """Answers of 5xx (or none at all) to deliveries of valid events and to wallet operations,
        but those whose request ``excused`` (it overlapped a database restart)."""
        return sum(
            1 for started, seconds in self._valid_failures() if not excused(started, started + seconds)
        )

    def valid_5xx_excused(self, excused: Callable[[float, float], bool]) -> int:
        return sum(1 for started, seconds in self._valid_failures() if excused(started, started + seconds))

    def _valid_failures(self) -> list[tuple[float, float]]:
        events = [
            (a.started, a.seconds)
            for a in self.answers
            if a.kind == VALID and (a.status >= 500 or a.status == 0)
        ]
        wallets = [
            (op.started, op.seconds) for op in self.wallet_operations if op.status >= 500 or op.status == 0
        ]
        return events + wallets

    def outcomes(self) -> Counter[tuple[str, str]]:
        return Counter((a.kind, a.outcome) for a in self.answers)

    def latencies(self) -> list[float]:
        return sorted(a.seconds for a in self.answers if a.status)
