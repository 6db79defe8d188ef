"""The RPApos sync's schema (0020) and the FlowPOS catalog (0021), attacked directly: the
database itself must refuse what the rules forbid, for the owner and for the sync's role."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from local import seed
from local.database import Database
from pos_gateway.rpapos.contract import EntityType
from tests.helpers import one, unique

RPAPOS = "pos_gateway_rpapos"
ADMIN = "pos_gateway_admin"
CIPHER = seed.dev_cipher()
ENDED = ("completed", "failed", "cancelled")

Conn = psycopg.Connection[Any]


# ---------------------------------------------------------------- builders (as the owner)


def new_tenant(owner: Conn) -> uuid.UUID:
    return seed.create_tenant(owner, unique("Tenant "))


def sealed(column: str, row_id: uuid.UUID, plaintext: str = "s3cret-Passw0rd") -> str:
    return CIPHER.encrypt(plaintext, table="rpapos.rpapos_connection", column=column, row_id=str(row_id))


def new_connection(owner: Conn, tenant_id: uuid.UUID, subdomain: str | None = None) -> uuid.UUID:
    connection_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
        " VALUES (%s, %s, %s, 'cajero', %s)",
        (
            connection_id,
            tenant_id,
            subdomain or unique("shop-").lower(),
            sealed("password_encrypted", connection_id),
        ),
    )
    return connection_id


def new_run(conn: Conn, tenant_id: uuid.UUID, connection_id: uuid.UUID, status: str = "running") -> uuid.UUID:
    params = (tenant_id, connection_id, status, ["moneda", "plu"])
    if status in ENDED:
        row = conn.execute(
            "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, status, entity_types,"
            " completed_at) VALUES (%s, %s, 'catalog', %s, %s::rpapos.rpapos_entity_type[], now())"
            " RETURNING id",
            params,
        ).fetchone()
    else:
        row = conn.execute(
            "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, status, entity_types)"
            " VALUES (%s, %s, 'catalog', %s, %s::rpapos.rpapos_entity_type[]) RETURNING id",
            params,
        ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def new_archive_page(owner: Conn, tenant_id: uuid.UUID, run_id: uuid.UUID) -> uuid.UUID:
    records = [{"Codigo_PLU": "1", "Descripcion": "Pepián"}, {"Codigo_PLU": "2", "Descripcion": "Atol"}]
    row = owner.execute(
        "INSERT INTO rpapos.rpapos_extraction_archive"
        " (tenant_id, sync_run_id, entity_type, page, cursor, record_count, payload)"
        " VALUES (%s, %s, 'plu', 1, %s, 2, %s) RETURNING id",
        (tenant_id, run_id, Jsonb({"entity": "plu", "page": 1}), Jsonb(records)),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def new_product(owner: Conn, tenant_id: uuid.UUID, code: str, *, is_raw_material: bool = False) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO catalog.product (tenant_id, code, name, price, currency_code, is_raw_material)"
        " VALUES (%s, %s, %s, 12.5, 'GTQ', %s) RETURNING id",
        (tenant_id, code, f"Product {code}", is_raw_material),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


def new_warehouse(owner: Conn, tenant_id: uuid.UUID) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO catalog.warehouse (tenant_id, code, name) VALUES (%s, %s, 'Bodega central')"
        " RETURNING id",
        (tenant_id, unique("B")),
    ).fetchone()
    return uuid.UUID(str(one(row)["id"]))


@contextmanager
def in_tenant(conn: Conn, tenant_id: uuid.UUID | None) -> Iterator[Conn]:
    """One transaction in the tenant's context, as the data layer opens it."""
    with conn.transaction():
        if tenant_id is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        yield conn


def constraint_of(excinfo: pytest.ExceptionInfo[psycopg.Error]) -> str | None:
    return excinfo.value.diag.constraint_name


@pytest.fixture(scope="module")
def sync_conn(database: Database) -> Iterator[Conn]:
    with database.connect_as(RPAPOS) as conn:
        yield conn


@pytest.fixture(scope="module")
def admin_conn(database: Database) -> Iterator[Conn]:
    with database.connect_as(ADMIN) as conn:
        yield conn


# ---------------------------------------------------------------- the enum


