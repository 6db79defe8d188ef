"""The RPApos loader (pos_gateway.rpapos.loader) against the real schema, as role
pos_gateway_rpapos under row-level security, with records from the fake RPApos's generator (the
field names the clients deliver)."""

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from local import seed
from local.database import Database
from local.fake_rpapos import Catalog, Volume
from pos_gateway.db import tenant_transaction
from pos_gateway.rpapos import contract, loader
from pos_gateway.rpapos.contract import ARCHIVE_ONLY, CATALOG, OPERATIONAL, EntityType
from pos_gateway.rpapos.loader import LoadContext, LoadResult, RowError, load_page
from pos_gateway.rpapos.mapping import MAPPERS, Rules, payload_hash
from pos_gateway.rpapos.planner import dependency_order
from tests.helpers import one, unique

E = EntityType
RPAPOS = "pos_gateway_rpapos"
CIPHER = seed.dev_cipher()
SMALL = Volume(plus=20, skus=12, personas=6, batches=6, documents=6, modifier_groups=3, items_per_group=3)
CATALOG_TABLES = (
    "currency",
    "unit_of_measure",
    "product_category",
    "supplier",
    "warehouse",
    "area",
    "order_type",
    "dining_table",
    "customer",
    "product",
    "product_price",
    "recipe",
    "recipe_item",
    "product_modifier_group",
    "product_modifier",
    "product_modifier_group_assignment",
    "stock_movement",
    "stock_movement_line",
)

Conn = psycopg.Connection[Any]


# ---------------------------------------------------------------- arranging


@dataclass
class Shop:
    """A tenant with an RPApos connection, a sync run and its own generated RPApos data."""

    tenant_id: uuid.UUID
    context: LoadContext
    catalog: Catalog
    results: dict[EntityType, LoadResult] = field(default_factory=dict)  # of load_all


def new_shop(owner: Conn, volume: Volume = SMALL, tipo_gestion_map: Mapping[str, str] | None = None) -> Shop:
    tenant_id = seed.create_tenant(owner, unique("Loader "))
    connection_id = uuid.uuid4()
    password = CIPHER.encrypt(
        "s3cret-Passw0rd",
        table="rpapos.rpapos_connection",
        column="password_encrypted",
        row_id=str(connection_id),
    )
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
        " VALUES (%s, %s, %s, 'admin', %s)",
        (connection_id, tenant_id, unique("shop-").lower(), password),
    )
    run = owner.execute(
        "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, entity_types)"
        " VALUES (%s, %s, 'catalog', '{plu}') RETURNING id",
        (tenant_id, connection_id),
    ).fetchone()
    context = LoadContext(
        tenant_id=tenant_id,
        sync_run_id=one(run)["id"],
        currency_code="GTQ",
        tipo_gestion_map=dict(tipo_gestion_map or {}),
    )
    return Shop(tenant_id, context, Catalog(unique("seed-"), volume))


def source(shop: Shop, entity: EntityType) -> list[dict[str, Any]]:
    """Every record of an entity type, as the client delivers them (assignments: the PLUs)."""
    read = E.PLU if entity is E.PLU_OPTION_GROUP_ASSIGNMENT else entity
    return shop.catalog.records(read, range(shop.catalog.count(read)))


def load(
    conn: Conn, shop: Shop, entity: EntityType, records: Sequence[Mapping[str, Any]] | None = None
) -> LoadResult:
    with tenant_transaction(conn, shop.tenant_id):
        return load_page(conn, entity, source(shop, entity) if records is None else records, shop.context)


def load_all(conn: Conn, shop: Shop, types: frozenset[EntityType]) -> None:
    for entity in dependency_order(types):
        result = shop.results[entity] = load(conn, shop, entity)
        assert result.failed == 0, (entity, result.errors)


def scalar(owner: Conn, query: str, *params: Any) -> Any:
    row = owner.execute(query, params).fetchone()
    return next(iter(one(row).values()))


def count(owner: Conn, shop: Shop, table: str, where: str = "true") -> int:
    return int(
        scalar(
            owner, f"SELECT count(*) FROM catalog.{table} WHERE tenant_id = %s AND {where}", shop.tenant_id
        )
    )


def fingerprint(owner: Conn, shop: Shop) -> dict[str, str]:
    """Every row of the tenant's catalog and id map, with its version (xmin) and updated_at."""
    tables = [f"catalog.{table}" for table in CATALOG_TABLES] + ["rpapos.rpapos_id_map"]
    return {
        table: str(
            scalar(
                owner,
                f"SELECT count(*) || ':' || coalesce(md5(string_agg("
                f"id::text || xmin::text || updated_at::text, ',' ORDER BY id)), '')"
                f" FROM {table} WHERE tenant_id = %s",
                shop.tenant_id,
            )
        )
        for table in tables
    }


