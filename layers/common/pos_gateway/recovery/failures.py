"""Why crediting last failed, kept on the raw event for operators (parked events carry it)."""

import re

from aws_lambda_powertools import Logger

from pos_gateway.messages import CreditRequest
from pos_gateway.recovery.repository import RawEventFailures

logger = Logger(child=True)

MAX_ERROR_LENGTH = 300
# "password=…", "token: …": masked in case a message ever carries one.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|secret|token|api[_-]?key|signature[_-]?key)(\s*[=:]\s*)\S+"
)


def error_summary(error: BaseException) -> str:
    """One short line: the error's type and the first line of its message, secrets masked.

    Only the first line: psycopg puts row values in DETAIL lines, pydantic puts inputs after it.
    """
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    text = _SECRET_ASSIGNMENT.sub(r"\1\2***", text)
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


class CreditingFailureLog:
    def __init__(self, failures: RawEventFailures) -> None:
        self._failures = failures

    def record(self, request: CreditRequest, error: BaseException) -> bool:
        """Note the failure on the raw event. Never raises: a failure to note it is only logged."""
        try:
            return self._failures.record(request.raw_event_id, request.tenant_id, error_summary(error))
        except Exception:
            logger.exception(
                "could not record the crediting failure", extra={"raw_event_id": str(request.raw_event_id)}
            )
            return False
