"""The sync planner: which entity types each mode extracts, always after what they depend on."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pos_gateway.rpapos.contract import ARCHIVE_ONLY, CATALOG, DEPENDENCIES, OPERATIONAL, EntityType
from pos_gateway.rpapos.planner import Mode, SyncRequest, dependency_order, plan

E = EntityType
START = datetime(2026, 1, 1, tzinfo=UTC)


def before(order: tuple[EntityType, ...], first: EntityType, then: EntityType) -> bool:
    return order.index(first) < order.index(then)


def test_catalog_run_orders_groups_units_and_suppliers_first() -> None:
    order = plan(SyncRequest(mode=Mode.CATALOG)).entity_types
    assert set(order) == CATALOG
    assert before(order, E.PLU_GRUPO, E.PLU)
    assert before(order, E.UNIDAD_MEDIDA, E.PLU)
    assert before(order, E.UNIDAD_MEDIDA, E.SKU)
    assert before(order, E.PROVEEDOR, E.SKU)
    assert before(order, E.SKU_GRUPO, E.SKU)
    assert before(order, E.BODEGA, E.AREA)
    assert before(order, E.AREA, E.MESA)
    assert before(order, E.PLU_OPTION_GROUP, E.PLU_OPTION_ITEM)
    assert before(order, E.PLU_OPTION_GROUP, E.PLU_OPTION_GROUP_ASSIGNMENT)
    assert before(order, E.PLU, E.BATCH_MAESTRO)
    assert before(order, E.SKU, E.BATCH_MAESTRO)


def test_the_same_request_gives_the_same_plan() -> None:
    assert plan(SyncRequest(mode=Mode.CATALOG)) == plan(SyncRequest(mode=Mode.CATALOG))


def test_historical_runs_read_operational_documents_in_their_window() -> None:
    planned = plan(SyncRequest(mode=Mode.HISTORICAL, date_from=START, date_to=START + timedelta(days=31)))
    assert set(planned.entity_types) == OPERATIONAL
    assert (planned.date_from, planned.date_to) == (START, START + timedelta(days=31))


def test_incremental_runs_read_changes_since_the_last_sync() -> None:
    planned = plan(SyncRequest(mode=Mode.INCREMENTAL), last_synced_at=START)
    assert set(planned.entity_types) == CATALOG | OPERATIONAL
    assert planned.modified_since == START


def test_custom_runs_read_only_the_chosen_types_in_dependency_order() -> None:
    planned = plan(SyncRequest(mode=Mode.CUSTOM, entity_types=(E.PLU, E.PLU_GRUPO, E.USUARIO)))
    assert planned.entity_types == (E.PLU_GRUPO, E.USUARIO, E.PLU)


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "custom"},
        {"mode": "catalog", "entity_types": ["plu"]},
        {"mode": "historical", "date_from": START},
        {"mode": "historical", "date_from": START, "date_to": START},
        {"mode": "historical", "date_from": START, "date_to": START + timedelta(days=4000)},
        {"mode": "custom", "entity_types": ["not_an_entity"]},
        {"mode": "historical", "date_from": "2026-01-01T00:00:00", "date_to": "2026-02-01T00:00:00"},
        {"mode": "weekly"},
    ],
)
def test_requests_that_do_not_fit_their_mode_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SyncRequest.model_validate(fields)


def test_every_entity_type_is_either_loaded_or_archived_with_a_reason() -> None:
    loadable = CATALOG | OPERATIONAL
    assert loadable | set(ARCHIVE_ONLY) == set(EntityType)
    assert not loadable & set(ARCHIVE_ONLY)


@given(st.frozensets(st.sampled_from(list(EntityType)), min_size=1))
def test_any_subset_is_ordered_after_its_planned_dependencies(types: frozenset[EntityType]) -> None:
    order = dependency_order(types)
    assert sorted(order) == sorted(types)
    for entity in order:
        for dependency in DEPENDENCIES.get(entity, frozenset()) & types:
            assert before(order, dependency, entity)
