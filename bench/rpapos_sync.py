"""Phase 5, RPApos catalog sync: a fake tenant's PLUs (100,000 by default) read and loaded by the
sync engine, one ``advance`` per page as the state machine calls it, against the same pages
fetched with a bare ``requests`` session and written with COPY.

The fake RPApos runs in its own process (``python -m local.fake_rpapos``), so that the bench
process's CPU time and traced memory are the client's alone; every side reads the same tenant
over real HTTP. Three sides, page after page, their order alternating (ABBA) from page to page:

- engine: ``sync.advance`` on a custom run of [plu_grupo, unidad_medida, plu] (groups and units
  first, untimed): per page a new REST client and login, the page, then in one transaction the
  archive row, ``load_page``, the stats and the cursor;
- parts: the same pages through one ``RpaposRestClient.pages`` (extract), then ``load_page`` in
  a tenant transaction (load), into a second tenant;
- baseline: one bare session (the same login, the same query, ``.json()``), then the same
  product and id map rows written with COPY into scratch tables shaped like catalog.product and
  rpapos.rpapos_id_map (their indexes, checks and foreign keys; no row-level security), in one
  transaction per page, as the same role.

The first page of each side is a warm-up and the next SAMPLED_PAGES are measured under
tracemalloc (peak traced bytes of the page), both untimed; the rest are timed.
"""

import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import requests
from psycopg.rows import tuple_row

from bench.database import SET_TENANT, Conn
from bench.environment import ROOT
from bench.measure import BenchError, Row
from local.database import Database
from pos_gateway.crypto import CredentialCipher
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.rpapos import contract, runs, sync
from pos_gateway.rpapos.contract import EntityType
from pos_gateway.rpapos.loader import LoadContext, load_page
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.rpapos.rest import Page, RpaposRestClient
from pos_gateway.settings import RpaposSyncSettings

E = EntityType
PLUS_ENV = "BENCH_RPAPOS_PLUS"
DEFAULT_PLUS = 100_000
QUICK_PLUS = 5_000
# The deployment's page size (RPAPOS_PAGE_SIZE unset): one state machine step per page.
PAGE_SIZE: int = RpaposSyncSettings.model_fields["page_size"].default
WARMUP_PAGES = 1
SAMPLED_PAGES = 3
MIN_PLUS = (WARMUP_PAGES + SAMPLED_PAGES + 2) * PAGE_SIZE
LOGINS = 20
PLAN = (E.PLU_GRUPO, E.UNIDAD_MEDIDA, E.PLU)
SYNC_ROLE = "pos_gateway_rpapos"
ADMIN_ROLE = "pos_gateway_admin"
SUBDOMAIN = "bench"
USER = "bench"
PASSWORD = "bench-Passw0rd"  # noqa: S105 - the fake tenant's
CURRENCY = "GTQ"  # rpapos_connection.currency_code's default
MIB = 1024 * 1024

SCRATCH = """
CREATE SCHEMA bench_rpapos;
CREATE TABLE bench_rpapos.product (
    LIKE catalog.product INCLUDING ALL,
    FOREIGN KEY (tenant_id) REFERENCES identity.tenants (id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES catalog.product_category (tenant_id, id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES catalog.unit_of_measure (tenant_id, id)
);
CREATE TABLE bench_rpapos.id_map (
    LIKE rpapos.rpapos_id_map INCLUDING ALL,
    FOREIGN KEY (tenant_id) REFERENCES identity.tenants (id)
);
GRANT USAGE ON SCHEMA bench_rpapos TO pos_gateway_rpapos;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA bench_rpapos TO pos_gateway_rpapos;
"""
COPY_PRODUCTS = """COPY bench_rpapos.product (id, tenant_id, code, name, is_raw_material, category_id,
    unit_id, price, currency_code, deleted_at) FROM STDIN"""
COPY_ID_MAP = """COPY bench_rpapos.id_map (tenant_id, entity_type, external_id, flowpos_entity_id,
    source_payload_hash) FROM STDIN"""
