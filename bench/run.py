"""POS Gateway benchmarks: every figure beside a bare baseline measured in the same run.

1. Ingest: ``SquareWebhookIngest.receive`` with a real RawEventStore and an in-process SQS
   queue (moto), against the bare INSERT of the same raw row + the same ``send_message``.
2. Crediting: the real ``reward_crediting`` Lambda handler fed SQS batches of 10, against
   the same rows written with plain SQL, one transaction per event, as the same role.
3. Mixed crediting: payments and refunds through that handler, redemptions through the real
   ``wallet_api`` handler, against the same rows in plain SQL, one transaction per operation.
4. Cold import of each handler module against ``import boto3``, each in a fresh interpreter.
5. RPApos catalog sync: 100,000 PLUs (BENCH_RPAPOS_PLUS or --rpapos-plus) through the engine's
   ``advance``, page after page, against the same pages fetched bare and written with COPY.
6. Field push: batches of 500 offline field-sales operations (customers, sales, abonos) through
   ``PushService.push``, against the same rows in plain SQL, one transaction per batch.

Uses DATABASE_URL when set (a fresh database, dropped afterwards), else an embedded
PostgreSQL (pgserver) in a temporary directory. AWS is always moto, in-process.

    PYTHONPATH=layers/common:. .venv/bin/python -m bench.run [--quick] [--events N] [--only field] ...

This module is the CLI and the report; the phases live in bench.ingest, bench.crediting,
bench.mixed, bench.imports, bench.rpapos_sync and bench.field_push, the workloads in bench.fixture and
bench.mixed_plan, the timing in bench.measure.
"""

import argparse
import contextlib
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from moto import mock_aws

from bench.crediting import SQS_BATCH_SIZE, bench_crediting
from bench.database import bench_database
from bench.environment import configure_environment
from bench.field_push import DEFAULT_BATCHES, QUICK_BATCHES, bench_field_push
from bench.fixture import Fixture, seed_fixture
from bench.imports import bench_imports
from bench.ingest import bench_ingest
from bench.measure import Row, peak_rss_row
from bench.mixed import bench_mixed
from bench.rpapos_sync import DEFAULT_PLUS, MIN_PLUS, PLUS_ENV, QUICK_PLUS, bench_rpapos_sync, plus_from_env

NOTES = """\
ratio = project / baseline. Baselines: ingest = bare INSERT of the same raw row (same role,
one transaction, tenant set) + the same send_message, no signature check or parsing;
crediting = the same rows (transaction, wallet on first use, reward event, ledger credit,
idempotency key, processed marker) in plain SQL, one transaction per event, same role;
mixed = the same for payments, plus refunds (refund row, reversal event, ledger debit, key,
marker; a repeated refund only its marker) and redemptions (redeem event, debit, completed key,
as the wallet API's role), numbers from the plan, wallets opened beforehand on both sides;
import = `import boto3` in a fresh interpreter (median of {runs}; handlers imported with no
AWS or database reachable, and without moto); field push = json.loads of the same body, then the
same rows in plain SQL (pipelined executemany), one transaction per 500-operation batch, same role,
tenant set: no validation, reads, savepoints, advisory lock or idempotency lookups."""
PHASES = ("ingest", "crediting", "mixed", "rpapos", "field", "imports")


@dataclass(frozen=True, slots=True)
class Options:
    events: int
    credit_events: int
    mixed_ops: int
    import_runs: int
    members: int
    random_seed: int
    rpapos_plus: int
    field_batches: int
    phases: frozenset[str]


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="POS Gateway benchmarks, each beside a same-run baseline."
    )
    parser.add_argument("--events", type=int, help="ingest events per side (default 2000)")
    parser.add_argument("--credit-events", type=int, help="crediting events per side (default 1000)")
    parser.add_argument("--mixed-ops", type=int, help="mixed crediting operations per side (default 1000)")
    parser.add_argument("--import-runs", type=int, help="fresh interpreters per import (default 5)")
    parser.add_argument("--members", type=int, default=50, help="loyalty members paying (default 50)")
    parser.add_argument("--seed", type=int, default=20240601, help="random seed of the workload")
    parser.add_argument(
        "--rpapos-plus", type=int, help=f"PLUs of the RPApos sync ({PLUS_ENV}; default {DEFAULT_PLUS:,})"
    )
    parser.add_argument(
        "--field-batches",
        type=int,
        help=f"timed field push batches of 500 per side (default {DEFAULT_BATCHES}, quick {QUICK_BATCHES})",
    )
    parser.add_argument(
        "--only", action="append", choices=PHASES, help="run this phase only (repeatable; default all)"
    )
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args(argv)
    small = args.quick
    options = Options(
        events=_pick(args.events, 100 if small else 2000),
        credit_events=_pick(args.credit_events, 50 if small else 1000),
        mixed_ops=_pick(args.mixed_ops, 60 if small else 1000),
        import_runs=_pick(args.import_runs, 1 if small else 5),
        members=args.members,
        random_seed=args.seed,
        rpapos_plus=_pick(args.rpapos_plus, _rpapos_plus(parser, QUICK_PLUS if small else DEFAULT_PLUS)),
        field_batches=_pick(args.field_batches, QUICK_BATCHES if small else DEFAULT_BATCHES),
        phases=frozenset(args.only or PHASES),
    )
    counts = (
        options.events,
        options.credit_events,
        options.mixed_ops,
        options.import_runs,
        options.members,
        options.field_batches,
    )
    if min(counts) < 1:
        parser.error("counts must be positive")
    if options.rpapos_plus < MIN_PLUS:
        parser.error(f"the RPApos sync needs at least {MIN_PLUS} PLUs")
    return options


