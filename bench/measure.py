"""How the bench measures: both sides in alternating stretches, and the rows of the table."""

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Both sides run in alternating stretches of this many events (a multiple of SQS_BATCH_SIZE, 10).
# moto's send_message counts the queue's messages (O(n)), so the queue is purged, untimed,
# before each stretch: the fake queue's cost stays flat and equal for both sides.
STRETCH_EVENTS = 50
# Per side and phase, untimed: first connection, first queries, lazy imports (a multiple of 10).
WARMUP_EVENTS = 20


class BenchError(RuntimeError):
    """The system under test did something other than the happy path being measured."""


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    project: float
    baseline: float | None = None
    precision: int = 0


@dataclass(frozen=True, slots=True)
class Side[T]:
    """One side of a comparison: ``work`` applied to each item of ``events_per_item`` events.

    The first WARMUP_EVENTS events are untimed; the rest are timed in stretches of STRETCH_EVENTS.
    """

    work: Callable[[T], object]
    items: Sequence[T]
    events_per_item: int = 1

    def warmup(self) -> Sequence[T]:
        return self.items[: WARMUP_EVENTS // self.events_per_item]

    def stretches(self) -> list[Sequence[T]]:
        measured = self.items[WARMUP_EVENTS // self.events_per_item :]
        chunk = STRETCH_EVENTS // self.events_per_item
        return [measured[start : start + chunk] for start in range(0, len(measured), chunk)]


def race[P, B](
    project: Side[P], baseline: Side[B], between: Callable[[], object] | None = None
) -> tuple[float, float]:
    """Timed seconds of each side, run in alternating stretches (ABBA) after both warmups.

    Alternating keeps drift (table growth, disk cache, a noisy neighbour) off the ratio.
    ``between`` runs untimed before every stretch.
    """
    _stretch(project.work, project.warmup())()
    _stretch(baseline.work, baseline.warmup())()
    elapsed = [0.0, 0.0]
    pairs = zip(project.stretches(), baseline.stretches(), strict=True)
    for index, (project_items, baseline_items) in enumerate(pairs):
        runs = [(0, _stretch(project.work, project_items)), (1, _stretch(baseline.work, baseline_items))]
        for side, run in runs if index % 2 == 0 else runs[::-1]:
            if between is not None:
                between()
            began = time.perf_counter()
            run()
            elapsed[side] += time.perf_counter() - began
    return elapsed[0], elapsed[1]


def _stretch[T](work: Callable[[T], object], items: Sequence[T]) -> Callable[[], None]:
    def run() -> None:
        for item in items:
            work(item)

    return run


def throughput_rows(phase: str, what: str, count: int, project_s: float, baseline_s: float) -> list[Row]:
    return [
        Row(f"{phase} throughput, {what}", count / project_s, count / baseline_s),
        Row(f"{phase} time per event (ms)", 1000 * project_s / count, 1000 * baseline_s / count, precision=2),
    ]


def peak_rss_row(phase: str) -> Row:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return Row(f"bench process peak RSS after {phase} (MiB)", kib / 1024, precision=1)
