"""Field sales admin routes: settings, sellers, device credentials (checked against the sync
function's own authentication, as role pos_gateway_field), products and stock.

Every change is counted against the audit trail: exactly one row each, none for a refusal.
"""

import hashlib
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from local import seed
from local.database import Database
from pos_gateway.db.connection import Connection
from pos_gateway.field.devices import DeviceUnauthorized, authenticate
from tests.admin_support import AdminApi, Answer, Cast, audit_rows
from tests.helpers import one, unique, unique_email
from tests.log_scan import remember_secret

# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def field_connection(database: Database) -> Iterator[Connection]:
    """A connection as the sync function has it (role pos_gateway_field)."""
    connections = database.connections("pos_gateway_field")
    yield connections.get()
    connections.close()


def path(cast: Cast, rest: str, tenant: Any = None) -> str:
    return f"/admin/tenants/{tenant or cast.tenant_a}/field{rest}"


def changes(owner: psycopg.Connection[Any], tenant_id: Any) -> list[dict[str, Any]]:
    """The tenant's audit rows of changes (an admin's platform.read rows aside), oldest first."""
    return [row for row in audit_rows(owner, tenant_id=tenant_id) if row["action"] != "platform.read"]


def ok(answer: Answer, status: int = 200) -> dict[str, Any]:
    assert answer.status == status, answer.body
    body: dict[str, Any] = answer.body
    return body


def new_user(owner: psycopg.Connection[Any]) -> uuid.UUID:
    return seed.create_user(owner, email=unique_email("seller"), role="client", full_name="Vera Vendedora")


def seat(api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], **overrides: Any) -> dict[str, Any]:
    body = {"user_id": str(new_user(owner)), "role": "vendedor", "commission_rate": "5", **overrides}
    return ok(api.call("POST", path(cast, "/sellers"), cast.claims("client_a"), body=body), 201)


def issue(api: AdminApi, cast: Cast, seller_id: Any, who: str = "client_a") -> dict[str, Any]:
    answer = api.call(
        "POST", path(cast, f"/sellers/{seller_id}/devices"), cast.claims(who), body={"label": "Tablet 1"}
    )
    issued = ok(answer, 201)
    remember_secret(issued["credential"])  # the suite's log scan fails if it is ever logged
    return issued


def new_product(api: AdminApi, cast: Cast, **overrides: Any) -> dict[str, Any]:
    body = {"name": unique("Pollo "), "type": "pollo", "unit": "kg", "base_price": 9.9, **overrides}
    return ok(api.call("POST", path(cast, "/products"), cast.claims("client_a"), body=body), 201)


def authenticates(connection: Connection, credential: str) -> bool:
    try:
        authenticate(connection, f"Bearer {credential}")
    except DeviceUnauthorized:
        return False
    return True


# ---------------------------------------------------------------- settings

DEFAULTS = {
    "modo_operacion": "inventario_propio",
    "control_kilos": True,
    "usar_distribucion": False,
    "permitir_venta_sin_stock": False,
    "permitir_saldo_a_favor": False,
    "currency": "PEN",
}


