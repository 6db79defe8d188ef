"""RPApos REST: the client (``RpaposRestClient``: the WebForms login, then JSON pages) against a
provider on loopback that answers anything, and the records it reads as the loader takes them
(``mapping.external_id``, ``payload_hash``, ``map_record``, and ``load_page`` on the module's
database).

The rule: a page is a ``Page`` or the client raises a documented RPApos error (BadCredentials,
SessionExpired, RpaposUnavailable, RpaposRequestError, RpaposProtocolError); a record maps or is
refused with ValidationError / Invalid; ``load_page`` counts every record once and writes an id
map entry only for a record it inserted.
"""

import json
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from local import seed
from local.database import Database
from local.fake_rpapos import Catalog, Volume
from pos_gateway.db import tenant_transaction
from pos_gateway.rpapos import contract
from pos_gateway.rpapos.contract import EntityType
from pos_gateway.rpapos.errors import RpaposError
from pos_gateway.rpapos.loader import LoadContext, LoadResult, load_page
from pos_gateway.rpapos.mapping import (
    MAPPERS,
    Invalid,
    Mapped,
    PluOptions,
    Rules,
    ValidationError,
    external_id,
    map_record,
    payload_hash,
)
from pos_gateway.rpapos.rest import Page, RpaposRestClient
from tests.fuzz.conftest import (
    NASTY_STRINGS,
    BodyRecipe,
    Flavor,
    Raw,
    Reply,
    ScriptedServer,
    Seen,
    attempt,
    dumps,
    fuzz,
    recipes,
)
from tests.helpers import count, one, unique

E = EntityType
USER = "cajero"
PASSWORD = "contraseña-de-prueba"
TOKEN = "eyJ.fuzz.token"
CATALOG = Catalog("fuzz-seed", Volume(plus=3, skus=3, documents=2, modifier_groups=2, items_per_group=2))
RULES = Rules("GTQ", {"TG01": "dine_in"})
SHALLOW = Flavor(deep=False)


def plain(record: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON gives it (the generator's Decimals as strings)."""
    loaded: dict[str, Any] = json.loads(json.dumps(record, default=str))
    return loaded


PLUS = [plain(record) for record in CATALOG.records(E.PLU, range(3))]
PAGE: dict[str, Any] = {
    contract.ITEMS_KEY: PLUS,
    contract.TOTAL_KEY: 7,
    contract.PAGE_PARAM: "__PAGE__",  # the server writes the page asked for here
    contract.PAGE_SIZE_PARAM: 3,
}
HIDDEN = "".join(
    f'<input type="hidden" name="{name}" id="{name}" value="c3RhdGU=" />'
    for name in contract.LOGIN_HIDDEN_FIELDS
)
LOGIN_FORM = f'<!DOCTYPE html><html><body><form method="post" action="./Login">{HIDDEN}</form></body></html>'
LOGIN_OK = f"<html><body><script>localStorage.token = '{TOKEN}';</script></body></html>"


# ---------------------------------------------------------------- the provider


@dataclass(frozen=True)
class Api:
    """How the API answers (the login answers as RPApos does unless told otherwise)."""

    status: int = 200
    content_type: str | None = "application/json"
    location: str | None = None
    login_form: str = LOGIN_FORM
    login_answer: str = LOGIN_OK


def provider(page: bytes, api: Api) -> Callable[[Seen], Reply]:
    def answer(seen: Seen) -> Reply:
        url = urlsplit(seen.path)
        if url.path == contract.LOGIN_PATH:
            text = api.login_form if seen.method == "GET" else api.login_answer
            return Reply(200, text.encode("utf-8", "surrogatepass"), "text/html; charset=utf-8")
        if url.path.startswith(contract.API_PREFIX):
            asked = parse_qs(url.query).get(contract.PAGE_PARAM, ["1"])[0]
            headers = () if api.location is None else (("Location", api.location),)
            return Reply(api.status, page.replace(b'"__PAGE__"', asked.encode()), api.content_type, headers)
        return Reply(404, b'{"Message": "No existe"}')

    return answer


@pytest.fixture(scope="module")
def rpapos() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def read_pages(server: ScriptedServer, page: bytes, api: Api, pages: int = 3) -> list[Page] | RpaposError:
    """Up to ``pages`` pages of PLUs, or the RPApos error the client raised."""
    server.script(provider(page, api))
    client = RpaposRestClient(
        server.base_url, USER, PASSWORD, timeout=(1.0, 5.0), retries=0, backoff=0.0, timezone="UTC"
    )
    with client:
        return attempt(lambda: list(islice(client.pages(E.PLU, page_size=3), pages)), RpaposError)


apis = st.builds(
    Api,
    st.sampled_from([200] * 8 + [201, 204, 301, 302, 400, 401, 403, 404, 409, 429, 500, 502, 503]),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=utf-16",
            "application/json; charset=bogus",
            "text/html",
            None,
        ]
    ),
    st.sampled_from([None, None, "/Login?ReturnUrl=%2fapi", "https://elsewhere.example/Login", "/api/PLU"]),
)


