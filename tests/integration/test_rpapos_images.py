"""The product image import of RPApos sync runs (seed 000): runs with ``include_images`` driven
step by step against the fake RPApos (real HTTP and SOAP: every 3rd PLU has a PNG through
Producto_U_M), a real database and moto's S3. Each run gets one catalog.import_job (import_type
product-image, options.syncRunId) with one import_row per PLU, product.image_url = the object key."""

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from pydantic import ValidationError

from local import seed
from local.database import Database
from local.fake_rpapos import FakeRpapos
from pos_gateway.db import ConnectionFactory, tenant_transaction
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos import runs, sync
from pos_gateway.rpapos.contract import EntityType
from pos_gateway.rpapos.errors import RpaposUnavailable
from pos_gateway.rpapos.images import (
    ImageStoreUnavailable,
    S3ImageStore,
    UnsupportedImage,
    content_type_of,
    object_key,
)
from pos_gateway.rpapos.planner import Mode, SyncRequest
from pos_gateway.rpapos.rest import RpaposRestClient
from pos_gateway.rpapos.soap import ProductImage, RpaposSoapClient
from pos_gateway.rpapos.sync import StepOutcome, SyncDeps, SyncFailed
from tests.admin_support import AdminApi, Cast, make_cast, open_admin_api
from tests.helpers import one, unique
from tests.integration.test_rpapos_runs import CIPHER, new_connection, run_row
from tests.integration.test_rpapos_sync import Shop, assert_everything_loaded, run_to_end, start, step
from tests.rpapos_support import PAGE_SIZE, PASSWORD, USER, small_volume

E = EntityType
Conn = psycopg.Connection[Any]
REGION = "us-east-1"
BUCKET = "pos-gateway-product-images-tests"
# Ten PLUs: 0, 3, 6 and 9 have an image, 8 is soft-deleted in RPApos (no row for it).
VOLUME = dataclasses.replace(small_volume(documents=1), plus=10)
IMAGE_PAGE = 4
PLUS_ONLY = SyncRequest(
    mode=Mode.CUSTOM, entity_types=(E.PLU_GRUPO, E.UNIDAD_MEDIDA, E.PLU), include_images=True
)
MAX_STEPS = 200


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """moto's S3 with the images bucket, versioned: every PutObject leaves a version to count."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRpapos]:
    with FakeRpapos(hang_seconds=1.0) as fake:
        yield fake


@pytest.fixture
def rpapos(server: FakeRpapos) -> Iterator[FakeRpapos]:
    server.clear_faults()
    yield server
    server.clear_faults()


@pytest.fixture
def deps(engine_connections: ConnectionFactory, rpapos: FakeRpapos, s3: Any) -> SyncDeps:
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
        image_store=S3ImageStore(BUCKET, s3),
        image_page_size=IMAGE_PAGE,
    )


@pytest.fixture(scope="module")
def api(database: Database, s3: Any) -> Iterator[AdminApi]:
    with open_admin_api(database) as opened:
        yield opened


# ---------------------------------------------------------------- helpers


def new_shop(owner: Conn, rpapos: FakeRpapos, *, tenant_id: uuid.UUID | None = None) -> Shop:
    """A tenant with a connection to a fresh fake RPApos tenant of VOLUME, its device registered."""
    subdomain = unique("img-").lower()
    tenant = rpapos.add_tenant(subdomain, USER, PASSWORD, volume=VOLUME)
    token = RpaposSoapClient(rpapos.soap_url, operation_timeout=2.0).register_device(
        USER, PASSWORD, subdomain, "pos-gateway"
    )
    tenant_id = tenant_id or seed.create_tenant(owner, unique("Restaurante "))
    connection_id = new_connection(
        owner, tenant_id, subdomain=subdomain, usuario=USER, password=PASSWORD, soap_token=token.token
    )
    return Shop(tenant_id, connection_id, subdomain, tenant.catalog)


def live_plus(shop: Shop) -> list[tuple[int, str]]:
    """(index, code) of the PLUs the images phase walks: not soft-deleted, in code order."""
    found = [
        (i, str(shop.catalog.code(E.PLU, i)))
        for i in range(VOLUME.plus)
        if not shop.catalog.deleted(E.PLU, i)
    ]
    return sorted(found, key=lambda plu: plu[1])


def with_image(shop: Shop) -> list[tuple[int, str]]:
    return [(i, code) for i, code in live_plus(shop) if shop.catalog.has_image(i)]


def products(owner: Conn, tenant_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The tenant's PLU products by code (through the id map)."""
    rows = owner.execute(
        "SELECT m.external_id, p.id, p.image_url, p.deleted_at FROM rpapos.rpapos_id_map m"
        " JOIN catalog.product p ON p.id = m.flowpos_entity_id"
        " WHERE m.tenant_id = %s AND m.entity_type = 'plu'",
        (tenant_id,),
    ).fetchall()
    return {row["external_id"]: dict(row) for row in rows}