def test_settings_answer_the_defaults_until_a_put_stores_them(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    first = ok(api.call("GET", path(cast, "/settings"), cast.claims("client_a")))
    assert {key: first[key] for key in DEFAULTS} == DEFAULTS
    assert first["configured"] is False
    assert first["created_at"] is None

    wanted = {**DEFAULTS, "modo_operacion": "mixto", "usar_distribucion": True, "currency": "USD"}
    stored = ok(api.call("PUT", path(cast, "/settings"), cast.claims("client_a"), body=wanted))
    assert {key: stored[key] for key in DEFAULTS} == wanted
    assert stored["configured"] is True
    again = {**wanted, "permitir_saldo_a_favor": True}
    ok(api.call("PUT", path(cast, "/settings"), cast.claims("admin"), body=again))
    read = ok(api.call("GET", path(cast, "/settings"), cast.claims("client_a")))
    assert {key: read[key] for key in DEFAULTS} == again

    row = one(
        owner.execute(
            "SELECT * FROM field_sales.business_settings WHERE tenant_id = %s", (cast.tenant_a,)
        ).fetchone()
    )
    assert row["permitir_saldo_a_favor"] is True
    assert row["currency"] == "USD"
    first_put, second_put = changes(owner, cast.tenant_a)
    assert first_put["action"] == "field_settings.update"
    assert first_put["before_state"] is None
    assert first_put["after_state"] == wanted
    assert second_put["before_state"] == wanted
    assert second_put["after_state"] == again
    # Tenant B still answers the defaults.
    other = ok(api.call("GET", path(cast, "/settings", cast.tenant_b), cast.claims("client_b")))
    assert other["configured"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"control_kilos": "true"},  # booleans are booleans
        {"currency": "pen"},
        {"modo_operacion": "otro"},
        {"surprise": 1},
    ],
)
def test_settings_refuse_what_does_not_fit(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], change: dict[str, Any]
) -> None:
    answer = api.call("PUT", path(cast, "/settings"), cast.claims("client_a"), body={**DEFAULTS, **change})
    assert answer.status == 422
    assert answer.error_code == "invalid_request"
    incomplete = {k: v for k, v in DEFAULTS.items() if k != "currency"}
    assert api.call("PUT", path(cast, "/settings"), cast.claims("client_a"), body=incomplete).status == 422
    assert changes(owner, cast.tenant_a) == []


# ---------------------------------------------------------------- sellers


