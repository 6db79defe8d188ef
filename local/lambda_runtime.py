"""Lambda execution environments, emulated by worker processes: one pool per function.

Each worker gets the function's own environment (as in the cloud, two functions never share
one), imports ``Handler`` from ``CodeUri`` exactly as the Lambda runtime does, stays warm
between invocations, and writes its logs to ``<log_dir>/<function>.log``.
"""

import importlib
import multiprocessing
import os
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
    module_name, function_name = handler.rsplit(".", 1)
    global _handler
    _handler = getattr(importlib.import_module(module_name), function_name)


def _invoke(event: dict[str, Any], function_name: str, timeout: int) -> tuple[bool, Any]:
    if _handler is None:
        return False, _error("Runtime.HandlerNotFound", "handler not initialized", "handler not initialized")
    try:
        return True, _handler(event, LambdaContext(function_name, 512, timeout))
    except Exception as exc:
        # Exceptions do not always pickle; their name, message and traceback text always do.
        traceback.print_exc()
        return False, _error(type(exc).__name__, str(exc), traceback.format_exc(limit=5))


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
