"""Lambda execution environments, emulated by worker processes: one pool per function.

Each worker gets the function's own environment (as in the cloud, two functions never share
one), imports ``Handler`` from ``CodeUri`` exactly as the Lambda runtime does, stays warm
between invocations, and writes its logs to ``<log_dir>/<function>.log``.
"""

import functools
import importlib
import json
import multiprocessing
import os
import random
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from local.template import FunctionSpec


class InvocationError(Exception):
    """The handler raised, timed out, or its environment could not start.

    ``error_type`` and ``error_message`` are what Lambda reports for a failed invocation
    (``errorType`` is the exception's class name; ``Sandbox.Timedout`` for a timeout), so callers
    that emulate an integration (Step Functions' Retry and Catch) can match on them.
    """

    def __init__(self, message: str, *, error_type: str = "Runtime.Unknown", error_message: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.error_message = error_message or message


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, memory_limit_in_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_handler: Callable[[dict[str, Any], LambdaContext], Any] | None = None


def _start_environment(code_uri: str, handler: str, environment: dict[str, str], log_path: str) -> None:
    os.environ.update(environment)
    log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.path.insert(0, code_uri)
    _install_chaos_enqueue_failures()
    _install_chaos_statement_crashes()
    module_name, function_name = handler.rsplit(".", 1)
    global _handler
    _handler = getattr(importlib.import_module(module_name), function_name)


def _invoke(event: dict[str, Any], function_name: str, timeout: int) -> tuple[bool, Any]:
    if _handler is None:
        return False, _error("Runtime.HandlerNotFound", "handler not initialized", "handler not initialized")
    global _invocation_event
    _invocation_event = event
    try:
        _chaos_crash("before", function_name, event)
        result = _handler(event, LambdaContext(function_name, 512, timeout))
        _chaos_crash("after", function_name, event)
        return True, result
    except Exception as exc:
        # Exceptions do not always pickle; their name, message and traceback text always do.
        traceback.print_exc()
        return False, _error(type(exc).__name__, str(exc), traceback.format_exc(limit=5))
    finally:
        _invocation_event = None


# -- dev-only fault injection (`make chaos`, local/chaos) ---------------------------------------
# Inert unless the chaos run sets these variables in a function's environment; never in the cloud.
CHAOS_LOG = "LOCAL_CHAOS_LOG"  # a file each injected fault is appended to, one JSON line each
CHAOS_CRASH_RATE = "LOCAL_CHAOS_CRASH_RATE"  # probability that an invocation crashes
CHAOS_CRASH_FUNCTIONS = "LOCAL_CHAOS_CRASH_FUNCTIONS"  # comma-separated function names
CHAOS_ENQUEUE_FAILURE_RATE = "LOCAL_CHAOS_ENQUEUE_FAILURE_RATE"  # probability that SendMessage fails
CHAOS_ENQUEUE_FAILURE_FUNCTIONS = "LOCAL_CHAOS_ENQUEUE_FAILURE_FUNCTIONS"
CHAOS_STATEMENT_CRASH_RATE = "LOCAL_CHAOS_STATEMENT_CRASH_RATE"  # probability per SQL statement
CHAOS_STATEMENT_CRASH_FUNCTIONS = "LOCAL_CHAOS_STATEMENT_CRASH_FUNCTIONS"


class ChaosCrash(RuntimeError):
    """A crash injected by the chaos run (before the handler, after it committed its work, or
    between two of its database statements)."""


class ChaosEnqueueFailure(RuntimeError):
    """An SQS SendMessage refused by the chaos run (after ingest stored the raw event)."""


_chaos_random = random.Random()
_invocation_event: dict[str, Any] | None = None  # the event being invoked, for the statement hook


def _chaos_functions(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def _chaos_rate(variable: str) -> float:
    try:
        return float(os.environ.get(variable, "0") or 0)
    except ValueError:
        return 0.0


def _chaos_record(kind: str, **details: Any) -> None:
    path = os.environ.get(CHAOS_LOG)
    if not path:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), **details}, default=str) + "\n"
    # One short O_APPEND write per line: lines of concurrent workers never interleave.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line.encode("utf-8"))
    finally:
        os.close(descriptor)


def _chaos_crash(moment: str, function_name: str, event: dict[str, Any]) -> None:
    rate = _chaos_rate(CHAOS_CRASH_RATE)
    if rate <= 0 or function_name not in _chaos_functions(CHAOS_CRASH_FUNCTIONS):
        return
    if _chaos_random.random() >= rate:
        return
    _chaos_record("handler_crash", function=function_name, moment=moment, bodies=_event_bodies(event))
    raise ChaosCrash(f"chaos: {function_name} crashed {moment} the handler")


