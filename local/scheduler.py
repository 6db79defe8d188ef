"""EventBridge schedules, emulated: each ``rate(...)`` schedule of template.yaml invokes its function.

As in the cloud, the first run comes one period after the start and the function receives the
standard ``Scheduled Event`` payload. Rates can be scaled down (tests, demos) or the timers left
off, and any schedule can be run at once with :meth:`LocalScheduler.run`.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.template import ScheduleSource

logger = logging.getLogger("local.scheduler")


def scheduled_event(
    resource_arn: str, account: str, region: str, at: datetime | None = None
) -> dict[str, Any]:
    """The event an EventBridge rule sends a Lambda target on each run."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [resource_arn],
        "detail": {},
    }


@dataclass
class ScheduleStats:
    runs: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, failed: bool) -> None:
        with self._lock:
            self.runs += 1
            self.failures += int(failed)


class LocalScheduler:
    def __init__(
        self,
        schedules: list[ScheduleSource],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        stack_name: str,
        account: str,
        region: str,
        rate_scale: float = 1.0,
        timers: bool = True,
    ) -> None:
        if rate_scale <= 0:
            raise ValueError("rate_scale must be positive")
        self.schedules = schedules
        self.stats = {(s.function, s.name): ScheduleStats() for s in schedules}
        self._invoke = invoke
        self._stack_name = stack_name
        self._account = account
        self._region = region
        self._stopping = threading.Event()
        self._timers = [
            (schedule, rate * rate_scale)
            for schedule in schedules
            if timers and schedule.enabled and (rate := schedule.rate_seconds) is not None
        ]
        self._threads = [
            threading.Thread(
                target=self._timer,
                args=(schedule, interval),
                name=f"schedule-{schedule.function}-{schedule.name}",
                daemon=True,
            )
            for schedule, interval in self._timers
        ]

    @property
    def timed(self) -> list[ScheduleSource]:
        """The schedules running on a timer."""
        return [thread_schedule for thread_schedule, _ in self._timers]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def run(self, function: str, name: str | None = None) -> Any:
        """Run a function's schedule now, synchronously; returns what the function returned."""
        schedule = self._find(function, name)
        rule = f"{self._stack_name}-{function}{schedule.name}"  # SAM names the rule after both
        arn = f"arn:aws:events:{self._region}:{self._account}:rule/{rule}"
        try:
            result = self._invoke(function, scheduled_event(arn, self._account, self._region))
        except Exception:
            self.stats[(schedule.function, schedule.name)].add(failed=True)
            raise
        self.stats[(schedule.function, schedule.name)].add(failed=False)
        return result

    def _timer(self, schedule: ScheduleSource, interval: float) -> None:
        while not self._stopping.wait(interval):
            try:
                self.run(schedule.function, schedule.name)
            except Exception:
                logger.exception("scheduled run of %s failed", schedule.function)

    def _find(self, function: str, name: str | None) -> ScheduleSource:
        found = [s for s in self.schedules if s.function == function and name in (None, s.name)]
        if len(found) != 1:
            raise KeyError(f"{function} has {len(found)} schedules named {name or '(any)'}; expected one")
        return found[0]
