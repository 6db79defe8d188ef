"""The RPApos sync engine: what the Step Functions tasks of a sync run call, one page at a time.

Role pos_gateway_rpapos; every call names the run's tenant (row-level security: the role sees
nothing outside a tenant's context), so the state machine carries ``tenant_id`` and
``sync_run_id`` from task to task: a ``StepOutcome`` is also the next task's input.

- ``advance`` does ONE page: it reads the run and its cursor; a finished, ended, cancelled or
  paused run does nothing more; otherwise it extracts the next page of the current entity
  (REST pages, mesas per loaded area, modifier groups by SOAP page, modifier items per loaded
  group, modifier group assignments from the PLU pages) with no transaction open, then in ONE
  transaction appends the page to the extraction archive, loads it (pos_gateway.rpapos.loader),
  adds its counts to the entity's stats and moves the cursor. A crash between pages resumes
  from the last committed page; the cursor read before the extraction must still be the run's
  when the page is written (under the run's row lock), so a page is never loaded twice, even by
  two executions racing on one run.
- ``finalize`` completes a finished run and records the sync on the connection; ``fail`` ends a
  run failed with its (bounded, secret-free) error; ``park`` stores the callback token of a
  paused run, or says "resume" when the run is no longer paused (resumed or cancelled since).
- Extraction errors: RPApos unavailable (transport, timeouts, 5xx, an outage) raises
  ``RpaposUnavailable`` (a RetryLater) and writes nothing, so the task is retried with backoff
  and the same page read again; the database unavailable raises ``DatabaseUnavailable``.
  What retrying cannot mend (credentials refused, no device token or workstation, a request
  RPApos refuses, an answer it cannot read, sealed credentials that do not open, the
  connection deleted) fails the run here and raises ``SyncFailed``.

Cursor (rpapos_sync_run.cursor): ``{"entity": "plu", "page": 3, "size": 500}``, with
``"parent"`` (the area or modifier group's external id) for per-parent entities, and, for
incremental runs, the ``"modified_since"`` the run reads changes from (the connection's
last_synced_at when the run took its first step); ``"size"`` is the run's page size, fixed at
its first step; ``{"done": true, ...}`` once every entity is read. NULL: not started (the
first entity, page 1). Parents are walked in external id order by keyset, so parents loaded
meanwhile (by another connection of the tenant) cannot shift the cursor.

Product images (a run started with ``include_images``): after every planned entity, the phase
``product_images`` walks the tenant's loaded PLUs (pos_gateway.rpapos.images), a page of
``image_page_size`` PLUs per step (fewer when the step's time budget runs out): per PLU, SOAP
Producto_U_M and the image stored in object storage (no transaction open; storing is idempotent),
then in ONE transaction the run's import job (created by the phase's first page), one import row
per PLU, product.image_url, the stats under the synthetic key ``product_images`` and the cursor
``{"entity": "product_images", "page": 2, "job": <import_job id>, "after": <the last PLU code
done>, "rows": <import rows written>, ...}``. The same cursor check as for entity pages makes a
page's rows written once; a page read again after a crash stores the same objects again
harmlessly (unchanged objects are not even rewritten). current_entity is NULL in this phase
(product_images is no entity type); the step's outcome names it as its ``entity``. A run that
fails or is cancelled in this phase ends its import job ``failed``.
"""

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

from aws_lambda_powertools import Logger
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from pos_gateway.crypto import CredentialCipher, DecryptionError
from pos_gateway.db import ConnectionFactory, NotFound, queries, tenant_transaction
from pos_gateway.db.connection import Connection
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos import contract, images
from pos_gateway.rpapos.contract import ARCHIVE_ONLY, CATALOG, EntityType, Transport
from pos_gateway.rpapos.errors import (
    BadCredentials,
    RpaposError,
    RpaposUnavailable,
    SessionExpired,
    SoapTokenRejected,
    WorkstationRequired,
)
from pos_gateway.rpapos.images import ImageStore, ImageStoreError, ImageStoreNotConfigured, Plu
from pos_gateway.rpapos.loader import LoadContext, LoadResult, load_page
from pos_gateway.rpapos.planner import Mode
from pos_gateway.rpapos.rest import RpaposRestClient, tenant_base_url
from pos_gateway.rpapos.runs import PRODUCT_IMAGES
from pos_gateway.rpapos.soap import DEFAULT_ENDPOINT, RpaposSoapClient

_SQL = queries.load(__file__, "sync.sql")
logger = Logger(child=True)

