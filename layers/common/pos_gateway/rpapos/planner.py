"""Which entity types a sync run extracts, and in which order.

Modes: ``catalog`` (the catalog subset), ``historical`` (operational documents inside
``date_from``..``date_to``), ``incremental`` (everything loadable, changed since the connection's
``last_synced_at``), ``custom`` (the chosen types). The order honours every hard dependency among
the planned types (groups before items, units and suppliers before SKUs, modifier groups before
assignments), ties broken by the enum's order, so the same request always gives the same plan.

``include_images``: after every planned entity, the run imports the images of the tenant's
loaded PLUs (SOAP Producto_U_M, stored in object storage; see pos_gateway.rpapos.sync). Not
with a historical run: it reads documents, no catalog.
"""

from datetime import datetime
from enum import StrEnum
from graphlib import TopologicalSorter
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pos_gateway.rpapos.contract import CATALOG, DEPENDENCIES, OPERATIONAL, EntityType

MAX_HISTORICAL_DAYS = 3660  # ten years: a window is a migration, not a typo for a century


class Mode(StrEnum):
    CATALOG = "catalog"
    HISTORICAL = "historical"
    INCREMENTAL = "incremental"
    CUSTOM = "custom"


class SyncRequest(BaseModel):
    """What an operator (or the scheduler) asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode
    entity_types: tuple[EntityType, ...] | None = Field(
        default=None, min_length=1, max_length=len(EntityType)
    )
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None
    include_images: bool = False

    @model_validator(mode="after")
    def _fits_the_mode(self) -> Self:
        if self.mode is Mode.CUSTOM and not self.entity_types:
            raise ValueError("a custom run names its entity_types")
        if self.mode is not Mode.CUSTOM and self.entity_types:
            raise ValueError(f"a {self.mode.value} run plans its own entity types; use mode custom to choose")
        if self.mode is Mode.HISTORICAL and (self.date_from is None or self.date_to is None):
            raise ValueError("a historical run needs date_from and date_to")
        if self.mode is Mode.HISTORICAL and self.include_images:
            raise ValueError("a historical run reads documents: product images come with the catalog")
        if self.date_from is not None and self.date_to is not None:
            if self.date_to <= self.date_from:
                raise ValueError("date_to must be after date_from")
            if (self.date_to - self.date_from).days > MAX_HISTORICAL_DAYS:
                raise ValueError(f"the window is longer than {MAX_HISTORICAL_DAYS} days")
        return self


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: Mode
    entity_types: tuple[EntityType, ...]
    date_from: datetime | None = None
    date_to: datetime | None = None
    modified_since: datetime | None = None
    include_images: bool = False


def planned_types(mode: Mode, chosen: tuple[EntityType, ...] | None = None) -> frozenset[EntityType]:
    if mode is Mode.CATALOG:
        return CATALOG
    if mode is Mode.HISTORICAL:
        return OPERATIONAL
    if mode is Mode.INCREMENTAL:
        return CATALOG | OPERATIONAL
    return frozenset(chosen or ())


def dependency_order(types: frozenset[EntityType]) -> tuple[EntityType, ...]:
    """``types`` ordered so that each comes after the planned types it depends on."""
    sorter: TopologicalSorter[EntityType] = TopologicalSorter()
    for entity in EntityType:  # the enum's order breaks ties
        if entity in types:
            sorter.add(entity, *sorted(DEPENDENCIES.get(entity, frozenset()) & types, key=_position))
    sorter.prepare()
    ordered: list[EntityType] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=_position)
        ordered.extend(ready)
        sorter.done(*ready)
    return tuple(ordered)


def plan(request: SyncRequest, *, last_synced_at: datetime | None = None) -> Plan:
    """The run's plan. An incremental run of a connection never synced reads everything."""
    types = planned_types(request.mode, request.entity_types)
    return Plan(
        mode=request.mode,
        entity_types=dependency_order(types),
        date_from=request.date_from,
        date_to=request.date_to,
        modified_since=last_synced_at if request.mode is Mode.INCREMENTAL else None,
        include_images=request.include_images,
    )


_POSITIONS = {entity: n for n, entity in enumerate(EntityType)}


def _position(entity: EntityType) -> int:
    return _POSITIONS[entity]