def product(owner: Conn, shop: Shop, code: str, raw: bool = False) -> dict[str, Any]:
    rows = owner.execute(
        "SELECT p.*, c.code AS category_code, u.code AS unit_code"
        "  FROM catalog.product p"
        "  LEFT JOIN catalog.product_category c ON c.id = p.category_id"
        "  LEFT JOIN catalog.unit_of_measure u ON u.id = p.unit_id"
        " WHERE p.tenant_id = %s AND p.code = %s AND p.is_raw_material = %s",
        (shop.tenant_id, code, raw),
    ).fetchall()
    assert len(rows) == 1, f"{len(rows)} products {code}"
    return dict(rows[0])


def mapped(owner: Conn, shop: Shop, entity: EntityType) -> dict[str, dict[str, Any]]:
    rows = owner.execute(
        "SELECT * FROM rpapos.rpapos_id_map WHERE tenant_id = %s AND entity_type = %s",
        (shop.tenant_id, entity.value),
    ).fetchall()
    return {row["external_id"]: dict(row) for row in rows}


def deleted(records: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for record in records if record[contract.DELETED_FIELD])


@pytest.fixture(scope="module")
def conn(database: Database) -> Iterator[Conn]:
    with database.connect_as(RPAPOS) as connection:
        yield connection


@pytest.fixture(scope="module")
def loaded(owner: Conn, conn: Conn) -> Shop:
    """A shop whose whole catalog and operational documents are loaded (read-only for tests)."""
    shop = new_shop(owner, tipo_gestion_map={"TG01": "dine_in"})
    load_all(conn, shop, CATALOG | OPERATIONAL)
    return shop


# ---------------------------------------------------------------- wiring


def test_every_entity_type_is_loaded_or_archived_only():
    loadable = set(EntityType) - set(ARCHIVE_ONLY)
    assert set(MAPPERS) == loadable
    assert set(loader._TARGETS) == loadable
    for target in loader._TARGETS.values():
        assert loader._SQL[f"insert_{target.table}"]
        assert loader._SQL[f"update_{target.table}"]
        assert target.children is None or loader._SQL[target.children]


def test_the_id_map_is_indexed_by_external_id_for_lookups_under_row_level_security(owner):
    # enum_eq is not leakproof: under the tenant policy an entity_type condition is never an
    # index condition, so the loader looks external ids up through this index (0022).
    assert scalar(owner, "SELECT proleakproof FROM pg_proc WHERE proname = 'enum_eq'") is False
    definition = scalar(
        owner, "SELECT indexdef FROM pg_indexes WHERE indexname = 'rpapos_id_map_external_idx'"
    )
    assert definition.endswith("(tenant_id, external_id)")


# ---------------------------------------------------------------- a whole catalog


def test_the_catalog_loads_in_dependency_order_with_every_record_counted(owner, loaded):
    shop = loaded
    for entity, result in shop.results.items():
        records = source(shop, entity)
        assert (result.failed, result.skipped, result.updated) == (0, 0, 0), entity
        if entity is E.PLU_OPTION_GROUP_ASSIGNMENT:
            assert result.inserted == sum(len(r["Grupos_Opciones"]) for r in records)
        else:
            assert result.inserted == len(records), entity
        assert len(mapped(owner, shop, entity)) == result.inserted, entity

    def n(entity: EntityType) -> int:
        return len(source(shop, entity))

    assert count(owner, shop, "currency") == n(E.MONEDA)
    assert count(owner, shop, "unit_of_measure") == n(E.UNIDAD_MEDIDA)
    for kind, entity in (("plu", E.PLU_GRUPO), ("sku", E.SKU_GRUPO), ("produccion", E.PRODUCCION_GRUPO)):
        assert count(owner, shop, "product_category", f"kind = '{kind}'") == n(entity)
    assert count(owner, shop, "supplier") == n(E.PROVEEDOR)
    assert count(owner, shop, "warehouse") == n(E.BODEGA)
    assert count(owner, shop, "area") == n(E.AREA)
    assert count(owner, shop, "dining_table") == n(E.MESA)
    assert count(owner, shop, "order_type") == n(E.TIPO_GESTION)
    assert count(owner, shop, "customer") == n(E.PERSONA)
    assert count(owner, shop, "product", "NOT is_raw_material") == n(E.PLU)
    assert count(owner, shop, "product", "is_raw_material") == n(E.SKU)
    assert count(owner, shop, "product", "NOT is_raw_material AND deleted_at IS NOT NULL") == deleted(
        source(shop, E.PLU)
    )
    assert count(owner, shop, "product_price") == n(E.PRECIO)
    assert count(owner, shop, "recipe") == n(E.BATCH_MAESTRO)
    assert count(owner, shop, "recipe_item") == n(E.BATCH_MAESTRO)  # one SKU per batch
    assert count(owner, shop, "product_modifier_group") == n(E.PLU_OPTION_GROUP)
    assert count(owner, shop, "product_modifier") == n(E.PLU_OPTION_ITEM)
    assert count(owner, shop, "product_modifier_group_assignment") == sum(
        len(r["Grupos_Opciones"]) for r in source(shop, E.PLU)
    )
    # Soft-deleted rows of referenced lists are loaded too (deleted), so a later undelete finds them.
    assert count(owner, shop, "warehouse", "deleted_at IS NOT NULL") == deleted(source(shop, E.BODEGA)) == 1