def check_pages(read: list[Page] | RpaposError) -> None:
    if isinstance(read, RpaposError):
        note(f"refused {type(read).__name__}")
        return
    note(f"{len(read)} page(s)")
    for page in read:
        assert page.entity is E.PLU
        assert page.number >= 1
        assert page.size >= 1
        assert all(isinstance(record, dict) for record in page.records)


# The deep nesting the client cannot read is test_a_deeply_nested_page_is_a_protocol_error_not_a_crash.
@fuzz(100)
@given(recipe=recipes(PAGE, SHALLOW, extra=(PLUS[0], [PLUS[0]] * 4, "__PAGE__", 0, 3)), api=apis)
def test_a_page_answer_is_pages_or_an_rpapos_error(
    rpapos: ScriptedServer, recipe: BodyRecipe, api: Api
) -> None:
    check_pages(read_pages(rpapos, recipe.body(PAGE), api))


html_texts = st.one_of(
    st.text(max_size=300),
    st.sampled_from(NASTY_STRINGS),
    st.sampled_from(
        [
            LOGIN_FORM.replace("__VIEWSTATE", "__VIEWSTATE_X", 1),
            LOGIN_FORM.replace('type="hidden"', 'type="HIDDEN"'),
            LOGIN_FORM.replace('value="c3RhdGU="', ""),
            LOGIN_FORM.replace("<input", "<input <input"),
            LOGIN_FORM + "<!--",
            LOGIN_FORM + "<![CDATA[",
            LOGIN_FORM + "</",
            "<!DOCTYPE",
            "<input type=hidden name=__VIEWSTATE value='&#xD800;&#0;&bogus;'>",
            "<" * 5000,
            "<div>" * 20_000,
            LOGIN_OK.replace("'", '"'),
            "localStorage.token = '';",
            "localStorage.token = '" + "x" * 100_000 + "';",
            "localStorage.token = 'a\r\nX-Injected: 1';",
        ]
    ),
)


@fuzz(60)
@given(form=html_texts | st.just(LOGIN_FORM), answer=html_texts | st.just(LOGIN_OK))
def test_a_login_page_logs_in_or_is_an_rpapos_error(rpapos: ScriptedServer, form: str, answer: str) -> None:
    check_pages(
        read_pages(
            rpapos,
            dumps(PAGE).replace('"__PAGE__"', "1").encode(),
            Api(login_form=form, login_answer=answer),
            1,
        )
    )


def test_a_huge_page_is_read_or_refused(rpapos: ScriptedServer) -> None:
    """Eight megabytes of records in one answer (the client has no size limit of its own)."""
    records = [{**PLUS[0], "Codigo_PLU": f"PLU{n:07d}", "Descripcion": "x" * 150} for n in range(30_000)]
    body = json.dumps({contract.ITEMS_KEY: records, contract.TOTAL_KEY: 30_000}).encode()
    check_pages(read_pages(rpapos, body, Api(), 1))


