"""One machine-readable error body for every API."""

import base64
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status_code: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response[str]:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details or []))
    return Response(
        status_code=status_code, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json()
    )


def json_response(status_code: int, payload: BaseModel) -> Response[str]:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=payload.model_dump_json(by_alias=True),
    )


def raw_body(body: str | None, is_base64_encoded: bool) -> bytes:
    """The exact bytes the client sent (signatures are computed over them)."""
    if not body:
        return b""
    return base64.b64decode(body) if is_base64_encoded else body.encode("utf-8")