def test_references_and_fields_map_to_the_right_rows(owner, loaded):
    shop = loaded
    plu = source(shop, E.PLU)[1]
    row = product(owner, shop, plu["Codigo_PLU"])
    assert row["name"] == plu["Descripcion"]
    assert (row["category_code"], row["unit_code"]) == (plu["Codigo_Grupo"], plu["Codigo_Unidad"])
    assert (row["price"], row["currency_code"], row["is_raw_material"]) == (
        Decimal(str(plu["Precio"])),
        "GTQ",
        False,
    )
    assert row["deleted_at"] is None
    sku = source(shop, E.SKU)[0]
    raw = product(owner, shop, sku["Codigo_SKU"], raw=True)
    assert (raw["category_code"], raw["price"]) == (sku["Codigo_Grupo"], None)

    mesa = source(shop, E.MESA)[0]
    area_code = scalar(
        owner,
        "SELECT a.code FROM catalog.dining_table t JOIN catalog.area a ON a.id = t.area_id"
        " WHERE t.tenant_id = %s AND t.code = %s",
        shop.tenant_id,
        mesa["Codigo_Mesa"],
    )
    assert area_code == mesa["Codigo_Area"]
    order_types = {
        r["code"]: r["flowpos_order_type"]
        for r in owner.execute(
            "SELECT code, flowpos_order_type FROM catalog.order_type WHERE tenant_id = %s", (shop.tenant_id,)
        ).fetchall()
    }
    assert order_types["TG01"] == "dine_in"
    assert order_types["TG02"] is None  # unmapped: loaded, waiting for the operator's map

    batch = source(shop, E.BATCH_MAESTRO)[0]
    item = one(
        owner.execute(
            "SELECT r.name, pp.code AS plu, ps.code AS sku, i.quantity, u.code AS unit"
            "  FROM catalog.recipe r JOIN catalog.recipe_item i ON i.recipe_id = r.id"
            "  JOIN catalog.product pp ON pp.id = r.product_id"
            "  JOIN catalog.product ps ON ps.id = i.product_id"
            "  LEFT JOIN catalog.unit_of_measure u ON u.id = i.unit_id"
            " WHERE r.tenant_id = %s AND r.code = %s",
            (shop.tenant_id, batch["Codigo_Batch"]),
        ).fetchone()
    )
    assert item == {
        "name": batch["Descripcion"],
        "plu": batch["Codigo_PLU"],
        "sku": batch["Codigo_SKU"],
        "quantity": Decimal(str(batch["Cantidad"])),
        "unit": batch["Codigo_Unidad"],
    }

    option = source(shop, E.PLU_OPTION_ITEM)[0]
    modifier = one(
        owner.execute(
            "SELECT g.code AS grupo, p.code AS plu, m.price_delta, m.position FROM catalog.product_modifier m"
            "  JOIN catalog.product_modifier_group g ON g.id = m.group_id"
            "  LEFT JOIN catalog.product p ON p.id = m.product_id WHERE m.tenant_id = %s AND m.code = %s",
            (shop.tenant_id, option["Codigo_Detalle"]),
        ).fetchone()
    )
    assert modifier == {
        "grupo": option["Codigo_Grupo"],
        "plu": option["Codigo_PLU"],
        "price_delta": option["Precio_Adicional"],
        "position": option["Orden"],
    }


def test_prices_and_quantities_are_exact_decimals(owner, loaded):
    shop = loaded
    stored = dict(
        (r["code"], r["price"])
        for r in owner.execute(
            "SELECT code, price FROM catalog.product WHERE tenant_id = %s AND NOT is_raw_material",
            (shop.tenant_id,),
        ).fetchall()
    )
    assert stored == {
        r["Codigo_PLU"]: Decimal(str(r["Precio"])).quantize(Decimal("0.0001")) for r in source(shop, E.PLU)
    }
    prices = owner.execute(
        "SELECT p.code, pp.currency_code, pp.price_list, pp.price FROM catalog.product_price pp"
        " JOIN catalog.product p ON p.id = pp.product_id WHERE pp.tenant_id = %s",
        (shop.tenant_id,),
    ).fetchall()
    assert {(r["code"], r["currency_code"], r["price_list"], r["price"]) for r in prices} == {
        (r["Codigo_PLU"], r["Codigo_Moneda"], r["Lista"], Decimal(str(r["Precio"])))
        for r in source(shop, E.PRECIO)
    }
    assert all(isinstance(r["price"], Decimal) for r in prices)