def test_the_entity_type_enum_is_the_contracts(owner: Conn) -> None:
    rows = owner.execute(
        "SELECT unnest(enum_range(NULL::rpapos.rpapos_entity_type))::text AS value"
    ).fetchall()
    assert [row["value"] for row in rows] == [entity.value for entity in EntityType]
    assert len(rows) == 27


# ---------------------------------------------------------------- uniqueness


def test_a_subdomain_is_connected_once_per_tenant(owner: Conn) -> None:
    tenant_a, tenant_b = new_tenant(owner), new_tenant(owner)
    subdomain = unique("rest-").lower()
    new_connection(owner, tenant_a, subdomain)
    with pytest.raises(errors.UniqueViolation) as excinfo:
        new_connection(owner, tenant_a, subdomain)
    assert constraint_of(excinfo) == "rpapos_connection_tenant_subdomain_key"
    # Another tenant may connect the same RPApos subdomain.
    new_connection(owner, tenant_b, subdomain)


def test_an_rpapos_record_maps_to_one_flowpos_row(owner: Conn) -> None:
    tenant_a, tenant_b = new_tenant(owner), new_tenant(owner)
    insert = (
        "INSERT INTO rpapos.rpapos_id_map (tenant_id, entity_type, external_id, flowpos_entity_id)"
        " VALUES (%s, %s, '101', gen_random_uuid())"
    )
    owner.execute(insert, (tenant_a, "plu"))
    with pytest.raises(errors.UniqueViolation) as excinfo:
        owner.execute(insert, (tenant_a, "plu"))
    assert constraint_of(excinfo) == "rpapos_id_map_tenant_entity_external_key"
    # The key is per entity type and per tenant: SKU 101 and tenant B's PLU 101 are other records.
    owner.execute(insert, (tenant_a, "sku"))
    owner.execute(insert, (tenant_b, "plu"))


def test_a_connection_has_at_most_one_running_or_paused_run(owner: Conn) -> None:
    tenant_id = new_tenant(owner)
    connection_id, other_connection = new_connection(owner, tenant_id), new_connection(owner, tenant_id)
    first = new_run(owner, tenant_id, connection_id)
    for status in ("running", "paused"):
        with pytest.raises(errors.UniqueViolation) as excinfo:
            new_run(owner, tenant_id, connection_id, status)
        assert constraint_of(excinfo) == "rpapos_sync_run_one_active_per_connection"
    # Ended runs do not count, and other connections are independent.
    for status in ENDED:
        new_run(owner, tenant_id, connection_id, status)
    new_run(owner, tenant_id, other_connection)
    # Once the run has ended, the next one may start.
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET status = 'completed', completed_at = now() WHERE id = %s", (first,)
    )
    new_run(owner, tenant_id, connection_id)


def test_a_stock_movement_loads_once_per_idempotency_key(owner: Conn, sync_conn: Conn) -> None:
    tenant_a, tenant_b = new_tenant(owner), new_tenant(owner)
    warehouses = {tenant_a: new_warehouse(owner, tenant_a), tenant_b: new_warehouse(owner, tenant_b)}
    insert = (
        "INSERT INTO catalog.stock_movement (tenant_id, kind, document_number, occurred_at, warehouse_id,"
        " idempotency_key) VALUES (%s, 'merma', 'M-7', now(), %s, 'rpapos:merma:M-7')"
    )
    with in_tenant(sync_conn, tenant_a):
        sync_conn.execute(insert, (tenant_a, warehouses[tenant_a]))
    with pytest.raises(errors.UniqueViolation) as excinfo, in_tenant(sync_conn, tenant_a):
        sync_conn.execute(insert, (tenant_a, warehouses[tenant_a]))
    assert constraint_of(excinfo) == "stock_movement_idempotency_key"
    with in_tenant(sync_conn, tenant_a):
        skipped = sync_conn.execute(
            insert + " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id",
            (tenant_a, warehouses[tenant_a]),
        ).fetchall()
    assert skipped == []
    with in_tenant(sync_conn, tenant_b):
        sync_conn.execute(insert, (tenant_b, warehouses[tenant_b]))


