"""One machine-readable error body for every API, and the refusals that produce it."""

import base64
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from pos_gateway.db import DatabaseError
from pos_gateway.json_documents import UnstorableJson, load_storable


class ApiError(Exception):
    """A request refused with its HTTP status and a machine-readable code; nothing was written."""

    status_code = 400
    code = "bad_request"
    metric_prefix = "Refused"  # the metric counting it: <prefix>_<code>

    def __init__(
        self,
        message: str,
        fields: list[dict[str, Any]] | None = None,
        *,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code


class ErrorDetail(BaseModel):
    code: str
    message: str
    # What was wrong where: {"loc": "points", "type": "greater_than", "msg": ...} for input errors.
    fields: list[dict[str, Any]] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status_code: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
) -> Response[str]:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, fields=fields or []))
    return Response(
        status_code=status_code, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json()
    )


def json_response(status_code: int, payload: BaseModel) -> Response[str]:
    return Response(
        status_code=status_code,
        content_type=content_types.APPLICATION_JSON,
        body=payload.model_dump_json(by_alias=True),
    )


def validation_fields(
    errors: ValidationError | Sequence[Mapping[str, Any]], prefix: str | None = None
) -> list[dict[str, Any]]:
    """Pydantic errors as error-body fields: where, what kind, and why; never the input itself
    (it may hold a secret)."""
    if isinstance(errors, ValidationError):
        errors = errors.errors(include_url=False, include_input=False, include_context=False)
    return [
        {
            "loc": ".".join(
                str(part) for part in ((prefix,) if prefix else ()) + tuple(error.get("loc", ()))
            ),
            "type": str(error.get("type", "invalid")),
            "msg": str(error.get("msg", "invalid value")),
        }
        for error in errors
    ]


def proxy_error(status_code: int, code: str, message: str) -> dict[str, object]:
    """An error as a payload-2.0 proxy result, for refusals made before the resolver runs."""
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump_json(),
        "isBase64Encoded": False,
    }


def body_size(event: Mapping[str, object]) -> int:
    """The decoded size of a proxy event's body, without decoding it."""
    body = event.get("body")
    if not isinstance(body, str):
        return 0
    return len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8"))


def declares_json(event: Mapping[str, object]) -> bool:
    """True when the event has no body, or its Content-Type is JSON (any other body is refused
    before a parser of another media type could choke on it)."""
    if not event.get("body"):
        return True
    headers = event.get("headers")
    content_type = ""
    if isinstance(headers, Mapping):
        content_type = next((str(v) for k, v in headers.items() if str(k).lower() == "content-type"), "")
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def utf8_body(event: Mapping[str, object]) -> bool:
    """True when the body (if any) is UTF-8 text, as JSON must be."""
    body = event.get("body")
    if not isinstance(body, str) or not event.get("isBase64Encoded"):
        return True
    try:
        base64.b64decode(body, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def refuse_unreadable_body(event: dict[str, Any], max_bytes: int) -> dict[str, object] | None:
    """The refusal of a body too large, not declared JSON, not UTF-8, or JSON the database could
    not store (NaN, U+0000, numbers out of range, nesting past the parser's depth), made before
    anything parses it (a proxy result); None when the body may be read.

    The declared type is then written the way Powertools recognises JSON (it compares
    ``application/json`` case-sensitively), so a JSON body is always parsed as one."""
    if body_size(event) > max_bytes:
        return proxy_error(413, "body_too_large", f"bodies are limited to {max_bytes} bytes")
    if not declares_json(event):
        return proxy_error(415, "unsupported_media_type", "bodies must be application/json")
    if not utf8_body(event):
        return proxy_error(400, "malformed_json", "the body is not UTF-8 text")
    body = event.get("body")
    if isinstance(body, str) and body:
        text = base64.b64decode(body).decode("utf-8") if event.get("isBase64Encoded") else body
        try:
            load_storable(text)
        except UnstorableJson as exc:
            return proxy_error(400, "malformed_json", str(exc))
        headers = event.get("headers")
        if isinstance(headers, dict):
            for name in [k for k in headers if str(k).lower() == "content-type"]:
                headers[name] = "application/json"
    return None


def plain_json(value: Any) -> Any:
    """JSON read back from the database, as numbers again: fractions load as Decimal (so rule
    rates stay exact in code), which an API answer must show as the number that was stored."""
    if isinstance(value, Decimal):
        return float(value)  # integers load as int; only fractions and exponents are Decimal
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_json(item) for item in value]
    return value


def raw_body(body: str | None, is_base64_encoded: bool) -> bytes:
    """The exact bytes the client sent (signatures are computed over them)."""
    if not body:
        return b""
    return base64.b64decode(body) if is_base64_encoded else body.encode("utf-8")


def register_error_responses(app: APIGatewayHttpResolver, logger: Logger, metrics: Metrics) -> None:
    """Refusals answer their 4xx body; a database outage answers 503 (nothing stored, retry)."""

    @app.exception_handler(ApiError)
    def refused(error: ApiError) -> Response[str]:
        metrics.add_metric(name=f"{error.metric_prefix}_{error.code}", unit=MetricUnit.Count, value=1)
        logger.warning("request refused", extra={"code": error.code, "reason": error.message})
        return error_response(error.status_code, error.code, error.message, error.fields)

    @app.exception_handler(DatabaseError)
    def unavailable(error: DatabaseError) -> Response[str]:
        logger.exception("database unavailable")
        metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=1)
        return error_response(503, "temporarily_unavailable", "try again later")
