"""A small Clover REST client over urllib3 (shipped with botocore: no new dependency).

Explicit timeouts, no retries and no redirects inside: a failed call raises at once and the
queue decides when to try again. The base URL is injected (``https://api.clover.com`` in
production, a fake server locally and in tests).
"""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import urllib3
from pydantic import ValidationError

from pos_gateway.providers.clover.errors import (
    CloverApiError,
    CloverNotFound,
    CloverUnauthorized,
    ProviderBusy,
)
from pos_gateway.providers.clover.payments import PAYMENT_EXPANSIONS, CloverPayment

PRODUCTION_BASE_URL = "https://api.clover.com"
MAX_RETRY_AFTER_SECONDS = 900


class CloverClient:
    def __init__(
        self,
        base_url: str = PRODUCTION_BASE_URL,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        rate_limited_backoff_seconds: int = 10,
        unavailable_backoff_seconds: int = 30,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = urllib3.Timeout(
            total=connect_timeout + read_timeout, connect=connect_timeout, read=read_timeout
        )
        self._rate_limited_backoff = rate_limited_backoff_seconds
        self._unavailable_backoff = unavailable_backoff_seconds
        self._pool = pool or urllib3.PoolManager(num_pools=4, maxsize=4)

    def get_payment(self, merchant_id: str, payment_id: str, access_token: str) -> CloverPayment:
        """The payment with its refunds and its order's customers (see PAYMENT_EXPANSIONS)."""
        path = f"/v3/merchants/{quote(merchant_id, safe='')}/payments/{quote(payment_id, safe='')}"
        body = self._get(path, {"expand": ",".join(PAYMENT_EXPANSIONS)}, access_token)
        try:
            return CloverPayment.model_validate_json(body)
        except ValidationError as exc:
            # Only the locations: the input holds customer contacts.
            where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)})
            raise CloverApiError(f"unreadable payment {payment_id}: invalid {', '.join(where)}") from None

    def _get(self, path: str, query: dict[str, str], access_token: str) -> bytes:
        try:
            response = self._pool.request(
                "GET",
                self._base_url + path,
                fields=query,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            # Timeouts, refused or dropped connections: the call may succeed later.
            raise ProviderBusy(f"GET {path}: {type(exc).__name__}", self._unavailable_backoff) from None
        return self._checked(path, response)

    def _checked(self, path: str, response: urllib3.BaseHTTPResponse) -> bytes:
        status = response.status
        if 200 <= status < 300:
            return response.data
        if status == 429:
            wait = retry_after(response.headers.get("Retry-After"), self._rate_limited_backoff)
            raise ProviderBusy(f"GET {path}: 429 rate limited", wait, rate_limited=True)
        if status >= 500:
            wait = retry_after(response.headers.get("Retry-After"), self._unavailable_backoff)
            raise ProviderBusy(f"GET {path}: {status} from Clover", wait)
        if status == 401:
            raise CloverUnauthorized(f"GET {path}: 401, Clover refused the access token")
        if status == 404:
            raise CloverNotFound(f"GET {path}: 404 not found")
        raise CloverApiError(f"GET {path}: {status} from Clover")


def retry_after(header: Any, default: int, now: datetime | None = None) -> int:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), within [1, 900]."""
    seconds: float = default
    text = str(header).strip() if header is not None else ""
    if text.isdigit():
        seconds = int(text)
    elif text:
        try:
            seconds = (parsedate_to_datetime(text) - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError):
            seconds = default
    return int(min(max(seconds, 1), MAX_RETRY_AFTER_SECONDS))
