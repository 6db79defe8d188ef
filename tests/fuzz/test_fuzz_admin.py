"""The admin API in-process (functions/admin_api/app.py on the module's database), its JSON
bodies fuzzed on a few write routes: tenants create and patch, wallet adjustments, rule versions,
field products and field settings.

The rule: a 2xx, or a 4xx with the error body {"error": {"code", "message", "fields"}}; never a
5xx nor an exception out of the handler. A refusal writes nothing (no audit row, no tenant, no
ledger entry, no rule version, no product, settings unchanged); a change writes exactly one
audit row.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from local.database import Database
from tests.admin_support import AdminApi, Answer, Cast, make_cast, open_admin_api
from tests.fuzz.conftest import (
    BodyRecipe,
    Flavor,
    Mutation,
    Pairs,
    Raw,
    assert_error_body,
    fuzz,
    recipes,
)
from tests.helpers import one

RULE_CONFIG = {
    "conversionRate": 1.25,
    "minSpendMinorUnits": 100,
    "maxPointsPerTransaction": 500,
    "minBalanceToRedeem": 0,
    "maxRedemptionPercentage": 50,
    "roundingPolicy": "floor",
}


@dataclass(frozen=True)
class Route:
    """A write route: its method, its path for the cast, and a valid body."""

    name: str
    method: str
    path: Callable[[Cast], str]
    template: dict[str, Any]


ROUTES = (
    Route(
        "tenant.create",
        "POST",
        lambda cast: "/admin/tenants",
        {
            "name": "  Fuzz Café  ",
            "country": "pe",
            "pos_provider_preference": "square",
            "onboarding_profile": {"stores": 2, "rate": 1.25, "owner": {"name": "Kim"}, "tags": ["a", "b"]},
        },
    ),
    Route(
        "tenant.patch",
        "PATCH",
        lambda cast: f"/admin/tenants/{cast.tenant_a}",
        {
            "name": "Fuzz Café 2",
            "country": "GB",
            "status": "active",
            "pos_provider_preference": None,
            "onboarding_profile": {"stores": 3},
            "reason": "fuzzing the patch",
        },
    ),
    Route(
        "wallet.adjust",
        "POST",
        lambda cast: f"/admin/tenants/{cast.tenant_a}/wallets/{cast.wallet_a}/adjustments",
        {"direction": "credit", "points": 5, "reason": "goodwill", "expected_version": 1},
    ),
    Route(
        "rule.create",
        "POST",
        lambda cast: f"/admin/tenants/{cast.tenant_a}/rules",
        {"rule_config": RULE_CONFIG, "effective_from": "2026-11-20T15:00:00+01:00"},
    ),
    Route(
        "field_product.create",
        "POST",
        lambda cast: f"/admin/tenants/{cast.tenant_a}/field/products",
        {"name": "Pollo fuzz", "type": "pollo", "unit": "kg", "base_price": "9.9000", "stock": 10.5},
    ),
    Route(
        "field_settings.put",
        "PUT",
        lambda cast: f"/admin/tenants/{cast.tenant_a}/field/settings",
        {
            "modo_operacion": "mixto",
            "control_kilos": True,
            "usar_distribucion": False,
            "permitir_venta_sin_stock": False,
            "permitir_saldo_a_favor": False,
            "currency": "PEN",
        },
    ),
)
BY_NAME = {route.name: route for route in ROUTES}
ADMIN_VALUES: tuple[Any, ...] = (
    "credit",
    "debit",
    "active",
    "suspended",
    "clover",
    "other",
    "floor",
    "ceil",
    "round",
    "inventario_propio",
    "sin_inventario",
    "huevo",
    "unidad",
    "12.50",
    "1e2",
    " 1.0",
    "999999999999999.9999",
    "1000000000000000",
    "9999999.999",
    2**31,
    10**7 + 1,
    {str(n): n for n in range(51)},
    {"a": {"b": {"c": {"d": {"e": 1}}}}},
    {"big": "x" * 17_000},
)
# Bodies the admin API refuses cleanly; deep nesting and long integers are findings (below).
SAFE = Flavor(deep=False, long_ints=False)
# Aware instants whose UTC falls outside years 1..9999 (in NASTY_STRINGS): a finding (below).
OUT_OF_RANGE_INSTANTS = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59-23:59",
)


def route_recipes(route: Route) -> st.SearchStrategy[tuple[Route, BodyRecipe]]:
    return st.tuples(st.just(route), recipes(route.template, SAFE, extra=ADMIN_VALUES))


any_write = st.one_of(*(route_recipes(route) for route in ROUTES))


# ---------------------------------------------------------------- the API and what it wrote


@dataclass(frozen=True)
class Admin:
    api: AdminApi
    cast: Cast

    def call(self, route: Route, body: bytes, content_type: str, who: str = "admin") -> Answer:
        """As the platform admin, or as one of the cast (client_a: tenant A's client)."""
        return self.api.call(
            route.method,
            route.path(self.cast),
            self.cast.claims(who),
            raw_body=body,
            base64_encoded=not _utf8(body),
            content_type=content_type,
        )


@pytest.fixture(scope="module")
def admin(database: Database, owner: psycopg.Connection[Any]) -> Iterator[Admin]:
    with open_admin_api(database) as api:
        yield Admin(api, make_cast(owner))


WRITTEN = (
    "audit.admin_audit_logs",
    "identity.tenants",
    "loyalty.wallets",
    "loyalty.wallet_ledger",
    "loyalty.reward_rules",
    "field_sales.products",
    "field_sales.inventory",
    "field_sales.business_settings",
)


def snapshot(owner: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """What the write routes may change: each table's row count and a digest of its rows."""
    found: dict[str, tuple[int, str]] = {}
    for table in WRITTEN:
        row = one(
            owner.execute(
                f"SELECT count(*) AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS h"
                f" FROM {table} t"
            ).fetchone()
        )
        found[table] = (row["n"], row["h"])
    return found


def base_of(route: Route, owner: psycopg.Connection[Any], cast: Cast) -> dict[str, Any]:
    """The route's template, with the wallet's current version for an adjustment."""
    base = json.loads(json.dumps(route.template))
    if route.name == "wallet.adjust":
        wallet = one(
            owner.execute("SELECT version FROM loyalty.wallets WHERE id = %s", (cast.wallet_a,)).fetchone()
        )
        base["expected_version"] = wallet["version"]
    return dict(base)


def strings_in(document: Any) -> Iterator[str]:
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict | Pairs):
        for key, value in document.items() if isinstance(document, dict) else document.items:
            yield str(key)
            yield from strings_in(value)
    elif isinstance(document, list | tuple):
        for item in document:
            yield from strings_in(item)


def outside_findings(document: Any) -> bool:
    """False for the inputs of the findings below: a NUL character, an out-of-range instant."""
    return not any("\x00" in text or text in OUT_OF_RANGE_INSTANTS for text in strings_in(document))


def check(
    admin: Admin,
    owner: psycopg.Connection[Any],
    route: Route,
    body: bytes,
    content_type: str = "application/json",
    who: str = "admin",
) -> Answer:
    before = snapshot(owner)
    answer = admin.call(route, body, content_type, who)
    event(f"{who} {route.name} {answer.status} {answer.error_code or ''}".strip())
    assert 200 <= answer.status < 500, (answer.status, answer.body)
    after = snapshot(owner)
    if answer.status >= 400:
        assert_error_body(answer.body)
        assert after == before, f"{route.name} refused ({answer.status}) but wrote"
    else:
        audits = after["audit.admin_audit_logs"][0] - before["audit.admin_audit_logs"][0]
        assert audits == 1, f"{route.name} answered {answer.status} with {audits} audit rows"
    return answer


# ---------------------------------------------------------------- the property


@fuzz(40)
@given(
    written=any_write,
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"]),
    who=st.sampled_from(["admin", "admin", "admin", "client_a"]),
)
def test_a_write_route_answers_2xx_or_a_clear_4xx_and_a_4xx_writes_nothing(
    admin: Admin,
    owner: psycopg.Connection[Any],
    written: tuple[Route, BodyRecipe],
    content_type: str,
    who: str,
) -> None:
    route, recipe = written
    base = base_of(route, owner, admin.cast)
    assume(recipe.raw is not None or outside_findings(recipe.document(base)))
    assume(recipe.raw is None or b"\\u0000" not in recipe.raw)
    check(admin, owner, route, recipe.body(base), content_type, who)


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------- findings


@fuzz(4)
@given(route=st.sampled_from(ROUTES), depth=st.sampled_from([1_500, 3_000, 20_000]))
@example(route=BY_NAME["tenant.create"], depth=20_000)
def test_a_deeply_nested_body_is_refused_not_crashed(
    admin: Admin, owner: psycopg.Connection[Any], route: Route, depth: int
) -> None:
    answer = check(admin, owner, route, b"[" * depth + b"]" * depth)
    assert (answer.status, answer.error_code) in {(400, "malformed_json"), (422, "invalid_request")}


@fuzz(4)
@given(route=st.sampled_from(ROUTES), digits=st.sampled_from([4_301, 5_000, 60_000]))
@example(route=BY_NAME["wallet.adjust"], digits=5_000)
def test_an_integer_longer_than_4300_digits_is_refused_not_crashed(
    admin: Admin, owner: psycopg.Connection[Any], route: Route, digits: int
) -> None:
    body = BodyRecipe((Mutation((next(iter(route.template)),), "replace", Raw("1" * digits)),))
    check(admin, owner, route, body.body(base_of(route, owner, admin.cast)))


# Each route's text fields (a NUL in any of them reaches PostgreSQL).
TEXT_FIELDS = (
    ("tenant.create", ("name",)),
    ("tenant.create", ("onboarding_profile", "owner", "name")),
    ("tenant.create", ("onboarding_profile", "tags", 0)),
    ("tenant.patch", ("name",)),
    ("tenant.patch", ("reason",)),
    ("wallet.adjust", ("reason",)),
    ("field_product.create", ("name",)),
)


@fuzz(12)
@given(field=st.sampled_from(TEXT_FIELDS), text=st.sampled_from(["a\x00b", "\x00", "Fuzz\x00 Café"]))
@example(field=("tenant.create", ("name",)), text="a\x00b")
def test_a_nul_character_in_a_text_field_is_refused_not_crashed(
    admin: Admin, owner: psycopg.Connection[Any], field: tuple[str, tuple[str | int, ...]], text: str
) -> None:
    route = BY_NAME[field[0]]
    body = BodyRecipe((Mutation(field[1], "replace", text),)).body(base_of(route, owner, admin.cast))
    answer = check(admin, owner, route, body)
    # Refused at the edge: PostgreSQL text cannot hold U+0000.
    assert (answer.status, answer.body["error"]["code"]) == (400, "malformed_json"), answer.body


@fuzz(3)
@given(instant=st.sampled_from(OUT_OF_RANGE_INSTANTS))
@example(instant="9999-12-31T23:59:59-12:00")
def test_an_effective_from_outside_years_1_to_9999_is_refused_not_crashed(
    admin: Admin, owner: psycopg.Connection[Any], instant: str
) -> None:
    route = BY_NAME["rule.create"]
    body = BodyRecipe((Mutation(("effective_from",), "replace", instant),)).body(route.template)
    answer = check(admin, owner, route, body)
    assert answer.status == 422, answer.body


@fuzz(3)
@given(
    content_type=st.sampled_from(
        ["application/merge-patch+json", "application/vnd.api+json", "Application/JSON"]
    )
)
@example(content_type="application/merge-patch+json")
def test_every_accepted_json_media_type_is_read_or_refused_with_the_error_body(
    admin: Admin, owner: psycopg.Connection[Any], content_type: str
) -> None:
    route = BY_NAME["tenant.create"]
    check(admin, owner, route, json.dumps(route.template).encode(), content_type)
