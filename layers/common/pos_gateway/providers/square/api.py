"""Square's REST API: the few calls backfill needs, over urllib3 (shipped with botocore).

Every call has explicit connect and read timeouts and is tried exactly once: no retries, no
redirects. The caller decides what a failure means (the next scheduled run is the retry).
Errors carry Square's status and error codes, never a token or a request body.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

import urllib3
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

DEFAULT_BASE_URL = "https://connect.squareup.com"
DEFAULT_VERSION = "2024-03-20"
MAX_PAGE_SIZE = 100  # ListPayments' maximum (and default) page size


class SquareApiError(Exception):
    """A call that did not give a usable answer."""

    retryable = False

    def __init__(self, message: str, status: int | None = None, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes


class SquareUnauthorized(SquareApiError):
    """401: the access token (or, for OAuth, the client or refresh token) is not accepted."""


class SquareRequestRejected(SquareApiError):
    """Any other 4xx: the request itself is wrong, repeating it will not help."""


class SquareRateLimited(SquareApiError):
    """429: try again on a later run."""

    retryable = True


class SquareUnavailable(SquareApiError):
    """5xx, a timeout or a network failure: try again on a later run."""

    retryable = True


class SquareMalformedResponse(SquareApiError):
    """A 2xx whose body is not what the API documents."""

    retryable = True


# ---------------------------------------------------------------- response models


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SquareLocation(_Lenient):
    id: str = Field(min_length=1, max_length=255)
    name: str | None = None
    status: str | None = None  # ACTIVE or INACTIVE


class _LocationsBody(_Lenient):
    locations: list[SquareLocation] = []


class _PaymentKeys(_Lenient):
    """The fields of a listed payment backfill relies on; the rest is kept as Square sent it."""

    id: str = Field(min_length=1, max_length=255)
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None


@dataclass(frozen=True, slots=True)
class ListedPayment:
    id: str
    created_at: datetime
    updated_at: datetime | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PaymentsPage:
    payments: list[ListedPayment]
    cursor: str | None  # None on the last page


@dataclass(frozen=True, slots=True)
class PaymentsQuery:
    """ListPayments parameters. Square filters and sorts by the payments' created_at."""

    location_id: str
    begin_time: datetime
    end_time: datetime
    cursor: str | None = None
    limit: int = MAX_PAGE_SIZE
    sort_order: Literal["ASC", "DESC"] = "ASC"

    def params(self) -> dict[str, str]:
        params = {
            "location_id": self.location_id,
            "begin_time": rfc3339(self.begin_time),
            "end_time": rfc3339(self.end_time),
            "sort_order": self.sort_order,
            "limit": str(min(max(self.limit, 1), MAX_PAGE_SIZE)),
        }
        if self.cursor:
            params["cursor"] = self.cursor
        return params


class ObtainedToken(_Lenient):
    """ObtainToken's answer. With the code flow, the refresh token returned is the same one sent."""

    access_token: str = Field(min_length=1, repr=False)
    expires_at: AwareDatetime
    refresh_token: str | None = Field(default=None, repr=False)
    merchant_id: str | None = None


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- the client


class SquareApi:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        version: str = DEFAULT_VERSION,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._version = version
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._pool = pool or urllib3.PoolManager(num_pools=4, maxsize=4)

    def list_locations(self, access_token: str) -> list[SquareLocation]:
        """GET /v2/locations: every location of the seller (active and inactive)."""
        body = self._call("GET", "/v2/locations", access_token=access_token)
        return _validated(_LocationsBody, body).locations

    def list_payments(self, access_token: str, query: PaymentsQuery) -> PaymentsPage:
        """GET /v2/payments: one page of a location's payments created in [begin_time, end_time)."""
        body = self._call("GET", "/v2/payments", access_token=access_token, params=query.params())
        raw_payments = body.get("payments") or []
        cursor = body.get("cursor") or None
        if not isinstance(raw_payments, list) or not (cursor is None or isinstance(cursor, str)):
            raise SquareMalformedResponse("ListPayments answered an unexpected shape")
        payments = []
        for raw in raw_payments:
            if not isinstance(raw, dict):
                raise SquareMalformedResponse("ListPayments listed a payment that is not an object")
            keys = _validated(_PaymentKeys, raw)
            payments.append(ListedPayment(keys.id, keys.created_at, keys.updated_at, raw))
        return PaymentsPage(payments, cursor)

    def refresh_access_token(
        self, *, client_id: str, client_secret: str, refresh_token: str
    ) -> ObtainedToken:
        """POST /oauth2/token with grant_type=refresh_token (the code flow)."""
        body = self._call(
            "POST",
            "/oauth2/token",
            json_body={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
        )
        return _validated(ObtainedToken, body)

    def _call(
        self,
        method: str,
        path: str,
        *,
        access_token: str | None = None,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = self._base_url + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Square-Version": self._version, "Accept": "application/json"}
        if access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        body = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(json_body).encode("utf-8")
        try:
            response = self._pool.request(
                method, url, body=body, headers=headers, timeout=self._timeout, retries=False, redirect=False
            )
        except urllib3.exceptions.HTTPError as exc:
            # Timeouts, refused connections, TLS and protocol errors; the message names no secret.
            raise SquareUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        return _answer(method, path, response.status, response.data)


def _answer(method: str, path: str, status: int, data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        parsed = None
    if 200 <= status < 300:
        if not isinstance(parsed, dict):
            raise SquareMalformedResponse(f"{method} {path}: {status} without a JSON object", status)
        return parsed
    codes = _error_codes(parsed)
    message = f"{method} {path}: Square answered {status}" + (f" {', '.join(codes)}" if codes else "")
    if status == 401:
        raise SquareUnauthorized(message, status, codes)
    if status == 429:
        raise SquareRateLimited(message, status, codes)
    if status >= 500:
        raise SquareUnavailable(message, status, codes)
    raise SquareRequestRejected(message, status, codes)


def _error_codes(parsed: object) -> tuple[str, ...]:
    """Square's error codes (``{"errors": [{"category", "code", "detail"}]}``); details are left out."""
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list):
        return ()
    return tuple(
        str(error["code"])[:64] for error in errors[:5] if isinstance(error, dict) and error.get("code")
    )


def _validated[M: BaseModel](model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False))
        raise SquareMalformedResponse(f"{model.__name__}: unexpected fields {fields}") from None