def test_product_codes_are_unique_among_live_products_of_a_kind(owner: Conn) -> None:
    tenant_id = new_tenant(owner)
    plu = new_product(owner, tenant_id, "100")
    with pytest.raises(errors.UniqueViolation) as excinfo:
        new_product(owner, tenant_id, "100")
    assert constraint_of(excinfo) == "product_code_key"
    # RPApos numbers PLUs and SKUs separately: SKU 100 is another product.
    new_product(owner, tenant_id, "100", is_raw_material=True)
    # A soft-deleted product frees its code.
    owner.execute("UPDATE catalog.product SET deleted_at = now() WHERE id = %s", (plu,))
    new_product(owner, tenant_id, "100")


# ---------------------------------------------------------------- append-only archive


def test_the_extraction_archive_is_append_only(owner: Conn, sync_conn: Conn) -> None:
    tenant_id = new_tenant(owner)
    connection_id = new_connection(owner, tenant_id)
    run_id = new_run(owner, tenant_id, connection_id)
    archive_id = new_archive_page(owner, tenant_id, run_id)

    # Not even the owner may change or remove a page.
    for statement in (
        "UPDATE rpapos.rpapos_extraction_archive SET record_count = 0, payload = '[]' WHERE id = %(id)s",
        "DELETE FROM rpapos.rpapos_extraction_archive WHERE id = %(id)s",
        "TRUNCATE rpapos.rpapos_extraction_archive",
    ):
        with pytest.raises(errors.RestrictViolation):
            owner.execute(statement, {"id": archive_id} if "%(id)s" in statement else None)
    # Nor, a fortiori, the sync's role, which may only append.
    for statement in (
        "UPDATE rpapos.rpapos_extraction_archive SET page = 2 WHERE id = %(id)s",
        "DELETE FROM rpapos.rpapos_extraction_archive WHERE id = %(id)s",
    ):
        with pytest.raises(errors.InsufficientPrivilege), in_tenant(sync_conn, tenant_id):
            sync_conn.execute(statement, {"id": archive_id})
    # A connection whose runs are archived cannot be hard-deleted (the runs would cascade).
    with pytest.raises(errors.ForeignKeyViolation):
        owner.execute("DELETE FROM rpapos.rpapos_connection WHERE id = %s", (connection_id,))
    row = owner.execute(
        "SELECT record_count, jsonb_array_length(payload) AS n FROM rpapos.rpapos_extraction_archive"
        " WHERE id = %s",
        (archive_id,),
    ).fetchone()
    assert row == {"record_count": 2, "n": 2}


def test_an_archive_page_counts_its_records(owner: Conn) -> None:
    tenant_id = new_tenant(owner)
    run_id = new_run(owner, tenant_id, new_connection(owner, tenant_id))
    with pytest.raises(errors.CheckViolation) as excinfo:
        owner.execute(
            "INSERT INTO rpapos.rpapos_extraction_archive (tenant_id, sync_run_id, entity_type, record_count,"
            " payload) VALUES (%s, %s, 'sku', 3, '[{}]')",
            (tenant_id, run_id),
        )
    assert constraint_of(excinfo) == "rpapos_extraction_archive_payload_array"


# ---------------------------------------------------------------- row-level security


def test_the_sync_role_sees_and_writes_only_its_tenants_rows(owner: Conn, sync_conn: Conn) -> None:
    tenant_a, tenant_b = new_tenant(owner), new_tenant(owner)
    connections = {tenant_a: new_connection(owner, tenant_a), tenant_b: new_connection(owner, tenant_b)}
    products = {tenant_a: new_product(owner, tenant_a, "1"), tenant_b: new_product(owner, tenant_b, "1")}
    ours = list(connections.values())
    our_products = list(products.values())

    with in_tenant(sync_conn, tenant_a):
        seen = sync_conn.execute(
            "SELECT id FROM rpapos.rpapos_connection WHERE id = ANY(%s)", (ours,)
        ).fetchall()
        seen_products = sync_conn.execute(
            "SELECT id FROM catalog.product WHERE id = ANY(%s)", (our_products,)
        ).fetchall()
        # Tenant B's product cannot be touched either.
        touched = sync_conn.execute(
            "UPDATE catalog.product SET name = 'taken' WHERE id = %s RETURNING id", (products[tenant_b],)
        ).fetchall()
    assert [row["id"] for row in seen] == [connections[tenant_a]]
    assert [row["id"] for row in seen_products] == [products[tenant_a]]
    assert touched == []

    # Without a tenant context nothing is visible.
    with in_tenant(sync_conn, None):
        assert (
            sync_conn.execute(
                "SELECT id FROM rpapos.rpapos_connection WHERE id = ANY(%s)", (ours,)
            ).fetchall()
            == []
        )
        assert (
            sync_conn.execute("SELECT id FROM catalog.product WHERE id = ANY(%s)", (our_products,)).fetchall()
            == []
        )

    # Writing a row into another tenant is refused.
    with pytest.raises(errors.InsufficientPrivilege), in_tenant(sync_conn, tenant_a):
        sync_conn.execute(
            "INSERT INTO catalog.product (tenant_id, code, name) VALUES (%s, '2', 'Intruder')", (tenant_b,)
        )
    with pytest.raises(errors.InsufficientPrivilege), in_tenant(sync_conn, tenant_a):
        new_run(sync_conn, tenant_b, connections[tenant_b])


