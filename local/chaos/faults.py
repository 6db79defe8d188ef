"""The faults the run injects, and its count of each (injected / recovered)."""

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.fake_clover import FakeClover, Scripted
from local.stack import LocalStack

BACKEND_TERMINATED = "db backend terminated (crediting)"
HANDLER_CRASH = "crediting handler crash"
ENQUEUE_FAILURE = "enqueue failure after raw insert"
CLOVER_429 = "Clover 429"
CLOVER_5XX = "Clover 5xx"
POISON = "poison message (DLQ, redriven)"
FIELD_NETWORK = "field network fault"  # refused / lost answer / 503 / 502 after apply, on a device's sync
RPAPOS_OUTAGE = "RPApos outage"  # 503s to the catalog run's requests: the state machine's RetryLater path
KINDS = [
    BACKEND_TERMINATED,
    HANDLER_CRASH,
    ENQUEUE_FAILURE,
    CLOVER_429,
    CLOVER_5XX,
    POISON,
    FIELD_NETWORK,
    RPAPOS_OUTAGE,
]


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


class BackendKiller(threading.Thread):
    """Now and then terminates a crediting backend that is inside a statement or a transaction."""

    def __init__(self, stack: LocalStack, faults: Faults, interval: float, seed: int) -> None:
        super().__init__(name="chaos-backend-killer", daemon=True)
        self._stack, self._faults, self._interval = stack, faults, interval
        self._rng = random.Random(seed)
        self.stopping = threading.Event()

    def run(self) -> None:
        with self._stack.owner_connection() as conn:
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


class CloverTrouble(threading.Thread):
    """Scripts 429 and 5xx answers (Retry-After: 1) into the fake Clover now and then."""

    def __init__(self, clover: FakeClover, interval: float, seed: int) -> None:
        super().__init__(name="chaos-clover-trouble", daemon=True)
        self._clover, self._interval = clover, interval
        self._rng = random.Random(seed)
        self.stopping = threading.Event()

    def run(self) -> None:
        # One of each first: the next Clover fetches meet them however short the run.
        self._clover.script(Scripted(429, {"Retry-After": "1"}), Scripted(503, {"Retry-After": "1"}))
        while not self.stopping.wait(self._interval * self._rng.uniform(0.5, 1.5)):
            status = self._rng.choice([429, 429, 500, 502, 503])
            self._clover.script(*[Scripted(status, {"Retry-After": "1"})] * self._rng.randint(1, 3))

    @staticmethod
    def count(clover: FakeClover, faults: Faults) -> None:
        statuses = Counter(request.status for request in clover.requests)
        faults.injected(CLOVER_429, statuses[429])
        faults.injected(CLOVER_5XX, sum(n for status, n in statuses.items() if status >= 500))


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
