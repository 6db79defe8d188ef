"""The RPApos REST client: the WebForms login, then paged reads of ``/api/{path}``.

Everything RPApos-specific (paths, form field names, paging and date parameters, the token
pattern) comes from pos_gateway.rpapos.contract; this module only speaks HTTP.

- The base URL is injected: ``https://{subdomain}.2rpa.com`` (``tenant_base_url``) in the cloud,
  the fake RPApos server's tenant URL locally and in tests.
- Login: GET ``/Login`` for the form's hidden fields, post them back with the credentials and
  ``ButtonLogin=Login``. RPApos answers 200 either way: only the token pattern in the page says
  the login worked; without it the client raises BadCredentials (never an empty catalog).
- Every call has a connect and a read timeout. Transport errors and 5xx are retried with
  exponential backoff by urllib3's ``Retry`` (GET only, never a 4xx, Retry-After ignored so a
  429 is not retried in place); what still fails, and a 429 (too many requests: later, not
  never), raises RpaposUnavailable (a RetryLater).
- A 401 (or a redirect to the login page) logs in again, once per call; a second refusal
  raises SessionExpired.
- ``pages`` yields one typed Page per request, so a caller can stop and resume from a page.
"""

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from html.parser import HTMLParser
from typing import Any, Self
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pos_gateway.rpapos import contract
from pos_gateway.rpapos.contract import EntityType, Source, Transport
from pos_gateway.rpapos.errors import (
    DEFAULT_RETRY_AFTER_SECONDS,
    BadCredentials,
    RpaposProtocolError,
    RpaposRequestError,
    RpaposUnavailable,
    SessionExpired,
)

DEFAULT_TIMEZONE = "America/Guatemala"  # rpapos_connection.timezone's default
RETRIED_STATUSES = frozenset(range(500, 600))
# Answers that say "not now": the run waits and reads the page again (the state machine's retry).
UNAVAILABLE_STATUSES = RETRIED_STATUSES | {429}
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TOKEN = re.compile(contract.LOGIN_TOKEN_PATTERN)


