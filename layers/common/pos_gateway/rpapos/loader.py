"""Load one extracted page of RPApos records into the FlowPOS catalog, idempotently.

``load_page`` runs inside the caller's transaction (``tenant_transaction`` as role
pos_gateway_rpapos) and never commits. Per page, set-based:

1. records are keyed by their external id (``str(record[id_field])``); an id seen twice keeps
   its last record (the earlier ones count as skipped);
2. one query reads the id map entries of every external id: a record whose
   ``source_payload_hash`` (sha256 of its canonical JSON) is unchanged is skipped, nothing is
   written for it;
3. the others are validated and mapped (pos_gateway.rpapos.mapping); one query resolves every
   referenced external id (group, unit, warehouse, PLU...) through the id map, and a record with
   a reference that does not resolve fails with ``missing_reference:<entity>``;
4. one statement per table writes the page: updates of mapped rows, inserts of new ones (a live
   row holding the same natural key is adopted, never duplicated), then the id map, then child
   rows (recipe items, stock movement lines).

The writes run under a SAVEPOINT. Should a constraint refuse the batch (a row no check foresaw:
a unique code already taken by another row, say), the batch is halved and retried until the
refused records are alone; each fails with ``conflict:<constraint>`` (``invalid:<constraint>``
for a check) and the rest load.

Plans: every statement is either a single-table lookup by key (external ids through the
(tenant_id, external_id) index of 0022: under row-level security an enum comparison is never an
index condition) or a join of the page's jsonb rows with a table by primary or natural key, so
that a page costs the same on the first and the hundredth page of a catalog, even while the
statistics do not know the tenant yet (a new tenant's first sync).

Counting: every record of the page is counted once, as inserted, updated, skipped (unchanged,
or superseded by a later record with the same id) or failed; archive-only entity types count
every record as archived_only and write nothing. plu_option_group_assignment is read from PLU
records but counted per (PLU, modifier group) pair, its id map external id ``<plu>:<group>``; a
PLU record that cannot be read fails under its PLU code, and a pair the PLU no longer lists is
soft-deleted (counted as updated).
"""

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.types.json import Jsonb

from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.rpapos import contract, mapping
from pos_gateway.rpapos.contract import ARCHIVE_ONLY, OPERATIONAL, EntityType
from pos_gateway.rpapos.mapping import (
    Invalid,
    Mapped,
    PluOptions,
    Ref,
    Rules,
    ValidationError,
    invalid_reason,
    map_record,
    payload_hash,
)

__all__ = ["LoadContext", "LoadResult", "RowError", "load_page"]

_SQL = queries.load(__file__, "loader.sql")

E = EntityType
_ASSIGNMENT = E.PLU_OPTION_GROUP_ASSIGNMENT


@dataclass(frozen=True, slots=True)
class LoadContext:
    tenant_id: UUID
    sync_run_id: UUID
    currency_code: str  # the connection's (default GTQ)
    tipo_gestion_map: Mapping[str, str]  # RPApos order type code -> FlowPOS order type
    # The timezone of operational document dates (they carry no offset). None: the connection's,
    # read through the sync run (once per page of an operational entity).
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    external_id: str  # "" when the record has no usable id
    reason: str  # machine-readable: missing_reference:plu_grupo, invalid:Precio, ...


@dataclass(frozen=True, slots=True)
class LoadResult:
    inserted: int
    updated: int
    skipped: int  # unchanged since the last load (same source_payload_hash)
    failed: int
    archived_only: int  # entity types with no FlowPOS target (contract.ARCHIVE_ONLY)
    errors: tuple[RowError, ...]

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated


@dataclass(frozen=True, slots=True)
class _Target:
    """The catalog table an entity type loads into (its insert_/update_ statements), and the
    statement that writes its child rows, if any."""

    table: str
    children: str | None = None


