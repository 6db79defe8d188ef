"""The faults the run injects, and its count of each (injected / recovered)."""

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from local.database import restart_embedded
from local.fake_clover import FakeClover, Scripted
from local.stack import LocalStack

BACKEND_TERMINATED = "db backend terminated (crediting)"
HANDLER_CRASH = "crediting handler crash (before / after)"
ENQUEUE_FAILURE = "enqueue failure after raw insert"
CLOVER_429 = "Clover 429"
CLOVER_5XX = "Clover 5xx"
POISON = "poison message (DLQ, redriven)"
FIELD_NETWORK = "field network fault"  # refused / lost answer / 503 / 502 after apply, on a device's sync
RPAPOS_OUTAGE = "RPApos outage"  # 503s to the catalog run's requests: the state machine's RetryLater path
POSTGRES_RESTART = "PostgreSQL restart"  # fast shutdown and start: every session ended mid-whatever
# Between two SQL statements of crediting, the sweeper, the Square poller or a field push.
STATEMENT_CRASH = "handler crash mid-transaction"
CLOVER_HANG = "Clover no answer (timeout)"
SQUARE_429 = "Square 429 (poller)"
SQUARE_5XX = "Square 5xx (poller)"
SQUARE_HANG = "Square no answer (poller timeout)"
RPAPOS_429 = "RPApos 429"
RPAPOS_HANG = "RPApos no answer (timeout)"
CLOVER_READ_TIMEOUT = 2.0  # the crediting function's, set for the run: a hang costs seconds, not ten
KINDS = [
    POSTGRES_RESTART,
    BACKEND_TERMINATED,
    HANDLER_CRASH,
    STATEMENT_CRASH,
    ENQUEUE_FAILURE,
    CLOVER_429,
    CLOVER_5XX,
    CLOVER_HANG,
    SQUARE_429,
    SQUARE_5XX,
    SQUARE_HANG,
    POISON,
    FIELD_NETWORK,
    RPAPOS_OUTAGE,
    RPAPOS_429,
    RPAPOS_HANG,
]

# The kinds the worker processes log (local/lambda_runtime.py), by their log name.
WORKER_FAULTS = {
    "handler_crash": HANDLER_CRASH,
    "statement_crash": STATEMENT_CRASH,
    "enqueue_failure": ENQUEUE_FAILURE,
}


@dataclass
class FaultCount:
    injected: int = 0
    recovered: int = 0


@dataclass
class Faults:
    counts: dict[str, FaultCount] = field(default_factory=lambda: {kind: FaultCount() for kind in KINDS})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def injected(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind].injected += n

    def settle(self, recovered: bool, *kinds: str) -> None:
        """Every fault of these kinds recovered, when the condition that proves it holds."""
        if recovered:
            with self._lock:
                for kind in kinds:
                    self.counts[kind].recovered = self.counts[kind].injected


class BackendKiller(threading.Thread):
    """Now and then terminates a crediting backend that is inside a statement or a transaction."""

    def __init__(self, stack: LocalStack, faults: Faults, interval: float, seed: int) -> None:
        super().__init__(name="chaos-backend-killer", daemon=True)
        self._stack, self._faults, self._interval = stack, faults, interval
        self._rng = random.Random(seed)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with self._stack.owner_connection() as conn:
                    self._kill(conn)
            except psycopg.OperationalError:  # the cluster is restarting: connect again
                self.stopping.wait(0.5)

    def _kill(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        while not self.stopping.wait(self._interval * self._rng.uniform(0.5, 1.5)):
            deadline = time.monotonic() + self._interval
            while time.monotonic() < deadline and not self.stopping.is_set():
                row = conn.execute(
                    "SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity"
                    " WHERE usename = 'pos_gateway_crediting' AND pid <> pg_backend_pid()"
                    "   AND state IN ('active', 'idle in transaction') LIMIT 1"
                ).fetchone()
                if row and row["done"]:
                    self._faults.injected(BACKEND_TERMINATED)
                    break
                time.sleep(0.01)


class PostgresRestarter(threading.Thread):
    """Restarts the (embedded) cluster once the senders have got through each of the given shares
    of the deliveries, and keeps each restart's window: from the command to the cluster accepting
    connections again. A request that overlapped a window may fairly have been answered 503."""

    SLACK = 0.5  # seconds after the restart returned in which a request may still meet it

    def __init__(
        self, stack: LocalStack, faults: Faults, shares: list[float], progress: Callable[[], float]
    ) -> None:
        super().__init__(name="chaos-postgres-restart", daemon=True)
        self._stack, self._faults, self._shares, self._progress = stack, faults, shares, progress
        self.windows: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    @property
    def possible(self) -> bool:
        return self._stack.cluster.data_dir is not None

    def run(self) -> None:
        for share in self._shares:
            while self._progress() < share:
                if self.stopping.wait(0.1):
                    return
            began = time.monotonic()
            try:
                restart_embedded(self._stack.cluster)
            except Exception as exc:  # reported by the run; the cluster may be down: stop here
                self.errors.append(f"restart failed: {exc}")
                return
            finally:
                self.windows.append((began, time.monotonic() + self.SLACK))
            self._faults.injected(POSTGRES_RESTART)

    def overlaps(self, started: float, ended: float) -> bool:
        return overlaps(self.windows, started, ended)


def overlaps(windows: list[tuple[float, float]], started: float, ended: float) -> bool:
    """Whether a request from ``started`` to ``ended`` overlapped any of the windows."""
    return any(started <= end and ended >= begin for begin, end in windows)


class CloverTrouble(threading.Thread):
    """Scripts 429 and 5xx answers (Retry-After: 1) into the fake Clover now and then."""

    def __init__(self, clover: FakeClover, interval: float, seed: int) -> None:
        super().__init__(name="chaos-clover-trouble", daemon=True)
        self._clover, self._interval = clover, interval
        self._rng = random.Random(seed)
        self.stopping = threading.Event()

    def run(self) -> None:
        # One of each first: the next Clover fetches meet them however short the run.
        self._clover.script(
            Scripted(429, {"Retry-After": "1"}), Scripted(503, {"Retry-After": "1"}), Scripted(hang=True)
        )
        while not self.stopping.wait(self._interval * self._rng.uniform(0.5, 1.5)):
            if self._rng.random() < 0.15:
                self._clover.script(Scripted(hang=True))  # no answer: the fetch times out
                continue
            status = self._rng.choice([429, 429, 500, 502, 503])
            self._clover.script(*[Scripted(status, {"Retry-After": "1"})] * self._rng.randint(1, 3))

    @staticmethod
    def count(clover: FakeClover, faults: Faults) -> None:
        requests = clover.requests
        statuses = Counter(request.status for request in requests if not request.hung)
        faults.injected(CLOVER_429, statuses[429])
        faults.injected(CLOVER_5XX, sum(n for status, n in statuses.items() if status >= 500))
        faults.injected(CLOVER_HANG, sum(1 for request in requests if request.hung))


def worker_faults(log: Path) -> list[dict[str, Any]]:
    """What the worker processes injected (local/lambda_runtime.py's dev-only hooks)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def raw_ids_of(entry: dict[str, Any]) -> list[str]:
    bodies = entry.get("bodies") or [entry.get("body")]
    ids = []
    for body in bodies:
        try:
            ids.append(str(json.loads(body)["rawEventId"]))
        except (TypeError, ValueError, KeyError):
            continue
    return ids
