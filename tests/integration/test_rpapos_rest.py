"""The RPApos REST client against the fake RPApos over real HTTP on loopback."""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from local.fake_rpapos import TENANT_PREFIX, FakeRpapos, Volume
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos import contract
from pos_gateway.rpapos.contract import EntityType as E
from pos_gateway.rpapos.errors import (
    BadCredentials,
    RpaposProtocolError,
    RpaposRequestError,
    RpaposUnavailable,
    SessionExpired,
)
from pos_gateway.rpapos.rest import Page, RpaposRestClient, hidden_fields, tenant_base_url

TENANT = "acme"
BIG = "bigco"
USER = "cajero"
PASSWORD = "contraseña-de-prueba"
PLU_PATH = contract.API_PREFIX + contract.SOURCES[E.PLU].path


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRpapos]:
    with FakeRpapos(hang_seconds=1.0) as fake:
        fake.add_tenant(TENANT, USER, PASSWORD)
        fake.add_tenant(BIG, USER, PASSWORD, volume=Volume(plus=100_000))
        yield fake


@pytest.fixture
def rpapos(server: FakeRpapos) -> FakeRpapos:
    server.reset()
    return server


def make_client(rpapos: FakeRpapos, tenant: str = TENANT, password: str = PASSWORD) -> RpaposRestClient:
    return RpaposRestClient(
        rpapos.tenant_url(tenant), USER, password, timeout=(1.0, 0.3), retries=2, backoff=0.01, timezone="UTC"
    )


@pytest.fixture
def client(rpapos: FakeRpapos) -> Iterator[RpaposRestClient]:
    with make_client(rpapos) as rest:
        yield rest


def calls(rpapos: FakeRpapos, path: str, method: str = "GET") -> int:
    return sum(1 for r in rpapos.requests if r.path == path and r.method == method)


def logins(rpapos: FakeRpapos) -> int:
    return calls(rpapos, contract.LOGIN_PATH, "POST")


# ------------------------------------------------------------------ login


def test_the_login_posts_the_form_back_and_authorizes_the_api(
    rpapos: FakeRpapos, client: RpaposRestClient
) -> None:
    client.login()

    assert client.logged_in
    assert rpapos.sessions(TENANT) == 1
    assert [(r.method, r.path, r.status) for r in rpapos.requests] == [
        ("GET", contract.LOGIN_PATH, 200),
        ("POST", contract.LOGIN_PATH, 200),
    ]
    first = next(client.pages(E.MONEDA))
    assert first.total == rpapos.catalog(TENANT).count(E.MONEDA)


def test_a_wrong_password_raises_bad_credentials_and_yields_no_page(rpapos: FakeRpapos) -> None:
    seen: list[Page] = []
    with make_client(rpapos, password="not-the-password") as client, pytest.raises(BadCredentials) as raised:
        seen.extend(client.pages(E.PLU))

    assert seen == []
    assert "not-the-password" not in str(raised.value)
    assert calls(rpapos, PLU_PATH) == 0


def test_a_refused_login_is_bad_credentials_even_with_the_right_password(
    rpapos: FakeRpapos, client: RpaposRestClient
) -> None:
    rpapos.reject_logins(TENANT)

    with pytest.raises(BadCredentials):
        client.login()
    client.login()  # the next one works
    assert client.logged_in