def note(outcome: str) -> None:
    """An outcome for --hypothesis-show-statistics (outside hypothesis: nothing)."""
    if currently_in_test_context():
        event(outcome)


# ---------------------------------------------------------------- records, as the loader maps them


def template(entity: EntityType) -> dict[str, Any]:
    if entity is E.PLU_OPTION_GROUP_ASSIGNMENT:
        return {"Codigo_PLU": "PLU000001", "Codigo_Grupo": "MG001", "Orden": 1, contract.DELETED_FIELD: False}
    return plain(CATALOG.record(entity, 0))


RECORD_RECIPES = {entity: recipes(template(entity), SHALLOW, whole_body=False) for entity in MAPPERS}
record_recipes = st.one_of([st.tuples(st.just(entity), made) for entity, made in RECORD_RECIPES.items()])


def as_read(recipe: BodyRecipe, entity: EntityType) -> Any:
    """The record as the client hands it over: the mutated JSON text, read by json.loads."""
    try:
        return json.loads(recipe.body(template(entity)))
    except ValueError:  # not JSON at all: the client refused it (RpaposProtocolError)
        return None


def surrogate_in(value: Any) -> bool:
    """A lone UTF-16 surrogate ("\\ud800" in the JSON): test_a_lone_surrogate_in_a_record_..."""
    if isinstance(value, str):
        return any(unicodedata.category(char) == "Cs" for char in value)
    if isinstance(value, dict):
        return any(surrogate_in(key) or surrogate_in(item) for key, item in value.items())
    if isinstance(value, list):
        return any(surrogate_in(item) for item in value)
    return False