def test_a_seller_is_seated_read_listed_and_changed(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    user_id = new_user(owner)
    body = {"user_id": str(user_id), "role": "vendedor", "sales_point": "Carro A", "commission_rate": 5.5}
    created = ok(api.call("POST", path(cast, "/sellers"), cast.claims("client_a"), body=body), 201)
    assert created["user_id"] == str(user_id)
    assert created["full_name"] == "Vera Vendedora"
    assert created["commission_rate"] == "5.50"
    assert created["is_active"] is True
    assert created["user_status"] == "active"
    assert created["role"] == "vendedor"
    row = one(
        owner.execute("SELECT * FROM field_sales.business_users WHERE id = %s", (created["id"],)).fetchone()
    )
    assert row["commission_rate"] == Decimal("5.50")
    assert row["tenant_id"] == cast.tenant_a

    assert ok(api.call("GET", path(cast, f"/sellers/{created['id']}"), cast.claims("admin"))) == created
    patched = ok(
        api.call(
            "PATCH",
            path(cast, f"/sellers/{created['id']}"),
            cast.claims("client_a"),
            body={"role": "admin_negocio", "sales_point": None, "commission_rate": "12.25"},
        )
    )
    assert patched["role"] == "admin_negocio"
    assert patched["sales_point"] is None
    assert patched["commission_rate"] == "12.25"

    create_row, update_row = changes(owner, cast.tenant_a)
    assert create_row["action"] == "field_seller.create"
    assert create_row["target_entity_id"] == created["id"]
    assert create_row["after_state"]["commission_rate"] == "5.50"
    assert update_row["before_state"] == {
        "role": "vendedor",
        "sales_point": "Carro A",
        "commission_rate": "5.50",
    }
    assert update_row["after_state"] == {
        "role": "admin_negocio",
        "sales_point": None,
        "commission_rate": "12.25",
    }

    second = seat(api, cast, owner)
    page = ok(api.call("GET", path(cast, "/sellers"), cast.claims("client_a"), query={"limit": 1}))
    assert [item["id"] for item in page["items"]] == [second["id"]]
    assert page["next_cursor"]
    rest = ok(
        api.call(
            "GET", path(cast, "/sellers"), cast.claims("client_a"), query={"cursor": page["next_cursor"]}
        )
    )
    assert [item["id"] for item in rest["items"]] == [created["id"]]
    assert rest["next_cursor"] is None


def test_seating_a_user_twice_is_a_conflict_and_an_unknown_user_is_not_found(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = seat(api, cast, owner)
    again = api.call(
        "POST",
        path(cast, "/sellers"),
        cast.claims("admin"),
        body={"user_id": created["user_id"], "role": "admin_negocio", "commission_rate": 0},
    )
    assert again.status == 409
    assert again.error_code == "seller_exists"
    unknown = api.call(
        "POST",
        path(cast, "/sellers"),
        cast.claims("client_a"),
        body={"user_id": str(uuid.uuid4()), "role": "vendedor", "commission_rate": 0},
    )
    assert unknown.status == 404
    assert unknown.error_code == "not_found"
    # The same user may hold a seat in another business.
    other = api.call(
        "POST",
        path(cast, "/sellers", cast.tenant_b),
        cast.claims("client_b"),
        body={"user_id": created["user_id"], "role": "vendedor", "commission_rate": 1},
    )
    assert other.status == 201
    assert len(changes(owner, cast.tenant_a)) == 1


def test_another_tenant_is_not_found_and_operators_may_not(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = seat(api, cast, owner)
    body = {"user_id": str(new_user(owner)), "role": "vendedor", "commission_rate": 0}
    for method, rest, payload in [
        ("GET", "/settings", None),
        ("GET", "/sellers", None),
        ("POST", "/sellers", body),
        ("GET", f"/sellers/{created['id']}", None),
        ("PATCH", f"/sellers/{created['id']}", {"is_active": False}),
        ("POST", f"/sellers/{created['id']}/devices", {"label": "x"}),
        ("GET", "/products", None),
    ]:
        # A client of tenant B naming tenant A: as if it did not exist.
        answer = api.call(method, path(cast, rest), cast.claims("client_b"), body=payload)
        assert (answer.status, answer.error_code) == (404, "not_found"), (method, rest)
        refused = api.call(method, path(cast, rest), cast.claims("operator_a"), body=payload)
        assert (refused.status, refused.error_code) == (403, "role_not_allowed"), (method, rest)
    # Tenant A's seller through tenant B's own path: row-level security hides it.
    hidden = api.call("GET", path(cast, f"/sellers/{created['id']}", cast.tenant_b), cast.claims("client_b"))
    assert hidden.status == 404
    assert len(changes(owner, cast.tenant_a)) == 1
    assert changes(owner, cast.tenant_b) == []


@pytest.mark.parametrize(
    "body",
    [
        {"commission_rate": 12.345},  # three places
        {"commission_rate": "100.01"},
        {"commission_rate": -1},
        {"commission_rate": "1e1"},
        {"commission_rate": True},
        {"role": "jefe"},
        {"is_active": None},
        {"is_active": "false"},
        {"nickname": "x"},
        {},
    ],
)
def test_seller_patches_that_do_not_fit_are_refused(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], body: dict[str, Any]
) -> None:
    created = seat(api, cast, owner)
    answer = api.call("PATCH", path(cast, f"/sellers/{created['id']}"), cast.claims("client_a"), body=body)
    assert answer.status == 422
    assert answer.error_code == "invalid_request"
    assert len(changes(owner, cast.tenant_a)) == 1


# ---------------------------------------------------------------- devices


def test_an_issued_credential_authenticates_and_is_kept_only_as_its_hash(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], field_connection: Connection
) -> None:
    seller = seat(api, cast, owner)
    issued = issue(api, cast, seller["id"])
    credential = issued["credential"]
    assert credential.startswith(f"fsd_{uuid.UUID(issued['id']).hex}_")
    assert issued["seller_id"] == seller["id"]
    assert issued["label"] == "Tablet 1"
    assert issued["revoked_at"] is None
    assert issued["last_seen_at"] is None

    device = authenticate(field_connection, f"Bearer {credential}")
    assert (device.tenant_id, device.device_id, device.seller_id) == (
        cast.tenant_a,
        uuid.UUID(issued["id"]),
        uuid.UUID(seller["id"]),
    )
    assert device.role.value == "vendedor"
    assert device.currency == "PEN"

    row = one(owner.execute("SELECT * FROM field_sales.devices WHERE id = %s", (issued["id"],)).fetchone())
    assert bytes(row["credential_hash"]) == hashlib.sha256(credential.encode()).digest()
    stored = json.dumps({k: v for k, v in row.items() if k != "credential_hash"}, default=str)
    assert credential not in stored
    assert credential.split("_")[-1] not in stored

    audit = changes(owner, cast.tenant_a)[-1]
    assert audit["action"] == "field_device.issue"
    assert audit["target_entity_id"] == issued["id"]
    assert audit["after_state"] == {
        "seller_id": seller["id"],
        "label": "Tablet 1",
        "revoked_at": None,
        "revoked_reason": None,
    }
    audit_text = json.dumps(audit, default=str)
    assert credential.split("_")[-1] not in audit_text
    assert row["credential_hash"].hex() not in audit_text

    # Never shown again: the list has no credential and no hash.
    listed = ok(
        api.call("GET", path(cast, "/devices"), cast.claims("client_a"), query={"seller_id": seller["id"]})
    )
    (item,) = listed["items"]
    assert set(item) == {
        "id",
        "seller_id",
        "label",
        "created_at",
        "last_seen_at",
        "revoked_at",
        "revoked_reason",
    }
    assert credential.split("_")[-1] not in json.dumps(listed)
    assert len(changes(owner, cast.tenant_a)) == 2


def test_a_revoked_device_is_refused_and_revoking_it_again_is_a_conflict(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], field_connection: Connection
) -> None:
    seller = seat(api, cast, owner)
    kept, revoked = issue(api, cast, seller["id"]), issue(api, cast, seller["id"])
    url = path(cast, f"/devices/{revoked['id']}/revoke")
    answer = ok(api.call("POST", url, cast.claims("client_a"), body={"reason": "lost phone"}))
    assert answer["revoked_at"] is not None
    assert answer["revoked_reason"] == "lost phone"
    assert "credential" not in answer
    with pytest.raises(DeviceUnauthorized):
        authenticate(field_connection, f"Bearer {revoked['credential']}")
    assert authenticates(field_connection, kept["credential"])

    again = api.call("POST", url, cast.claims("admin"), body={"reason": "lost phone"})
    assert again.status == 409
    assert again.error_code == "already_revoked"
    audit = changes(owner, cast.tenant_a)
    assert [row["action"] for row in audit] == [
        "field_seller.create",
        "field_device.issue",
        "field_device.issue",
        "field_device.revoke",
    ]
    assert audit[-1]["reason"] == "lost phone"
    assert audit[-1]["before_state"]["revoked_at"] is None
    missing = api.call(
        "POST",
        path(cast, f"/devices/{uuid.uuid4()}/revoke"),
        cast.claims("client_a"),
        body={"reason": "lost phone"},
    )
    assert missing.status == 404
    assert api.call("POST", url, cast.claims("client_a"), body={"reason": "x"}).status == 422  # too short