def test_the_login_post_needs_the_hidden_fields_of_a_form_it_was_given(rpapos: FakeRpapos) -> None:
    login_url = rpapos.tenant_url(TENANT) + contract.LOGIN_PATH
    credentials = {
        contract.LOGIN_USER_FIELD: USER,
        contract.LOGIN_PASSWORD_FIELD: PASSWORD,
        "ButtonLogin": "Login",
    }
    token = re.compile(contract.LOGIN_TOKEN_PATTERN)

    bare = requests.post(login_url, data=credentials, timeout=2)
    forged = requests.post(
        login_url, data={**credentials, **dict.fromkeys(contract.LOGIN_HIDDEN_FIELDS, "AAAA")}, timeout=2
    )
    form = hidden_fields(requests.get(login_url, timeout=2).text)
    echoed = requests.post(login_url, data={**credentials, **form}, timeout=2)
    no_button = requests.post(
        login_url, data={k: v for k, v in {**credentials, **form}.items() if k != "ButtonLogin"}, timeout=2
    )

    assert (bare.status_code, token.search(bare.text)) == (400, None)
    assert (forged.status_code, token.search(forged.text)) == (400, None)
    assert set(form) == set(contract.LOGIN_HIDDEN_FIELDS)
    assert echoed.status_code == 200
    assert token.search(echoed.text)
    assert (no_button.status_code, token.search(no_button.text)) == (200, None)


def test_the_form_state_is_new_on_every_get(rpapos: FakeRpapos) -> None:
    login_url = rpapos.tenant_url(TENANT) + contract.LOGIN_PATH
    first, second = (hidden_fields(requests.get(login_url, timeout=2).text) for _ in range(2))
    assert first["__VIEWSTATE"] != second["__VIEWSTATE"]
    assert first["__EVENTVALIDATION"] != second["__EVENTVALIDATION"]


def test_api_calls_without_a_session_get_401(rpapos: FakeRpapos) -> None:
    answer = requests.get(rpapos.tenant_url(TENANT) + PLU_PATH, timeout=2)
    assert answer.status_code == 401