def test_a_second_load_of_the_same_pages_skips_everything_and_writes_nothing(owner, conn, loaded):
    shop = loaded
    before = fingerprint(owner, shop)
    for entity in dependency_order(CATALOG | OPERATIONAL):
        result = load(conn, shop, entity)
        assert (result.inserted, result.updated, result.failed) == (0, 0, 0), entity
        if entity is E.PLU_OPTION_GROUP_ASSIGNMENT:  # counted per (PLU, group) pair
            assert result.skipped == sum(len(r["Grupos_Opciones"]) for r in source(shop, E.PLU))
        else:
            assert result.skipped == len(source(shop, entity)), entity
    assert fingerprint(owner, shop) == before


def test_archive_only_entity_types_write_nothing(owner, conn, loaded):
    shop = loaded
    before = fingerprint(owner, shop)
    for entity in ARCHIVE_ONLY:
        records = source(shop, entity)
        assert records
        assert load(conn, shop, entity, records) == LoadResult(0, 0, 0, 0, len(records), ())
    assert fingerprint(owner, shop) == before


def test_another_tenant_sees_nothing_and_loads_its_own_rows(owner, conn, loaded):
    other = new_shop(owner)
    other.catalog = loaded.catalog  # the very same RPApos records
    with tenant_transaction(conn, other.tenant_id):
        for table in CATALOG_TABLES:
            assert conn.execute(f"SELECT count(*) AS n FROM catalog.{table}").fetchone() == {"n": 0}, table
        assert conn.execute("SELECT count(*) AS n FROM rpapos.rpapos_id_map").fetchone() == {"n": 0}
    load_all(conn, other, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU}))
    assert other.results[E.PLU].inserted == len(source(other, E.PLU))  # not skipped: its own id map
    assert count(owner, other, "product") == len(source(other, E.PLU))
    assert count(owner, loaded, "product", "NOT is_raw_material") == len(source(loaded, E.PLU))


# ---------------------------------------------------------------- changes


def test_a_modified_record_is_exactly_one_update(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU}))
    before = product(owner, shop, "PLU000002")
    untouched = product(owner, shop, "PLU000003")
    shop.catalog.modify(E.PLU, 1, Descripcion="Pepián de la casa", Precio=19.99)

    result = load(conn, shop, E.PLU)

    assert (result.inserted, result.updated, result.skipped, result.failed) == (
        0,
        1,
        len(source(shop, E.PLU)) - 1,
        0,
    )
    after = product(owner, shop, "PLU000002")
    assert (after["id"], after["name"], after["price"]) == (
        before["id"],
        "Pepián de la casa",
        Decimal("19.9900"),
    )
    assert after["updated_at"] > before["updated_at"]
    assert product(owner, shop, "PLU000003")["updated_at"] == untouched["updated_at"]
    entry = mapped(owner, shop, E.PLU)["PLU000002"]
    assert entry["source_payload_hash"] == payload_hash(E.PLU, shop.catalog.record(E.PLU, 1), _rules(shop))


def _rules(shop: Shop) -> Rules:
    return Rules(shop.context.currency_code, shop.context.tipo_gestion_map)


def test_soft_delete_sets_deleted_at_once_and_undelete_clears_it(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU}))
    shop.catalog.modify(E.PLU, 0, **{contract.DELETED_FIELD: True})
    assert load(conn, shop, E.PLU).updated == 1
    first = product(owner, shop, "PLU000001")
    assert first["deleted_at"] is not None

    shop.catalog.modify(E.PLU, 0, Descripcion="Todavía eliminado")
    assert load(conn, shop, E.PLU).updated == 1
    again = product(owner, shop, "PLU000001")
    assert (again["name"], again["deleted_at"]) == ("Todavía eliminado", first["deleted_at"])

    shop.catalog.modify(E.PLU, 0, **{contract.DELETED_FIELD: False})
    assert load(conn, shop, E.PLU).updated == 1
    revived = product(owner, shop, "PLU000001")
    assert (revived["id"], revived["deleted_at"]) == (first["id"], None)


def test_a_record_deleted_before_its_first_load_is_mapped_and_found_by_its_undelete(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU}))
    born_deleted = shop.catalog.record(E.PLU, 8)
    assert born_deleted[contract.DELETED_FIELD] is True
    row = product(owner, shop, born_deleted["Codigo_PLU"])
    assert row["deleted_at"] is not None
    assert mapped(owner, shop, E.PLU)[born_deleted["Codigo_PLU"]]["flowpos_entity_id"] == row["id"]

    shop.catalog.modify(E.PLU, 8, **{contract.DELETED_FIELD: False})
    assert load(conn, shop, E.PLU).updated == 1
    assert product(owner, shop, born_deleted["Codigo_PLU"])["deleted_at"] is None
    assert count(owner, shop, "product", f"code = '{born_deleted['Codigo_PLU']}'") == 1


