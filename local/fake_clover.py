"""A fake Clover REST API on loopback: real HTTP, for tests and the local stack.

It serves ``GET /v3/merchants/{mId}/payments/{id}`` the way Clover does (Bearer token per
merchant, ``expand`` honoured for refunds and the order's customers, ``{"elements": [...]}``
lists, cents and epoch milliseconds), and answers scripted failures first: 429 with
Retry-After, 5xx, 401, or a hang until the client times out. Every request is logged (without
its token).

    with FakeClover() as clover:
        clover.grant_token("MID1", "token-1")
        clover.put_payment("MID1", clover_payment("PAY1", amount=2500, email="a@example.com"))
        clover.script(Scripted(429, {"Retry-After": "7"}))
        ...  CloverClient(clover.base_url) ...
"""

import argparse
import contextlib
import json
import re
import secrets
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from local.loopback import LoopbackServer
from pos_gateway.crypto import CredentialCipher

_PAYMENT_PATH = re.compile(r"^/v3/merchants/(?P<merchant>[^/]+)/payments/(?P<payment>[^/]+)$")
HANG_LIMIT_SECONDS = 10.0


@dataclass(frozen=True)
class Scripted:
    """One scripted answer, given to the next request (of a merchant, or of anyone)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    hang: bool = False  # answer nothing until the client gives up (or the server stops)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    merchant_id: str | None
    bearer_valid: bool
    status: int
    hung: bool = False  # a scripted hang: no answer until the client gave up

    @property
    def expansions(self) -> list[str]:
        return [part for value in self.query.get("expand", []) for part in value.split(",") if part]


class FakeClover(LoopbackServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_handler_for(self), host, port, "fake-clover")
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._payments: dict[tuple[str, str], dict[str, Any]] = {}
        self._scripts: dict[str | None, deque[Scripted]] = {}
        self._requests: list[RecordedRequest] = []

    # -------------------------------------------------------------- arranging

    def grant_token(self, merchant_id: str, token: str) -> None:
        with self._lock:
            self._tokens[merchant_id] = token

    def revoke_token(self, merchant_id: str) -> None:
        with self._lock:
            self._tokens.pop(merchant_id, None)

    def put_payment(self, merchant_id: str, payment: dict[str, Any]) -> None:
        with self._lock:
            self._payments[(merchant_id, str(payment["id"]))] = payment

    def add_refund(self, merchant_id: str, payment_id: str, refund: dict[str, Any]) -> bool:
        """A refund of a stored payment happens: appended to its refunds (as ``clover_payment``
        links them), unless a refund with that id is there already. The payment is replaced, not
        changed in place, so an answer being written meanwhile keeps the list it read. Returns
        whether the refund was added."""
        with self._lock:
            payment = self._payments.get((merchant_id, payment_id))
            if payment is None:
                raise KeyError(f"no payment {payment_id} of merchant {merchant_id}")
            refunds = list((payment.get("refunds") or {}).get("elements", []))
            if any(r.get("id") == refund["id"] for r in refunds):
                return False
            refunds.append({**refund, "payment": {"id": payment_id}})
            self._payments[(merchant_id, payment_id)] = {**payment, "refunds": {"elements": refunds}}
            return True

    def script(self, *answers: Scripted, merchant_id: str | None = None) -> None:
        """Answers given, in order, before any normal answer (to ``merchant_id`` or to anyone)."""
        with self._lock:
            self._scripts.setdefault(merchant_id, deque()).extend(answers)

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._payments.clear()
            self._scripts.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    # -------------------------------------------------------------- answering

    def _answer(
        self, method: str, target: str, authorization: str | None
    ) -> tuple[Scripted, RecordedRequest]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        match = _PAYMENT_PATH.match(url.path)
        merchant_id = match["merchant"] if match else None
        with self._lock:
            token = self._tokens.get(merchant_id or "")
            bearer_valid = token is not None and authorization == f"Bearer {token}"
            answer = self._scripted(merchant_id) or self._served(method, match, bearer_valid, query)
            recorded = RecordedRequest(
                method, url.path, query, merchant_id, bearer_valid, answer.status, answer.hang
            )
            self._requests.append(recorded)
        return answer, recorded

    def _scripted(self, merchant_id: str | None) -> Scripted | None:
        for key in (merchant_id, None):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        return None

    def _served(
        self, method: str, match: re.Match[str] | None, bearer_valid: bool, query: dict[str, list[str]]
    ) -> Scripted:
        if method != "GET" or match is None:
            return Scripted(404, body={"message": "Not Found"})
        if not bearer_valid:
            return Scripted(401, body={"message": "401 Unauthorized"})
        payment = self._payments.get((match["merchant"], match["payment"]))
        if payment is None:
            return Scripted(404, body={"message": "Not Found"})
        expand = {part for value in query.get("expand", []) for part in value.split(",")}
        return Scripted(200, body=expanded(payment, expand))

    def _hang(self) -> None:
        self._released.wait(HANG_LIMIT_SECONDS)


def expanded(payment: dict[str, Any], expand: set[str]) -> dict[str, Any]:
    """What Clover returns for these expansions: unexpanded references keep only their id."""
    shown = {key: value for key, value in payment.items() if key != "refunds" or "refunds" in expand}
    order = payment.get("order")
    if isinstance(order, dict):
        if not any(e == "order" or e.startswith("order.") for e in expand):
            shown["order"] = {"id": order["id"]}
        else:
            shown["order"] = _order(order, expand)
    return shown


def _order(order: dict[str, Any], expand: set[str]) -> dict[str, Any]:
    shown = {key: value for key, value in order.items() if key != "customers"}
    if not any(e.startswith("order.customers") for e in expand):
        return shown
    contacts = {"emailAddresses", "phoneNumbers"}
    shown["customers"] = {
        "elements": [
            {k: v for k, v in c.items() if k not in contacts or f"order.customers.{k}" in expand}
            for c in order.get("customers", {}).get("elements", [])
        ]
    }
    return shown


def _handler_for(fake: FakeClover) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._respond()

        def do_POST(self) -> None:
            self._respond()

        def _respond(self) -> None:
            answer, _ = fake._answer(self.command, self.path, self.headers.get("Authorization"))
            if answer.hang:
                fake._hang()
                self.close_connection = True
                return
            body = json.dumps(answer.body if answer.body is not None else {}).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the request log is fake.requests

    return Handler


# ------------------------------------------------------------------ builders


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def clover_id() -> str:
    """A Clover-style id: 13 upper-case alphanumerics."""
    return uuid.uuid4().hex[:13].upper()


def clover_refund(
    *, amount: int, refund_id: str | None = None, created_at: datetime | None = None
) -> dict[str, Any]:
    return {
        "id": refund_id or clover_id(),
        "amount": amount,
        "taxAmount": 0,
        "tipAmount": 0,
        "createdTime": epoch_ms(created_at or datetime.now(UTC)),
    }


def clover_payment(
    payment_id: str | None = None,
    *,
    amount: int = 2500,
    tip: int = 0,
    result: str = "SUCCESS",
    currency: str = "USD",
    created_at: datetime | None = None,
    email: str | None = None,
    phone: str | None = None,
    refunds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A payment as Clover stores it, with its order, customer contacts and refunds (the fake
    shows each part only when the request expands it)."""
    at = epoch_ms(created_at or datetime.now(UTC))
    customers: list[dict[str, Any]] = []
    if email is not None or phone is not None:
        customers.append(
            {
                "id": clover_id(),
                "emailAddresses": {"elements": [{"id": clover_id(), "emailAddress": email}] if email else []},
                "phoneNumbers": {"elements": [{"id": clover_id(), "phoneNumber": phone}] if phone else []},
            }
        )
    payment_id = payment_id or clover_id()
    return {
        "id": payment_id,
        "order": {"id": clover_id(), "currency": currency, "customers": {"elements": customers}},
        "tender": {"id": clover_id(), "labelKey": "com.clover.tender.credit_card"},
        "amount": amount,
        "tipAmount": tip,
        "taxAmount": 0,
        "result": result,
        "createdTime": at,
        "clientCreatedTime": at,
        "modifiedTime": at,
        "refunds": {"elements": [{**r, "payment": {"id": payment_id}} for r in refunds or []]},
    }


def connect_clover_merchant(
    conn: psycopg.Connection[Any],
    tenant_id: uuid.UUID,
    merchant_id: str,
    cipher: CredentialCipher,
    access_token: str | None = None,
) -> tuple[uuid.UUID, str]:
    """A Clover connection with its sealed access token (Clover has no refresh token).
    Written with an owner connection, as an operator's provisioning would. Returns (id, token)."""
    connection_id = uuid.uuid4()
    token = access_token or f"clover-{secrets.token_hex(12)}"
    sealed = cipher.encrypt(
        token, table="pos.pos_connections", column="access_token_enc", row_id=str(connection_id)
    )
    conn.execute(
        "INSERT INTO pos.pos_connections (id, tenant_id, pos_type, access_token_enc, merchant_account_id)"
        " VALUES (%s, %s, 'clover', %s, %s)",
        (connection_id, tenant_id, sealed, merchant_id),
    )
    return connection_id, token


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Clover REST API on loopback.")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with FakeClover(port=args.port) as clover:
        print(f"fake Clover on {clover.base_url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
