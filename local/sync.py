"""`make sync`: start an RPApos sync run on the running local stack and watch it to its end.

The run is started through the admin API with the demo admin's token from the stack file (POST
/admin/tenants/{tenant}/rpapos/connections/{id}/sync-runs: the path an operator takes, so it is
audited); the stack's Step Functions (moto executing the real ASL) run it, page by page. The run
is polled about once a second and each entity type's progress is printed as it changes; a table
sums it up at the end. Exit status: 0 completed, 1 failed or cancelled, 2 the run could not be
started or watched, 130 Ctrl-C.

Ctrl-C stops watching, nothing more: the run goes on (watch it again with ``--run-id``; pause or
cancel it with the admin API's POST …/sync-runs/{run_id}/pause or …/cancel).
"""

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests

from pos_gateway.rpapos.contract import EntityType

STACK_FILE = Path(__file__).resolve().parent.parent / ".local" / "stack.json"
MODES = ("catalog", "incremental", "historical", "custom")
ENDED = frozenset({"completed", "failed", "cancelled"})
ACTIVE = frozenset({"running", "paused"})
COUNTS = ("extracted", "loaded", "skipped", "failed")
ENTITY_WIDTH = max(len(entity.value) for entity in EntityType)
REQUEST_TIMEOUT = 30.0
# A poll may meet a busy gateway; the watch gives up after this many failures in a row.
MAX_POLL_FAILURES = 5

EXIT_COMPLETED, EXIT_ENDED_BADLY, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

Stats = Mapping[str, Any]
Clock = Callable[[], float]


class SyncError(Exception):
    """The run could not be started or watched; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where the run goes: the stack's admin API and the demo RPApos connection."""

    api_url: str
    token: str
    tenant_id: str
    tenant_name: str
    connection_id: str
    subdomain: str

    @property
    def connection_url(self) -> str:
        return f"{self.api_url}/admin/tenants/{self.tenant_id}/rpapos/connections/{self.connection_id}"

    def run_url(self, run_id: str) -> str:
        return f"{self.api_url}/admin/tenants/{self.tenant_id}/rpapos/sync-runs/{run_id}"


def main(argv: Sequence[str] | None = None, *, clock: Clock = time.monotonic) -> int:
    args = _arguments(argv)
    session = requests.Session()
    run_id = args.run_id or "<run id>"
    try:
        target = load_target(args.stack_file)
        session.headers["Authorization"] = f"Bearer {target.token}"
        if args.run_id:
            run = _get_run(session, target, args.run_id)
            print(f"Watching {run['mode']} run {run['id']} of {target.tenant_name} ({target.subdomain})")
        else:
            run = start_run(session, target, _request_body(args))
            print(f"Started a {run['mode']} run of {target.tenant_name} ({target.subdomain}): {run['id']}")
        run_id = str(run["id"])
        entity_types = list(run["entity_types"])
        print(f"  plan: {len(entity_types)} entity types: {', '.join(entity_types)}", flush=True)
        run = watch(session, target, run, interval=args.interval, timeout=args.timeout, clock=clock)
    except SyncError as exc:
        print(f"make sync: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            f"\nStopped watching (Ctrl-C); run {run_id} goes on. Watch it again with"
            f' `make sync ARGS="--run-id {run_id}"`, or pause / cancel it with the admin API'
            f" (POST …/rpapos/sync-runs/{run_id}/pause or /cancel).",
            flush=True,
        )
        return EXIT_INTERRUPTED
    finally:
        session.close()
    print_summary(run)
    return EXIT_COMPLETED if run["status"] == "completed" else EXIT_ENDED_BADLY


# ---------------------------------------------------------------- the stack