def _event_bodies(event: dict[str, Any]) -> list[Any]:
    return [record.get("body") for record in event.get("Records", []) if isinstance(record, dict)]


def _install_chaos_enqueue_failures() -> None:
    """In the named functions' workers, SQS SendMessage fails with the configured probability
    (registered on boto3's default session before the handler creates its clients)."""
    rate = _chaos_rate(CHAOS_ENQUEUE_FAILURE_RATE)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    if rate <= 0 or function_name not in _chaos_functions(CHAOS_ENQUEUE_FAILURE_FUNCTIONS):
        return
    import boto3  # the worker imports it anyway; only needed here

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if _chaos_random.random() < rate:
            _chaos_record("enqueue_failure", function=function_name, body=params.get("MessageBody"))
            raise ChaosEnqueueFailure("chaos: SendMessage refused after the raw insert")

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()  # the session boto3.client(...) uses; clients copy its events
    session = boto3.DEFAULT_SESSION
    if session is None:
        return
    session.events.register("provide-client-params.sqs.SendMessage", refuse)


def _install_chaos_statement_crashes() -> None:
    """In the named functions' workers, an SQL statement raises ChaosCrash before it is sent, with
    the configured probability: a crash in the middle of a handler, between any two statements.

    Dev-only and inert without the variables, so monkeypatching psycopg here is acceptable.
    ``Connection.execute`` goes through ``Cursor.execute`` (patching both would roll twice), and
    ``executemany`` (one roll per call) does not; pipeline mode only queues through these, so a
    statement is refused before it is queued. Only during an invocation (not the cold start),
    and not while an exception is already unwinding: a crashed cleanup ROLLBACK would leave the
    warm connection inside the half-done transaction, which no real crash (the process dies with
    its connection) can do.
    """
    rate = _chaos_rate(CHAOS_STATEMENT_CRASH_RATE)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    if rate <= 0 or function_name not in _chaos_functions(CHAOS_STATEMENT_CRASH_FUNCTIONS):
        return
    import psycopg  # the worker imports it anyway; only needed here

    def crashing(send: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(send)
        def send_or_crash(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            event = _invocation_event
            if event is not None and sys.exc_info()[1] is None and _chaos_random.random() < rate:
                text = query.as_string(cursor) if isinstance(query, psycopg.sql.Composable) else query
                text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
                statement = " ".join(text.split())[:80]  # the project's SQL is indented, multi-line
                _chaos_record(
                    "statement_crash",
                    function=function_name,
                    statement=statement,
                    bodies=_event_bodies(event),
                )
                raise ChaosCrash(f"chaos: {function_name} crashed before {statement!r}")
            return send(cursor, query, *args, **kwargs)

        return send_or_crash

    for method in ("execute", "executemany"):
        setattr(psycopg.Cursor, method, crashing(getattr(psycopg.Cursor, method)))


def _error(error_type: str, message: str, trace: str) -> dict[str, str]:
    return {"errorType": error_type, "errorMessage": message, "trace": trace}


def _is_warm() -> bool:
    return _handler is not None


class FunctionPool:
    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], concurrency: int, log_dir: Path
    ) -> None:
        self.spec = spec
        log_dir.mkdir(parents=True, exist_ok=True)
        self._pool: Pool = multiprocessing.get_context("spawn").Pool(
            processes=concurrency,
            initializer=_start_environment,
            initargs=(str(spec.code_uri), spec.handler, environment, str(log_dir / f"{spec.name}.log")),
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        pending = self._pool.apply_async(_invoke, (event, self.spec.name, self.spec.timeout))
        try:
            succeeded, result = pending.get(timeout=self.spec.timeout + 5)
        except multiprocessing.TimeoutError as exc:
            raise InvocationError(
                f"{self.spec.name} timed out after {self.spec.timeout}s",
                error_type="Sandbox.Timedout",
                error_message=f"Task timed out after {self.spec.timeout}.00 seconds",
            ) from exc
        if not succeeded:
            raise InvocationError(
                f"{self.spec.name} failed:\n{result['trace']}",
                error_type=result["errorType"],
                error_message=result["errorMessage"],
            )
        return result

    def wait_until_warm(self, timeout: float) -> None:
        """Block until a worker has imported the handler (its cold start), like a provisioned
        environment: the stack then answers its first request within the function's timeout."""
        try:
            ready = self._pool.apply_async(_is_warm).get(timeout=timeout)
        except multiprocessing.TimeoutError as exc:
            raise InvocationError(f"{self.spec.name} did not start within {timeout}s; see its log") from exc
        if not ready:
            raise InvocationError(f"{self.spec.name} did not import its handler; see its log")

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