def test_the_same_external_id_twice_in_a_page_makes_one_product_the_last_record_winning(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO}))
    first = shop.catalog.record(E.PLU, 0)
    last = {**first, "Descripcion": "La última versión", "Precio": 10.5}

    result = load(conn, shop, E.PLU, [first, shop.catalog.record(E.PLU, 1), last])

    assert (result.inserted, result.skipped, result.failed) == (2, 1, 0)
    row = product(owner, shop, first["Codigo_PLU"])
    assert (row["name"], row["price"]) == ("La última versión", Decimal("10.5000"))
    # And again, in the other order, in a later page: still the one product.
    assert load(conn, shop, E.PLU, [last, first]).updated == 1
    assert product(owner, shop, first["Codigo_PLU"])["name"] == first["Descripcion"]


def test_a_missing_reference_or_a_bad_field_fails_its_record_and_the_others_load(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO}))
    records = source(shop, E.PLU)[:6]
    records[1] = {**records[1], "Codigo_Grupo": "G999"}
    records[2] = {**records[2], "Precio": "mucho"}
    records[3] = {**records[3], "Precio": -1}
    records[4] = {**records[4], "Descripcion": "   "}
    del records[5]["Codigo_PLU"]

    result = load(conn, shop, E.PLU, records)

    assert (result.inserted, result.failed) == (1, 5)
    assert set(result.errors) == {
        RowError(records[1]["Codigo_PLU"], "missing_reference:plu_grupo"),
        RowError(records[2]["Codigo_PLU"], "invalid:Precio"),
        RowError(records[3]["Codigo_PLU"], "invalid:Precio"),
        RowError(records[4]["Codigo_PLU"], "invalid:Descripcion"),
        RowError("", "invalid:Codigo_PLU"),
    }
    assert count(owner, shop, "product") == 1
    assert set(mapped(owner, shop, E.PLU)) == {records[0]["Codigo_PLU"]}
    # The failed records were never mapped: once their group exists they load.
    assert load(conn, shop, E.PLU, [records[1]]).failed == 1
    assert load(conn, shop, E.PLU, [source(shop, E.PLU)[1]]).inserted == 1


@pytest.mark.parametrize("pipeline", [False, True], ids=["plain", "pipelined"])
def test_a_record_the_database_refuses_fails_alone_under_a_savepoint(owner, conn, pipeline):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU}))
    born_deleted = shop.catalog.record(E.PLU, 8)["Codigo_PLU"]
    # Meanwhile FlowPOS made a live product with that code: the undelete cannot take it.
    owner.execute(
        "INSERT INTO catalog.product (tenant_id, code, name) VALUES (%s, %s, 'Hecho en FlowPOS')",
        (shop.tenant_id, born_deleted),
    )
    shop.catalog.modify(E.PLU, 8, **{contract.DELETED_FIELD: False})
    for index in (2, 5, 12):
        shop.catalog.modify(E.PLU, index, Descripcion=f"Cambio {index}")

    with tenant_transaction(conn, shop.tenant_id, pipeline=pipeline):
        result = load_page(conn, E.PLU, source(shop, E.PLU), shop.context)

    assert (result.updated, result.failed) == (3, 1)
    assert result.errors == (RowError(born_deleted, "conflict:product_code_key"),)
    assert product(owner, shop, "PLU000006")["name"] == "Cambio 5"
    # Its id map entry is untouched: the next load tries again.
    assert load(conn, shop, E.PLU).errors == (RowError(born_deleted, "conflict:product_code_key"),)


def test_price_records_sharing_a_plu_list_and_currency_share_its_one_live_price(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU, E.MONEDA}))
    price = shop.catalog.record(E.PRECIO, 0)
    page = [
        price,
        {**price, "Codigo_Precio": "PRE-DUP", "Precio": 12.34},
        {**price, "Codigo_Precio": "PRE-OLD", "Precio": 1, contract.DELETED_FIELD: True},
        shop.catalog.record(E.PRECIO, 1),
    ]

    result = load(conn, shop, E.PRECIO, page)

    assert (result.inserted, result.failed) == (4, 0)
    rows = owner.execute(
        "SELECT id, price, deleted_at IS NOT NULL AS gone FROM catalog.product_price"
        " WHERE tenant_id = %s AND currency_code = %s ORDER BY price",
        (shop.tenant_id, price["Codigo_Moneda"]),
    ).fetchall()
    assert [(r["price"], r["gone"]) for r in rows] == [(Decimal("1.0000"), True), (Decimal("12.3400"), False)]
    ids = mapped(owner, shop, E.PRECIO)
    live = rows[1]["id"]
    assert (ids[price["Codigo_Precio"]]["flowpos_entity_id"], ids["PRE-DUP"]["flowpos_entity_id"]) == (
        live,
        live,
    )
    assert ids["PRE-OLD"]["flowpos_entity_id"] == rows[0]["id"]
    assert load(conn, shop, E.PRECIO, page).skipped == 4