def test_a_run_cannot_point_at_another_tenants_connection(owner: Conn) -> None:
    tenant_a, tenant_b = new_tenant(owner), new_tenant(owner)
    foreign_connection = new_connection(owner, tenant_b)
    with pytest.raises(errors.ForeignKeyViolation):
        new_run(owner, tenant_a, foreign_connection)


def test_the_admin_reads_across_tenants_only_when_platform_read_is_on(owner: Conn, admin_conn: Conn) -> None:
    tenant_a, tenant_b = new_tenant(owner), new_tenant(owner)
    products = [new_product(owner, tenant_a, "9"), new_product(owner, tenant_b, "9")]
    query = "SELECT count(*) AS n FROM catalog.product WHERE id = ANY(%s)"
    with in_tenant(admin_conn, tenant_a):
        assert one(admin_conn.execute(query, (products,)).fetchone())["n"] == 1
    with in_tenant(admin_conn, None):
        admin_conn.execute("SELECT set_config('app.platform_read', 'on', true)")
        assert one(admin_conn.execute(query, (products,)).fetchone())["n"] == 2


# ---------------------------------------------------------------- least privilege


def test_the_sync_role_cannot_delete_anything(owner: Conn, sync_conn: Conn) -> None:
    granted = owner.execute(
        "SELECT c.oid::regclass::text AS tbl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "   AND (has_table_privilege(%(role)s, c.oid, 'DELETE')"
        "        OR has_table_privilege(%(role)s, c.oid, 'TRUNCATE'))",
        {"role": RPAPOS},
    ).fetchall()
    assert granted == []

    tenant_id = new_tenant(owner)
    connection_id = new_connection(owner, tenant_id)
    run_id = new_run(owner, tenant_id, connection_id, "completed")
    product_id = new_product(owner, tenant_id, "5")
    for schema, table, row_id in (
        ("rpapos", "rpapos_connection", connection_id),
        ("rpapos", "rpapos_sync_run", run_id),
        ("rpapos", "rpapos_id_map", uuid.uuid4()),
        ("catalog", "product", product_id),
        ("catalog", "stock_movement", uuid.uuid4()),
    ):
        delete = sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(schema, table))
        with pytest.raises(errors.InsufficientPrivilege), in_tenant(sync_conn, tenant_id):
            sync_conn.execute(delete, (row_id,))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id FROM identity.users LIMIT 1",
        "SELECT id FROM identity.tenants LIMIT 1",
        "SELECT id FROM identity.tenant_users LIMIT 1",
        "SELECT id FROM loyalty.wallets LIMIT 1",
        "SELECT id FROM loyalty.wallet_ledger LIMIT 1",
        "SELECT id FROM pos.transactions LIMIT 1",
        "SELECT id FROM audit.admin_audit_logs LIMIT 1",
        "UPDATE loyalty.wallets SET status = 'frozen'",
        "INSERT INTO identity.users (role) VALUES ('admin')",
    ],
)
def test_the_sync_role_cannot_touch_identity_loyalty_or_pos(sync_conn: Conn, query: LiteralString) -> None:
    with pytest.raises(errors.InsufficientPrivilege), in_tenant(sync_conn, None):
        sync_conn.execute(query)


