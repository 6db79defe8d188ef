"""The Square REST client without sockets: what it sends, how it reads answers, how it fails."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from urllib3.exceptions import NewConnectionError, ReadTimeoutError
from urllib3.response import HTTPResponse

from pos_gateway.providers.square.api import (
    PaymentsQuery,
    SquareApi,
    SquareMalformedResponse,
    SquareRateLimited,
    SquareRequestRejected,
    SquareUnauthorized,
    SquareUnavailable,
)

BASE = "https://connect.squareup.test"
TOKEN = "EAAA-secret-access-token"
BEGIN = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
END = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class FakePool(urllib3.PoolManager):
    """Answers from a script and records what urlopen was given; never opens a socket."""

    def __init__(self, *answers: tuple[int, Any] | Exception) -> None:
        super().__init__()
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> HTTPResponse:  # type: ignore[override]
        self.calls.append({"method": method, "url": url, "redirect": redirect, **kw})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return HTTPResponse(body=data, status=status, headers={"Content-Type": "application/json"})


def api(*answers: tuple[int, Any] | Exception) -> tuple[SquareApi, FakePool]:
    pool = FakePool(*answers)
    return SquareApi(BASE + "/", version="2024-03-20", connect_timeout=2.0, read_timeout=7.0, pool=pool), pool


def payment(payment_id: str = "pay_1", created: datetime = BEGIN, **extra: Any) -> dict[str, Any]:
    return {
        "id": payment_id,
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "updated_at": (created + timedelta(seconds=5)).isoformat().replace("+00:00", "Z"),
        "amount_money": {"amount": 1250, "currency": "USD"},
        "status": "COMPLETED",
        **extra,
    }


def test_calls_carry_bearer_auth_version_explicit_timeouts_and_no_retries():
    client, pool = api((200, {"locations": [{"id": "L1", "name": "Main", "status": "ACTIVE"}]}))

    locations = client.list_locations(TOKEN)

    assert [location.id for location in locations] == ["L1"]
    call = pool.calls[0]
    assert (call["method"], call["url"]) == ("GET", f"{BASE}/v2/locations")
    assert call["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert call["headers"]["Square-Version"] == "2024-03-20"
    assert (call["timeout"].connect_timeout, call["timeout"].read_timeout) == (2.0, 7.0)
    assert call["retries"] is False
    assert call["redirect"] is False


def test_list_payments_sends_the_documented_query_and_keeps_each_payment_as_sent():
    listed = payment(card_details={"status": "CAPTURED"})
    client, pool = api((200, {"payments": [listed], "cursor": "next-page"}))

    page = client.list_payments(
        TOKEN, PaymentsQuery(location_id="L1", begin_time=BEGIN, end_time=END, cursor="c1", limit=500)
    )

    query = {k: v[0] for k, v in parse_qs(urlsplit(pool.calls[0]["url"]).query).items()}
    assert urlsplit(pool.calls[0]["url"]).path == "/v2/payments"
    assert query == {
        "location_id": "L1",
        "begin_time": "2026-11-20T14:00:00.000Z",
        "end_time": "2026-11-20T15:00:00.000Z",
        "sort_order": "ASC",
        "limit": "100",  # Square's maximum
        "cursor": "c1",
    }
    assert page.cursor == "next-page"
    assert page.payments[0].id == "pay_1"
    assert page.payments[0].created_at == BEGIN
    assert page.payments[0].raw == listed


def test_the_first_page_has_no_cursor_and_the_last_page_none_back():
    client, pool = api((200, {}))

    page = client.list_payments(TOKEN, PaymentsQuery(location_id="L1", begin_time=BEGIN, end_time=END))

    assert "cursor" not in parse_qs(urlsplit(pool.calls[0]["url"]).query)
    assert (page.payments, page.cursor) == ([], None)


def test_refresh_posts_the_refresh_token_grant_without_bearer_auth():
    expires = "2026-12-20T15:00:00Z"
    client, pool = api((200, {"access_token": "new", "expires_at": expires, "refresh_token": "r1"}))

    obtained = client.refresh_access_token(client_id="app", client_secret="app-secret", refresh_token="r1")

    call = pool.calls[0]
    assert (call["method"], call["url"]) == ("POST", f"{BASE}/oauth2/token")
    assert "Authorization" not in call["headers"]
    assert call["headers"]["Content-Type"] == "application/json"
    assert json.loads(call["body"]) == {
        "client_id": "app",
        "client_secret": "app-secret",
        "grant_type": "refresh_token",
        "refresh_token": "r1",
    }
    assert obtained.access_token == "new"
    assert obtained.expires_at == datetime(2026, 12, 20, 15, tzinfo=UTC)
    assert "new" not in repr(obtained)
    assert "r1" not in repr(obtained)


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (401, SquareUnauthorized, False),
        (403, SquareRequestRejected, False),
        (400, SquareRequestRejected, False),
        (429, SquareRateLimited, True),
        (500, SquareUnavailable, True),
        (503, SquareUnavailable, True),
    ],
)
def test_error_statuses_map_to_errors_with_square_codes_and_no_details(status, error, retryable):
    body = {"errors": [{"category": "X", "code": f"CODE_{status}", "detail": f"token {TOKEN} refused"}]}
    client, _ = api((status, body))

    with pytest.raises(error) as raised:
        client.list_locations(TOKEN)

    assert raised.value.status == status
    assert raised.value.codes == (f"CODE_{status}",)
    assert raised.value.retryable is retryable
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    "failure",
    [
        ReadTimeoutError(None, "/v2/locations", "read timed out"),  # type: ignore[arg-type]
        NewConnectionError(None, "connection refused"),  # type: ignore[arg-type]
    ],
)
def test_timeouts_and_network_failures_are_unavailable(failure):
    client, _ = api(failure)

    with pytest.raises(SquareUnavailable) as raised:
        client.list_locations(TOKEN)

    assert raised.value.retryable
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        [1, 2],
        {"payments": {"id": "x"}},
        {"payments": ["x"]},
        {"payments": [{"id": "pay_1"}]},  # no created_at
        {"payments": [payment(created_at="yesterday")]},
        {"payments": [], "cursor": 7},
    ],
)
def test_a_success_with_an_unexpected_body_is_malformed(body):
    client, _ = api((200, body))

    with pytest.raises(SquareMalformedResponse):
        client.list_payments(TOKEN, PaymentsQuery(location_id="L1", begin_time=BEGIN, end_time=END))


def test_a_redirect_is_not_followed_but_refused():
    client, _ = api((302, b""))

    with pytest.raises(SquareRequestRejected, match="302"):
        client.list_locations(TOKEN)