def test_a_deactivated_sellers_devices_are_refused(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], field_connection: Connection
) -> None:
    seller = seat(api, cast, owner)
    issued = issue(api, cast, seller["id"])
    one_seller = path(cast, f"/sellers/{seller['id']}")
    ok(api.call("PATCH", one_seller, cast.claims("client_a"), body={"is_active": False}))
    assert not authenticates(field_connection, issued["credential"])
    refused = api.call(
        "POST", path(cast, f"/sellers/{seller['id']}/devices"), cast.claims("client_a"), body={"label": "t"}
    )
    assert refused.status == 409
    assert refused.error_code == "seller_inactive"
    listed = ok(
        api.call("GET", path(cast, "/sellers"), cast.claims("client_a"), query={"is_active": "false"})
    )
    assert [item["id"] for item in listed["items"]] == [seller["id"]]

    ok(api.call("PATCH", one_seller, cast.claims("client_a"), body={"is_active": True}))
    assert authenticates(field_connection, issued["credential"])
    assert len(changes(owner, cast.tenant_a)) == 4  # seat, device, off, on


def test_a_device_for_an_unknown_or_other_tenants_seller_is_not_found(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    theirs = ok(
        api.call(
            "POST",
            path(cast, "/sellers", cast.tenant_b),
            cast.claims("client_b"),
            body={"user_id": str(new_user(owner)), "role": "vendedor", "commission_rate": 0},
        ),
        201,
    )
    for seller_id in (uuid.uuid4(), theirs["id"]):
        answer = api.call(
            "POST", path(cast, f"/sellers/{seller_id}/devices"), cast.claims("admin"), body={"label": "t"}
        )
        assert answer.status == 404
    assert changes(owner, cast.tenant_a) == []


# ---------------------------------------------------------------- products and stock


def stored_product(owner: psycopg.Connection[Any], product_id: Any) -> dict[str, Any]:
    row = owner.execute(
        "SELECT p.*, i.quantity FROM field_sales.products p"
        " JOIN field_sales.inventory i ON i.tenant_id = p.tenant_id AND i.product_id = p.id WHERE p.id = %s",
        (product_id,),
    ).fetchone()
    return dict(one(row))


def test_products_keep_exact_decimals_and_count_their_versions(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = new_product(api, cast, base_price=9.9, stock="12.345")
    assert created["base_price"] == "9.9000"
    assert created["stock"] == "12.345"
    assert created["version"] == 1
    assert created["is_active"] is True
    assert created["deleted_at"] is None
    row = stored_product(owner, created["id"])
    assert row["base_price"] == Decimal("9.9000")
    assert row["quantity"] == Decimal("12.345")

    one_product = path(cast, f"/products/{created['id']}")
    priced = ok(api.call("PATCH", one_product, cast.claims("client_a"), body={"base_price": "10.1234"}))
    assert priced["base_price"] == "10.1234"
    assert priced["version"] == 2
    renamed = ok(
        api.call(
            "PATCH", one_product, cast.claims("admin"), body={"name": "Pollo beneficiado", "is_active": False}
        )
    )
    assert (renamed["name"], renamed["is_active"], renamed["version"]) == ("Pollo beneficiado", False, 3)
    assert stored_product(owner, created["id"])["base_price"] == Decimal("10.1234")

    deleted = ok(api.call("DELETE", one_product, cast.claims("client_a")))
    assert deleted["deleted_at"] is not None
    assert deleted["version"] == 4
    tombstone = stored_product(owner, created["id"])
    assert tombstone["deleted_at"] is not None
    assert tombstone["change_seq"] > row["change_seq"]
    for method, url, body in [
        ("PATCH", one_product, {"name": "again"}),
        ("DELETE", one_product, None),
        ("PUT", f"{one_product}/inventory", {"quantity": 1, "reason": "recount"}),
    ]:
        answer = api.call(method, url, cast.claims("client_a"), body=body)
        assert (answer.status, answer.error_code) == (409, "product_deleted"), method

    live = ok(api.call("GET", path(cast, "/products"), cast.claims("client_a")))
    assert created["id"] not in [item["id"] for item in live["items"]]
    everything = ok(
        api.call("GET", path(cast, "/products"), cast.claims("client_a"), query={"include_deleted": "true"})
    )
    assert created["id"] in [item["id"] for item in everything["items"]]
    assert ok(api.call("GET", one_product, cast.claims("client_a")))["version"] == 4

    audit = changes(owner, cast.tenant_a)
    assert [row["action"] for row in audit] == [
        "field_product.create",
        "field_product.update",
        "field_product.update",
        "field_product.delete",
    ]
    assert audit[0]["after_state"]["base_price"] == "9.9000"
    assert audit[0]["after_state"]["stock"] == "12.345"
    assert audit[1]["before_state"] == {"base_price": "9.9000", "version": 1}
    assert audit[1]["after_state"] == {"base_price": "10.1234", "version": 2}
    assert audit[3]["after_state"]["version"] == 4
    assert audit[3]["after_state"]["deleted_at"] is not None


def test_the_stock_is_set_to_a_counted_quantity_with_its_reason(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = new_product(api, cast, type="huevo", unit="unidad", base_price="0.5")
    assert created["stock"] == "0.000"
    url = path(cast, f"/products/{created['id']}/inventory")
    counted = ok(
        api.call("PUT", url, cast.claims("client_a"), body={"quantity": 7.5, "reason": "conteo semanal"})
    )
    assert counted["stock"] == "7.500"
    assert counted["version"] == 1
    assert stored_product(owner, created["id"])["quantity"] == Decimal("7.500")
    recount = ok(api.call("PUT", url, cast.claims("admin"), body={"quantity": "0.125", "reason": "merma"}))
    assert recount["stock"] == "0.125"

    first, second = changes(owner, cast.tenant_a)[1:]
    assert first["action"] == "field_inventory.set"
    assert first["reason"] == "conteo semanal"
    assert (first["before_state"], first["after_state"]) == ({"quantity": "0.000"}, {"quantity": "7.500"})
    assert (second["before_state"], second["after_state"]) == ({"quantity": "7.500"}, {"quantity": "0.125"})
    missing = api.call(
        "PUT",
        path(cast, f"/products/{uuid.uuid4()}/inventory"),
        cast.claims("client_a"),
        body={"quantity": 1, "reason": "recount"},
    )
    assert missing.status == 404
    assert len(changes(owner, cast.tenant_a)) == 3


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("create", {"base_price": 1.23456}),  # five places
        ("create", {"base_price": "1.23456"}),
        ("create", {"base_price": 0.1 + 0.2}),  # 0.30000000000000004: not a price anyone wrote
        ("create", {"base_price": -1}),
        ("create", {"base_price": "1e3"}),
        ("create", {"base_price": " 1.5"}),
        ("create", {"base_price": "NaN"}),
        ("create", {"base_price": "1000000000000000"}),  # does not fit numeric(19,4)
        ("create", {"stock": 1.2345}),
        ("create", {"stock": "10000000"}),
        ("create", {"type": "pato"}),
        ("create", {"unit": "litro"}),
        ("create", {"name": ""}),
        ("create", {"sku": "X-1"}),
        ("patch", {"base_price": 2.00001}),
        ("patch", {"name": None}),
        ("patch", {"version": 7}),
        ("patch", {}),
        ("inventory", {"quantity": 1.0005, "reason": "recount"}),
        ("inventory", {"quantity": 1}),
        ("inventory", {"quantity": 1, "reason": "recount", "delta": 1}),
    ],
)
def test_product_input_that_does_not_fit_is_refused(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any], route: str, body: dict[str, Any]
) -> None:
    product = new_product(api, cast)
    if route == "create":
        full = {"name": "Pollo", "type": "pollo", "unit": "kg", "base_price": "1", **body}
        answer = api.call("POST", path(cast, "/products"), cast.claims("client_a"), body=full)
    elif route == "patch":
        answer = api.call(
            "PATCH", path(cast, f"/products/{product['id']}"), cast.claims("client_a"), body=body
        )
    else:
        answer = api.call(
            "PUT", path(cast, f"/products/{product['id']}/inventory"), cast.claims("client_a"), body=body
        )
    assert answer.status == 422, answer.body
    assert answer.error_code == "invalid_request"
    assert len(changes(owner, cast.tenant_a)) == 1
    assert stored_product(owner, product["id"])["version"] == 1


def test_the_largest_values_each_column_holds_are_accepted(
    api: AdminApi, cast: Cast, owner: psycopg.Connection[Any]
) -> None:
    created = new_product(api, cast, base_price="999999999999999.9999", stock="9999999.999")
    assert created["base_price"] == "999999999999999.9999"
    assert created["stock"] == "9999999.999"
    seller = seat(api, cast, owner, commission_rate=100)
    assert seller["commission_rate"] == "100.00"