_TARGETS: dict[EntityType, _Target] = {
    E.MONEDA: _Target("currency"),
    E.UNIDAD_MEDIDA: _Target("unit_of_measure"),
    E.PLU_GRUPO: _Target("product_category"),
    E.SKU_GRUPO: _Target("product_category"),
    E.PRODUCCION_GRUPO: _Target("product_category"),
    E.PROVEEDOR: _Target("supplier"),
    E.BODEGA: _Target("warehouse"),
    E.AREA: _Target("area"),
    E.MESA: _Target("dining_table"),
    E.TIPO_GESTION: _Target("order_type"),
    E.PERSONA: _Target("customer"),
    E.PLU: _Target("product"),
    E.SKU: _Target("product"),
    E.PRECIO: _Target("product_price"),
    E.BATCH_MAESTRO: _Target("recipe", children="sync_recipe_items"),
    E.PLU_OPTION_GROUP: _Target("product_modifier_group"),
    E.PLU_OPTION_ITEM: _Target("product_modifier"),
    _ASSIGNMENT: _Target("product_modifier_group_assignment"),
    **{entity: _Target("stock_movement", children="sync_stock_movement_lines") for entity in OPERATIONAL},
}


class _Ambiguous(Exception):
    """Records of one batch that share a natural key (one live, one deleted, say): an insert
    cannot tell their rows apart. Halving the batch separates them."""


# What a refused batch raises for one of its records: constraints (class 23), bad data (22),
# "ON CONFLICT DO UPDATE cannot affect a row a second time" (two records, one natural key).
_ROW_ERRORS = (psycopg.IntegrityError, psycopg.DataError, pg_errors.CardinalityViolation, _Ambiguous)


def load_page(
    connection: Connection,
    entity: EntityType,
    records: Sequence[Mapping[str, Any]],
    context: LoadContext,
) -> LoadResult:
    """Load one page of ``entity`` records (as the client returns them) for context.tenant_id."""
    if entity in ARCHIVE_ONLY:
        return LoadResult(0, 0, 0, 0, len(records), ())
    _require_transaction(connection)
    page = _Page(connection, entity, context)
    if entity is _ASSIGNMENT:
        plu_codes, pairs = page.offered_pairs(records)
        page.load(pairs)
        page.retire_assignments(plu_codes, list(pairs))
    else:
        page.load(page.keyed(records))
    return page.result()


# ---------------------------------------------------------------- one page


@dataclass(frozen=True, slots=True)
class _Known:
    flowpos_entity_id: UUID
    source_payload_hash: str | None


@dataclass(frozen=True, slots=True)
class _Ready:
    """A record mapped and resolved, ready to write."""

    external_id: str
    payload_hash: str
    target_id: UUID | None  # the mapped row (an update), or None (an insert)
    deleted: bool
    row: dict[str, Any]
    children: tuple[dict[str, Any], ...]