MAPPED = """SELECT entity_type::text, external_id, flowpos_entity_id FROM rpapos.rpapos_id_map
 WHERE tenant_id = %s AND entity_type IN ('plu_grupo', 'unidad_medida')"""
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)"[^>]*\bvalue="([^"]*)"')
_TOKEN = re.compile(contract.LOGIN_TOKEN_PATTERN)

NOTE = """\
rpapos sync: {plus:,} PLUs in pages of {size} (RpaposSyncSettings' default); {timed:,} records timed
(the first {untimed} pages of each side untimed: warm-up, then traced). Fake RPApos in its own process,
real HTTP on loopback. whole step = sync.advance (new client + login, page, then archive + load_page +
stats + cursor in one transaction) vs bare fetch + COPY; extract = one RpaposRestClient.pages vs one bare
requests session (same login, same query, .json()); load = load_page in a tenant transaction vs COPY of
the same product and id map rows (the hash of each record's JSON) into scratch tables with catalog's
indexes, checks and foreign keys, one transaction per page, same role. Memory: tracemalloc peak of one
page (Python allocations only; libpq's buffers are not traced), max over {sampled} pages; load's excludes
the page's records, held already. login = new client + WebForms login + close, median of {logins}.
Load average (1 min) at the phase's start and end: {load[0]:.1f} / {load[1]:.1f} on {cpus} CPUs."""


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: uuid.UUID
    groups: dict[str, uuid.UUID]  # PLU group code -> catalog.product_category id
    units: dict[str, uuid.UUID]  # unit code -> catalog.unit_of_measure id


@dataclass(slots=True)
class Sides:
    """Timed seconds and traced peaks (bytes), by measure."""

    seconds: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)

    def add(self, measure: str, seconds: float) -> None:
        self.seconds[measure] = self.seconds.get(measure, 0.0) + seconds

    def peak(self, measure: str, traced: int) -> None:
        self.peaks[measure] = max(self.peaks.get(measure, 0), traced)


def plus_from_env() -> int | None:
    """BENCH_RPAPOS_PLUS, when set (ValueError when it is no number)."""
    value = os.environ.get(PLUS_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value.replace("_", ""))
    except ValueError:
        raise ValueError(f"{PLUS_ENV} is not a number: {value!r}") from None


def bench_rpapos_sync(db: Database, plus: int, sink: IO[str]) -> tuple[list[Row], str]:
    """The sync rows, and the note saying how they were measured."""
    if plus < MIN_PLUS:
        raise BenchError(f"the RPApos sync bench needs at least {MIN_PLUS} PLUs")
    load_before, rss_before = os.getloadavg()[0], _rss_mib()
    with contextlib.ExitStack() as stack:
        base_url = stack.enter_context(fake_rpapos(plus))
        owner = stack.enter_context(db.owner())
        engine = db.connections(SYNC_ROLE)
        stack.callback(engine.close)
        loader = db.connections(SYNC_ROLE)
        stack.callback(loader.close)
        bare_conn = stack.enter_context(db.connect_as(SYNC_ROLE, tuple_row))
        stack.enter_context(contextlib.redirect_stdout(sink))  # the engine's log lines, as in Lambda

        # A throwaway key, as local.seed's (not imported: it would import pos_gateway.loyalty first).
        cipher = CredentialCipher(keys={"bench-1": secrets.token_bytes(32)}, current_key_id="bench-1")
        project, run_id = _engine_tenant(db, owner, cipher)
        deps = sync.SyncDeps(
            connections=engine, cipher=cipher, base_url=_tenant_url(base_url), page_size=PAGE_SIZE
        )
        _advance_to_plus(project, run_id, deps)
        parts = _loaded_references(owner, loader, _new_tenant(owner, "RPApos bench, parts"), base_url)
        owner.execute(SCRATCH)
        client = stack.enter_context(RpaposRestClient(base_url, USER, PASSWORD))
        bare = BareSide(base_url, bare_conn, parts)
        stack.callback(bare.close)
        measured = _race(
            engine_step=lambda: sync.advance(project, run_id, deps=deps),
            extract=_pages(client.pages(E.PLU, page_size=PAGE_SIZE)),
            load=lambda records: _load(loader, parts.tenant_id, records),
            bare=bare,
            pages=-(-plus // PAGE_SIZE),
        )
        if not sync.finalize(project, run_id, deps=deps):
            raise BenchError("the engine's run was finalized already")
        login_ms = _logins(base_url)
        _check(owner, project, parts.tenant_id, run_id, plus)
    timed = plus - (WARMUP_PAGES + SAMPLED_PAGES) * PAGE_SIZE
    note = NOTE.format(
        plus=plus,
        size=PAGE_SIZE,
        timed=timed,
        untimed=WARMUP_PAGES + SAMPLED_PAGES,
        sampled=SAMPLED_PAGES,
        logins=LOGINS,
        load=(load_before, os.getloadavg()[0]),
        cpus=os.cpu_count(),
    )
    growth = Row(
        "rpapos sync: bench process RSS, end of phase - start (MiB)", _rss_mib() - rss_before, precision=1
    )
    return [*_rows(measured, timed, login_ms), growth], note


def _rss_mib() -> float:
    """The process's resident set now (VmRSS; ru_maxrss is the high-water of the whole bench)."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


# ---------------------------------------------------------------- setup


@contextlib.contextmanager
def fake_rpapos(plus: int) -> Iterator[str]:
    """The fake RPApos in a process of its own, with one tenant; yields its REST base URL."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
    command = [sys.executable, "-m", "local.fake_rpapos", "--tenant", SUBDOMAIN, "--username", USER]
    command += ["--password", PASSWORD, "--plus", str(plus)]
    process = subprocess.Popen(  # noqa: S603 - fixed interpreter and arguments
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = re.search(r"REST (\S+)", line)
        if found is None:
            raise BenchError(f"the fake RPApos did not start: {line!r}")
        yield found[1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def _tenant_url(base_url: str) -> Callable[[str], str]:
    def url(subdomain: str) -> str:
        if subdomain != SUBDOMAIN:
            raise BenchError(f"a run of another subdomain: {subdomain}")
        return base_url

    return url


def _engine_tenant(db: Database, owner: Conn, cipher: CredentialCipher) -> tuple[uuid.UUID, uuid.UUID]:
    """A tenant, its connection (the password sealed for its row) and a running custom run."""
    tenant_id = _new_tenant(owner, "RPApos bench, engine")
    connection_id = uuid.uuid4()
    sealed = cipher.encrypt(
        PASSWORD, table=sync.CONNECTION_TABLE, column=sync.PASSWORD_COLUMN, row_id=str(connection_id)
    )
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
        " VALUES (%s, %s, %s, %s, %s)",
        (connection_id, tenant_id, SUBDOMAIN, USER, sealed),
    )
    with db.connect_as(ADMIN_ROLE) as admin, tenant_transaction(admin, tenant_id):
        run = runs.start_run(
            admin, tenant_id, connection_id, SyncRequest(mode=Mode.CUSTOM, entity_types=PLAN), None
        )
    if run.entity_types != PLAN:
        raise BenchError(f"planned {run.entity_types}, not {PLAN}")
    return tenant_id, run.id


def _new_tenant(owner: Conn, name: str) -> uuid.UUID:
    row = owner.execute(
        "INSERT INTO identity.tenants (name, country, pos_provider_preference) VALUES (%s, 'GT', 'square')"
        " RETURNING id",
        (name,),
    ).fetchone()
    if row is None:
        raise BenchError("INSERT ... RETURNING gave no row")
    return uuid.UUID(str(row["id"]))


def _advance_to_plus(tenant_id: uuid.UUID, run_id: uuid.UUID, deps: sync.SyncDeps) -> None:
    """The groups and units, untimed: the next step reads PLU page 1."""
    for _ in PLAN[:-1]:
        outcome = sync.advance(tenant_id, run_id, deps=deps)
        if outcome.state != "more":
            raise BenchError(f"the engine's run stopped early: {outcome}")
    if (outcome.entity, outcome.page) != (E.PLU, 1):
        raise BenchError(f"the engine's run is not at PLU page 1: {outcome}")


def _loaded_references(owner: Conn, loader: ConnectionFactory, tenant_id: uuid.UUID, base_url: str) -> Tenant:
    """The second tenant's groups and units, loaded through load_page (untimed)."""
    with RpaposRestClient(base_url, USER, PASSWORD) as client:
        for entity in PLAN[:-1]:
            for page in client.pages(entity, page_size=PAGE_SIZE):
                result = _load(loader, tenant_id, page.records, entity)
                if result != len(page.records):
                    raise BenchError(f"{entity}: loaded {result} of {len(page.records)}")
    refs: dict[str, dict[str, uuid.UUID]] = {"plu_grupo": {}, "unidad_medida": {}}
    for row in owner.execute(MAPPED, (tenant_id,)).fetchall():
        refs[row["entity_type"]][row["external_id"]] = row["flowpos_entity_id"]
    return Tenant(tenant_id, refs["plu_grupo"], refs["unidad_medida"])


def _load(
    loader: ConnectionFactory, tenant_id: uuid.UUID, records: Sequence[dict[str, Any]], entity: E = E.PLU
) -> int:
    """One page through load_page in its own tenant transaction, as the engine's role."""
    context = LoadContext(tenant_id, uuid.uuid4(), CURRENCY, {})  # the run is read for documents only
    connection = loader.get()
    with tenant_transaction(connection, tenant_id):
        result = load_page(connection, entity, records, context)
    if result.failed:
        raise BenchError(f"load_page failed records: {result.errors[:3]}")
    return result.loaded


def _pages(pages: Iterator[Page]) -> Callable[[], list[dict[str, Any]]]:
    return lambda: next(pages).records


# ---------------------------------------------------------------- the baseline


class BareSide:
    """The same pages with a bare session, the same rows with COPY."""

    def __init__(self, base_url: str, conn: Conn, tenant: Tenant) -> None:
        self.base_url = base_url
        self.conn = conn
        self.tenant = tenant
        self.session = bare_login(base_url)
        self.url = f"{base_url}{contract.API_PREFIX}{contract.SOURCES[E.PLU].path}"
        self.page_number = 0

    def close(self) -> None:
        self.session.close()

    def fetch(self) -> list[dict[str, Any]]:
        self.page_number += 1
        params = {contract.PAGE_PARAM: str(self.page_number), contract.PAGE_SIZE_PARAM: str(PAGE_SIZE)}
        response = self.session.get(self.url, params=params, timeout=30)
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()[contract.ITEMS_KEY]
        return records

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        tenant_id, now = self.tenant.tenant_id, datetime.now(UTC)
        products, entries = [], []
        for record in records:
            product_id, code = uuid.uuid4(), record["Codigo_PLU"]
            products.append(
                (
                    product_id,
                    tenant_id,
                    code,
                    record["Descripcion"],
                    False,
                    self.tenant.groups[record["Codigo_Grupo"]],
                    self.tenant.units[record["Codigo_Unidad"]],
                    record["Precio"],
                    CURRENCY,
                    now if record["Eliminado"] else None,
                )
            )
            canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            entries.append((tenant_id, "plu", code, product_id, digest))
        with self.conn.transaction():
            self.conn.execute(SET_TENANT, (str(tenant_id),))
            cursor = self.conn.cursor()
            with cursor.copy(COPY_PRODUCTS) as copy:
                for product in products:
                    copy.write_row(product)
            with cursor.copy(COPY_ID_MAP) as copy:
                for entry in entries:
                    copy.write_row(entry)


def bare_login(base_url: str) -> requests.Session:
    """The WebForms login with nothing but requests: the form's hidden fields posted back."""
    session = requests.Session()
    url = base_url + contract.LOGIN_PATH
    form = session.get(url, timeout=30)
    form.raise_for_status()
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(form.text)}
    button, label = contract.LOGIN_BUTTON
    fields |= {contract.LOGIN_USER_FIELD: USER, contract.LOGIN_PASSWORD_FIELD: PASSWORD, button: label}
    answer = session.post(url, data=fields, timeout=30)
    found = _TOKEN.search(answer.text)
    if found is None:
        raise BenchError("the bare login found no token")
    session.headers["Authorization"] = f"Bearer {found['token']}"
    return session


# ---------------------------------------------------------------- measuring


def _race(
    *,
    engine_step: Callable[[], sync.StepOutcome],
    extract: Callable[[], list[dict[str, Any]]],
    load: Callable[[list[dict[str, Any]]], int],
    bare: BareSide,
    pages: int,
) -> tuple[Sides, Sides]:
    """Each page on every side, the sides' order alternating (ABBA) from page to page."""
    project, baseline = Sides(), Sides()

    def engine(traced: bool) -> None:
        began = _begin(traced)
        outcome = engine_step()
        _end(project, "whole", began, traced)
        if outcome.state not in ("more", "finished"):
            raise BenchError(f"the engine's step: {outcome}")

    def parts(traced: bool) -> None:
        _split(project, extract, load, traced)

    def bare_side(traced: bool) -> None:
        _split(baseline, bare.fetch, _counted(bare.write), traced)

    sides = [engine, parts, bare_side]
    for page in range(1, pages + 1):
        traced = WARMUP_PAGES < page <= WARMUP_PAGES + SAMPLED_PAGES
        for side in sides if page % 2 else sides[::-1]:
            side(traced)
        if page <= WARMUP_PAGES + SAMPLED_PAGES:  # untimed
            project.seconds.clear()
            baseline.seconds.clear()
    return project, baseline


def _counted(write: Callable[[Sequence[dict[str, Any]]], None]) -> Callable[[list[dict[str, Any]]], int]:
    def run(records: list[dict[str, Any]]) -> int:
        write(records)
        return len(records)

    return run


def _split(
    sides: Sides,
    extract: Callable[[], list[dict[str, Any]]],
    load: Callable[[list[dict[str, Any]]], int],
    traced: bool,
) -> None:
    """Extract, then load the page, each timed ("parts": the two); traced, their peaks: the
    extract's, the load's beyond the records it was given, the page's as a whole."""
    began = _begin(traced)
    records = extract()
    extracted = time.perf_counter()
    held = extract_peak = 0
    if traced:
        held, extract_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
    loading = time.perf_counter()
    loaded = load(records)
    done = time.perf_counter()
    sides.add("extract", extracted - began)
    sides.add("load", done - loading)
    sides.add("parts", (extracted - began) + (done - loading))
    if traced:
        load_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        sides.peak("extract", extract_peak)
        sides.peak("load", load_peak - held)
        sides.peak("parts", max(extract_peak, load_peak))
    if loaded != len(records):
        raise BenchError(f"loaded {loaded} of {len(records)} records")


def _begin(traced: bool) -> float:
    if traced:
        tracemalloc.start()
    return time.perf_counter()


def _end(sides: Sides, measure: str, began: float, traced: bool) -> None:
    sides.add(measure, time.perf_counter() - began)
    if traced:
        sides.peak(measure, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def _logins(base_url: str) -> tuple[float, float]:
    """Median ms of a new client's login (as every engine step does) and of a bare one."""

    def project() -> None:
        with RpaposRestClient(base_url, USER, PASSWORD) as client:
            client.login()

    def bare() -> None:
        bare_login(base_url).close()

    samples: tuple[list[float], list[float]] = ([], [])
    project()  # warm-up
    bare()
    for index in range(LOGINS):
        pair = [(0, project), (1, bare)]
        for side, login in pair if index % 2 == 0 else pair[::-1]:
            began = time.perf_counter()
            login()
            samples[side].append(1000 * (time.perf_counter() - began))
    return statistics.median(samples[0]), statistics.median(samples[1])


# ---------------------------------------------------------------- checks and rows


def _check(owner: Conn, engine: uuid.UUID, parts: uuid.UUID, run_id: uuid.UUID, plus: int) -> None:
    """Every side wrote every PLU once; the run counted them all, loaded."""
    written = owner.execute(
        """SELECT (SELECT count(*) FROM catalog.product WHERE tenant_id = %(engine)s) AS engine,
                  (SELECT count(*) FROM catalog.product WHERE tenant_id = %(parts)s) AS parts,
                  (SELECT count(*) FROM bench_rpapos.product) AS bare,
                  (SELECT count(*) FROM rpapos.rpapos_id_map
                    WHERE tenant_id = %(engine)s AND entity_type = 'plu') AS engine_map,
                  (SELECT count(*) FROM rpapos.rpapos_id_map
                    WHERE tenant_id = %(parts)s AND entity_type = 'plu') AS parts_map,
                  (SELECT count(*) FROM bench_rpapos.id_map) AS bare_map""",
        {"engine": engine, "parts": parts},
    ).fetchone()
    stats = owner.execute(
        "SELECT status, per_entity_stats -> 'plu' AS plu FROM rpapos.rpapos_sync_run WHERE id = %s", (run_id,)
    ).fetchone()
    if written is None or set(written.values()) != {plus}:
        raise BenchError(f"products and id map entries written per side: {written}, expected {plus}")
    if stats is None or stats["status"] != "completed" or stats["plu"]["extracted"] != plus:
        raise BenchError(f"the engine's run: {stats}")
    if stats["plu"]["loaded"] != plus:
        raise BenchError(f"the engine's run: {stats}")


def _rows(measured: tuple[Sides, Sides], timed: int, login_ms: tuple[float, float]) -> list[Row]:
    project, baseline = measured
    pages = timed / PAGE_SIZE

    def per_second(measure: str, baseline_measure: str | None = None) -> tuple[float, float]:
        return timed / project.seconds[measure], timed / baseline.seconds[baseline_measure or measure]

    def mib(measure: str, baseline_measure: str | None = None) -> tuple[float, float]:
        return project.peaks[measure] / MIB, baseline.peaks[baseline_measure or measure] / MIB

    return [
        Row("rpapos PLU sync, whole step: advance() (records/s)", *per_second("whole", "parts")),
        Row("rpapos PLU sync, extract: RpaposRestClient.pages (records/s)", *per_second("extract")),
        Row("rpapos PLU sync, load: load_page vs COPY (records/s)", *per_second("load")),
        Row(
            f"rpapos PLU sync, whole step per page of {PAGE_SIZE} (ms)",
            1000 * project.seconds["whole"] / pages,
            1000 * baseline.seconds["parts"] / pages,
            precision=1,
        ),
        Row("rpapos REST login, once per advance() (ms)", *login_ms, precision=1),
        Row("rpapos PLU page, traced peak: whole step (MiB)", *mib("whole", "parts"), precision=1),
        Row("rpapos PLU page, traced peak: extract (MiB)", *mib("extract"), precision=1),
        Row("rpapos PLU page, traced peak: load, beyond the records (MiB)", *mib("load"), precision=1),
    ]