def test_a_live_row_with_the_same_code_is_adopted_not_duplicated(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO}))
    existing = one(
        owner.execute(
            "INSERT INTO catalog.product (tenant_id, code, name, image_url) VALUES (%s, 'PLU000001', 'Viejo',"
            " 'images/plu1.png') RETURNING id",
            (shop.tenant_id,),
        ).fetchone()
    )["id"]

    result = load(conn, shop, E.PLU)

    assert (result.inserted, result.failed) == (len(source(shop, E.PLU)), 0)
    row = product(owner, shop, "PLU000001")
    assert (row["id"], row["name"], row["image_url"]) == (
        existing,
        source(shop, E.PLU)[0]["Descripcion"],
        "images/plu1.png",
    )
    assert mapped(owner, shop, E.PLU)["PLU000001"]["flowpos_entity_id"] == existing


def test_a_changed_order_type_map_reloads_the_order_types(owner, conn):
    shop = new_shop(owner, tipo_gestion_map={})
    assert load(conn, shop, E.TIPO_GESTION).inserted == len(source(shop, E.TIPO_GESTION))
    shop.context = LoadContext(shop.tenant_id, shop.context.sync_run_id, "GTQ", {"TG02": "takeout"})
    result = load(conn, shop, E.TIPO_GESTION)
    assert (result.updated, result.skipped) == (1, len(source(shop, E.TIPO_GESTION)) - 1)
    assert (
        scalar(
            owner,
            "SELECT flowpos_order_type FROM catalog.order_type WHERE tenant_id = %s AND code = 'TG02'",
            shop.tenant_id,
        )
        == "takeout"
    )


def test_a_recipe_follows_its_batch(owner, conn):
    shop = new_shop(owner)
    load_all(
        conn,
        shop,
        frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.SKU_GRUPO, E.PROVEEDOR, E.PLU, E.SKU, E.BATCH_MAESTRO}),
    )
    batch = shop.catalog.record(E.BATCH_MAESTRO, 0)
    other_sku = next(r["Codigo_SKU"] for r in source(shop, E.SKU) if r["Codigo_SKU"] != batch["Codigo_SKU"])
    shop.catalog.modify(
        E.BATCH_MAESTRO,
        0,
        Lineas=[
            {"Codigo_SKU": other_sku, "Cantidad": 0.25},
            {"Codigo_SKU": batch["Codigo_SKU"], "Cantidad": 2},
        ],
    )
    assert load(conn, shop, E.BATCH_MAESTRO).updated == 1
    shop.catalog.modify(E.BATCH_MAESTRO, 0, Lineas=[{"Codigo_SKU": other_sku, "Cantidad": 0.5}])
    assert load(conn, shop, E.BATCH_MAESTRO).updated == 1

    items = owner.execute(
        "SELECT p.code, i.quantity, i.deleted_at IS NOT NULL AS gone FROM catalog.recipe r"
        " JOIN catalog.recipe_item i ON i.recipe_id = r.id JOIN catalog.product p ON p.id = i.product_id"
        " WHERE r.tenant_id = %s AND r.code = %s",
        (shop.tenant_id, batch["Codigo_Batch"]),
    ).fetchall()
    assert {(i["code"], i["quantity"], i["gone"]) for i in items} == {
        (other_sku, Decimal("0.5000"), False),
        (batch["Codigo_SKU"], Decimal("2.0000"), True),
    }