def load_target(stack_file: Path) -> Target:
    try:
        described = json.loads(stack_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SyncError(f"no stack file at {stack_file}: start the local stack with `make run`") from None
    except ValueError as exc:
        raise SyncError(f"{stack_file} is not a stack description ({exc})") from None
    rpapos = described.get("rpapos")
    if not rpapos:
        raise SyncError(
            f'{stack_file} names no RPApos connection: wait for `make run` to print "Serving on"'
            " (or it was started with --no-rpapos)"
        )
    token = described.get("admin_token")
    if not token:
        raise SyncError(f"{stack_file} has no admin token (the stack runs without demo data)")
    return Target(
        api_url=str(described["api_url"]).rstrip("/"),
        token=str(token),
        tenant_id=str(rpapos["tenant_id"]),
        tenant_name=str(rpapos.get("tenant_name") or rpapos["tenant_id"]),
        connection_id=str(rpapos["connection_id"]),
        subdomain=str(rpapos["subdomain"]),
    )


def start_run(session: requests.Session, target: Target, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST …/sync-runs; a run already active is named, with how to watch it."""
    answer = _call(session, "POST", f"{target.connection_url}/sync-runs", json=body)
    if answer.status_code == 202:
        return _body(answer)
    code, message, fields = _error(answer)
    if code in ("sync_run_active", "sync_run_already_active"):
        active = _active_run(session, target)
        hint = f'; watch it with `make sync ARGS="--run-id {active}"`' if active else ""
        raise SyncError(f"{message} (409 {code}){hint}")
    details = "".join(f"\n  {field.get('loc')}: {field.get('msg')}" for field in fields)
    raise SyncError(f"the admin API refused the run: {answer.status_code} {code}: {message}{details}")


def _active_run(session: requests.Session, target: Target) -> str | None:
    answer = _call(session, "GET", f"{target.connection_url}/sync-runs", params={"limit": 5})
    if answer.status_code != 200:
        return None
    items: list[dict[str, Any]] = _body(answer).get("items", [])
    return next((str(item["id"]) for item in items if item.get("status") in ACTIVE), None)


def _get_run(session: requests.Session, target: Target, run_id: str) -> dict[str, Any]:
    answer = _call(session, "GET", target.run_url(run_id))
    if answer.status_code != 200:
        code, message, _ = _error(answer)
        raise SyncError(f"cannot read run {run_id}: {answer.status_code} {code}: {message}")
    return _body(answer)


def _call(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        return session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
    except requests.ConnectionError:
        api = url.split("/admin/", 1)[0]
        raise SyncError(f"cannot reach the local stack at {api}: is `make run` running?") from None
    except requests.Timeout:
        raise SyncError(
            f"the local stack did not answer {method} {url} within {REQUEST_TIMEOUT:.0f} s"
        ) from None


def _body(answer: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    return body


def _error(answer: requests.Response) -> tuple[str, str, list[dict[str, Any]]]:
    try:
        error = answer.json().get("error") or {}
    except ValueError:
        return "error", answer.text[:200], []
    return str(error.get("code", "error")), str(error.get("message", "")), list(error.get("fields") or [])


# ---------------------------------------------------------------- watching


def watch(
    session: requests.Session,
    target: Target,
    run: dict[str, Any],
    *,
    interval: float = 1.0,
    timeout: float | None = None,
    clock: Clock = time.monotonic,
) -> dict[str, Any]:
    """Poll the run until it ends, printing each entity type's stats when they change."""
    started = clock()
    shown: dict[str, dict[str, Any]] = {
        key: dict(value) for key, value in run.get("per_entity_stats", {}).items()
    }
    state = _run_state(run)
    failures = 0
    while run["status"] not in ENDED:
        if timeout is not None and clock() - started > timeout:
            raise SyncError(f"run {run['id']} had not ended after {timeout:.0f} s (it goes on)")
        time.sleep(interval)
        try:
            run = _get_run(session, target, str(run["id"]))
            failures = 0
        except SyncError:
            failures += 1
            if failures >= MAX_POLL_FAILURES:
                raise
            continue
        elapsed = clock() - started
        for key in _ordered_keys(run):
            stats = dict(run["per_entity_stats"].get(key) or {})
            if stats != shown.get(key):
                print(_progress_line(elapsed, key, stats), flush=True)
                shown[key] = stats
        if _run_state(run) != state:
            state = _run_state(run)
            print(f"  {_clock(elapsed)}  run {_describe_state(run)}", flush=True)
    return run


def _run_state(run: Mapping[str, Any]) -> tuple[str, bool, bool]:
    return str(run["status"]), bool(run.get("paused")), bool(run.get("cancel_requested"))


def _describe_state(run: Mapping[str, Any]) -> str:
    status = str(run["status"])
    if status == "running" and run.get("cancel_requested"):
        return "running, cancel requested"
    if status == "running" and run.get("paused"):
        return "running, pause requested"
    if status == "paused":
        return "paused (resume it with POST …/resume; Ctrl-C here stops watching only)"
    return status


def _ordered_keys(run: Mapping[str, Any]) -> list[str]:
    """The plan's entity types in its order, then any other stats key (e.g. product_images)."""
    planned = [str(entity) for entity in run.get("entity_types", [])]
    return planned + sorted(key for key in run.get("per_entity_stats", {}) if key not in planned)


def _clock(elapsed: float) -> str:
    return f"{elapsed:6.1f}s"


def _progress_line(elapsed: float, entity: str, stats: Stats) -> str:
    counts = "  ".join(f"{name} {int(stats.get(name, 0)):>6}" for name in COUNTS)
    archived = int(stats.get("archived_only", 0))
    extra = f"  archived_only {archived:>6}" if archived else ""
    status = str(stats.get("status", "pending"))
    return f"  {_clock(elapsed)}  {entity:<{ENTITY_WIDTH}}  {status:<13}  {counts}{extra}"


# ---------------------------------------------------------------- the end


def print_summary(run: Mapping[str, Any]) -> None:
    stats: Mapping[str, Stats] = run.get("per_entity_stats", {})
    rows = [(key, stats.get(key) or {}) for key in _ordered_keys(run)]
    archived = any(entity.get("archived_only") for _, entity in rows)
    columns = [*COUNTS, "archived_only"] if archived else list(COUNTS)
    widths = {column: max(len(column), 9) for column in columns}

    def line(name: str, status: str, values: Mapping[str, object]) -> str:
        cells = "".join(f"  {values[column]!s:>{widths[column]}}" for column in columns)
        return f"  {name:<{ENTITY_WIDTH}}  {status:<13}{cells}"

    header = line("entity", "status", {column: column for column in columns})
    rule = "  " + "-" * (len(header) - 2)
    print(f"\nSummary of {run['mode']} run {run['id']}")
    print(header)
    print(rule)
    totals = dict.fromkeys(columns, 0)
    for key, entity in rows:
        values = {column: int(entity.get(column, 0)) for column in columns}
        for column, value in values.items():
            totals[column] += value
        print(line(key, str(entity.get("status", "pending")), values))
    print(rule)
    print(line("total", "", totals))
    print(f"\nRun {run['status']}{_duration(run)}.")
    if run["status"] == "completed" and totals["extracted"] and totals["extracted"] == totals["skipped"]:
        print(f"Nothing changed: all {totals['extracted']} records were skipped (already loaded, unchanged).")
    if run.get("last_error"):
        print(f"Last error: {run['last_error']}")


def _duration(run: Mapping[str, Any]) -> str:
    try:
        began = datetime.fromisoformat(str(run["started_at"]))
        ended = datetime.fromisoformat(str(run["completed_at"]))
    except (KeyError, TypeError, ValueError):
        return ""
    return f" in {(ended - began).total_seconds():.1f} s"


# ---------------------------------------------------------------- arguments


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The SyncRequest; the admin API validates it (and answers 422 with the reason)."""
    body: dict[str, Any] = {"mode": args.mode}
    if args.entity_types:
        body["entity_types"] = args.entity_types
    if args.date_from is not None:
        body["date_from"] = args.date_from.isoformat()
    if args.date_to is not None:
        body["date_to"] = args.date_to.isoformat()
    if args.include_images:
        body["include_images"] = True
    return body


def _entity_types(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    known = {entity.value for entity in EntityType}
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown entity type {', '.join(unknown)} (one of: {', '.join(sorted(known))})"
        )
    return chosen


def _moment(text: str) -> datetime:
    """An ISO date or date-time; without an offset it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
    if len(text) == len("2025-07-01"):  # a bare date: its midnight
        parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='From make: make sync ARGS="--mode historical --date-from 2025-07-01 --date-to 2026-05-01"',
    )
    parser.add_argument("--mode", choices=MODES, default="catalog", help="default: catalog")
    parser.add_argument(
        "--entity-types",
        nargs="+",
        type=_entity_types,
        metavar="TYPE",
        help="mode custom: the entity types (space or comma separated), e.g. plu_grupo,plu",
    )
    parser.add_argument("--date-from", type=_moment, help="historical window start (ISO; no offset: UTC)")
    parser.add_argument("--date-to", type=_moment, help="historical window end (ISO; no offset: UTC)")
    parser.add_argument(
        "--include-images", action="store_true", help="also import the PLUs' images (not historical)"
    )
    parser.add_argument("--run-id", help="watch this run instead of starting one")
    parser.add_argument("--stack-file", type=Path, default=STACK_FILE, help=f"default: {STACK_FILE}")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    parser.add_argument("--timeout", type=float, default=None, help="stop watching after this many seconds")
    args = parser.parse_args(argv)
    if args.entity_types:
        args.entity_types = [name for group in args.entity_types for name in group]
    starting = (args.entity_types, args.date_from, args.date_to, args.include_images, args.mode != "catalog")
    if args.run_id and any(starting):
        parser.error("--run-id watches an existing run: it takes no --mode, --entity-types, dates or images")
    return args


if __name__ == "__main__":
    sys.exit(main())
