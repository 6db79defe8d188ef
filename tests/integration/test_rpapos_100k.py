"""The fake RPApos's 100,000-PLU dataset loads completely: the sync engine driven page after page
(``advance``, as the state machine drives it) over real HTTP, into a real database.

A custom run of the PLUs and what they reference (groups and units, loaded first), at the
deployment's default page size (RpaposSyncSettings: 500 records, 200 PLU pages). Slow for this
suite (about 25 s on two cores, most of it the engine's load of each page; ``make bench`` has the
figures), and it runs in every ``make test``: the proof that nothing is lost at this volume.
"""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from local import seed
from local.fake_rpapos import FakeRpapos, Volume
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.rpapos import runs, sync
from pos_gateway.rpapos.contract import EntityType
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.rpapos.sync import SyncDeps
from pos_gateway.settings import RpaposSyncSettings
from tests.helpers import one, unique
from tests.integration.test_rpapos_runs import CIPHER, new_connection, run_row
from tests.rpapos_support import PASSWORD, USER

E = EntityType
Conn = psycopg.Connection[Any]
PLUS = 100_000
VOLUME = Volume(plus=PLUS)
PLAN = (E.PLU_GRUPO, E.UNIDAD_MEDIDA, E.PLU)
PAGE_SIZE: int = RpaposSyncSettings.model_fields["page_size"].default


@pytest.fixture(scope="module")
def rpapos() -> Iterator[FakeRpapos]:
    with FakeRpapos() as fake:
        yield fake


def test_the_100k_plu_dataset_loads_completely(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, engine_connections: ConnectionFactory
) -> None:
    subdomain = unique("big-").lower()
    catalog = rpapos.add_tenant(subdomain, USER, PASSWORD, volume=VOLUME).catalog
    tenant_id = seed.create_tenant(owner, unique("Restaurante "))
    connection_id = new_connection(owner, tenant_id, subdomain=subdomain, usuario=USER, password=PASSWORD)
    with tenant_transaction(admin, tenant_id):
        run = runs.start_run(
            admin, tenant_id, connection_id, SyncRequest(mode=Mode.CUSTOM, entity_types=PLAN), None
        )
    assert run.entity_types == PLAN
    deps = SyncDeps(
        connections=engine_connections, cipher=CIPHER, base_url=rpapos.tenant_url, page_size=PAGE_SIZE
    )
    plu_pages = -(-PLUS // PAGE_SIZE)

    states = [sync.advance(tenant_id, run.id, deps=deps).state for _ in range(plu_pages + len(PLAN) - 1)]

    assert states == ["more"] * (len(states) - 1) + ["finished"]
    assert sync.finalize(tenant_id, run.id, deps=deps)
    deleted = {str(catalog.code(E.PLU, index)) for index in range(PLUS) if catalog.deleted(E.PLU, index)}
    assert len(deleted) == PLUS // VOLUME.deleted_every  # every 9th PLU is soft-deleted in RPApos
    products = one(
        owner.execute(
            "SELECT count(*) AS rows, count(*) FILTER (WHERE deleted_at IS NULL) AS live,"
            " count(DISTINCT code) AS codes, count(*) FILTER (WHERE category_id IS NULL) AS no_group,"
            " count(*) FILTER (WHERE unit_id IS NULL) AS no_unit"
            " FROM catalog.product WHERE tenant_id = %s AND NOT is_raw_material",
            (tenant_id,),
        ).fetchone()
    )
    assert products == {"rows": PLUS, "live": PLUS - len(deleted), "codes": PLUS, "no_group": 0, "no_unit": 0}
    retired = owner.execute(
        "SELECT code FROM catalog.product WHERE tenant_id = %s AND deleted_at IS NOT NULL", (tenant_id,)
    ).fetchall()
    assert {row["code"] for row in retired} == deleted  # loaded, with deleted_at
    mapped = one(
        owner.execute(
            "SELECT count(*) AS entries, count(DISTINCT m.flowpos_entity_id) AS targets,"
            " count(p.id) AS reached, count(m.source_payload_hash) AS hashed"
            " FROM rpapos.rpapos_id_map m LEFT JOIN catalog.product p ON p.id = m.flowpos_entity_id"
            " WHERE m.tenant_id = %s AND m.entity_type = 'plu'",
            (tenant_id,),
        ).fetchone()
    )
    assert mapped == {"entries": PLUS, "targets": PLUS, "reached": PLUS, "hashed": PLUS}
    ended = run_row(owner, run.id)
    assert (ended["status"], ended["last_error"], ended["cursor"]) == (
        "completed",
        None,
        {"done": True, "size": PAGE_SIZE},
    )
    stats = ended["per_entity_stats"]
    assert set(stats) == {entity.value for entity in PLAN}
    for entity in PLAN:
        counts = stats[entity.value]
        assert counts["extracted"] == catalog.count(entity), entity
        assert counts["loaded"] == catalog.count(entity), entity
        assert (counts["failed"], counts["skipped"], counts["archived_only"]) == (0, 0, 0), entity
        parts = counts["loaded"] + counts["skipped"] + counts["failed"] + counts["archived_only"]
        assert parts == counts["extracted"], entity
        assert counts["status"] == "completed", entity
    pages = owner.execute(
        "SELECT page, record_count FROM rpapos.rpapos_extraction_archive"
        " WHERE sync_run_id = %s AND entity_type = 'plu' ORDER BY page",
        (run.id,),
    ).fetchall()
    assert [row["page"] for row in pages] == list(range(1, plu_pages + 1))
    assert sum(row["record_count"] for row in pages) == PLUS