def test_the_sync_role_has_no_schema_outside_its_own(owner: Conn) -> None:
    rows = owner.execute(
        "SELECT nspname FROM pg_namespace WHERE has_schema_privilege(%s, oid, 'USAGE')"
        " AND nspname NOT LIKE 'pg\\_%%' AND nspname NOT IN ('information_schema', 'public')",
        (RPAPOS,),
    ).fetchall()
    assert {row["nspname"] for row in rows} == {"app", "rpapos", "catalog"}


def test_the_sync_role_updates_only_the_sync_fields_of_a_connection(owner: Conn, sync_conn: Conn) -> None:
    tenant_id = new_tenant(owner)
    connection_id = new_connection(owner, tenant_id)
    with in_tenant(sync_conn, tenant_id):
        row = sync_conn.execute(
            "UPDATE rpapos.rpapos_connection SET last_synced_at = now(), last_full_sync_at = now(),"
            " status = 'active', last_error = NULL, soap_token_encrypted = %s, localizacion_id = 3,"
            " conexion_db = 11, conexion_mainframe = 12 WHERE id = %s RETURNING password_encrypted",
            (sealed("soap_token_encrypted", connection_id), connection_id),
        ).fetchone()
    # It reads the credentials (the sync opens them), and opens them with the row's binding.
    envelope = one(row)["password_encrypted"]
    assert CIPHER.decrypt(
        envelope, table="rpapos.rpapos_connection", column="password_encrypted", row_id=str(connection_id)
    )
    for column, value in (
        ("password_encrypted", sealed("password_encrypted", connection_id)),
        ("subdomain", "elsewhere"),
        ("tenant_id", str(tenant_id)),
        ("deleted_at", "2026-01-01T00:00:00Z"),
    ):
        update = sql.SQL("UPDATE rpapos.rpapos_connection SET {} = %s WHERE id = %s").format(
            sql.Identifier(column)
        )
        with pytest.raises(errors.InsufficientPrivilege), in_tenant(sync_conn, tenant_id):
            sync_conn.execute(update, (value, connection_id))


def test_a_run_parks_and_is_cancelled_through_the_two_roles(
    owner: Conn, sync_conn: Conn, admin_conn: Conn
) -> None:
    tenant_id = new_tenant(owner)
    connection_id = new_connection(owner, tenant_id)
    # Given a run started by the scheduler (the sync's role)
    with in_tenant(sync_conn, tenant_id):
        run_id = new_run(sync_conn, tenant_id, connection_id)
    # When an operator pauses it, the run parks with its callback token
    with in_tenant(admin_conn, tenant_id):
        admin_conn.execute("UPDATE rpapos.rpapos_sync_run SET paused = true WHERE id = %s", (run_id,))
    with in_tenant(sync_conn, tenant_id):
        sync_conn.execute(
            "UPDATE rpapos.rpapos_sync_run SET status = 'paused', task_token = 'token-1',"
            " current_entity = 'plu', cursor = %s, per_entity_stats = %s WHERE id = %s",
            (
                Jsonb({"entity": "plu", "page": 3}),
                Jsonb(
                    {
                        "moneda": {
                            "extracted": 2,
                            "loaded": 2,
                            "failed": 0,
                            "skipped": 0,
                            "status": "completed",
                        }
                    }
                ),
                run_id,
            ),
        )
    # Then the operator cancels it, which answers the token and ends the run
    with in_tenant(admin_conn, tenant_id):
        admin_conn.execute(
            "UPDATE rpapos.rpapos_sync_run SET cancel_requested = true, status = 'cancelled',"
            " completed_at = now(), task_token = NULL WHERE id = %s",
            (run_id,),
        )
    run = one(owner.execute("SELECT * FROM rpapos.rpapos_sync_run WHERE id = %s", (run_id,)).fetchone())
    assert (run["status"], run["paused"], run["cancel_requested"], run["task_token"]) == (
        "cancelled",
        True,
        True,
        None,
    )
    assert run["updated_at"] > run["created_at"]
    # Neither role may rewrite what the run was, nor delete it.
    for conn in (sync_conn, admin_conn):
        with pytest.raises(errors.InsufficientPrivilege), in_tenant(conn, tenant_id):
            conn.execute("UPDATE rpapos.rpapos_sync_run SET mode = 'custom' WHERE id = %s", (run_id,))
        with pytest.raises(errors.InsufficientPrivilege), in_tenant(conn, tenant_id):
            conn.execute("DELETE FROM rpapos.rpapos_sync_run WHERE id = %s", (run_id,))
    # The admin does not write progress.
    with pytest.raises(errors.InsufficientPrivilege), in_tenant(admin_conn, tenant_id):
        admin_conn.execute(
            "UPDATE rpapos.rpapos_sync_run SET per_entity_stats = '{}' WHERE id = %s", (run_id,)
        )