@dataclass
class _Page:
    connection: Connection
    entity: EntityType
    context: LoadContext
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)

    def result(self) -> LoadResult:
        return LoadResult(self.inserted, self.updated, self.skipped, len(self.errors), 0, tuple(self.errors))

    def fail(self, external_id: str, reason: str) -> None:
        self.errors.append(RowError(external_id, reason))

    # ------------------------------------------------------------ reading the page

    def keyed(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
        """The page by external id, the last record of an id winning."""
        id_field = contract.SOURCES[self.entity].id_field
        keyed: dict[str, Mapping[str, Any]] = {}
        for record in records:
            external_id = mapping.external_id(record, id_field)
            if external_id is None:
                self.fail("", f"invalid:{id_field}")
            else:
                if external_id in keyed:
                    self.skipped += 1  # the earlier record is superseded by this one
                keyed[external_id] = record
        return keyed

    def offered_pairs(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[list[str], dict[str, Mapping[str, Any]]]:
        """PLU records -> the PLUs read and their (PLU, modifier group) pair pseudo-records."""
        plus: dict[str, PluOptions] = {}
        for plu_code, record in self.keyed(records).items():
            try:
                plus[plu_code] = PluOptions.model_validate(dict(record))
            except ValidationError as error:
                self.fail(plu_code, invalid_reason(error))
        pairs: dict[str, Mapping[str, Any]] = {}
        for options in plus.values():
            pairs.update(options.pairs())
        return list(plus), pairs

    # ------------------------------------------------------------ loading

    def load(self, incoming: Mapping[str, Mapping[str, Any]]) -> None:
        rules = Rules(self.context.currency_code, self.context.tipo_gestion_map)
        hashes = {
            external_id: payload_hash(self.entity, record, rules) for external_id, record in incoming.items()
        }
        known = self._find((self.entity, external_id) for external_id in incoming)
        changed = [
            external_id
            for external_id, digest in hashes.items()
            if (entry := known.get((self.entity, external_id))) is None or entry.source_payload_hash != digest
        ]
        self.skipped += len(incoming) - len(changed)
        if not changed:
            return
        if self.entity in OPERATIONAL:
            rules = Rules(rules.currency_code, rules.tipo_gestion_map, self._timezone())
        mapped: dict[str, Mapped] = {}
        for external_id in changed:
            try:
                mapped[external_id] = map_record(self.entity, external_id, dict(incoming[external_id]), rules)
            except (ValidationError, Invalid) as error:
                self.fail(external_id, invalid_reason(error))
        resolved = self._find((ref.entity, ref.external_id) for m in mapped.values() for ref in _refs(m))
        ready: list[_Ready] = []
        for external_id, m in mapped.items():
            entry = known.get((self.entity, external_id))
            missing = next((ref for ref in _refs(m) if (ref.entity, ref.external_id) not in resolved), None)
            if missing is not None:
                self.fail(external_id, f"missing_reference:{missing.entity.value}")
                continue
            ready.append(
                _Ready(
                    external_id=external_id,
                    payload_hash=hashes[external_id],
                    target_id=None if entry is None else entry.flowpos_entity_id,
                    deleted=m.deleted,
                    row=_resolve(m.row, resolved),
                    children=tuple(_resolve(child, resolved) for child in m.children),
                )
            )
        self._store(ready)

    def retire_assignments(self, plu_codes: list[str], listed: list[str]) -> None:
        """Soft-delete the pairs the page's PLUs no longer list. Only pairs the id map knows (under
        their pair id, pointing at the assignment) are retired: FlowPOS-made ones stay."""
        unlisted = self._unlisted_assignments(plu_codes, set(listed))
        known = self._find((_ASSIGNMENT, pair) for pair in unlisted)
        stale = [
            pair
            for pair, assignment_id in unlisted.items()
            if (entry := known.get((_ASSIGNMENT, pair))) is not None
            and entry.flowpos_entity_id == assignment_id
        ]
        if not stale:
            return
        retired = self.connection.execute(
            _SQL.retire_assignments.sql,
            {
                "tenant_id": self.context.tenant_id,
                "assignment_ids": [unlisted[pair] for pair in stale],
                "pairs": stale,
            },
        ).fetchall()
        self.updated += len(retired)

    def _unlisted_assignments(self, plu_codes: list[str], listed: set[str]) -> dict[str, UUID]:
        """The live assignments of these PLUs that the page does not list, by pair id."""
        products = {
            entry.flowpos_entity_id: plu_code
            for (entity, plu_code), entry in self._find((E.PLU, code) for code in plu_codes).items()
            if entity is E.PLU
        }
        if not products:
            return {}
        rows = self.connection.execute(
            _SQL.live_assignments.sql, {"tenant_id": self.context.tenant_id, "product_ids": list(products)}
        ).fetchall()
        pairs = {f"{products[row['product_id']]}:{row['group_code']}": row["id"] for row in rows}
        return {pair: assignment_id for pair, assignment_id in pairs.items() if pair not in listed}

    def _find(self, keys: Iterable[tuple[EntityType, str]]) -> dict[tuple[EntityType, str], _Known]:
        """Id map entries by (entity type, external id): one query (which may bring entries of
        the other listed types for the same external ids too: they are never asked for)."""
        wanted = dict.fromkeys(keys)
        if not wanted:
            return {}
        rows = self.connection.execute(
            _SQL.find_mapped.sql,
            {
                "tenant_id": self.context.tenant_id,
                "entity_types": sorted({entity.value for entity, _ in wanted}),
                "external_ids": list(dict.fromkeys(external_id for _, external_id in wanted)),
            },
        ).fetchall()
        return {
            (EntityType(row["entity_type"]), row["external_id"]): _Known(
                row["flowpos_entity_id"], row["source_payload_hash"]
            )
            for row in rows
        }

    def _timezone(self) -> tzinfo:
        name = self.context.timezone
        if name is None:
            row = self.connection.execute(
                _SQL.run_timezone.sql,
                {"tenant_id": self.context.tenant_id, "sync_run_id": self.context.sync_run_id},
            ).fetchone()
            if row is None:
                raise LookupError(f"sync run {self.context.sync_run_id} not found for this tenant")
            name = str(row["timezone"])
        return ZoneInfo(name)

    # ------------------------------------------------------------ writing

    def _store(self, ready: list[_Ready]) -> None:
        """Write under a savepoint; a refused batch is halved until the refused records are alone."""
        if not ready:
            return
        try:
            with self.connection.transaction():
                inserted, updated = self._write(ready)
        except _ROW_ERRORS as error:
            if len(ready) == 1:
                self.fail(ready[0].external_id, _refusal(error))
                return
            half = len(ready) // 2
            self._store(ready[:half])
            self._store(ready[half:])
            return
        self.inserted += inserted
        self.updated += updated

    def _write(self, ready: list[_Ready]) -> tuple[int, int]:
        target = _TARGETS[self.entity]
        written: dict[str, UUID] = {}
        updates = [r for r in ready if r.target_id is not None]
        if updates:
            reached = {
                row["id"]
                for row in self._fetch(
                    f"update_{target.table}",
                    [{**r.row, "flowpos_entity_id": r.target_id, "deleted": r.deleted} for r in updates],
                )
            }
            for r in updates:
                if r.target_id is not None and r.target_id in reached:
                    written[r.external_id] = r.target_id
        updated = len(written)
        # New records, and mapped ones whose row is gone (written again; the id map follows).
        inserts = [r for r in ready if r.external_id not in written]
        if inserts:
            rows = self._fetch(
                f"insert_{target.table}",
                [{**r.row, "external_id": r.external_id, "deleted": r.deleted} for r in inserts],
            )
            if len(rows) != len(inserts):  # each record meets its own row, and maybe another's
                raise _Ambiguous(target.table)
            written.update((row["external_id"], row["id"]) for row in rows)
        self._execute(
            "upsert_id_map",
            [
                {
                    "external_id": r.external_id,
                    "flowpos_entity_id": written[r.external_id],
                    "source_payload_hash": r.payload_hash,
                }
                for r in ready
            ],
            entity_type=self.entity.value,
        )
        if target.children is not None:
            self._execute(
                target.children,
                [{**child, "parent_id": written[r.external_id]} for r in ready for child in r.children],
                parent_ids=[written[r.external_id] for r in ready],
            )
        return len(inserts), updated

    def _execute(self, name: str, rows: list[dict[str, Any]], **params: Any) -> None:
        self.connection.execute(
            _SQL[name].sql, {"tenant_id": self.context.tenant_id, "rows": Jsonb(rows, dumps=_dumps), **params}
        )

    def _fetch(self, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A statement's returned rows (fetched: in a pipeline this is where it syncs)."""
        cursor = self.connection.execute(
            _SQL[name].sql, {"tenant_id": self.context.tenant_id, "rows": Jsonb(rows, dumps=_dumps)}
        )
        return cursor.fetchall()


# ---------------------------------------------------------------- helpers


def _require_transaction(connection: Connection) -> None:
    """The caller's transaction must be open: the savepoints nest in it, nothing is committed.

    In a pipeline libpq learns the transaction status only at a sync; until then it reads idle
    inside the caller's BEGIN, and psycopg's ``transaction()`` would open (and, on a refused
    batch, roll back) a transaction of its own instead of a savepoint. One sync settles it.
    """
    if connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        with connection.pipeline() as pipeline:
            pipeline.sync()
    if connection.pgconn.transaction_status != pq.TransactionStatus.INTRANS:
        raise RuntimeError("load_page runs inside the caller's open transaction (tenant_transaction)")


def _refs(mapped: Mapped) -> Iterator[Ref]:
    for row in (mapped.row, *mapped.children):
        yield from (value for value in row.values() if isinstance(value, Ref))
    yield from mapped.checks


def _resolve(row: dict[str, Any], resolved: Mapping[tuple[EntityType, str], _Known]) -> dict[str, Any]:
    return {
        column: resolved[(value.entity, value.external_id)].flowpos_entity_id
        if isinstance(value, Ref)
        else value
        for column, value in row.items()
    }


def _refusal(error: Exception) -> str:
    """Why the database refused a record: conflict:<unique constraint>, invalid:<check>, ..."""
    if isinstance(error, _Ambiguous):
        return f"conflict:{error}"  # not alone: a batch of one never is ambiguous
    diag = getattr(error, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or type(error).__name__
    if isinstance(error, pg_errors.CheckViolation | psycopg.DataError):
        return f"invalid:{constraint}"
    if isinstance(error, pg_errors.ForeignKeyViolation):
        return f"missing_reference:{constraint}"
    return f"conflict:{constraint}"


def _jsonable(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo is not None else value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)  # numeric and uuid columns read their exact text
    raise TypeError(f"{type(value).__name__} is not a column value")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=_jsonable)