def test_modifier_group_assignments_follow_the_plu_and_come_back(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO, E.PLU, E.PLU_OPTION_GROUP}))
    offer = [{"Codigo_Grupo": "MG001", "Orden": 1}, {"Codigo_Grupo": "MG002", "Orden": 2}]
    shop.catalog.modify(E.PLU, 0, Grupos_Opciones=offer)
    first = load(conn, shop, E.PLU_OPTION_GROUP_ASSIGNMENT)
    assert first.failed == 0
    assert first.inserted >= 2

    def pairs() -> dict[str, tuple[int, bool]]:
        rows = owner.execute(
            "SELECT g.code, a.position, a.deleted_at IS NOT NULL AS gone"
            "  FROM catalog.product_modifier_group_assignment a"
            "  JOIN catalog.product p ON p.id = a.product_id"
            "  JOIN catalog.product_modifier_group g ON g.id = a.group_id"
            " WHERE a.tenant_id = %s AND p.code = 'PLU000001'",
            (shop.tenant_id,),
        ).fetchall()
        return {r["code"]: (r["position"], r["gone"]) for r in rows}

    assert pairs() == {"MG001": (1, False), "MG002": (2, False)}
    shop.catalog.modify(E.PLU, 0, Grupos_Opciones=[{"Codigo_Grupo": "MG002", "Orden": 1}])
    result = load(conn, shop, E.PLU_OPTION_GROUP_ASSIGNMENT)
    assert (result.inserted, result.updated, result.failed) == (0, 2, 0)  # MG002 moved, MG001 retired
    assert pairs() == {"MG001": (1, True), "MG002": (1, False)}
    assert load(conn, shop, E.PLU_OPTION_GROUP_ASSIGNMENT).loaded == 0

    shop.catalog.modify(E.PLU, 0, Grupos_Opciones=[*offer, {"Codigo_Grupo": "MG404", "Orden": 3}])
    result = load(conn, shop, E.PLU_OPTION_GROUP_ASSIGNMENT)
    assert (result.updated, result.errors) == (
        2,
        (RowError("PLU000001:MG404", "missing_reference:plu_option_group"),),
    )
    assert pairs() == {"MG001": (1, False), "MG002": (2, False)}
    assert (
        count(owner, shop, "product_modifier_group_assignment", "deleted_at IS NULL")
        == sum(len(r["Grupos_Opciones"]) for r in source(shop, E.PLU) if not r[contract.DELETED_FIELD]) - 1
    )


# ---------------------------------------------------------------- stock movements


def test_stock_movements_load_once_with_their_lines_in_utc(owner, conn, loaded):
    shop = loaded
    for entity in OPERATIONAL:
        assert shop.results[entity].inserted == len(source(shop, entity))
    compra = source(shop, E.COMPRA)[0]
    movement = one(
        owner.execute(
            "SELECT m.*, w.code AS bodega, s.code AS proveedor FROM catalog.stock_movement m"
            "  JOIN catalog.warehouse w ON w.id = m.warehouse_id"
            "  LEFT JOIN catalog.supplier s ON s.id = m.supplier_id"
            " WHERE m.tenant_id = %s AND m.idempotency_key = %s",
            (shop.tenant_id, f"rpapos:compra:{compra['Numero_Compra']}"),
        ).fetchone()
    )
    local = datetime.fromisoformat(compra["Fecha"])  # the connection's timezone, read through the run
    assert movement["occurred_at"] == local.replace(tzinfo=ZoneInfo("America/Guatemala")).astimezone(UTC)
    assert movement["occurred_at"] - local.replace(tzinfo=UTC) == timedelta(hours=6)
    assert (movement["kind"], movement["document_number"], movement["bodega"], movement["proveedor"]) == (
        "compra",
        str(compra["Numero_Compra"]),
        compra["Codigo_Bodega"],
        compra["Codigo_Proveedor"],
    )
    assert movement["currency_code"] == "GTQ"
    lines = owner.execute(
        "SELECT l.line_number, p.code, l.quantity, l.unit_cost FROM catalog.stock_movement_line l"
        " JOIN catalog.product p ON p.id = l.product_id WHERE l.movement_id = %s ORDER BY l.line_number",
        (movement["id"],),
    ).fetchall()
    assert [(r["line_number"], r["code"], r["quantity"], r["unit_cost"]) for r in lines] == [
        (n, line["Codigo_SKU"], Decimal(line["Cantidad"]), Decimal(str(line["Costo"])))
        for n, line in enumerate(compra["Lineas"], start=1)
    ]
    total_lines = sum(len(r["Lineas"]) for entity in OPERATIONAL for r in source(shop, entity))
    assert count(owner, shop, "stock_movement_line") == total_lines + len(source(shop, E.PRODUCCION))
    traslado = source(shop, E.TRASLADO)[0]
    assert (
        scalar(
            owner,
            "SELECT w.code FROM catalog.stock_movement m JOIN catalog.warehouse w ON w.id = m.to_warehouse_id"
            " WHERE m.tenant_id = %s AND m.idempotency_key = %s",
            shop.tenant_id,
            f"rpapos:traslado:{traslado['Numero_Traslado']}",
        )
        == traslado["Codigo_Bodega_Destino"]
    )
    produced = scalar(
        owner,
        "SELECT p.code FROM catalog.stock_movement m"
        " JOIN catalog.stock_movement_line l ON l.movement_id = m.id"
        " JOIN catalog.product p ON p.id = l.product_id"
        " WHERE m.tenant_id = %s AND m.idempotency_key = %s AND NOT p.is_raw_material",
        shop.tenant_id,
        f"rpapos:produccion:{source(shop, E.PRODUCCION)[0]['Numero_Produccion']}",
    )
    assert produced == source(shop, E.PRODUCCION)[0]["Codigo_PLU"]