def job_of(owner: Conn, run_id: uuid.UUID) -> dict[str, Any] | None:
    row = owner.execute(
        "SELECT * FROM catalog.import_job WHERE options ->> 'syncRunId' = %s", (str(run_id),)
    ).fetchall()
    assert len(row) <= 1, "one import job per run"
    return dict(row[0]) if row else None


def rows_of(owner: Conn, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in owner.execute(
            "SELECT row_number, status, payload, error FROM catalog.import_row"
            " WHERE import_job_id = %s ORDER BY row_number",
            (job_id,),
        ).fetchall()
    ]


def key_of(shop: Shop, product_id: uuid.UUID, code: str) -> str:
    return f"tenants/{shop.tenant_id}/products/{product_id}/rpapos-{code}.png"


def versions(s3: Any, shop: Shop) -> list[tuple[str, str]]:
    """Every object version under the tenant's prefix: one per PutObject."""
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=f"tenants/{shop.tenant_id}/")
    return sorted((v["Key"], v["VersionId"]) for v in listed.get("Versions", []))


def images_stats(owner: Conn, run_id: uuid.UUID) -> dict[str, Any]:
    stats: dict[str, Any] = run_row(owner, run_id)["per_entity_stats"]["product_images"]
    return stats


def until_images(shop: Shop, run_id: uuid.UUID, deps: SyncDeps, page: int = 1) -> StepOutcome:
    """Advance until the next step reads page ``page`` of the product images."""
    for _ in range(MAX_STEPS):
        outcome = step(shop, run_id, deps)
        assert outcome.state == "more"
        if (outcome.entity, outcome.page) == ("product_images", page):
            return outcome
    raise AssertionError("never reached the product images")


def progress(owner: Conn, run_id: uuid.UUID) -> tuple[Any, ...]:
    """Everything an images step writes: the run's cursor and stats, the job and its rows."""
    row = run_row(owner, run_id)
    job = job_of(owner, run_id)
    rows = rows_of(owner, job["id"]) if job else []
    counts = (job["total_rows"], job["success_count"], job["error_count"], job["status"]) if job else None
    return row["cursor"], row["per_entity_stats"], counts, rows


# ---------------------------------------------------------------- a whole run