CONNECTION_TABLE = "rpapos.rpapos_connection"
PASSWORD_COLUMN = "password_encrypted"  # noqa: S105 - a column name
SOAP_TOKEN_COLUMN = "soap_token_encrypted"  # noqa: S105 - a column name
MAX_ERROR_CHARS = 1000  # rpapos_sync_run.last_error / rpapos_connection.last_error
ACTIVE = frozenset({"running", "paused"})

StepState = Literal["more", "paused", "cancelled", "finished", "failed"]
Phase = EntityType | Literal["product_images"]  # what a step reads: an entity's page, or images
ParkOutcome = Literal["parked", "resume"]
_ENDED_STATE: dict[str, StepState] = {"completed": "finished", "cancelled": "cancelled", "failed": "failed"}
# Failures that make the connection need an operator (new credentials, device, workstation).
_CONNECTION_ERRORS = (BadCredentials, SessionExpired, SoapTokenRejected, WorkstationRequired, DecryptionError)


# ---------------------------------------------------------------- errors


class SyncRunNotFound(NotFound):
    """No such run in the tenant (a wrong tenant_id or sync_run_id in the state's input)."""


class SyncFailed(Exception):
    """The run was failed (its last_error says why): retrying cannot help. Not retryable."""

    def __init__(self, run_id: UUID, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunNotFinished(Exception):
    """``finalize`` of a run that is not at its end (cancelled, failed, or pages left)."""


class ConnectionRemoved(RpaposError):
    """The run's connection was deleted while the run was active."""


# ---------------------------------------------------------------- collaborators


class RestClientFactory(Protocol):
    def __call__(self, base_url: str, username: str, password: str, *, timezone: str) -> RpaposRestClient: ...


class SoapClientFactory(Protocol):
    def __call__(self, *, token: str | None, estacion_trabajo: int | None) -> RpaposSoapClient: ...


class LoadPage(Protocol):
    def __call__(
        self,
        connection: Connection,
        entity: EntityType,
        records: Sequence[Mapping[str, Any]],
        context: LoadContext,
    ) -> LoadResult: ...


def rest_client(base_url: str, username: str, password: str, *, timezone: str) -> RpaposRestClient:
    return RpaposRestClient(base_url, username, password, timezone=timezone)


def soap_client(*, token: str | None, estacion_trabajo: int | None) -> RpaposSoapClient:
    return RpaposSoapClient(DEFAULT_ENDPOINT, token=token, estacion_trabajo=estacion_trabajo)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SyncDeps:
    """What the engine works with; the defaults are the cloud's."""

    connections: ConnectionFactory  # role pos_gateway_rpapos
    cipher: CredentialCipher
    rest_client: RestClientFactory = rest_client
    soap_client: SoapClientFactory = soap_client
    base_url: Callable[[str], str] = tenant_base_url  # subdomain -> REST base URL
    clock: Callable[[], datetime] = _utc_now
    page_size: int = contract.DEFAULT_PAGE_SIZE
    load_page: LoadPage = load_page
    # The product image import (runs with include_images); None: such a run fails in that phase.
    image_store: ImageStore | None = None
    image_page_size: int = images.DEFAULT_PAGE_SIZE
    image_step_seconds: float = images.DEFAULT_STEP_SECONDS


# ---------------------------------------------------------------- outcomes


class RunRef(BaseModel):
    """Which run a task works on: the state's input (extra keys, such as a previous outcome's,
    are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    sync_run_id: UUID


class StepOutcome(RunRef):
    """What ``advance`` did, small enough for any Step Functions state: never records.

    ``entity``, ``page`` and ``parent`` say where the run stands: the next page it reads
    (``more``), or the page it will read when resumed (``paused``); None when finished."""

    state: StepState
    entity: Phase | None = None
    page: int | None = None
    parent: str | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------- cursor


@dataclass(frozen=True, slots=True)
class ImagesCursor:
    """Where the product images phase stands (keyset over the tenant's PLUs)."""

    job: str | None = None  # the run's import job, once its first page is written
    after: str | None = None  # the last PLU (external id) done; None: from the first
    rows: int = 0  # import rows written: the next row is rows + 1


@dataclass(frozen=True, slots=True)
class Cursor:
    entity: EntityType | None  # None: every planned entity is read (images left, or the end)
    page: int = 1
    parent: str | None = None
    modified_since: str | None = None  # ISO 8601, the incremental run's lower bound
    # The run's page size, fixed at its first step: a page number means the same records on
    # every step of the run, whatever the deployment's page size becomes meanwhile.
    size: int | None = None
    images: ImagesCursor | None = None  # set: the product images phase (entity None)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> "Cursor":
        modified_since, size = data.get("modified_since"), data.get("size")
        if data.get("done"):
            return cls(None, modified_since=modified_since, size=size)
        if data.get("entity") == PRODUCT_IMAGES:
            walk = ImagesCursor(data.get("job"), data.get("after"), int(data.get("rows", 0)))
            return cls(None, int(data.get("page", 1)), modified_since=modified_since, size=size, images=walk)
        return cls(
            EntityType(data["entity"]), int(data.get("page", 1)), data.get("parent"), modified_since, size
        )

    @property
    def done(self) -> bool:
        return self.entity is None and self.images is None

    @property
    def phase(self) -> Phase | None:
        return PRODUCT_IMAGES if self.images is not None else self.entity

    def following(self, entity: EntityType | None) -> "Cursor":
        """Page 1 of the next entity (None: the end), the run-wide fields carried over."""
        return Cursor(entity, modified_since=self.modified_since, size=self.size)

    def images_phase(self) -> "Cursor":
        """Page 1 of the product images phase."""
        return Cursor(None, modified_since=self.modified_since, size=self.size, images=ImagesCursor())

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"done": True}
        if self.images is not None:
            body = {"entity": PRODUCT_IMAGES}
            body["page"] = self.page
            body["rows"] = self.images.rows
            if self.images.job is not None:
                body["job"] = self.images.job
            if self.images.after is not None:
                body["after"] = self.images.after
        elif self.entity is not None:
            body = {"entity": self.entity.value, "page": self.page}
            if self.parent is not None:
                body["parent"] = self.parent
        if self.modified_since is not None:
            body["modified_since"] = self.modified_since
        if self.size is not None:
            body["size"] = self.size
        return body


def _parent_entity(entity: EntityType) -> EntityType | None:
    """Whose loaded records an entity is read per: areas for mesas, groups for modifier items."""
    source = contract.SOURCES[entity]
    if source.transport is Transport.REST_PER_PARENT or (
        source.transport is Transport.SOAP and source.parent is not None
    ):
        return source.parent
    return None


# ---------------------------------------------------------------- one step


@dataclass(frozen=True, slots=True)
class _Work:
    """One page to read, and everything its reading and writing need."""

    tenant_id: UUID
    run_id: UUID
    connection_id: UUID
    entity_types: tuple[EntityType, ...]
    stored_cursor: dict[str, Any] | None  # as read: it must be unchanged when the page is written
    cursor: Cursor  # where to read (the parent resolved)
    date_from: datetime | None
    date_to: datetime | None
    subdomain: str
    usuario: str
    timezone: str
    currency_code: str
    tipo_gestion_map: dict[str, str]
    estacion_trabajo: int | None
    password: str = field(repr=False)
    soap_token: str | None = field(repr=False)
    include_images: bool = False
    created_by: UUID | None = None
    plus: tuple[Plu, ...] = ()  # the images phase: the page's PLUs (and one more, if any)

    @property
    def entity(self) -> EntityType:
        if self.cursor.entity is None:  # pragma: no cover - a done cursor is never work
            raise RuntimeError("no entity left to read")
        return self.cursor.entity

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(secret for secret in (self.password, self.soap_token) if secret)


@dataclass(frozen=True, slots=True)
class _Page:
    records: list[dict[str, Any]]
    is_last: bool  # the last page of the entity (of the parent, for per-parent entities)
    read: bool = True  # False: there was nothing to read (no parent loaded)


def advance(tenant_id: UUID, run_id: UUID, *, deps: SyncDeps) -> StepOutcome:
    """One page of the run (see the module's docstring). Raises RpaposUnavailable or
    DatabaseUnavailable (retry: nothing of the page was written), SyncFailed (the run failed),
    SyncRunNotFound."""
    connection = deps.connections.get()
    try:
        with tenant_transaction(connection, tenant_id):
            step = _prepare(connection, tenant_id, run_id, deps)
    except (ConnectionRemoved, DecryptionError) as exc:
        raise _failed(exc, tenant_id, run_id, (), deps) from None
    if isinstance(step, StepOutcome):
        return step
    if step.cursor.images is not None:
        return _advance_images(connection, step, step.cursor.images, deps)
    try:
        page = _extract(step, deps)
    except RpaposUnavailable:
        raise
    except RpaposError as exc:
        raise _failed(exc, tenant_id, run_id, step.secrets, deps) from None
    with tenant_transaction(connection, tenant_id):
        outcome = _commit(connection, step, page, deps)
    logger.info(
        "rpapos sync step",
        extra={
            "sync_run_id": str(run_id),
            "entity": step.entity.value,
            "page": step.cursor.page,
            "records": len(page.records),
            "state": outcome.state,
        },
    )
    return outcome


def _prepare(connection: Connection, tenant_id: UUID, run_id: UUID, deps: SyncDeps) -> "StepOutcome | _Work":
    """The run's next page to read, or what to answer instead (nothing to read). Raises
    ConnectionRemoved and DecryptionError before anything is written."""
    row = connection.execute(_SQL.run_for_step.sql, {"run_id": run_id}).fetchone()
    if row is None:
        raise SyncRunNotFound(f"no sync run {run_id} in tenant {tenant_id}")
    entity_types = tuple(EntityType(value) for value in row["entity_types"])
    if row["status"] not in ACTIVE:
        ended = _stored_cursor(row)
        if row["status"] != "completed":  # an operator cancelled it parked: its image job ends too
            _close_image_job(connection, ended, f"the sync run was {row['status']}", deps)
        return _outcome(tenant_id, run_id, _ENDED_STATE[row["status"]], ended)
    cursor = (
        Cursor.parse(row["cursor"])
        if row["cursor"] is not None
        else Cursor(entity_types[0], modified_since=_modified_since(row), size=deps.page_size)
    )
    if cursor.done:
        return _outcome(tenant_id, run_id, "finished", cursor)
    if row["cancel_requested"]:
        connection.execute(_SQL.end_cancelled.sql, {"run_id": run_id, "at": deps.clock()})
        _close_image_job(connection, cursor, "the sync run was cancelled", deps)
        return _outcome(tenant_id, run_id, "cancelled", cursor)
    if row["paused"]:
        parked = row["status"] == "paused" or (
            connection.execute(_SQL.mark_parked.sql, {"run_id": run_id}).fetchone() is not None
        )
        return _outcome(tenant_id, run_id, "paused" if parked else "more", cursor)
    if row["connection_deleted_at"] is not None:
        raise ConnectionRemoved(f"RPApos connection {row['connection_id']} was deleted during the run")
    parent = _parent_entity(cursor.entity) if cursor.entity is not None else None
    if parent is not None and cursor.parent is None:
        cursor = replace(cursor, parent=_parent_after(connection, tenant_id, parent, None))
    plus = (
        images.plus_after(connection, tenant_id, cursor.images.after, deps.image_page_size + 1)
        if cursor.images is not None
        else []
    )
    password = _open(deps.cipher, row["password_encrypted"], PASSWORD_COLUMN, row["connection_id"])
    soap_token = (
        _open(deps.cipher, row["soap_token_encrypted"], SOAP_TOKEN_COLUMN, row["connection_id"])
        if row["soap_token_encrypted"]
        else None
    )
    return _Work(
        tenant_id=tenant_id,
        run_id=run_id,
        connection_id=row["connection_id"],
        entity_types=entity_types,
        stored_cursor=row["cursor"],
        cursor=cursor,
        date_from=row["date_from"],
        date_to=row["date_to"],
        subdomain=row["subdomain"],
        usuario=row["usuario"],
        timezone=row["timezone"],
        currency_code=row["currency_code"],
        tipo_gestion_map={str(k): str(v) for k, v in (row["tipo_gestion_map"] or {}).items()},
        estacion_trabajo=row["estacion_trabajo"],
        password=password,
        soap_token=soap_token,
        include_images=row["include_images"],
        created_by=row["created_by"],
        plus=tuple(plus),
    )


def _modified_since(row: Mapping[str, Any]) -> str | None:
    """The incremental run's lower bound, fixed at its first step (None: read everything)."""
    if row["mode"] != Mode.INCREMENTAL.value or row["last_synced_at"] is None:
        return None
    value: datetime = row["last_synced_at"]
    return value.isoformat()


def _stored_cursor(row: Mapping[str, Any]) -> Cursor | None:
    return Cursor.parse(row["cursor"]) if row["cursor"] is not None else None


def _open(cipher: CredentialCipher, envelope: str, column: str, connection_id: UUID) -> str:
    try:
        return cipher.decrypt(envelope, table=CONNECTION_TABLE, column=column, row_id=str(connection_id))
    except DecryptionError as exc:
        raise DecryptionError(f"the connection's {column} does not open ({exc})") from None


def _parent_after(
    connection: Connection, tenant_id: UUID, parent: EntityType, after: str | None
) -> str | None:
    row = connection.execute(
        _SQL.parent_after.sql, {"tenant_id": tenant_id, "entity_type": parent.value, "after": after}
    ).fetchone()
    return None if row is None else str(row["external_id"])


def _outcome(tenant_id: UUID, run_id: UUID, state: StepState, cursor: Cursor | None) -> StepOutcome:
    where = cursor if cursor is not None and not cursor.done and state != "finished" else None
    return StepOutcome(
        tenant_id=tenant_id,
        sync_run_id=run_id,
        state=state,
        entity=where.phase if where else None,
        page=where.page if where else None,
        parent=where.parent if where else None,
    )


# ---------------------------------------------------------------- extraction (no transaction open)


def _extract(work: _Work, deps: SyncDeps) -> _Page:
    entity = work.entity
    source = contract.SOURCES[entity]
    if _parent_entity(entity) is not None and work.cursor.parent is None:
        return _Page([], is_last=True, read=False)  # no parent loaded: nothing to read
    if source.transport is Transport.SOAP:
        return _extract_soap(work, deps)
    read_as = source.parent if source.transport is Transport.DERIVED and source.parent else entity
    with _rest(work, deps) as rest:
        if source.transport is Transport.REST_PER_PARENT:
            pages = rest.pages_for_parent(
                entity,
                str(work.cursor.parent),
                page_size=_page_size(work, deps),
                modified_since=_since(work),
                start_page=work.cursor.page,
            )
        else:
            pages = rest.pages(
                read_as,
                page_size=_page_size(work, deps),
                start_page=work.cursor.page,
                **_filters(read_as, work),
            )
        page = next(pages)
    return _Page(page.records, page.is_last)


@contextmanager
def _rest(work: _Work, deps: SyncDeps) -> Iterator[RpaposRestClient]:
    client = deps.rest_client(
        deps.base_url(work.subdomain), work.usuario, work.password, timezone=work.timezone
    )
    try:
        yield client
    finally:
        client.close()


def _extract_soap(work: _Work, deps: SyncDeps) -> _Page:
    soap = deps.soap_client(token=work.soap_token, estacion_trabajo=work.estacion_trabajo)
    if work.entity is EntityType.PLU_OPTION_ITEM:
        return _Page(_json_ready(soap.modifier_items(str(work.cursor.parent))), is_last=True)
    if work.entity is EntityType.PLU_OPTION_GROUP:
        page = soap.modifier_groups(work.cursor.page, _page_size(work, deps))
        return _Page(_json_ready(page.records), page.is_last)
    raise ValueError(f"{work.entity} is not read by SOAP")  # pragma: no cover - the contract's


def _page_size(work: _Work, deps: SyncDeps) -> int:
    return work.cursor.size or deps.page_size


def _since(work: _Work) -> datetime | None:
    return datetime.fromisoformat(work.cursor.modified_since) if work.cursor.modified_since else None


def _filters(entity: EntityType, work: _Work) -> dict[str, datetime | None]:
    """The historical window for entities with a document date; changes since, incremental."""
    dated = contract.SOURCES[entity].date_field is not None
    return {
        "date_from": work.date_from if dated else None,
        "date_to": work.date_to if dated else None,
        "modified_since": _since(work),
    }


def _json_ready(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SOAP records as the REST ones come: JSON values only (dates in the contract's ISO
    format, decimals as numbers), so that the archive holds what was loaded."""
    return [{key: _json_value(value) for key, value in record.items()} for record in records]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


# ---------------------------------------------------------------- the page's transaction


def _commit(connection: Connection, work: _Work, page: _Page, deps: SyncDeps) -> StepOutcome:
    locked = connection.execute(_SQL.lock_run.sql, {"run_id": work.run_id}).fetchone()
    if locked is None:
        raise SyncRunNotFound(f"sync run {work.run_id} disappeared")
    if locked["status"] not in ACTIVE or locked["cursor"] != work.stored_cursor:
        # Another step moved the run meanwhile (a duplicate execution, a cancel): write nothing.
        state = _ENDED_STATE.get(locked["status"], "more")
        return _outcome(work.tenant_id, work.run_id, state, _stored_cursor(locked))
    entity = work.entity
    result: LoadResult | None = None
    if page.read:
        connection.execute(
            _SQL.insert_archive.sql,
            {
                "tenant_id": work.tenant_id,
                "run_id": work.run_id,
                "entity_type": entity.value,
                "page": work.cursor.page,
                "cursor": Jsonb(work.cursor.as_json()),
                "record_count": len(page.records),
                "payload": Jsonb(page.records),
                "extracted_at": deps.clock(),
            },
        )
        context = LoadContext(
            tenant_id=work.tenant_id,
            sync_run_id=work.run_id,
            currency_code=work.currency_code,
            tipo_gestion_map=work.tipo_gestion_map,
            timezone=work.timezone,
        )
        result = deps.load_page(connection, entity, page.records, context)
    following = _next_cursor(connection, work, page)
    stats = _add_counts(
        locked["per_entity_stats"], entity, len(page.records), result, following.entity != entity
    )
    if following.images is not None:
        stats[PRODUCT_IMAGES] = {**_image_stats(stats), "status": "running"}
    connection.execute(
        _SQL.record_page.sql,
        {
            "run_id": work.run_id,
            "current_entity": None if following.entity is None else following.entity.value,
            "cursor": Jsonb(following.as_json()),
            "per_entity_stats": Jsonb(stats),
        },
    )
    return _outcome(work.tenant_id, work.run_id, "finished" if following.done else "more", following)


def _next_cursor(connection: Connection, work: _Work, page: _Page) -> Cursor:
    cursor = work.cursor
    if not page.is_last:
        return replace(cursor, page=cursor.page + 1)
    parent = _parent_entity(work.entity)
    if parent is not None and cursor.parent is not None:
        following = _parent_after(connection, work.tenant_id, parent, cursor.parent)
        if following is not None:
            return replace(cursor, page=1, parent=following)
    position = work.entity_types.index(work.entity)
    if position + 1 < len(work.entity_types):
        return cursor.following(work.entity_types[position + 1])
    return cursor.images_phase() if work.include_images else cursor.following(None)


def _add_counts(
    stats: Mapping[str, Any], entity: EntityType, read: int, result: LoadResult | None, done: bool
) -> dict[str, Any]:
    """The page's counts added to the entity's. ``extracted`` is the records read, but for a
    derived entity (modifier group assignments, read from PLU records): the records the loader
    derived and counted (one per PLU and group), so that extracted = loaded + skipped + failed +
    archived_only for every entity."""
    updated = dict(stats)
    current = dict(updated.get(entity.value) or {})
    derived = contract.SOURCES[entity].transport is Transport.DERIVED
    counted = (
        result.inserted + result.updated + result.skipped + result.failed + result.archived_only
        if result
        else 0
    )
    counts = {
        "extracted": counted if derived else read,
        "loaded": result.inserted + result.updated if result else 0,
        "failed": result.failed if result else 0,
        "skipped": result.skipped if result else 0,
        "archived_only": result.archived_only if result else 0,
    }
    for key, value in counts.items():
        current[key] = int(current.get(key, 0)) + value
    if done and entity in ARCHIVE_ONLY:
        # Archived, never loaded: the stats say why, for the operator reading the run.
        current["status"] = "archived_only"
        current["reason"] = ARCHIVE_ONLY[entity].reason
    elif done:
        current["status"] = "completed"
    else:
        current["status"] = "running"
    updated[entity.value] = current
    return updated


# ---------------------------------------------------------------- the product images phase


def _advance_images(connection: Connection, work: _Work, walk: ImagesCursor, deps: SyncDeps) -> StepOutcome:
    """One page of the images phase: the PLUs' images fetched and stored (no transaction open),
    then their rows, image_url, stats and the cursor in one transaction."""
    limit = deps.image_page_size
    try:
        if deps.image_store is None:
            raise ImageStoreNotConfigured(
                "the run includes images but no product images bucket is configured"
            )
        soap = deps.soap_client(token=work.soap_token, estacion_trabajo=work.estacion_trabajo)
        fetched = images.fetch_images(
            soap, deps.image_store, work.tenant_id, work.plus[:limit], budget_seconds=deps.image_step_seconds
        )
    except RetryLater:  # RPApos or the store unavailable: nothing was written, read the page again
        raise
    except (RpaposError, ImageStoreError) as exc:
        raise _failed(exc, work.tenant_id, work.run_id, work.secrets, deps) from None
    last = len(work.plus) <= limit and len(fetched) == len(work.plus)
    with tenant_transaction(connection, work.tenant_id):
        outcome = _commit_images(connection, work, walk, fetched, last, deps)
    logger.info(
        "rpapos sync step",
        extra={
            "sync_run_id": str(work.run_id),
            "entity": PRODUCT_IMAGES,
            "page": work.cursor.page,
            "records": len(fetched),
            "state": outcome.state,
        },
    )
    return outcome


def _commit_images(
    connection: Connection,
    work: _Work,
    walk: ImagesCursor,
    fetched: Sequence[images.PluImage],
    last: bool,
    deps: SyncDeps,
) -> StepOutcome:
    locked = connection.execute(_SQL.lock_run.sql, {"run_id": work.run_id}).fetchone()
    if locked is None:
        raise SyncRunNotFound(f"sync run {work.run_id} disappeared")
    if locked["status"] not in ACTIVE or locked["cursor"] != work.stored_cursor:
        # Another step moved the run meanwhile: its rows are written, these are not.
        state = _ENDED_STATE.get(locked["status"], "more")
        return _outcome(work.tenant_id, work.run_id, state, _stored_cursor(locked))
    at = deps.clock()
    store = deps.image_store
    if walk.job is not None:
        job_id = UUID(walk.job)
    else:
        bucket = store.bucket if store is not None else ""
        job_id = images.open_job(connection, work.tenant_id, work.run_id, bucket, work.created_by, at)
    counts = images.write_page(connection, work.tenant_id, job_id, walk.rows + 1, fetched, last=last, at=at)
    following = (
        work.cursor.following(None)
        if last
        else replace(
            work.cursor,
            page=work.cursor.page + 1,
            images=ImagesCursor(
                str(job_id), fetched[-1].plu.code if fetched else walk.after, walk.rows + len(fetched)
            ),
        )
    )
    stats = dict(locked["per_entity_stats"])
    current = _image_stats(stats)
    for key, value in (
        ("extracted", counts.extracted),
        ("loaded", counts.loaded),
        ("skipped", counts.skipped),
        ("failed", counts.failed),
    ):
        current[key] = int(current.get(key, 0)) + value
    current["status"] = "completed" if last else "running"
    stats[PRODUCT_IMAGES] = current
    connection.execute(
        _SQL.record_page.sql,
        {
            "run_id": work.run_id,
            "current_entity": None,
            "cursor": Jsonb(following.as_json()),
            "per_entity_stats": Jsonb(stats),
        },
    )
    return _outcome(work.tenant_id, work.run_id, "finished" if following.done else "more", following)


def _image_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The run's product_images stats so far (zero when the run was started without them)."""
    base = {"extracted": 0, "loaded": 0, "failed": 0, "skipped": 0, "archived_only": 0, "status": "pending"}
    return {**base, **(stats.get(PRODUCT_IMAGES) or {})}


def _close_image_job(connection: Connection, cursor: Cursor | None, error: str, deps: SyncDeps) -> None:
    """The run ends in its images phase (failed, cancelled): its import job ends ``failed``."""
    if cursor is not None and cursor.images is not None and cursor.images.job is not None:
        images.close_job(connection, UUID(cursor.images.job), error, deps.clock())


# ---------------------------------------------------------------- ending and parking


def finalize(tenant_id: UUID, run_id: UUID, *, deps: SyncDeps) -> bool:
    """Complete a finished run (every page read) and record the sync on the connection:
    last_synced_at after a catalog or incremental run (an incremental run reads changes since
    it), last_full_sync_at after a full read of the catalog (mode catalog, or custom with every
    catalog entity); historical and partial custom runs move neither. The connection's
    last_error is cleared. False when the run was completed already (a retried task)."""
    connection = deps.connections.get()
    with tenant_transaction(connection, tenant_id):
        locked = connection.execute(_SQL.lock_run.sql, {"run_id": run_id}).fetchone()
        if locked is None:
            raise SyncRunNotFound(f"no sync run {run_id} in tenant {tenant_id}")
        if locked["status"] == "completed":
            return False
        cursor = _stored_cursor(locked)
        if locked["status"] not in ACTIVE or cursor is None or not cursor.done:
            raise RunNotFinished(f"sync run {run_id} is {locked['status']} and not at its end")
        entity_types = frozenset(EntityType(value) for value in locked["entity_types"])
        mode = Mode(locked["mode"])
        full = mode is not Mode.INCREMENTAL and entity_types >= CATALOG
        started_at: datetime = locked["started_at"]
        connection.execute(_SQL.complete_run.sql, {"run_id": run_id, "at": deps.clock()})
        connection.execute(
            _SQL.record_success_on_connection.sql,
            {
                "connection_id": locked["connection_id"],
                "last_synced_at": started_at if full or mode is Mode.INCREMENTAL else None,
                "last_full_sync_at": started_at if full else None,
            },
        )
    return True


def fail(
    tenant_id: UUID,
    run_id: UUID,
    error: str | BaseException,
    *,
    deps: SyncDeps,
    connection_status: Literal["error"] | None = None,
) -> bool:
    """End an active run ``failed``: last_error on the run and on the connection (one line, at
    most 1000 characters, the connection's password and device token masked should the error
    quote them), the entity being read marked failed, the callback token cleared.
    ``connection_status`` "error" when the connection needs an operator. False when the run
    had ended already (its outcome is kept)."""
    connection = deps.connections.get()
    with tenant_transaction(connection, tenant_id):
        locked = connection.execute(_SQL.lock_run.sql, {"run_id": run_id}).fetchone()
        if locked is None:
            raise SyncRunNotFound(f"no sync run {run_id} in tenant {tenant_id}")
        if locked["status"] not in ACTIVE:
            return False
        message = bounded_error(error, _connection_secrets(connection, run_id, deps.cipher))
        stats = dict(locked["per_entity_stats"])
        cursor = _stored_cursor(locked)
        reading = cursor.phase if cursor is not None else EntityType(locked["entity_types"][0])
        key = reading.value if isinstance(reading, EntityType) else reading
        if key is not None and key in stats:
            stats[key] = {**stats[key], "status": "failed"}
        _close_image_job(connection, cursor, message, deps)
        connection.execute(
            _SQL.fail_run.sql,
            {"run_id": run_id, "at": deps.clock(), "error": message, "per_entity_stats": Jsonb(stats)},
        )
        connection.execute(
            _SQL.record_failure_on_connection.sql,
            {"connection_id": locked["connection_id"], "error": message, "status": connection_status},
        )
    logger.warning("rpapos sync run failed", extra={"sync_run_id": str(run_id), "error": message})
    return True


def _connection_secrets(connection: Connection, run_id: UUID, cipher: CredentialCipher) -> list[str]:
    """The run's connection's password and device token, as far as they open (to mask them)."""
    row = connection.execute(_SQL.run_for_step.sql, {"run_id": run_id}).fetchone()
    if row is None:
        return []
    secrets = []
    for column in (PASSWORD_COLUMN, SOAP_TOKEN_COLUMN):
        if row[column]:
            try:
                secrets.append(_open(cipher, row[column], column, row["connection_id"]))
            except DecryptionError:
                continue
    return secrets


def park(tenant_id: UUID, run_id: UUID, task_token: str, *, deps: SyncDeps) -> ParkOutcome:
    """Store the callback token of a paused run's waiting task. "resume": the run is no longer
    parked (resumed, or cancelled, since it paused): the caller answers the token itself
    (SendTaskSuccess) so the execution does not wait for nobody."""
    connection = deps.connections.get()
    with tenant_transaction(connection, tenant_id):
        stored = connection.execute(
            _SQL.store_task_token.sql, {"run_id": run_id, "task_token": task_token}
        ).fetchone()
    return "parked" if stored is not None else "resume"


def attach_execution(tenant_id: UUID, run_id: UUID, execution_arn: str, *, deps: SyncDeps) -> bool:
    """Record the Step Functions execution running an active run (False: it has ended)."""
    connection = deps.connections.get()
    with tenant_transaction(connection, tenant_id):
        row = connection.execute(
            _SQL.attach_execution.sql, {"run_id": run_id, "execution_arn": execution_arn}
        ).fetchone()
    return row is not None


def bounded_error(error: str | BaseException, secrets: Sequence[str] = ()) -> str:
    """An error as last_error stores it: one line, known secrets masked, at most 1000 characters."""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    line = " ".join(text.split()) or "unknown error"
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def _failed(
    exc: BaseException, tenant_id: UUID, run_id: UUID, secrets: Sequence[str], deps: SyncDeps
) -> SyncFailed:
    message = bounded_error(exc, secrets)
    status: Literal["error"] | None = "error" if isinstance(exc, _CONNECTION_ERRORS) else None
    fail(tenant_id, run_id, message, deps=deps, connection_status=status)
    return SyncFailed(run_id, message)


def outcome_size(outcome: StepOutcome) -> int:
    """The outcome's size as Step Functions carries it (bytes of its JSON)."""
    return len(json.dumps(outcome.as_json()).encode())