def huge_number_in(value: Any) -> bool:
    """A number (or numeric text) of 20 integer digits or more: test_a_huge_amount_..."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == value and abs(value) >= 1e19
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return False
        return number.is_finite() and abs(number) >= Decimal("1e19")
    if isinstance(value, dict):
        return any(huge_number_in(item) for item in value.values())
    if isinstance(value, list):
        return any(huge_number_in(item) for item in value)
    return False


def map_one(entity: EntityType, record: dict[str, Any]) -> Mapped | ValidationError | Invalid:
    id_field = contract.SOURCES[entity].id_field
    code = external_id(record, id_field) or "X"
    result: Mapped | ValidationError | Invalid
    try:
        result = map_record(entity, code, dict(record), RULES)
    except (ValidationError, Invalid) as refused:
        result = refused
    return result


@fuzz(200)
@given(made=record_recipes)
def test_a_record_maps_or_is_refused_with_validation_error_or_invalid(
    made: tuple[EntityType, BodyRecipe],
) -> None:
    entity, recipe = made
    record = as_read(recipe, entity)
    assume(isinstance(record, dict))
    assume(not surrogate_in(record) and not huge_number_in(record))
    payload_hash(entity, record, RULES)
    mapped = map_one(entity, record)
    event(f"{entity.value} {'mapped' if isinstance(mapped, Mapped) else 'refused'}")
    if entity is E.PLU:
        options = attempt(lambda: PluOptions.model_validate(record).pairs(), ValidationError)
        assert isinstance(options, dict | ValidationError)


# ---------------------------------------------------------------- load_page, on the database


@dataclass(frozen=True)
class Shop:
    tenant_id: uuid.UUID
    context: LoadContext


@pytest.fixture(scope="module")
def shop(owner: psycopg.Connection[Any]) -> Shop:
    tenant_id = seed.create_tenant(owner, unique("Loader fuzz "))
    connection_id = uuid.uuid4()
    password = seed.dev_cipher().encrypt(
        "s3cret-Passw0rd",
        table="rpapos.rpapos_connection",
        column="password_encrypted",
        row_id=str(connection_id),
    )
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
        " VALUES (%s, %s, %s, 'admin', %s)",
        (connection_id, tenant_id, unique("fuzz-").lower(), password),
    )
    run = one(
        owner.execute(
            "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, entity_types)"
            " VALUES (%s, %s, 'catalog', '{plu}') RETURNING id",
            (tenant_id, connection_id),
        ).fetchone()
    )
    return Shop(tenant_id, LoadContext(tenant_id, run["id"], "GTQ", {"TG01": "dine_in"}, timezone="UTC"))


@pytest.fixture(scope="module")
def rpapos_connection(database: Database) -> Iterator[psycopg.Connection[Any]]:
    factory = database.connections("pos_gateway_rpapos")
    yield factory.get()
    factory.close()


# Entity types that load without references to other records.
STANDALONE = (E.MONEDA, E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.BODEGA, E.PROVEEDOR, E.PERSONA, E.TIPO_GESTION)
page_recipes = st.one_of(
    [
        st.tuples(st.just(entity), st.lists(RECORD_RECIPES[entity], min_size=1, max_size=4))
        for entity in STANDALONE
    ]
)


def id_map_entries(owner: psycopg.Connection[Any], shop: Shop) -> int:
    return count(
        owner, "SELECT count(*) AS n FROM rpapos.rpapos_id_map WHERE tenant_id = %s", (shop.tenant_id,)
    )


@fuzz(25)
@given(made=page_recipes)
def test_load_page_counts_every_record_once_and_maps_only_what_it_inserted(
    shop: Shop,
    rpapos_connection: psycopg.Connection[Any],
    owner: psycopg.Connection[Any],
    made: tuple[EntityType, list[BodyRecipe]],
) -> None:
    entity, made_recipes = made
    records = [as_read(recipe, entity) for recipe in made_recipes]
    assume(all(isinstance(record, dict) for record in records))
    assume(not surrogate_in(records) and not huge_number_in(records))
    before = id_map_entries(owner, shop)
    with tenant_transaction(rpapos_connection, shop.tenant_id):
        result: LoadResult = load_page(rpapos_connection, entity, records, shop.context)
    event(f"{entity.value} inserted={result.inserted} failed={result.failed}")
    assert result.inserted + result.updated + result.skipped + result.failed == len(records), result
    assert id_map_entries(owner, shop) - before == result.inserted, result
    assert all(error.reason for error in result.errors)


# ---------------------------------------------------------------- findings


@fuzz(3)
@given(depth=st.sampled_from([1_500, 5_000, 100_000]))
@example(depth=100_000)
def test_a_deeply_nested_page_is_a_protocol_error_not_a_crash(rpapos: ScriptedServer, depth: int) -> None:
    body = b'{"datos": ' + b"[" * depth + b"]" * depth + b"}"
    check_pages(read_pages(rpapos, body, Api(), 1))


@fuzz(8)
@given(
    where=st.sampled_from(
        [
            (E.PLU, "Precio"),
            (E.PRECIO, "Precio"),
            (E.MONEDA, "Tasa_Cambio"),
            (E.PLU_OPTION_ITEM, "Precio_Adicional"),
        ]
    ),
    value=st.sampled_from([1e30, "1e30", 10**30, 1e300]),
)
@example(where=(E.PLU, "Precio"), value=1e30)
def test_a_huge_amount_is_refused_with_validation_error(where: tuple[EntityType, str], value: Any) -> None:
    entity, name = where
    record = {**template(entity), name: value}
    assert isinstance(map_one(entity, record), ValidationError)


@fuzz(4)
@given(entity=st.sampled_from([E.PLU, E.MONEDA, E.PERSONA]), text=st.sampled_from(["\ud800", "a\udfffb"]))
@example(entity=E.PLU, text="\ud800")
def test_a_lone_surrogate_in_a_record_hashes_or_is_refused(entity: EntityType, text: str) -> None:
    record = json.loads(dumps({**template(entity), "Descripcion": Raw(json.dumps(text))}))
    payload_hash(entity, record, RULES)
