"""The sync engine driven page by page, as the state machine will drive it, against the fake
RPApos (real HTTP and SOAP) and a real database: runs started by the admin role, steps taken
by the sync role."""

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from local import seed
from local.fake_rpapos import Catalog, FakeRpapos
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.rpapos import runs, sync
from pos_gateway.rpapos.contract import ARCHIVE_ONLY, EntityType
from pos_gateway.rpapos.errors import RpaposUnavailable
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.rpapos.rest import RpaposRestClient
from pos_gateway.rpapos.soap import RpaposSoapClient
from pos_gateway.rpapos.sync import StepOutcome, SyncDeps, SyncFailed
from tests.helpers import one, unique
from tests.integration.test_rpapos_runs import CIPHER, CONNECTION_TABLE, new_connection, run_row
from tests.rpapos_support import PAGE_SIZE, PASSWORD, USER, small_volume

E = EntityType
Conn = psycopg.Connection[Any]
VOLUME = small_volume(documents=6)
MAX_STEPS = 200
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Shop:
    tenant_id: uuid.UUID
    connection_id: uuid.UUID
    subdomain: str
    catalog: Catalog


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRpapos]:
    with FakeRpapos(hang_seconds=1.0) as fake:
        yield fake


@pytest.fixture
def rpapos(server: FakeRpapos) -> Iterator[FakeRpapos]:
    server.clear_faults()  # not reset(): it would forget the device tokens of the connections
    yield server
    server.clear_faults()


@pytest.fixture
def deps(engine_connections: ConnectionFactory, rpapos: FakeRpapos) -> SyncDeps:
    def rest_client(base_url: str, username: str, password: str, *, timezone: str) -> RpaposRestClient:
        return RpaposRestClient(
            base_url, username, password, timezone=timezone, timeout=(1.0, 2.0), retries=0, backoff=0.01
        )

    def soap_client(*, token: str | None, estacion_trabajo: int | None) -> RpaposSoapClient:
        return RpaposSoapClient(
            rpapos.soap_url, token=token, estacion_trabajo=estacion_trabajo, operation_timeout=2.0
        )

    return SyncDeps(
        connections=engine_connections,
        cipher=CIPHER,
        rest_client=rest_client,
        soap_client=soap_client,
        base_url=rpapos.tenant_url,
        page_size=PAGE_SIZE,
    )


def new_shop(
    owner: Conn,
    rpapos: FakeRpapos,
    *,
    data_seed: str | None = None,
    stored_password: str = PASSWORD,
    with_device: bool = True,
) -> Shop:
    """A tenant with an RPApos connection to a fresh fake RPApos tenant (its device registered)."""
    subdomain = unique("shop-").lower()
    tenant = rpapos.add_tenant(subdomain, USER, PASSWORD, seed=data_seed, volume=VOLUME)
    token = None
    if with_device:
        sat = RpaposSoapClient(rpapos.soap_url, operation_timeout=2.0)
        token = sat.register_device(USER, PASSWORD, subdomain, "pos-gateway").token
    tenant_id = seed.create_tenant(owner, unique("Restaurante "))
    connection_id = new_connection(
        owner, tenant_id, subdomain=subdomain, usuario=USER, password=stored_password, soap_token=token
    )
    return Shop(tenant_id, connection_id, subdomain, tenant.catalog)


def start(admin: Conn, shop: Shop, request: SyncRequest) -> runs.SyncRun:
    with tenant_transaction(admin, shop.tenant_id):
        return runs.start_run(admin, shop.tenant_id, shop.connection_id, request, None)


def step(shop: Shop, run_id: uuid.UUID, deps: SyncDeps) -> StepOutcome:
    outcome = sync.advance(shop.tenant_id, run_id, deps=deps)
    assert len(json.dumps(outcome.as_json())) < 1024
    assert StepOutcome.model_validate(outcome.as_json()) == outcome  # the next task's input
    return outcome


def run_to_end(shop: Shop, run_id: uuid.UUID, deps: SyncDeps) -> list[StepOutcome]:
    outcomes: list[StepOutcome] = []
    for _ in range(MAX_STEPS):
        outcome = step(shop, run_id, deps)
        outcomes.append(outcome)
        if outcome.state != "more":
            assert outcome.state == "finished"
            assert sync.finalize(shop.tenant_id, run_id, deps=deps)
            return outcomes
    raise AssertionError(f"the run did not finish in {MAX_STEPS} steps")


