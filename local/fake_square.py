"""A fake Square API over real HTTP on loopback: locations, payments, OAuth refresh.

What the poller and the token refresher call, answered the way Square documents it:

- ``GET /v2/locations`` and ``GET /v2/payments`` (``location_id``, ``begin_time`` inclusive and
  ``end_time`` exclusive on ``created_at``, ``sort_order``, ``limit`` ≤ 100, opaque ``cursor``),
  each for the merchant whose ``Authorization: Bearer`` access token it is;
- ``POST /oauth2/token`` with ``grant_type=refresh_token``: a new access token expiring in 30 days
  and the same refresh token (Square's code flow);
- Square's error body ``{"errors": [{"category", "code", "detail"}]}``.

Failures can be scripted (status, which path / token, after how many matching calls, how many
times, and optionally a hang: no answer for that many seconds, so a client with a shorter read
timeout gives up), and every request is logged with the status it got. Dev-only.
"""

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg.rows import dict_row

from pos_gateway.crypto import CredentialCipher

MAX_LIMIT = 100
TOKEN_LIFETIME = timedelta(days=30)
_ERRORS = {
    400: ("INVALID_REQUEST_ERROR", "BAD_REQUEST"),
    401: ("AUTHENTICATION_ERROR", "UNAUTHORIZED"),
    403: ("AUTHENTICATION_ERROR", "FORBIDDEN"),
    404: ("INVALID_REQUEST_ERROR", "NOT_FOUND"),
    429: ("RATE_LIMIT_ERROR", "RATE_LIMITED"),
    500: ("API_ERROR", "INTERNAL_SERVER_ERROR"),
    503: ("API_ERROR", "SERVICE_UNAVAILABLE"),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    token: str | None  # the bearer token, for tests to see which merchant called (never logged)
    square_version: str | None
    body: dict[str, Any] | None
    status: int
    hung: bool = False  # a scripted hang: the client most likely timed out before the answer


@dataclass
class ScriptedFailure:
    status: int
    path: str | None = None  # exact path, e.g. "/v2/payments"; None: any
    token: str | None = None  # only calls with this bearer token; None: any
    after: int = 0  # let this many matching calls through first
    times: int = 1
    hang: float = 0.0  # seconds of silence before the failure is answered

    def matches(self, path: str, token: str | None) -> bool:
        return (self.path is None or self.path == path) and (self.token is None or self.token == token)


@dataclass
class FakeMerchant:
    merchant_id: str
    locations: list[dict[str, Any]]
    payments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # location → id → payment


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _SquareError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class FakeSquare:
    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        client_id: str = "sq0idp-fake-application",
        client_secret: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or f"sq0csp-{secrets.token_urlsafe(16)}"
        self._clock = clock
        self._lock = threading.Lock()
        self._merchants: dict[str, FakeMerchant] = {}
        self._access_tokens: dict[str, str] = {}  # token → merchant id
        self._refresh_tokens: dict[str, str] = {}
        self._cursors: dict[str, tuple[tuple[tuple[str, str], ...], int]] = {}
        self._failures: list[ScriptedFailure] = []
        self._requests: list[RecordedRequest] = []
        self.issued: list[dict[str, Any]] = []  # every ObtainToken answer, newest last
        self._server = ThreadingHTTPServer((host, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-square", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- arranging -----------------------------------------------------------------------
    def add_merchant(
        self,
        merchant_id: str,
        *,
        access_token: str,
        refresh_token: str | None = None,
        locations: tuple[str, ...] = ("LMAIN",),
    ) -> FakeMerchant:
        merchant = FakeMerchant(
            merchant_id,
            [
                {"id": loc, "name": f"Location {loc}", "merchant_id": merchant_id, "status": "ACTIVE"}
                for loc in locations
            ],
        )
        with self._lock:
            self._merchants[merchant_id] = merchant
            self._access_tokens[access_token] = merchant_id
            if refresh_token:
                self._refresh_tokens[refresh_token] = merchant_id
        return merchant

    def add_payment(
        self,
        merchant_id: str,
        location_id: str,
        *,
        payment_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        amount: int = 2500,
        currency: str = "USD",
        status: str = "COMPLETED",
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add (or replace, same id) a payment shaped like Square's Payment object; returns it."""
        created = created_at or self._clock()
        payment: dict[str, Any] = {
            "id": payment_id or f"pay_{uuid.uuid4().hex[:20]}",
            "created_at": iso(created),
            "updated_at": iso(updated_at or created),
            "amount_money": {"amount": amount, "currency": currency},
            "total_money": {"amount": amount, "currency": currency},
            "status": status,
            "source_type": "CARD",
            "location_id": location_id,
            "order_id": f"ord_{uuid.uuid4().hex[:16]}",
            "version_token": secrets.token_urlsafe(12),
            **({"buyer_email_address": email} if email else {}),
            **extra,
        }
        with self._lock:
            self._merchants[merchant_id].payments.setdefault(location_id, {})[payment["id"]] = payment
        return payment

    def fail(
        self,
        status: int,
        *,
        path: str | None = None,
        token: str | None = None,
        after: int = 0,
        times: int = 1,
        hang: float = 0.0,
    ) -> None:
        with self._lock:
            self._failures.append(ScriptedFailure(status, path, token, after, times, hang))

    def revoke(self, token: str) -> None:
        """The access or refresh token stops working (the seller revoked the application)."""
        with self._lock:
            self._access_tokens.pop(token, None)
            self._refresh_tokens.pop(token, None)

    def payments(self, merchant_id: str) -> list[dict[str, Any]]:
        """Every payment of the merchant, all locations."""
        with self._lock:
            merchant = self._merchants[merchant_id]
            return [dict(p) for location in merchant.payments.values() for p in location.values()]

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- serving -------------------------------------------------------------------------
    def _serve(
        self, method: str, target: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        body = _json_object(raw_body)
        failure = self._scripted(parts.path, token)
        status, answer, hung = 200, {}, failure is not None and failure.hang > 0
        try:
            if failure is not None:
                raise _SquareError(failure.status, "scripted failure")
            answer = self._route(method, parts.path, query, token, body)
        except _SquareError as exc:
            status, answer = exc.status, _error_body(exc.status, str(exc))
        with self._lock:  # logged on arrival, so a hung call is seen while it hangs
            self._requests.append(
                RecordedRequest(
                    method, parts.path, query, token, headers.get("square-version"), body, status, hung
                )
            )
        if failure is not None and failure.hang:
            time.sleep(failure.hang)  # outside the lock: other calls are answered meanwhile
        return status, answer

    def _scripted(self, path: str, token: str | None) -> ScriptedFailure | None:
        with self._lock:
            for failure in self._failures:
                if failure.times > 0 and failure.matches(path, token):
                    if failure.after > 0:
                        failure.after -= 1
                        continue
                    failure.times -= 1
                    return failure
        return None

    def _route(
        self, method: str, path: str, query: dict[str, str], token: str | None, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        if (method, path) == ("POST", "/oauth2/token"):
            return self._obtain_token(body or {})
        if method != "GET" or path not in ("/v2/locations", "/v2/payments"):
            raise _SquareError(404, f"no route {method} {path}")
        merchant = self._merchant_of(token)
        if path == "/v2/locations":
            return {"locations": [dict(location) for location in merchant.locations]}
        return self._list_payments(merchant, query)

    def _merchant_of(self, token: str | None) -> FakeMerchant:
        with self._lock:
            merchant_id = self._access_tokens.get(token or "")
            if merchant_id is None:
                raise _SquareError(401, "This request could not be authorized.")
            return self._merchants[merchant_id]

    def _list_payments(self, merchant: FakeMerchant, query: dict[str, str]) -> dict[str, Any]:
        limit = _int(query.get("limit", str(MAX_LIMIT)))
        if limit < 1:
            raise _SquareError(400, "limit must be at least 1")
        limit = min(limit, MAX_LIMIT)  # Square ignores a larger limit and uses its maximum
        key = tuple(sorted((k, v) for k, v in query.items() if k != "cursor"))
        offset = 0
        if query.get("cursor"):
            with self._lock:
                found = self._cursors.get(query["cursor"])
            if found is None or found[0] != key:
                raise _SquareError(400, "invalid cursor")
            offset = found[1]
        location_id = query.get("location_id") or merchant.locations[0]["id"]
        if location_id not in {location["id"] for location in merchant.locations}:
            raise _SquareError(404, f"location {location_id} not found")
        now = self._clock()
        begin = _time(query.get("begin_time")) or now - timedelta(days=365)
        end = _time(query.get("end_time")) or now
        with self._lock:
            listed = [
                dict(p)
                for p in merchant.payments.get(location_id, {}).values()
                if begin <= _time_of(p["created_at"]) < end
            ]
        listed.sort(
            key=lambda p: (_time_of(p["created_at"]), p["id"]), reverse=query.get("sort_order") != "ASC"
        )
        page = listed[offset : offset + limit]
        answer: dict[str, Any] = {"payments": page} if page else {}
        if offset + limit < len(listed):
            cursor = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode("ascii")
            with self._lock:
                self._cursors[cursor] = (key, offset + limit)
            answer["cursor"] = cursor
        return answer

    def _obtain_token(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            raise _SquareError(401, "Not Authorized")
        if body.get("grant_type") != "refresh_token":
            raise _SquareError(400, "unsupported grant_type")
        refresh_token = str(body.get("refresh_token") or "")
        with self._lock:
            merchant_id = self._refresh_tokens.get(refresh_token)
            if merchant_id is None:
                raise _SquareError(401, "Invalid refresh token")
            access_token = f"EAAAfake{secrets.token_urlsafe(24)}"
            self._access_tokens[access_token] = merchant_id
            answer = {
                "access_token": access_token,
                "token_type": "bearer",
                "expires_at": iso(self._clock() + TOKEN_LIFETIME).replace(".000Z", "Z"),
                "merchant_id": merchant_id,
                "refresh_token": refresh_token,
                "short_lived": False,
            }
            self.issued.append(answer)
        return answer


def _handler(fake: FakeSquare) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer = fake._serve(self.command, self.path, headers, raw)
            data = json.dumps(answer).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a scripted hang)
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet: requests are in fake.requests
            return

    return Handler


def _error_body(status: int, detail: str) -> dict[str, Any]:
    category, code = _ERRORS.get(status, ("API_ERROR", "INTERNAL_SERVER_ERROR"))
    return {"errors": [{"category": category, "code": code, "detail": detail}]}


def _json_object(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _SquareError(400, f"not an integer: {text!r}") from None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _time_of(text)
    except ValueError:
        raise _SquareError(400, f"not an RFC 3339 time: {text!r}") from None


def _time_of(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return parsed


# ---------------------------------------------------------------- local stack wiring


def encryption_secret_value(cipher: CredentialCipher) -> dict[str, Any]:
    """The ENCRYPTION_KEYS_SECRET_ARN secret for a cipher (the shape cipher_from_secret reads)."""
    return {
        "currentKeyId": cipher.current_key_id,
        "keys": {key_id: base64.b64encode(key).decode("ascii") for key_id, key in cipher.keys.items()},
    }


def oauth_secret_value(fake: FakeSquare) -> dict[str, str]:
    """The SQUARE_OAUTH_SECRET_ARN secret matching the fake's application."""
    return {"clientId": fake.client_id, "clientSecret": fake.client_secret}


def register_connections(
    conn: psycopg.Connection[Any], cipher: CredentialCipher, fake: FakeSquare
) -> list[FakeMerchant]:
    """Register every stored Square connection with the fake, under its decrypted tokens.

    ``conn`` is an owner connection (row-level security does not apply); each merchant gets one
    location, ``L<merchant id>``.
    """
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            "SELECT id, merchant_account_id, access_token_enc, refresh_token_enc FROM pos.pos_connections"
            " WHERE pos_type = 'square' AND deleted_at IS NULL ORDER BY merchant_account_id"
        ).fetchall()
    merchants = []
    for row in rows:
        row_id = str(row["id"])
        refresh = _opened(cipher, row["refresh_token_enc"], "refresh_token_enc", row_id)
        merchants.append(
            fake.add_merchant(
                row["merchant_account_id"],
                access_token=_opened(cipher, row["access_token_enc"], "access_token_enc", row_id) or "",
                refresh_token=refresh,
                locations=(f"L{row['merchant_account_id']}",),
            )
        )
    return merchants


def _opened(cipher: CredentialCipher, envelope: str, column: str, row_id: str) -> str | None:
    if not envelope:
        return None
    return cipher.decrypt(envelope, table="pos.pos_connections", column=column, row_id=row_id)


@dataclass(frozen=True)
class FakeConnection:
    connection_id: uuid.UUID
    tenant_id: uuid.UUID
    merchant_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    locations: tuple[str, ...]


def connect_fake_merchant(
    conn: psycopg.Connection[Any],
    cipher: CredentialCipher,
    fake: FakeSquare,
    tenant_id: uuid.UUID,
    merchant_id: str,
    *,
    locations: tuple[str, ...] = ("LMAIN",),
    token_expires_at: datetime | None = None,
) -> FakeConnection:
    """A Square connection whose sealed tokens the fake accepts (``conn``: an owner connection)."""
    connection_id = uuid.uuid4()
    access_token = f"EAAAfake{secrets.token_urlsafe(24)}"
    refresh_token = f"EQAAfake{secrets.token_urlsafe(24)}"

    def seal(plaintext: str, column: str) -> str:
        return cipher.encrypt(
            plaintext, table="pos.pos_connections", column=column, row_id=str(connection_id)
        )

    conn.execute(
        "INSERT INTO pos.pos_connections (id, tenant_id, pos_type, access_token_enc, refresh_token_enc,"
        " merchant_account_id, token_expires_at) VALUES (%s, %s, 'square', %s, %s, %s, %s)",
        (
            connection_id,
            tenant_id,
            seal(access_token, "access_token_enc"),
            seal(refresh_token, "refresh_token_enc"),
            merchant_id,
            token_expires_at,
        ),
    )
    fake.add_merchant(
        merchant_id, access_token=access_token, refresh_token=refresh_token, locations=locations
    )
    return FakeConnection(connection_id, tenant_id, merchant_id, access_token, refresh_token, locations)