def test_a_catalog_run_with_images_stores_every_image_and_writes_a_row_per_plu(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, SyncRequest(mode=Mode.CATALOG, include_images=True))
    assert run.include_images
    assert run.per_entity_stats["product_images"].status == "pending"

    outcomes = run_to_end(shop, run.id, deps)

    # Every entity as in a run without images, then the images, IMAGE_PAGE PLUs a step.
    assert_everything_loaded(owner, shop, run.id)
    plus = live_plus(shop)
    assert len(plus) == VOLUME.plus - 1  # PLU 8 is soft-deleted
    image_pages = [o.page for o in outcomes if o.entity == "product_images"]
    assert image_pages == list(range(1, -(-len(plus) // IMAGE_PAGE) + 1))
    ended = run_row(owner, run.id)
    assert (ended["status"], ended["current_entity"], ended["cursor"]) == (
        "completed",
        None,
        {"done": True, "size": PAGE_SIZE},
    )
    assert images_stats(owner, run.id) == {
        "extracted": len(plus), "loaded": len(with_image(shop)), "skipped": len(plus) - len(with_image(shop)),
        "failed": 0, "archived_only": 0, "status": "completed",
    }  # fmt: skip

    job = one(job_of(owner, run.id))
    assert (job["tenant_id"], job["import_type"], job["status"], job["options"]) == (
        shop.tenant_id,
        "product-image",
        "completed",
        {"syncRunId": str(run.id), "bucket": BUCKET},
    )
    assert (job["total_rows"], job["success_count"], job["error_count"]) == (len(plus), len(plus), 0)
    assert job["started_at"] is not None
    assert job["completed_at"] is not None

    catalog = products(owner, shop.tenant_id)
    rows = rows_of(owner, job["id"])
    assert [row["row_number"] for row in rows] == list(range(1, len(plus) + 1))
    assert [row["payload"]["Codigo_PLU"] for row in rows] == [code for _, code in plus]
    stored = []
    for row, (index, code) in zip(rows, plus, strict=True):
        product = catalog[code]
        assert (row["status"], row["error"]) == ("success", None)
        if not shop.catalog.has_image(index):
            assert row["payload"] == {"Codigo_PLU": code, "objeto_archivo": None, "outcome": "no_image"}
            assert product["image_url"] is None
            continue
        key = key_of(shop, product["id"], code)
        image = shop.catalog.image(index)
        assert row["payload"] == {
            "Codigo_PLU": code, "objeto_archivo": key, "outcome": "stored",
            "content_type": "image/png", "bytes": len(image),
        }  # fmt: skip
        assert product["image_url"] == key
        got = s3.get_object(Bucket=BUCKET, Key=key)
        assert (got["Body"].read(), got["ContentType"]) == (image, "image/png")
        stored.append(key)
    assert [key for key, _ in versions(s3, shop)] == sorted(stored)  # nothing else, nothing twice
    assert len(stored) == 4


def test_a_second_run_writes_its_own_rows_and_stores_nothing_again(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    first = start(admin, shop, PLUS_ONLY)
    run_to_end(shop, first.id, deps)
    first_job = one(job_of(owner, first.id))
    first_rows = rows_of(owner, first_job["id"])
    stored = versions(s3, shop)
    urls = {code: product["image_url"] for code, product in products(owner, shop.tenant_id).items()}

    second = start(admin, shop, SyncRequest(mode=Mode.CATALOG, include_images=True))
    run_to_end(shop, second.id, deps)

    assert versions(s3, shop) == stored  # no PutObject at all: the same bytes were there
    assert {code: p["image_url"] for code, p in products(owner, shop.tenant_id).items()} == urls
    assert rows_of(owner, first_job["id"]) == first_rows
    job = one(job_of(owner, second.id))
    assert job["id"] != first_job["id"]
    rows = rows_of(owner, job["id"])
    assert [(row["row_number"], row["payload"]["Codigo_PLU"]) for row in rows] == [
        (row["row_number"], row["payload"]["Codigo_PLU"]) for row in first_rows
    ]
    assert [row["payload"]["outcome"] for row in rows] == [
        "unchanged" if row["payload"]["outcome"] == "stored" else "no_image" for row in first_rows
    ]
    assert [row["payload"]["objeto_archivo"] for row in rows] == [
        row["payload"]["objeto_archivo"] for row in first_rows
    ]
    plus = len(live_plus(shop))
    assert images_stats(owner, second.id) == {
        "extracted": plus, "loaded": 0, "skipped": plus, "failed": 0, "archived_only": 0,
        "status": "completed",
    }  # fmt: skip


def test_a_run_without_images_has_no_import_job(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY.model_copy(update={"include_images": False}))
    assert not run.include_images

    outcomes = run_to_end(shop, run.id, deps)

    assert all(outcome.entity != "product_images" for outcome in outcomes)
    assert "product_images" not in run_row(owner, run.id)["per_entity_stats"]
    assert job_of(owner, run.id) is None
    assert versions(s3, shop) == []
    assert all(p["image_url"] is None for p in products(owner, shop.tenant_id).values())


# ---------------------------------------------------------------- failures of one PLU, of a page, of the run


def test_a_soap_fault_for_one_plu_is_its_error_row_and_the_others_are_imported(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps)
    rpapos.soap_fault("Error interno del servidor", operation="Producto_U_M")  # the first PLU's call

    run_to_end(shop, run.id, deps)

    plus = live_plus(shop)
    (first_index, first_code) = plus[0]
    assert shop.catalog.has_image(first_index)  # it would have had one
    job = one(job_of(owner, run.id))
    assert (job["status"], job["total_rows"], job["success_count"], job["error_count"]) == (
        "completed",
        len(plus),
        len(plus) - 1,
        1,
    )
    rows = rows_of(owner, job["id"])
    failed = rows[0]
    assert (failed["row_number"], failed["status"]) == (1, "error")
    assert failed["payload"] == {"Codigo_PLU": first_code, "objeto_archivo": None, "outcome": "error"}
    assert "Error interno del servidor" in failed["error"]
    assert all(row["status"] == "success" for row in rows[1:])
    catalog = products(owner, shop.tenant_id)
    assert catalog[first_code]["image_url"] is None
    for index, code in with_image(shop)[1:]:
        assert catalog[code]["image_url"] == key_of(shop, catalog[code]["id"], code), index
    stats = images_stats(owner, run.id)
    assert (stats["failed"], stats["loaded"], stats["status"]) == (1, len(with_image(shop)) - 1, "completed")
    assert run_row(owner, run.id)["status"] == "completed"


def test_rpapos_or_the_store_unavailable_retries_the_page_which_is_then_written_once(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps)
    before = progress(owner, run.id)

    rpapos.outage()
    try:
        with pytest.raises(RpaposUnavailable):
            sync.advance(shop.tenant_id, run.id, deps=deps)
    finally:
        rpapos.end_outage()
    assert progress(owner, run.id) == before

    # The store fails after the page's first image is stored: the step is retried whole.
    real = one(deps.image_store)
    puts: list[str] = []

    class FlakyStore:
        bucket = real.bucket

        def store(self, key: str, content: bytes, content_type: str) -> bool:
            if len(puts) == 1:
                raise ImageStoreUnavailable("SlowDown")
            puts.append(key)
            return real.store(key, content, content_type)

    with pytest.raises(RetryLater):
        sync.advance(shop.tenant_id, run.id, deps=dataclasses.replace(deps, image_store=FlakyStore()))
    assert progress(owner, run.id) == before
    assert len(versions(s3, shop)) == 1  # stored, not recorded

    run_to_end(shop, run.id, deps)

    images = with_image(shop)
    assert len(versions(s3, shop)) == len(images)  # the first was not put again
    job = one(job_of(owner, run.id))
    rows = rows_of(owner, job["id"])
    assert [row["row_number"] for row in rows] == list(range(1, len(live_plus(shop)) + 1))
    assert job["total_rows"] == len(rows)
    stats = images_stats(owner, run.id)
    assert (stats["extracted"], stats["loaded"]) == (len(rows), len(images))


def test_a_step_racing_another_on_the_same_images_page_writes_nothing(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps)
    real = one(deps.image_store)
    raced: list[StepOutcome] = []

    class RacingStore:
        bucket = real.bucket

        def store(self, key: str, content: bytes, content_type: str) -> bool:
            # While this step stores its images, another execution's step takes the same page.
            if not raced:
                raced.append(step(shop, run.id, deps))
            return real.store(key, content, content_type)

    late = step(shop, run.id, dataclasses.replace(deps, image_store=RacingStore()))

    assert (raced[0].entity, raced[0].page) == ("product_images", 2)
    assert (late.entity, late.page) == ("product_images", 2)
    job = one(job_of(owner, run.id))
    assert [row["row_number"] for row in rows_of(owner, job["id"])] == list(range(1, IMAGE_PAGE + 1))
    assert job["total_rows"] == IMAGE_PAGE
    assert images_stats(owner, run.id)["extracted"] == IMAGE_PAGE


def test_a_step_out_of_time_records_the_plus_it_did_and_the_next_goes_on_from_there(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps)
    hurried = dataclasses.replace(deps, image_step_seconds=1e-9)  # one PLU, then out of time

    outcomes = run_to_end(shop, run.id, hurried)

    plus = live_plus(shop)
    assert [o.page for o in outcomes if o.entity == "product_images"] == list(range(2, len(plus) + 1))
    rows = rows_of(owner, one(job_of(owner, run.id))["id"])
    assert [(row["row_number"], row["payload"]["Codigo_PLU"]) for row in rows] == [
        (n, code) for n, (_, code) in enumerate(plus, start=1)
    ]


def test_a_refused_device_token_fails_the_run_and_its_import_job(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps, page=2)
    rpapos.revoke_device_tokens(shop.subdomain)

    with pytest.raises(SyncFailed, match="SoapTokenRejected"):
        sync.advance(shop.tenant_id, run.id, deps=deps)

    ended = run_row(owner, run.id)
    assert ended["status"] == "failed"
    assert ended["per_entity_stats"]["product_images"]["status"] == "failed"
    assert ended["per_entity_stats"]["plu"]["status"] == "completed"
    job = one(job_of(owner, run.id))
    assert (job["status"], job["total_rows"], job["last_error"]) == (
        "failed",
        IMAGE_PAGE,
        ended["last_error"],
    )
    assert job["completed_at"] is not None
    connection = one(
        owner.execute(
            "SELECT status FROM rpapos.rpapos_connection WHERE id = %s", (shop.connection_id,)
        ).fetchone()
    )
    assert connection["status"] == "error"


def test_a_run_cancelled_during_the_images_ends_its_import_job(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps, page=2)
    with tenant_transaction(admin, shop.tenant_id):
        runs.cancel_run(admin, run.id)

    cancelled = step(shop, run.id, deps)

    assert (cancelled.state, cancelled.entity, cancelled.page) == ("cancelled", "product_images", 2)
    job = one(job_of(owner, run.id))
    assert (job["status"], job["last_error"], job["total_rows"]) == (
        "failed",
        "the sync run was cancelled",
        IMAGE_PAGE,
    )


def test_a_run_parked_in_the_images_and_cancelled_ends_its_import_job_when_woken(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    until_images(shop, run.id, deps, page=2)
    with tenant_transaction(admin, shop.tenant_id):
        runs.pause_run(admin, run.id)
    assert step(shop, run.id, deps).state == "paused"
    with tenant_transaction(admin, shop.tenant_id):
        runs.cancel_run(admin, run.id)  # ends the parked run at once (the admin role's change)

    assert step(shop, run.id, deps).state == "cancelled"  # the woken execution's step

    assert one(job_of(owner, run.id))["status"] == "failed"


def test_without_an_image_store_the_run_fails_at_its_images(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any
) -> None:
    shop = new_shop(owner, rpapos)
    run = start(admin, shop, PLUS_ONLY)
    unconfigured = dataclasses.replace(deps, image_store=None)
    until_images(shop, run.id, unconfigured)

    with pytest.raises(SyncFailed, match="ImageStoreNotConfigured"):
        sync.advance(shop.tenant_id, run.id, deps=unconfigured)

    assert run_row(owner, run.id)["status"] == "failed"
    assert job_of(owner, run.id) is None


# ---------------------------------------------------------------- the admin route


def test_the_admin_route_returns_the_runs_import_job(
    owner: Conn, admin: Conn, rpapos: FakeRpapos, deps: SyncDeps, s3: Any, api: AdminApi
) -> None:
    cast: Cast = make_cast(owner, balance=0)
    shop = new_shop(owner, rpapos, tenant_id=cast.tenant_a)
    run = start(admin, shop, PLUS_ONLY)
    route = f"/admin/rpapos/sync-runs/{run.id}/product-image-import-job"
    before = api.call("GET", route, cast.claims("client_a"), query={"businessId": cast.tenant_a})
    assert (before.status, before.error_code) == (404, "not_found")

    run_to_end(shop, run.id, deps)

    answer = api.call("GET", route, cast.claims("client_a"), query={"businessId": cast.tenant_a})
    assert answer.status == 200, answer.body
    job = one(job_of(owner, run.id))
    plus = len(live_plus(shop))
    assert answer.body["id"] == str(job["id"])
    assert (answer.body["import_type"], answer.body["status"], answer.body["options"]) == (
        "product-image",
        "completed",
        {"syncRunId": str(run.id), "bucket": BUCKET},
    )
    assert (answer.body["total_rows"], answer.body["success_count"], answer.body["error_count"]) == (
        plus,
        plus,
        0,
    )
    assert api.call("GET", route, cast.claims("client_b"), query={"businessId": cast.tenant_a}).status == 404
    shown = api.call(
        "GET", f"/admin/tenants/{cast.tenant_a}/rpapos/sync-runs/{run.id}", cast.claims("client_a")
    )
    assert shown.status == 200, shown.body
    assert shown.body["include_images"] is True
    assert shown.body["per_entity_stats"]["product_images"]["extracted"] == plus


# ---------------------------------------------------------------- requests, keys and types


def test_a_historical_run_cannot_include_images() -> None:
    with pytest.raises(ValidationError, match="product images"):
        SyncRequest(
            mode=Mode.HISTORICAL,
            date_from=datetime(2025, 1, 1, tzinfo=UTC),
            date_to=datetime(2025, 2, 1, tzinfo=UTC),
            include_images=True,
        )
    assert not SyncRequest(mode=Mode.INCREMENTAL).include_images


def test_keys_are_deterministic_and_safe() -> None:
    tenant, product = uuid.uuid4(), uuid.uuid4()
    assert (
        object_key(tenant, product, "PLU-0001", "png")
        == f"tenants/{tenant}/products/{product}/rpapos-PLU-0001.png"
    )
    assert object_key(tenant, product, "../a b/ñ", "jpg").endswith("/rpapos-.._a_b__.jpg")


@pytest.mark.parametrize(
    ("content_type", "filename", "content", "expected"),
    [
        ("image/png", "a.png", b"\x89PNG\r\n\x1a\n...", "image/png"),
        ("image/jpg", None, b"\xff\xd8\xff...", "image/jpeg"),
        ("IMAGE/PNG; charset=binary", None, b"x", "image/png"),
        (None, None, b"GIF89a...", "image/gif"),
        ("application/octet-stream", "foto.JPG", b"????", "image/jpeg"),
    ],
)
def test_the_content_type_is_the_answers_or_found_from_the_bytes(
    content_type: str | None, filename: str | None, content: bytes, expected: str
) -> None:
    assert content_type_of(ProductImage(filename, content_type, content)) == expected


@pytest.mark.parametrize(
    ("content_type", "content"),
    [("text/html", b"<html>"), (None, b"<html>"), ("image/svg+xml", b"<svg/>")],
)
def test_what_is_no_stored_image_type_is_refused(content_type: str | None, content: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        content_type_of(ProductImage(None, content_type, content))