def tenant_base_url(subdomain: str) -> str:
    """The connection's REST base URL in the cloud: ``https://{subdomain}.2rpa.com``."""
    label = subdomain.strip().lower()
    if not _SUBDOMAIN.match(label):
        raise ValueError(f"not a subdomain label: {subdomain!r}")
    return f"https://{label}.2rpa.com"


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of a paged list: its records as RPApos sent them, and where it stands."""

    entity: EntityType
    number: int  # 1-based, as sent in ``pagina``
    size: int  # the page size the server applied (``registros``)
    records: list[dict[str, Any]]
    total: int | None  # the envelope's ``total``: every record of the list, all pages
    is_last: bool
    parent_id: str | None = None  # the parent record's id for per-parent lists (Mesa per area)

    @property
    def next_page(self) -> int | None:
        """Where to resume after this page (None after the last)."""
        return None if self.is_last else self.number + 1


class RpaposRestClient:
    """One connection's REST session. Not thread-safe (one per extraction)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 20.0,
        retry_after_seconds: int = DEFAULT_RETRY_AFTER_SECONDS,
        timezone: str | tzinfo = DEFAULT_TIMEZONE,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        """``timeout`` is (connect, read) seconds per request; ``retries`` the retries after the
        first attempt; ``backoff`` the first wait (doubling, at most ``backoff_max``);
        ``timezone`` the connection's, which aware datetimes of date filters are converted to."""
        self._base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._timeout = timeout
        self._retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=RETRIED_STATUSES,
            backoff_factor=backoff,
            backoff_max=backoff_max,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self._retry_after_seconds = retry_after_seconds
        self._timezone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self._session_factory = session_factory
        self._session: requests.Session | None = None
        self._token: str | None = None

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self._token = None

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    def _http(self) -> requests.Session:
        if self._session is None:
            session = self._session_factory()
            adapter = HTTPAdapter(max_retries=self._retry)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
        return self._session

    # -------------------------------------------------------------- login

    def login(self) -> None:
        """The WebForms login; afterwards the session cookie and the token authorize the API."""
        session = self._http()
        session.headers.pop("Authorization", None)
        session.cookies.clear()
        self._token = None
        url = self._base_url + contract.LOGIN_PATH
        form = self._send("GET", url, allow_redirects=True)
        self._refused_unless_ok(form, "GET " + contract.LOGIN_PATH)
        hidden = hidden_fields(form.text)
        missing = [name for name in contract.LOGIN_HIDDEN_FIELDS if name not in hidden]
        if missing:
            raise RpaposProtocolError(f"the login page has no {', '.join(missing)}: not a WebForms login")
        button, label = contract.LOGIN_BUTTON
        fields = {
            **{name: hidden[name] for name in contract.LOGIN_HIDDEN_FIELDS},
            contract.LOGIN_USER_FIELD: self._username,
            contract.LOGIN_PASSWORD_FIELD: self._password,
            button: label,
        }
        answer = self._send("POST", url, data=fields, allow_redirects=True)
        self._refused_unless_ok(answer, "POST " + contract.LOGIN_PATH)
        found = _TOKEN.search(answer.text)
        if found is None:
            raise BadCredentials(
                f"RPApos refused the login of user {self._username!r} at {self._base_url}"
                " (the answer holds no token)"
            )
        self._token = found["token"]
        session.headers["Authorization"] = f"Bearer {self._token}"

    def _refused_unless_ok(self, response: requests.Response, what: str) -> None:
        if response.status_code in UNAVAILABLE_STATUSES:
            raise RpaposUnavailable(f"{what}: {response.status_code} from RPApos", self._retry_after_seconds)
        if response.status_code != 200:
            raise RpaposProtocolError(f"{what}: {response.status_code} from RPApos")

    # -------------------------------------------------------------- paging

    def pages(
        self,
        entity: EntityType,
        *,
        page_size: int = contract.DEFAULT_PAGE_SIZE,
        date_from: date | datetime | None = None,
        date_to: date | datetime | None = None,
        modified_since: date | datetime | None = None,
        start_page: int = 1,
    ) -> Iterator[Page]:
        """Every page of a REST entity from ``start_page`` on (date filters only for entities
        with a document date: the operational ones). Resume with the same filters and size."""
        source = _source(entity, Transport.REST)
        yield from self._pages(
            source,
            entity,
            f"{contract.API_PREFIX}{source.path}",
            None,
            self._filters(source, entity, date_from, date_to, modified_since),
            page_size,
            start_page,
        )

    def pages_for_parent(
        self,
        entity: EntityType,
        parent_id: str | int,
        *,
        page_size: int = contract.DEFAULT_PAGE_SIZE,
        modified_since: date | datetime | None = None,
        start_page: int = 1,
    ) -> Iterator[Page]:
        """Every page of a per-parent list (``/api/Mesa/{area id}``)."""
        source = _source(entity, Transport.REST_PER_PARENT)
        parent = str(parent_id)
        yield from self._pages(
            source,
            entity,
            f"{contract.API_PREFIX}{source.path}/{quote(parent, safe='')}",
            parent,
            self._filters(source, entity, None, None, modified_since),
            page_size,
            start_page,
        )

    def _filters(
        self,
        source: Source,
        entity: EntityType,
        date_from: date | datetime | None,
        date_to: date | datetime | None,
        modified_since: date | datetime | None,
    ) -> dict[str, str]:
        if (date_from is not None or date_to is not None) and source.date_field is None:
            raise ValueError(f"{entity} has no document date: no date_from/date_to")
        params: dict[str, str] = {}
        for name, value in (
            (contract.DATE_FROM_PARAM, date_from),
            (contract.DATE_TO_PARAM, date_to),
            (contract.MODIFIED_SINCE_PARAM, modified_since),
        ):
            if value is not None:
                params[name] = self._local_iso(value)
        return params

    def _local_iso(self, value: date | datetime) -> str:
        """ISO 8601 in the connection's timezone, without offset (the contract's date format)."""
        if isinstance(value, datetime):
            local = value.astimezone(self._timezone) if value.tzinfo is not None else value
            return local.replace(tzinfo=None).isoformat(timespec="seconds")
        return value.isoformat()

    def _pages(
        self,
        source: Source,
        entity: EntityType,
        path: str,
        parent_id: str | None,
        filters: Mapping[str, str],
        page_size: int,
        start_page: int,
    ) -> Iterator[Page]:
        if page_size < 1 or start_page < 1:
            raise ValueError("page_size and start_page are at least 1")
        number = start_page
        while True:
            params = {**filters, contract.PAGE_PARAM: str(number), contract.PAGE_SIZE_PARAM: str(page_size)}
            page = _page(entity, path, number, page_size, parent_id, self._get_json(path, params))
            yield page
            if page.is_last:
                return
            number += 1

    # -------------------------------------------------------------- HTTP

    def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        if self._token is None:
            self.login()
        response = self._send("GET", self._base_url + path, params=params)
        if _session_refused(response):
            self.login()  # once: the session expired
            response = self._send("GET", self._base_url + path, params=params)
            if _session_refused(response):
                raise SessionExpired(f"GET {path}: RPApos refused the session right after a fresh login")
        status = response.status_code
        if status in UNAVAILABLE_STATUSES:
            raise RpaposUnavailable(f"GET {path}: {status} from RPApos", self._retry_after_seconds)
        if status != 200:
            raise RpaposRequestError(f"GET {path}: {status} from RPApos", status)
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            raise RpaposProtocolError(f"GET {path}: the answer is not JSON") from None

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        try:
            return self._http().request(method, url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            # Refused, dropped or timed out, after the adapter's retries: it may work later.
            what = f"{method} {url.removeprefix(self._base_url)}"
            raise RpaposUnavailable(f"{what}: {type(exc).__name__}", self._retry_after_seconds) from None


def _source(entity: EntityType, transport: Transport) -> Source:
    source = contract.SOURCES[entity]
    if source.transport is not transport:
        hint = " (use pages_for_parent)" if source.transport is Transport.REST_PER_PARENT else ""
        raise ValueError(f"{entity} is read by {source.transport}, not {transport}{hint}")
    return source


def _session_refused(response: requests.Response) -> bool:
    """A 401, or the WebForms way of saying it: a redirect to the login page."""
    if response.status_code == 401:
        return True
    location = response.headers.get("Location", "")
    return response.is_redirect and contract.LOGIN_PATH.lower() in location.lower()


def _page(entity: EntityType, path: str, number: int, size: int, parent_id: str | None, body: Any) -> Page:
    if not isinstance(body, dict) or not isinstance(body.get(contract.ITEMS_KEY), list):
        raise RpaposProtocolError(f"GET {path}: not the paging envelope (no {contract.ITEMS_KEY!r} list)")
    records = body[contract.ITEMS_KEY]
    if not all(isinstance(record, dict) for record in records):
        raise RpaposProtocolError(f"GET {path}: {contract.ITEMS_KEY!r} holds something else than records")
    total = _int_or_none(body.get(contract.TOTAL_KEY))
    applied_size = _int_or_none(body.get(contract.PAGE_SIZE_PARAM)) or size
    answered = _int_or_none(body.get(contract.PAGE_PARAM))
    if answered is not None and answered != number:
        raise RpaposProtocolError(f"GET {path}: asked for page {number}, got page {answered}")
    is_last = len(records) < applied_size or (total is not None and number * applied_size >= total)
    return Page(entity, number, applied_size, records, total, is_last, parent_id)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "input":
            return
        attributes = dict(attrs)
        name = attributes.get("name")
        if (attributes.get("type") or "").lower() == "hidden" and name:
            self.fields[name] = attributes.get("value") or ""


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (the WebForms state a post back must echo)."""
    parser = _HiddenInputs()
    parser.feed(html)
    parser.close()
    return parser.fields