def test_an_unavailable_login_page_is_retryable(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    rpapos.fail(contract.LOGIN_PATH, status=502, times=10)
    with pytest.raises(RpaposUnavailable):
        client.login()
    assert calls(rpapos, contract.LOGIN_PATH) == 3  # the first try and two retries


# ------------------------------------------------------------------ paging


def test_paging_walks_every_page_with_exact_counts(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    catalog = rpapos.catalog(TENANT)
    count = catalog.count(E.PLU)

    pages = list(client.pages(E.PLU, page_size=7))

    assert [page.number for page in pages] == list(range(1, 7))
    assert [len(page.records) for page in pages] == [7, 7, 7, 7, 7, 5]
    assert [page.is_last for page in pages] == [False] * 5 + [True]
    assert {page.total for page in pages} == {count}
    codes = [record["Codigo_PLU"] for page in pages for record in page.records]
    assert codes == [catalog.code(E.PLU, i) for i in range(count)]
    assert pages[-1].next_page is None
    assert pages[0].next_page == 2


def test_a_run_resumes_from_a_page(client: RpaposRestClient) -> None:
    everything = [r["Codigo_PLU"] for page in client.pages(E.PLU, page_size=10) for r in page.records]
    resumed = list(client.pages(E.PLU, page_size=10, start_page=3))

    assert [page.number for page in resumed] == [3, 4]
    assert [r["Codigo_PLU"] for page in resumed for r in page.records] == everything[20:]


def test_a_full_last_page_is_the_last_by_the_total(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    pages = list(client.pages(E.PLU, page_size=20))  # 40 PLUs: two full pages, no empty third
    assert [(page.number, len(page.records), page.is_last) for page in pages] == [
        (1, 20, False),
        (2, 20, True),
    ]
    assert calls(rpapos, PLU_PATH) == 2


def test_every_rest_entity_is_served_whole(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    catalog = rpapos.catalog(TENANT)
    for entity, source in contract.SOURCES.items():
        if source.transport is not contract.Transport.REST:
            continue
        records = [
            r for page in client.pages(entity, page_size=contract.DEFAULT_PAGE_SIZE) for r in page.records
        ]
        assert len(records) == catalog.count(entity), entity
        assert len({str(r[source.id_field]) for r in records}) == len(records), entity
        assert all(contract.DELETED_FIELD in r and contract.MODIFIED_FIELD in r for r in records), entity


def test_pages_refuses_entities_read_otherwise(client: RpaposRestClient) -> None:
    with pytest.raises(ValueError, match="pages_for_parent"):
        next(client.pages(E.MESA))
    with pytest.raises(ValueError, match="soap"):
        next(client.pages(E.PLU_OPTION_GROUP))
    with pytest.raises(ValueError, match="no document date"):
        next(client.pages(E.PLU, date_from=date(2026, 1, 1)))


def test_a_page_larger_than_the_server_allows_is_served_at_its_size(rpapos: FakeRpapos) -> None:
    with make_client(rpapos, BIG) as client:
        first = next(client.pages(E.PLU, page_size=5000))
    assert (first.size, len(first.records), first.is_last) == (1000, 1000, False)


# ------------------------------------------------------------------ filters


def test_date_filters_select_documents_inclusive_from_exclusive_to(
    rpapos: FakeRpapos, client: RpaposRestClient
) -> None:
    catalog = rpapos.catalog(TENANT)
    date_from, date_to = datetime(2025, 10, 1), datetime(2026, 2, 1)
    expected = [
        catalog.code(E.COMPRA, i)
        for i in range(catalog.count(E.COMPRA))
        if date_from <= catalog.document_date(E.COMPRA, i) < date_to
    ]

    pages = list(client.pages(E.COMPRA, page_size=4, date_from=date_from, date_to=date_to))

    assert 0 < len(expected) < catalog.count(E.COMPRA)
    assert [r["Numero_Compra"] for page in pages for r in page.records] == expected
    assert {page.total for page in pages} == {len(expected)}
    sent = next(r.query for r in rpapos.requests if r.path.endswith("/Compra"))
    assert sent[contract.DATE_FROM_PARAM] == "2025-10-01T00:00:00"
    assert sent[contract.DATE_TO_PARAM] == "2026-02-01T00:00:00"


def test_aware_datetimes_are_sent_in_the_connections_timezone(rpapos: FakeRpapos) -> None:
    with RpaposRestClient(
        rpapos.tenant_url(TENANT), USER, PASSWORD, timezone="America/Guatemala", timeout=(1.0, 1.0)
    ) as client:
        list(client.pages(E.MERMA, date_from=datetime(2026, 1, 1, 6, 0, tzinfo=UTC)))
    sent = next(r.query for r in rpapos.requests if r.path.endswith("/Merma"))
    assert sent[contract.DATE_FROM_PARAM] == "2026-01-01T00:00:00"  # UTC-6


def test_modified_since_selects_changed_records(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    catalog = rpapos.catalog(TENANT)
    since = datetime(2026, 1, 1)
    expected = [
        catalog.code(E.PLU, i) for i in range(catalog.count(E.PLU)) if catalog.modified_at(E.PLU, i) >= since
    ]

    codes = [
        r["Codigo_PLU"]
        for page in client.pages(E.PLU, page_size=5, modified_since=since)
        for r in page.records
    ]

    assert 0 < len(expected) < catalog.count(E.PLU)
    assert codes == expected


def test_a_record_changed_in_rpapos_shows_up_in_the_next_incremental_read(
    server: FakeRpapos, client: RpaposRestClient
) -> None:
    since = datetime.now().replace(microsecond=0) - timedelta(minutes=1)
    changed = server.catalog(TENANT).modify(E.PERSONA, 2, Nombre="Nombre Cambiado")
    try:
        records = [r for page in client.pages(E.PERSONA, modified_since=since) for r in page.records]
    finally:
        server.catalog(TENANT).modify(E.PERSONA, 2, **{contract.MODIFIED_FIELD: "2025-01-01T00:00:00"})
    assert records == [changed]


# ------------------------------------------------------------------ mesa per area


def test_mesas_are_read_per_area(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    catalog = rpapos.catalog(TENANT)
    areas = [r for page in client.pages(E.AREA) for r in page.records]
    per_area = {
        area["Codigo_Area"]: [
            m
            for page in client.pages_for_parent(E.MESA, area["Codigo_Area"], page_size=3)
            for m in page.records
        ]
        for area in areas
    }

    active = [a["Codigo_Area"] for a in areas if not a[contract.DELETED_FIELD]]
    deleted = [a["Codigo_Area"] for a in areas if a[contract.DELETED_FIELD]]
    assert len(deleted) == 1
    assert per_area[deleted[0]] == []
    for code in active:
        assert len(per_area[code]) == catalog.volume.mesas_per_area
        assert {m["Codigo_Area"] for m in per_area[code]} == {code}
    assert sum(len(mesas) for mesas in per_area.values()) == catalog.count(E.MESA)
    page = next(client.pages_for_parent(E.MESA, active[0], page_size=3))
    assert (page.parent_id, page.total, page.is_last) == (active[0], catalog.volume.mesas_per_area, False)


def test_mesas_of_an_unknown_area_are_a_request_error(client: RpaposRestClient) -> None:
    with pytest.raises(RpaposRequestError) as raised:
        next(client.pages_for_parent(E.MESA, "NOPE"))
    assert raised.value.status == 404


# ------------------------------------------------------------------ retries


def test_5xx_answers_are_retried_with_backoff(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    rpapos.fail(PLU_PATH, status=503, times=1)
    rpapos.fail(PLU_PATH, status=500, times=1)

    pages = list(client.pages(E.PLU))

    assert len(pages[0].records) == rpapos.catalog(TENANT).count(E.PLU)
    assert [r.status for r in rpapos.requests if r.path == PLU_PATH] == [503, 500, 200]


def test_persistent_5xx_is_retryable_after_the_retries(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    rpapos.fail(PLU_PATH, status=504, times=10)

    with pytest.raises(RpaposUnavailable) as raised:
        next(client.pages(E.PLU))

    assert isinstance(raised.value, RetryLater)
    assert raised.value.retry_after_seconds > 0
    assert calls(rpapos, PLU_PATH) == 3


def test_transport_errors_are_retried(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    rpapos.drop(PLU_PATH)
    rpapos.hang(PLU_PATH)  # the read timeout (0.3 s) gives up on it

    page = next(client.pages(E.PLU))

    assert page.total == rpapos.catalog(TENANT).count(E.PLU)
    assert [r.fault for r in rpapos.requests if r.path == PLU_PATH] == ["drop", "hang", None]


def test_a_server_that_never_answers_is_retryable(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    client.login()
    rpapos.hang(PLU_PATH, times=3)
    with pytest.raises(RpaposUnavailable, match=r"Timeout|ConnectionError"):
        next(client.pages(E.PLU))
    assert calls(rpapos, PLU_PATH) == 3


@pytest.mark.parametrize("status", [400, 403, 404])
def test_4xx_answers_are_never_retried(rpapos: FakeRpapos, client: RpaposRestClient, status: int) -> None:
    rpapos.fail(PLU_PATH, status=status, times=5)

    with pytest.raises(RpaposRequestError) as raised:
        next(client.pages(E.PLU))

    assert raised.value.status == status
    assert calls(rpapos, PLU_PATH) == 1


def test_a_429_is_a_retry_later_not_a_refusal(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    """Too many requests: the client does not hammer RPApos in place, the run reads the page later."""
    rpapos.fail(PLU_PATH, status=429, times=1)

    with pytest.raises(RpaposUnavailable, match="429"):
        next(client.pages(E.PLU))
    assert calls(rpapos, PLU_PATH) == 1

    assert next(client.pages(E.PLU)).records  # the page read again, later


def test_an_answer_that_is_not_the_envelope_is_a_protocol_error(
    rpapos: FakeRpapos, client: RpaposRestClient
) -> None:
    rpapos.fail(PLU_PATH, status=200)  # an HTML page where JSON was expected
    with pytest.raises(RpaposProtocolError):
        next(client.pages(E.PLU))


# ------------------------------------------------------------------ sessions and outages


def test_an_expired_session_logs_in_again_once(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    pages = client.pages(E.PLU, page_size=10)
    first = next(pages)
    rpapos.expire_sessions(TENANT)

    rest = list(pages)

    assert [page.number for page in [first, *rest]] == [1, 2, 3, 4]
    assert logins(rpapos) == 2
    assert [r.status for r in rpapos.requests if r.path == PLU_PATH] == [200, 401, 200, 200, 200]


def test_a_session_refused_after_a_fresh_login_gives_up(rpapos: FakeRpapos, client: RpaposRestClient) -> None:
    client.login()
    rpapos.fail(PLU_PATH, status=401, times=5)

    with pytest.raises(SessionExpired):
        next(client.pages(E.PLU))

    assert logins(rpapos) == 2  # the first and exactly one more
    assert calls(rpapos, PLU_PATH) == 2


def test_an_outage_is_retryable_and_the_run_resumes_after_it(
    rpapos: FakeRpapos, client: RpaposRestClient
) -> None:
    pages = client.pages(E.PLU, page_size=10)
    done = [next(pages)]
    rpapos.outage()
    with pytest.raises(RpaposUnavailable):
        next(pages)
    rpapos.outage(drop=True)
    resume_from = done[-1].number + 1
    with pytest.raises(RpaposUnavailable):
        next(client.pages(E.PLU, page_size=10, start_page=resume_from))
    rpapos.end_outage()

    done.extend(client.pages(E.PLU, page_size=10, start_page=resume_from))

    assert [page.number for page in done] == [1, 2, 3, 4]
    assert sum(len(page.records) for page in done) == rpapos.catalog(TENANT).count(E.PLU)


# ------------------------------------------------------------------ volume, tenants


def test_100k_plus_are_served_page_by_page(rpapos: FakeRpapos) -> None:
    catalog = rpapos.catalog(BIG)
    with make_client(rpapos, BIG) as client:
        first = next(client.pages(E.PLU, page_size=1000))
        middle = next(client.pages(E.PLU, page_size=1000, start_page=50))
        last = list(client.pages(E.PLU, page_size=1000, start_page=100))

    assert first.total == 100_000
    assert (len(first.records), first.is_last) == (1000, False)
    assert middle.records[0]["Codigo_PLU"] == catalog.code(E.PLU, 49_000)
    assert [(page.number, len(page.records), page.is_last) for page in last] == [(100, 1000, True)]
    assert last[0].records[-1]["Codigo_PLU"] == catalog.code(E.PLU, 99_999)


def test_tenants_are_apart(rpapos: FakeRpapos) -> None:
    with make_client(rpapos, TENANT) as small, make_client(rpapos, BIG) as big:
        small_first = next(small.pages(E.PLU, page_size=3))
        big_first = next(big.pages(E.PLU, page_size=3))
    assert (small_first.total, big_first.total) == (40, 100_000)
    assert small_first.records != big_first.records  # seeded by subdomain
    assert {r.subdomain for r in rpapos.requests} == {TENANT, BIG}
    assert rpapos.tenant_url(TENANT).endswith(TENANT_PREFIX + TENANT)


def test_the_cloud_base_url_is_the_subdomain_of_2rpa() -> None:
    assert tenant_base_url("Acme") == "https://acme.2rpa.com"
    for bad in ("", "a.b", "evil.com/x", "-x", "a b"):
        with pytest.raises(ValueError, match="subdomain"):
            tenant_base_url(bad)


def test_one_session_from_the_factory_serves_the_whole_run(rpapos: FakeRpapos) -> None:
    made: list[requests.Session] = []

    def factory() -> requests.Session:
        made.append(requests.Session())
        return made[-1]

    with RpaposRestClient(
        rpapos.tenant_url(TENANT), USER, PASSWORD, timeout=(1.0, 1.0), session_factory=factory
    ) as client:
        list(client.pages(E.PLU, page_size=10))
        rpapos.expire_sessions(TENANT)
        list(client.pages(E.SKU, page_size=10))

    assert len(made) == 1
    assert logins(rpapos) == 2