def steps_until(shop: Shop, run_id: uuid.UUID, deps: SyncDeps, entity: EntityType) -> StepOutcome:
    """Advance until the next page to read is one of ``entity``."""
    for _ in range(MAX_STEPS):
        outcome = step(shop, run_id, deps)
        assert outcome.state == "more"
        if outcome.entity is entity:
            return outcome
    raise AssertionError(f"never reached {entity}")


def expected_total(catalog: Catalog, entity: EntityType) -> int:
    """Every record of the entity the fake serves; assignments: every (PLU, modifier group) pair
    the PLU records list."""
    if entity is E.PLU_OPTION_GROUP_ASSIGNMENT:
        return sum(len(plu["Grupos_Opciones"]) for plu in catalog.records(E.PLU, range(catalog.count(E.PLU))))
    return catalog.count(entity)


def stats_of(owner: Conn, run_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = run_row(owner, run_id)["per_entity_stats"]
    return stats


def archived(owner: Conn, run_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in owner.execute(
            "SELECT entity_type::text AS entity, page, cursor, record_count"
            " FROM rpapos.rpapos_extraction_archive WHERE sync_run_id = %s ORDER BY created_at, id",
            (run_id,),
        ).fetchall()
    ]


def progress(owner: Conn, run_id: uuid.UUID) -> tuple[Any, ...]:
    """Everything a step writes: the run's cursor and stats, and its archive."""
    row = run_row(owner, run_id)
    return row["cursor"], row["current_entity"], row["per_entity_stats"], len(archived(owner, run_id))


def assert_everything_loaded(owner: Conn, shop: Shop, run_id: uuid.UUID) -> None:
    run = run_row(owner, run_id)
    stats = stats_of(owner, run_id)
    pages = archived(owner, run_id)
    for entity in (E(value) for value in run["plan"]):
        entity_stats = stats[entity.value]
        assert entity_stats["extracted"] == expected_total(shop.catalog, entity), entity
        assert entity_stats["status"] == ("archived_only" if entity in ARCHIVE_ONLY else "completed"), entity
        assert entity_stats["failed"] == 0, entity
        assert (
            entity_stats["loaded"]
            + entity_stats["skipped"]
            + entity_stats["failed"]
            + entity_stats["archived_only"]
            == entity_stats["extracted"]
        ), entity
        # The archive holds the pages read (the PLU pages, for the assignments).
        read = sum(page["record_count"] for page in pages if page["entity"] == entity.value)
        assert read == expected_total(
            shop.catalog, E.PLU if entity is E.PLU_OPTION_GROUP_ASSIGNMENT else entity
        )


def tenant_state(owner: Conn, tenant_id: uuid.UUID) -> dict[str, list[str]]:
    """The tenant's id map and catalog, ids replaced by the RPApos records they stand for and
    timestamps by whether they are set: comparable across tenants."""
    mapped = owner.execute(
        "SELECT entity_type::text AS entity, external_id, flowpos_entity_id, source_payload_hash"
        " FROM rpapos.rpapos_id_map WHERE tenant_id = %s",
        (tenant_id,),
    ).fetchall()
    names = {str(row["flowpos_entity_id"]): f"{row['entity']}:{row['external_id']}" for row in mapped}
    state = {
        "id_map": sorted(
            f"{row['entity']}:{row['external_id']}:{row['source_payload_hash']}" for row in mapped
        )
    }
    tables = owner.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'catalog' ORDER BY table_name"
    ).fetchall()
    for table in tables:
        query = sql.SQL("SELECT to_jsonb(t) AS row FROM catalog.{} t WHERE tenant_id = %s").format(
            sql.Identifier(table["table_name"])
        )
        rows = owner.execute(query, (tenant_id,)).fetchall()
        state[table["table_name"]] = sorted(
            json.dumps(_comparable(row["row"], names), sort_keys=True) for row in rows
        )
    return state