def _pick(explicit: int | None, default: int) -> int:
    return default if explicit is None else explicit


def _rpapos_plus(parser: argparse.ArgumentParser, default: int) -> int:
    try:
        return plus_from_env() or default
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    configure_environment()
    started = time.perf_counter()
    report = _run_phases(options)
    print(render([*report.rows, *report.memory]))
    print()
    print(NOTES.format(runs=options.import_runs))
    for note in report.notes:
        print(note)
    print(f"\ntotal bench time {time.perf_counter() - started:.1f} s")
    return 0


@dataclass(slots=True)
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory: list[Row] = field(default_factory=list)

    def add(self, phase: str, rows: Sequence[Row], *notes: str) -> None:
        self.rows += rows
        self.notes += notes
        self.memory.append(peak_rss_row(phase))


def _run_phases(options: Options) -> Report:
    """The phases --only names (all by default), in the order of the table."""
    wanted = options.phases
    rng = random.Random(options.random_seed)
    report = Report()
    with contextlib.ExitStack() as stack:
        _progress("starting the database and migrating")
        db = stack.enter_context(bench_database())
        fixture = seed_fixture(db, options.members)
        report.memory.append(peak_rss_row("setup"))
        sink = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
        if wanted & {"ingest", "crediting", "mixed"}:
            with mock_aws():
                _aws_phases(options, fixture, rng, sink, report)
        # Outside moto: its mock also intercepts requests, which both sides of this phase use.
        if "rpapos" in wanted:
            _progress(f"rpapos sync: {options.rpapos_plus:,} PLUs per side")
            rpapos, rpapos_note = bench_rpapos_sync(fixture.db, options.rpapos_plus, sink)
            report.add("rpapos sync", rpapos, rpapos_note)
        if "field" in wanted:
            _progress(f"field push: {options.field_batches} timed batches of 500 operations per side")
            # Its own generator: the same plan whether it runs alone or after the other phases.
            field_rows, field_note = bench_field_push(
                db, options.field_batches, random.Random(options.random_seed), sink
            )
            report.add("field push", field_rows, field_note)
    if "imports" in wanted:
        _progress(f"cold imports: {options.import_runs} fresh interpreters each")
        report.rows += bench_imports(options.import_runs)
    _progress("done")
    return report


def _aws_phases(
    options: Options, fixture: Fixture, rng: random.Random, sink: IO[str], report: Report
) -> None:
    if "ingest" in options.phases:
        _progress(f"ingest: {options.events} events per side")
        ingest, moto_note = bench_ingest(fixture, options.events, rng)
        report.add("ingest", ingest, moto_note)
    if "crediting" in options.phases:
        _progress(f"crediting: {options.credit_events} events per side, batches of {SQS_BATCH_SIZE}")
        report.add("crediting", bench_crediting(fixture, options.credit_events, rng, sink))
    if "mixed" in options.phases:
        _progress(f"mixed crediting: {options.mixed_ops} operations per side")
        mixed, mixed_note = bench_mixed(fixture, options.mixed_ops, rng, sink)
        report.add("mixed crediting", mixed, mixed_note)


def render(rows: Sequence[Row]) -> str:
    def number(value: float | None, precision: int) -> str:
        return "-" if value is None else f"{value:,.{precision}f}"

    table = [("metric", "project", "baseline", "ratio")]
    for row in rows:
        ratio = "-" if not row.baseline else f"{row.project / row.baseline:.2f}x"
        table.append(
            (row.metric, number(row.project, row.precision), number(row.baseline, row.precision), ratio)
        )
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    lines = []
    for index, line in enumerate(table):
        cells = [
            line[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)),
        ]
        lines.append(" | ".join(cells))
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    return "\n".join(lines)


_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[bench {time.perf_counter() - _STARTED:5.1f} s] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
