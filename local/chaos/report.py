"""The one table the run prints: figures, and which of them must be zero."""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    must_be_zero: bool = False
    failed: bool = False


def render(rows: Sequence[Row]) -> str:
    table = [("figure", "value", "must be 0")]
    for row in rows:
        check = ("FAIL" if row.failed else "ok") if row.must_be_zero else ""
        table.append((row.figure, row.value, check))
    widths = [max(len(line[column]) for line in table) for column in range(3)]
    lines = []
    for index, line in enumerate(table):
        lines.append(
            " | ".join([line[0].ljust(widths[0]), line[1].rjust(widths[1]), line[2].ljust(widths[2])])
        )
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