def _comparable(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    comparable: dict[str, Any] = {}
    for key, value in row.items():
        if key == "tenant_id":
            continue
        if key.endswith("_at"):
            comparable[key] = value is not None
        elif isinstance(value, str) and _UUID.match(value):
            comparable[key] = names.get(value, "<row>")
        else:
            comparable[key] = value
    return comparable


# ---------------------------------------------------------------- a whole run


def test_a_catalog_run_loads_every_record_and_a_second_run_loads_nothing_new(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))

    outcomes = run_to_end(shop, run.id, deps)

    assert [outcome.state for outcome in outcomes[:-1]] == ["more"] * (len(outcomes) - 1)
    assert outcomes[-1].model_dump() == {
        "tenant_id": shop.tenant_id, "sync_run_id": run.id, "state": "finished",
        "entity": None, "page": None, "parent": None,
    }  # fmt: skip
    assert_everything_loaded(owner, shop, run.id)
    ended = run_row(owner, run.id)
    assert (ended["status"], ended["task_token"], ended["last_error"]) == ("completed", None, None)
    assert ended["completed_at"] is not None
    assert ended["cursor"] == {"done": True, "size": PAGE_SIZE}
    connection = one(
        owner.execute(
            "SELECT * FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
        ).fetchone()
    )
    assert connection["last_synced_at"] == connection["last_full_sync_at"] == ended["started_at"]
    # Mesas were read per loaded area, modifier items per loaded group, page by page.
    pages = archived(owner, run.id)
    mesa_parents = {page["cursor"]["parent"] for page in pages if page["entity"] == "mesa"}
    assert {shop.catalog.code(E.AREA, area) for area in range(VOLUME.areas)} <= mesa_parents
    plu_pages = [page["page"] for page in pages if page["entity"] == "plu"]
    assert plu_pages == list(range(1, len(plu_pages) + 1))
    assert len(plu_pages) == -(-VOLUME.plus // PAGE_SIZE)
    # A finished run stays finished; finalizing again changes nothing.
    assert step(shop, run.id, deps).state == "finished"
    assert not sync.finalize(shop.tenant_id, run.id, deps=deps)

    second = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    run_to_end(shop, second.id, deps)

    assert_everything_loaded(owner, shop, second.id)
    for entity, entity_stats in stats_of(owner, second.id).items():
        assert entity_stats["loaded"] == 0, entity
        assert entity_stats["skipped"] == entity_stats["extracted"], entity


def test_pause_parks_without_writing_and_resume_ends_as_an_uninterrupted_run(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    data = unique("seed-")
    paused_shop, straight_shop = (
        new_shop(owner, rpapos, data_seed=data),
        new_shop(owner, rpapos, data_seed=data),
    )
    run = start(admin, paused_shop, SyncRequest(mode=Mode.CATALOG))
    steps_until(paused_shop, run.id, deps, E.PLU)
    with tenant_transaction(admin, paused_shop.tenant_id):
        runs.pause_run(admin, run.id)
    before = progress(owner, run.id)

    parked = step(paused_shop, run.id, deps)

    assert (parked.state, parked.entity, parked.page) == ("paused", E.PLU, 1)
    assert progress(owner, run.id) == before
    assert run_row(owner, run.id)["status"] == "paused"
    assert sync.park(paused_shop.tenant_id, run.id, "token-of-the-waiting-task", deps=deps) == "parked"
    assert step(paused_shop, run.id, deps).state == "paused"  # a stray step does nothing either
    assert progress(owner, run.id) == before
    with tenant_transaction(admin, paused_shop.tenant_id):
        resumed = runs.resume_run(admin, run.id)
    assert resumed.task_token == "token-of-the-waiting-task"

    run_to_end(paused_shop, run.id, deps)
    straight = start(admin, straight_shop, SyncRequest(mode=Mode.CATALOG))
    run_to_end(straight_shop, straight.id, deps)

    assert stats_of(owner, run.id) == stats_of(owner, straight.id)
    assert tenant_state(owner, paused_shop.tenant_id) == tenant_state(owner, straight_shop.tenant_id)
    assert [(p["entity"], p["page"], p["record_count"]) for p in archived(owner, run.id)] == [
        (p["entity"], p["page"], p["record_count"]) for p in archived(owner, straight.id)
    ]


def test_a_cancelled_run_ends_after_the_current_page(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    steps_until(shop, run.id, deps, E.AREA)
    with tenant_transaction(admin, shop.tenant_id):
        asked = runs.cancel_run(admin, run.id)
    assert (asked.run.status, asked.task_token) == ("running", None)
    before = progress(owner, run.id)

    cancelled = step(shop, run.id, deps)

    assert (cancelled.state, cancelled.entity) == ("cancelled", E.AREA)
    assert progress(owner, run.id) == before
    ended = run_row(owner, run.id)
    assert (ended["status"], ended["task_token"]) == ("cancelled", None)
    assert ended["completed_at"] is not None
    assert step(shop, run.id, deps).state == "cancelled"
    with pytest.raises(sync.RunNotFinished):
        sync.finalize(shop.tenant_id, run.id, deps=deps)
    connection = one(
        owner.execute(
            "SELECT last_synced_at FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
        ).fetchone()
    )
    assert connection["last_synced_at"] is None
    start(admin, shop, SyncRequest(mode=Mode.CATALOG))  # the connection is free again


# ---------------------------------------------------------------- failures


def test_an_outage_raises_the_retryable_error_and_the_same_page_is_read_after_it(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    # A REST page and a SOAP page, in the plan's order.
    for entity in sorted((E.PLU, E.PLU_OPTION_GROUP), key=run.entity_types.index):
        waiting = steps_until(shop, run.id, deps, entity)
        before = progress(owner, run.id)
        rpapos.outage()
        try:
            with pytest.raises(RpaposUnavailable) as failed:
                sync.advance(shop.tenant_id, run.id, deps=deps)
            assert failed.value.retry_after_seconds > 0
            assert progress(owner, run.id) == before
            assert run_row(owner, run.id)["status"] == "running"
        finally:
            rpapos.end_outage()
        resumed = step(shop, run.id, deps)
        assert (resumed.entity, resumed.page) != (waiting.entity, waiting.page)
        assert archived(owner, run.id)[-1]["entity"] == entity.value

    run_to_end(shop, run.id, deps)

    assert_everything_loaded(owner, shop, run.id)


def test_refused_credentials_fail_the_run_and_the_connection_says_why(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    wrong = "not-the-Passw0rd"
    shop = new_shop(owner, rpapos, stored_password=wrong)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))

    with pytest.raises(SyncFailed) as failed:
        sync.advance(shop.tenant_id, run.id, deps=deps)

    ended = run_row(owner, run.id)
    assert (ended["status"], ended["task_token"]) == ("failed", None)
    assert ended["completed_at"] is not None
    assert ended["last_error"].startswith("BadCredentials: ")
    assert ended["last_error"] == str(failed.value)
    assert wrong not in ended["last_error"]
    first = ended["plan"][0]
    assert ended["per_entity_stats"][first]["status"] == "failed"
    connection = one(
        owner.execute(
            "SELECT * FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
        ).fetchone()
    )
    assert (connection["status"], connection["last_error"]) == ("error", ended["last_error"])
    assert archived(owner, run.id) == []
    # The failed run stays failed; the connection may start another run.
    assert step(shop, run.id, deps).state == "failed"
    assert not sync.fail(shop.tenant_id, run.id, "again", deps=deps)
    start(admin, shop, SyncRequest(mode=Mode.CATALOG))


def test_without_a_device_token_the_soap_entities_fail_the_run(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos, with_device=False)
    run = start(admin, shop, SyncRequest(mode=Mode.CUSTOM, entity_types=(E.PLU_OPTION_GROUP,)))

    with pytest.raises(SyncFailed, match="SoapTokenRejected"):
        sync.advance(shop.tenant_id, run.id, deps=deps)

    assert run_row(owner, run.id)["status"] == "failed"


def test_the_state_machines_fail_ends_the_run_with_a_bounded_error(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    step(shop, run.id, deps)

    cause = f"States.TaskFailed: login of admin:{PASSWORD}@{shop.subdomain} refused\n" + "x" * 5000

    assert sync.fail(shop.tenant_id, run.id, cause, deps=deps)

    ended = run_row(owner, run.id)
    assert ended["status"] == "failed"
    assert len(ended["last_error"]) == 1000
    assert "\n" not in ended["last_error"]
    assert PASSWORD not in ended["last_error"]
    assert ended["last_error"].startswith("States.TaskFailed: login of admin:***@")


def test_a_step_racing_another_on_the_same_page_writes_nothing(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    step(shop, run.id, deps)
    raced: list[StepOutcome] = []

    def racing_client(base_url: str, username: str, password: str, *, timezone: str) -> RpaposRestClient:
        # While this step reads its page, another execution's step takes the same page.
        if not raced:
            raced.append(step(shop, run.id, deps))
        return deps.rest_client(base_url, username, password, timezone=timezone)

    late = step(shop, run.id, replace(deps, rest_client=racing_client))

    assert raced[0].state == "more"
    assert (late.entity, late.page, late.parent) == (raced[0].entity, raced[0].page, raced[0].parent)
    pages = archived(owner, run.id)
    assert len(pages) == 2
    assert len({(page["entity"], page["page"]) for page in pages}) == 2


# ---------------------------------------------------------------- windows and changes


def test_a_historical_run_reads_the_documents_of_its_window(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos, data_seed="historical")  # a fixed seed: fixed document dates
    run_to_end(shop, start(admin, shop, SyncRequest(mode=Mode.CATALOG)).id, deps)
    window = (datetime(2025, 10, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    request = SyncRequest(mode=Mode.HISTORICAL, date_from=window[0], date_to=window[1])
    run = start(admin, shop, request)
    synced_before = run_row(owner, run.id)["started_at"]

    run_to_end(shop, run.id, deps)

    stats = stats_of(owner, run.id)
    naive = (window[0].replace(tzinfo=None), window[1].replace(tzinfo=None))
    in_window = 0
    for entity in run.entity_types:
        expected = len(shop.catalog.select(entity, date_from=naive[0], date_to=naive[1]))
        in_window += expected
        assert stats[entity.value]["extracted"] == expected, entity
        assert stats[entity.value]["status"] == "completed"
        assert sum(stats[entity.value][key] for key in ("loaded", "skipped", "failed")) == expected
    assert 0 < in_window < len(run.entity_types) * VOLUME.documents
    asked = [r.query for r in rpapos.requests if r.subdomain == shop.subdomain and r.path == "/api/Compra"]
    assert asked
    assert all(
        q["fechaDesde"] == "2025-10-01T00:00:00" and q["fechaHasta"] == "2026-02-01T00:00:00" for q in asked
    )
    # A window is not a sync of the connection: the next incremental run still reads from the last.
    connection = one(
        owner.execute(
            "SELECT last_synced_at FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
        ).fetchone()
    )
    assert connection["last_synced_at"] < synced_before


def test_an_incremental_run_reads_only_what_changed_since_the_last_sync(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run_to_end(shop, start(admin, shop, SyncRequest(mode=Mode.CATALOG)).id, deps)
    changed_at = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
    edited = shop.catalog.modify(
        E.PLU, 2, Descripcion="Pepián de la casa", Fecha_Modificacion=changed_at.isoformat()
    )
    run = start(admin, shop, SyncRequest(mode=Mode.INCREMENTAL))

    run_to_end(shop, run.id, deps)

    stats = stats_of(owner, run.id)
    assert (stats["plu"]["extracted"], stats["plu"]["loaded"]) == (1, 1)
    assert stats["plu_option_group_assignment"]["extracted"] == len(edited["Grupos_Opciones"])
    plu_pages = [p for p in archived(owner, run.id) if p["entity"] == "plu"]
    assert [p["record_count"] for p in plu_pages] == [1]
    assert plu_pages[0]["cursor"]["modified_since"]
    for entity, entity_stats in stats.items():
        assert entity_stats["failed"] == 0, entity
        if entity not in ("plu", "plu_option_group_assignment"):
            assert entity_stats["loaded"] == 0, entity
    payload = one(
        owner.execute(
            "SELECT payload FROM rpapos.rpapos_extraction_archive"
            " WHERE sync_run_id = %s AND entity_type = 'plu'",
            (run.id,),
        ).fetchone()
    )["payload"]
    assert payload[0]["Codigo_PLU"] == edited["Codigo_PLU"]
    assert payload[0]["Descripcion"] == "Pepián de la casa"
    product = one(
        owner.execute(
            "SELECT p.name FROM catalog.product p JOIN rpapos.rpapos_id_map m ON m.flowpos_entity_id = p.id"
            " WHERE m.tenant_id = %s AND m.entity_type = 'plu' AND m.external_id = %s",
            (shop.tenant_id, edited["Codigo_PLU"]),
        ).fetchone()
    )
    assert product["name"] == "Pepián de la casa"


def test_archive_only_entities_are_archived_and_counted_not_loaded(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CUSTOM, entity_types=(E.USUARIO, E.DISPOSITIVO_IO)))

    run_to_end(shop, run.id, deps)

    assert_everything_loaded(owner, shop, run.id)
    for entity, entity_stats in stats_of(owner, run.id).items():
        assert entity_stats["status"] == "archived_only"
        assert entity_stats["archived_only"] == entity_stats["extracted"] > 0
        assert entity_stats["reason"] == ARCHIVE_ONLY[EntityType(entity)].reason


def test_per_parent_entities_without_loaded_parents_complete_empty(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)  # no area, no modifier group loaded yet
    run = start(admin, shop, SyncRequest(mode=Mode.CUSTOM, entity_types=(E.MESA, E.PLU_OPTION_ITEM)))

    outcomes = run_to_end(shop, run.id, deps)

    assert len(outcomes) == 2
    assert archived(owner, run.id) == []
    for entity_stats in stats_of(owner, run.id).values():
        assert entity_stats == {
            "extracted": 0, "loaded": 0, "failed": 0, "skipped": 0, "archived_only": 0, "status": "completed"
        }  # fmt: skip


def test_a_run_keeps_its_page_size_when_the_deployments_changes(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CUSTOM, entity_types=(E.PRECIO,)))
    step(shop, run.id, deps)

    run_to_end(shop, run.id, replace(deps, page_size=PAGE_SIZE + 3))

    pages = archived(owner, run.id)
    assert [page["record_count"] for page in pages] == [PAGE_SIZE] * (
        shop.catalog.count(E.PRECIO) // PAGE_SIZE
    )
    assert {page["cursor"]["size"] for page in pages} == {PAGE_SIZE}
    assert stats_of(owner, run.id)["precio"]["extracted"] == shop.catalog.count(E.PRECIO)


def test_a_connection_deleted_during_the_run_fails_it(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    step(shop, run.id, deps)
    owner.execute(
        "UPDATE rpapos.rpapos_connection SET deleted_at = now(), status = 'disconnected' WHERE id = %s",
        (shop.connection_id,),
    )

    with pytest.raises(SyncFailed, match="ConnectionRemoved"):
        sync.advance(shop.tenant_id, run.id, deps=deps)

    assert run_row(owner, run.id)["status"] == "failed"
    connection = one(
        owner.execute(
            "SELECT status FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
        ).fetchone()
    )
    assert connection["status"] == "disconnected"


def test_credentials_that_do_not_open_fail_the_run(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    other = seed.dev_cipher()  # another key: the envelope does not open with the engine's
    owner.execute(
        "UPDATE rpapos.rpapos_connection SET password_encrypted = %s WHERE id = %s",
        (
            other.encrypt(
                PASSWORD, table=CONNECTION_TABLE, column="password_encrypted", row_id=str(shop.connection_id)
            ),
            shop.connection_id,
        ),
    )
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))

    with pytest.raises(SyncFailed, match="DecryptionError"):
        sync.advance(shop.tenant_id, run.id, deps=deps)

    ended = run_row(owner, run.id)
    assert ended["status"] == "failed"
    assert PASSWORD not in ended["last_error"]


def test_the_execution_is_attached_to_an_active_run_only(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG))
    arn = f"arn:aws:states:us-east-1:123456789012:execution:rpapos-sync:{run.id}"

    assert sync.attach_execution(shop.tenant_id, run.id, arn, deps=deps)
    assert run_row(owner, run.id)["execution_arn"] == arn
    sync.fail(shop.tenant_id, run.id, "stopped", deps=deps)
    assert not sync.attach_execution(shop.tenant_id, run.id, arn + "-2", deps=deps)
    with pytest.raises(sync.SyncRunNotFound):
        sync.advance(seed.create_tenant(owner, unique("Other ")), run.id, deps=deps)
