"""OpenAPI documentation shared by every admin route: the error answers and their body."""

from typing import Any

from pydantic import BaseModel

from pos_gateway.http import ErrorBody


class GatewayRefusal(BaseModel):
    """What API Gateway's JWT authorizer answers before the function runs."""

    message: str


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: body is not JSON, or a cursor this API did not issue",
    401: "No token, or one the authorizer did not accept",
    403: "The caller may not do this (role, suspended account, membership, tenant suspended)",
    404: "No such resource among those the caller may see",
    409: "Conflicts with the current state (stale version, duplicate, wrong status)",
    413: "Body larger than the API accepts",
    415: "Body that is not application/json",
    422: "Invalid input: error.fields names each problem",
    503: "Database or queue service unavailable: nothing was written, retry",
}
_ALWAYS = (400, 401, 403, 413, 415, 422, 503)


def responses(ok_status: int, ok_description: str, ok_model: Any, *errors: int) -> dict[int, Any]:
    """The ``responses`` of a route: its success answer and every error it can give."""
    documented: dict[int, Any] = {
        ok_status: {"description": ok_description, "content": {"application/json": {"model": ok_model}}}
    }
    for status in sorted({*_ALWAYS, *errors}):
        documented[status] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"model": GatewayRefusal if status == 401 else ErrorBody}},
        }
    return documented