def test_an_edited_document_updates_its_movement_line_by_line(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.SKU_GRUPO, E.PROVEEDOR, E.SKU, E.BODEGA, E.MERMA}))
    merma = shop.catalog.record(E.MERMA, 0)
    sku = source(shop, E.SKU)[0]["Codigo_SKU"]
    shop.catalog.modify(
        E.MERMA, 0, Lineas=[{"Codigo_SKU": sku, "Cantidad": 3}, {"Codigo_SKU": sku, "Cantidad": 1}]
    )
    assert load(conn, shop, E.MERMA).updated == 1
    shop.catalog.modify(E.MERMA, 0, Lineas=[{"Codigo_SKU": sku, "Cantidad": 4}], Eliminado=True)
    before = fingerprint(owner, shop)["catalog.stock_movement"]
    assert load(conn, shop, E.MERMA).updated == 1
    assert fingerprint(owner, shop)["catalog.stock_movement"] != before

    movement = one(
        owner.execute(
            "SELECT id, notes, deleted_at FROM catalog.stock_movement"
            " WHERE tenant_id = %s AND idempotency_key = %s",
            (shop.tenant_id, f"rpapos:merma:{merma['Numero_Merma']}"),
        ).fetchone()
    )
    assert movement["notes"] == merma["Motivo"]
    assert movement["deleted_at"] is not None
    lines = owner.execute(
        "SELECT line_number, quantity FROM catalog.stock_movement_line"
        " WHERE movement_id = %s ORDER BY line_number",
        (movement["id"],),
    ).fetchall()
    # The second line is no longer in the document: lines cannot be deleted, so it is emptied.
    assert [(r["line_number"], r["quantity"]) for r in lines][:2] == [
        (1, Decimal("4.0000")),
        (2, Decimal("0.0000")),
    ]
    assert count(owner, shop, "stock_movement", "kind = 'merma'") == len(source(shop, E.MERMA))


def test_document_dates_use_the_given_timezone_and_a_run_must_exist_to_read_it(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.SKU_GRUPO, E.PROVEEDOR, E.SKU, E.BODEGA}))
    record = shop.catalog.record(E.SALIDA_SKU, 0)
    shop.context = LoadContext(shop.tenant_id, uuid.uuid4(), "GTQ", {}, timezone=None)
    with pytest.raises(LookupError, match="sync run"):
        load(conn, shop, E.SALIDA_SKU, [record])
    shop.context = LoadContext(shop.tenant_id, uuid.uuid4(), "GTQ", {}, timezone="UTC")
    assert load(conn, shop, E.SALIDA_SKU, [record]).inserted == 1
    assert scalar(
        owner, "SELECT occurred_at FROM catalog.stock_movement WHERE tenant_id = %s", shop.tenant_id
    ) == datetime.fromisoformat(record["Fecha"]).replace(tzinfo=UTC)


def test_a_pipelined_tenant_transaction_loads_too(owner, conn):
    shop = new_shop(owner)
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO}))
    records = source(shop, E.PLU)
    records[0] = {**records[0], "Codigo_Unidad": "XX"}
    with tenant_transaction(conn, shop.tenant_id, pipeline=True):
        result = load_page(conn, E.PLU, records, shop.context)
    assert (result.inserted, result.errors) == (
        len(records) - 1,
        (RowError("PLU000001", "missing_reference:unidad_medida"),),
    )
    assert count(owner, shop, "product") == len(records) - 1


def test_outside_a_transaction_nothing_is_loaded(owner, conn):
    shop = new_shop(owner)
    with pytest.raises(RuntimeError, match="transaction"):
        load_page(conn, E.UNIDAD_MEDIDA, source(shop, E.UNIDAD_MEDIDA), shop.context)
    assert count(owner, shop, "unit_of_measure") == 0


# ---------------------------------------------------------------- a full page (speed: make bench)


def test_a_page_of_1000_plus_loads_reloads_and_updates(owner, conn):
    shop = new_shop(owner, volume=Volume(plus=1000, modifier_groups=5))
    load_all(conn, shop, frozenset({E.UNIDAD_MEDIDA, E.PLU_GRUPO}))
    records = source(shop, E.PLU)
    assert len(records) == 1000

    for _ in ("first load (1000 inserts)", "reload (1000 skipped)"):
        with tenant_transaction(conn, shop.tenant_id):
            result = load_page(conn, E.PLU, records, shop.context)
        assert result.failed == 0
    for index in range(0, 1000, 10):
        shop.catalog.modify(E.PLU, index, Descripcion=f"Cambiado {index}")
    with tenant_transaction(conn, shop.tenant_id):
        result = load_page(conn, E.PLU, source(shop, E.PLU), shop.context)
    assert result.updated == 100
