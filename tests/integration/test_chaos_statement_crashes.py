"""The chaos run's crash between two database statements (local/lambda_runtime.py), for real.

The hook is installed in-process as a worker installs it at environment start; the fixture puts
psycopg's methods back afterwards. Handlers run through the runtime's own ``_invoke``.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from local import lambda_runtime
from local.database import Database
from local.lambda_runtime import LambdaContext
from pos_gateway.db import tenant_transaction

FUNCTION = "credit_worker"
EVENT: dict[str, Any] = {"Records": [{"body": "raw-event-1"}, {"body": "raw-event-2"}]}

Handler = Callable[[dict[str, Any], LambdaContext], Any]


class ScriptedRandom:
    """The chaos dice: the given rolls in order, then 0.0 (always below the rate) for ever."""

    def __init__(self, *rolls: float) -> None:
        self.rolls = list(rolls)

    def random(self) -> float:
        return self.rolls.pop(0) if self.rolls else 0.0


@pytest.fixture(scope="module")
def conn(database: Database) -> Iterator[psycopg.Connection[Any]]:
    with database.owner() as connection:
        connection.execute("CREATE TABLE public.chaos_probe (n int NOT NULL)")
        yield connection


@pytest.fixture(autouse=True)
def _empty_probe(conn: psycopg.Connection[Any]) -> None:
    conn.execute("TRUNCATE public.chaos_probe")


@pytest.fixture
def fault_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "faults.jsonl"
    monkeypatch.setenv(lambda_runtime.CHAOS_LOG, str(path))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    return path


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, fault_log: Path) -> Callable[[str, str], None]:
    """Install the hook with a rate and function list; psycopg is restored after the test."""
    for method in ("execute", "executemany"):
        monkeypatch.setattr(psycopg.Cursor, method, getattr(psycopg.Cursor, method))

    def installed(rate: str, functions: str) -> None:
        monkeypatch.setenv(lambda_runtime.CHAOS_STATEMENT_CRASH_RATE, rate)
        monkeypatch.setenv(lambda_runtime.CHAOS_STATEMENT_CRASH_FUNCTIONS, functions)
        lambda_runtime._install_chaos_statement_crashes()

    return installed


def invoke(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> tuple[bool, Any]:
    monkeypatch.setattr(lambda_runtime, "_handler", handler)
    return lambda_runtime._invoke(EVENT, FUNCTION, 30)


def crashed(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> None:
    """The invocation failed with the injected crash (as the runtime reports it to its caller)."""
    succeeded, error = invoke(monkeypatch, handler)
    assert not succeeded
    assert error["errorType"] == "ChaosCrash"


def faults(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def probe(conn: psycopg.Connection[Any]) -> list[int]:
    return [row["n"] for row in conn.execute("SELECT n FROM public.chaos_probe ORDER BY n")]


def test_a_crash_after_an_insert_fails_the_invocation_and_rolls_the_insert_back(
    install: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    conn: psycopg.Connection[Any],
    fault_log: Path,
) -> None:
    install("0.5", f"other_function, {FUNCTION}")
    monkeypatch.setattr(lambda_runtime, "_chaos_random", ScriptedRandom(0.9))  # the INSERT passes
    inserted: list[int] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> str:
        with conn.transaction():
            inserted.append(conn.execute("INSERT INTO public.chaos_probe VALUES (1)").rowcount)
            conn.execute(
                """
                SELECT count(*)
                  FROM public.chaos_probe
                """
            )
        return "done"

    crashed(monkeypatch, handler)

    assert not isinstance(lambda_runtime.ChaosCrash("x"), psycopg.Error)
    assert inserted == [1]  # the INSERT reached the database ...
    assert probe(conn) == []  # ... and was rolled back with the crashed transaction
    assert faults(fault_log) == [
        {
            "kind": "statement_crash",
            "pid": faults(fault_log)[0]["pid"],
            "function": FUNCTION,
            "statement": "SELECT count(*) FROM public.chaos_probe",
            "bodies": ["raw-event-1", "raw-event-2"],
        }
    ]


def test_in_a_pipelined_transaction_the_crash_leaves_the_connection_clean(
    install: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    conn: psycopg.Connection[Any],
    fault_log: Path,
) -> None:
    # BEGIN and the INSERT pass, the next statement crashes; every later roll would crash too, so
    # the cleanup ROLLBACKs survive only because nothing crashes while an exception unwinds.
    install("0.5", FUNCTION)
    monkeypatch.setattr(lambda_runtime, "_chaos_random", ScriptedRandom(0.9, 0.9))

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        with tenant_transaction(conn, None, pipeline=True):
            conn.execute("INSERT INTO public.chaos_probe VALUES (2)")
            conn.execute("SELECT n FROM public.chaos_probe").fetchall()

    crashed(monkeypatch, handler)

    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    assert probe(conn) == []
    assert [fault["statement"] for fault in faults(fault_log)] == ["SELECT n FROM public.chaos_probe"]


def test_executemany_crashes_before_any_row_is_sent(
    install: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    conn: psycopg.Connection[Any],
    fault_log: Path,
) -> None:
    install("1.0", FUNCTION)
    query = sql.SQL("INSERT INTO {} VALUES (%s)").format(sql.Identifier("public", "chaos_probe"))

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(query, [(3,), (4,)])

    crashed(monkeypatch, handler)

    assert probe(conn) == []
    assert [fault["statement"] for fault in faults(fault_log)] == [
        'INSERT INTO "public"."chaos_probe" VALUES (%s)'
    ]


@pytest.mark.parametrize(("rate", "functions"), [("1.0", "other_function"), ("0", FUNCTION), ("", FUNCTION)])
def test_statements_run_when_the_function_is_not_named_or_the_rate_is_zero(
    install: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    conn: psycopg.Connection[Any],
    fault_log: Path,
    rate: str,
    functions: str,
) -> None:
    original = psycopg.Cursor.execute
    install(rate, functions)

    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        with conn.transaction(), conn.cursor() as cursor:
            conn.execute("INSERT INTO public.chaos_probe VALUES (5)")
            cursor.executemany("INSERT INTO public.chaos_probe VALUES (%s)", [(6,), (7,)])

    assert invoke(monkeypatch, handler) == (True, None)
    assert psycopg.Cursor.execute is original
    assert probe(conn) == [5, 6, 7]
    assert faults(fault_log) == []


def test_no_crash_outside_an_invocation(
    install: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
    conn: psycopg.Connection[Any],
    fault_log: Path,
) -> None:
    install("1.0", FUNCTION)

    conn.execute("INSERT INTO public.chaos_probe VALUES (8)")  # as at import, before any event
    crashed = invoke(monkeypatch, lambda event, context: conn.execute("SELECT 1"))
    conn.execute("INSERT INTO public.chaos_probe VALUES (9)")  # after the crashed invocation

    assert crashed[0] is False  # installed: inside an invocation every statement crashes
    assert lambda_runtime._invocation_event is None
    assert probe(conn) == [8, 9]
    assert [fault["statement"] for fault in faults(fault_log)] == ["SELECT 1"]