def test_the_admin_creates_connections_and_only_reads_the_catalog(owner: Conn, admin_conn: Conn) -> None:
    tenant_id = new_tenant(owner)
    connection_id = uuid.uuid4()
    with in_tenant(admin_conn, tenant_id):
        admin_conn.execute(
            "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
            " VALUES (%s, %s, %s, 'gerente', %s)",
            (connection_id, tenant_id, unique("adm-").lower(), sealed("password_encrypted", connection_id)),
        )
        admin_conn.execute(
            "UPDATE rpapos.rpapos_connection SET soap_token_encrypted = %s, localizacion_id = 1,"
            " conexion_db = 2, conexion_mainframe = 3, estacion_trabajo = 4 WHERE id = %s",
            (sealed("soap_token_encrypted", connection_id), connection_id),
        )
    with pytest.raises(errors.InsufficientPrivilege), in_tenant(admin_conn, tenant_id):
        admin_conn.execute("INSERT INTO catalog.product (tenant_id, name) VALUES (%s, 'x')", (tenant_id,))
    with pytest.raises(errors.InsufficientPrivilege), in_tenant(admin_conn, tenant_id):
        admin_conn.execute("DELETE FROM rpapos.rpapos_connection WHERE id = %s", (connection_id,))


# ---------------------------------------------------------------- values


def test_credentials_are_stored_sealed_only(owner: Conn) -> None:
    tenant_id = new_tenant(owner)
    with pytest.raises(errors.CheckViolation) as excinfo:
        owner.execute(
            "INSERT INTO rpapos.rpapos_connection (tenant_id, subdomain, usuario, password_encrypted)"
            " VALUES (%s, %s, 'cajero', 'plain-password')",
            (tenant_id, unique("p-").lower()),
        )
    assert constraint_of(excinfo) == "rpapos_connection_password_sealed"


def test_a_sync_window_ends_after_it_starts(owner: Conn) -> None:
    tenant_id = new_tenant(owner)
    connection_id = new_connection(owner, tenant_id)
    with pytest.raises(errors.CheckViolation) as excinfo:
        owner.execute(
            "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, entity_types, date_from,"
            " date_to) VALUES (%s, %s, 'historical', '{compra}', '2026-02-01', '2026-01-01')",
            (tenant_id, connection_id),
        )
    assert constraint_of(excinfo) == "rpapos_sync_run_window"


PRICE_COLUMNS = [
    ("product", "price"),
    ("product_price", "price"),
    ("product_modifier", "price_delta"),
    ("stock_movement_line", "unit_cost"),
    ("stock_movement_line", "quantity"),
    ("recipe_item", "quantity"),
    ("recipe", "yield_quantity"),
]


def test_prices_and_quantities_are_numeric_19_4(owner: Conn) -> None:
    rows = owner.execute(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale"
        " FROM information_schema.columns WHERE table_schema = 'catalog'"
    ).fetchall()
    types = {
        (r["table_name"], r["column_name"]): (r["data_type"], r["numeric_precision"], r["numeric_scale"])
        for r in rows
    }
    assert {column: types.get(column) for column in PRICE_COLUMNS} == {
        column: ("numeric", 19, 4) for column in PRICE_COLUMNS
    }


def test_no_float_or_money_column_in_the_new_schemas(owner: Conn) -> None:
    rows = owner.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema IN ('rpapos', 'catalog') AND data_type IN ('real', 'double precision', 'money')"
    ).fetchall()
    assert rows == []


def test_every_new_table_touches_updated_at(owner: Conn) -> None:
    missing = owner.execute(
        """
        SELECT c.oid::regclass::text AS tbl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname IN ('rpapos', 'catalog')
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'updated_at')
           AND NOT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                            WHERE t.tgrelid = c.oid AND p.proname = 'touch_updated_at')
        """
    ).fetchall()
    assert missing == []
