"""The product image import of an RPApos sync run (seed 000): what the engine's images phase
(pos_gateway.rpapos.sync) does per page of PLUs.

- ``plus_after``: the next page of the tenant's loaded PLUs (id map, entity plu, live products
  only), keyset by external id: PLUs loaded meanwhile never shift the walk.
- ``fetch_images`` (no transaction open): per PLU, SOAP Producto_U_M, then the image stored in
  object storage under a deterministic key (``object_key``). Storing is idempotent: the same key
  holds the same bytes, and an object already there with the same bytes (its sha256 metadata)
  is not written again, so a page read again after a crash stores nothing twice. A SOAP fault
  for one PLU, or an answer that is no supported image, is that PLU's error; RPApos or the
  store unavailable raises a RetryLater (the page is read again); a refused device token,
  no workstation, or a store that refuses the function fails the run (the caller's).
- ``open_job`` / ``write_page`` / ``close_job`` (inside the engine's page transaction): the
  run's catalog.import_job (import_type 'product-image', options {"syncRunId", "bucket"}), one
  catalog.import_row per PLU, product.image_url = the object's key.

Import rows, one per PLU walked, numbered in the walk's order (the cursor carries how many were
written, so a row number always means the same PLU of the run):

- ``success``, ``outcome`` "stored" (the object or image_url changed) or "unchanged" (both were
  already so): ``objeto_archivo`` is the key;
- ``success``, ``outcome`` "no_image": RPApos has no image for the PLU. Not an error of the
  import; image_url is left as it is (an image set otherwise is not taken away);
- ``error``: the SOAP fault or why the answer is no image; image_url is left as it is.

Stats (per_entity_stats.product_images): extracted = PLUs walked; loaded = "stored"; skipped =
"unchanged" + "no_image"; failed = errors (archived_only stays 0).
"""

import base64
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from psycopg.types.json import Jsonb

from pos_gateway.db import queries
from pos_gateway.db.connection import Connection
from pos_gateway.providers.errors import RetryLater
from pos_gateway.rpapos.errors import (
    RpaposProtocolError,
    RpaposSoapError,
    SoapTokenRejected,
    WorkstationRequired,
)
from pos_gateway.rpapos.soap import ProductImage, RpaposSoapClient

_SQL = queries.load(__file__, "images.sql")

IMPORT_TYPE = "product-image"
DEFAULT_PAGE_SIZE = 50  # PLUs per step: one SOAP call and one object per PLU
DEFAULT_STEP_SECONDS = 120.0  # a step takes no further PLU after this long (well inside 300 s)
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_ROW_ERROR_CHARS = 2000  # catalog.import_row.error
MAX_JOB_ERROR_CHARS = 1000  # catalog.import_job.last_error
STORE_RETRY_AFTER_SECONDS = 30

# Content types stored (and the key's extension); anything else is the PLU's error.
CONTENT_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
}
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_BY_EXTENSION = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}
_BY_EXTENSION |= {"webp": "image/webp", "bmp": "image/bmp"}
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# S3 answers these when it is unwell or busy: the same request may work later.
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
     "ThrottlingException", "RequestLimitExceeded", "BadDigest"}
)  # fmt: skip


# ---------------------------------------------------------------- errors


class ImageStoreError(Exception):
    """The store refused the function (no such bucket, access denied): retrying cannot help."""


class ImageStoreUnavailable(ImageStoreError, RetryLater):
    """The store did not answer, timed out or was busy: try the page again later."""

    def __init__(self, message: str, retry_after_seconds: int = STORE_RETRY_AFTER_SECONDS) -> None:
        RetryLater.__init__(self, message, retry_after_seconds)


class ImageStoreNotConfigured(ImageStoreError):
    """A run includes images but the deployment has no product images bucket."""


class UnsupportedImage(ValueError):
    """RPApos answered something that is no image this import stores."""


# ---------------------------------------------------------------- the store


class ImageStore(Protocol):
    @property
    def bucket(self) -> str: ...

    def store(self, key: str, content: bytes, content_type: str) -> bool:
        """Put the object unless the same bytes are there already; True when written."""
        ...


class S3ImageStore:
    """Product images in an S3 bucket (moto locally). Objects carry their sha256 as metadata,
    which is how an unchanged image is told apart without reading it back."""

    def __init__(self, bucket: str, client: Any) -> None:
        self._bucket = bucket
        self._client = client

    @property
    def bucket(self) -> str:
        return self._bucket

    def store(self, key: str, content: bytes, content_type: str) -> bool:
        digest = hashlib.sha256(content).hexdigest()
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _status(exc) != 404:
                raise self._error("HeadObject", key, exc) from None
        except BotoCoreError as exc:
            raise self._error("HeadObject", key, exc) from None
        else:
            if (
                (head.get("Metadata") or {}).get("sha256") == digest
                and head.get("ContentType") == content_type
                and head.get("ContentLength") == len(content)
            ):
                return False
        md5 = hashlib.md5(content, usedforsecurity=False).digest()  # S3 checks what it received
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=content,
                ContentType=content_type,
                ContentMD5=base64.b64encode(md5).decode(),
                Metadata={"sha256": digest},
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("PutObject", key, exc) from None
        return True

    def _error(self, operation: str, key: str, exc: ClientError | BotoCoreError) -> ImageStoreError:
        where = f"{operation} s3://{self._bucket}/{key}"
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", "?"))
            if _status(exc) >= 500 or code in _TRANSIENT_CODES:
                return ImageStoreUnavailable(f"{where}: {code}")
            return ImageStoreError(f"{where}: {code}")
        if isinstance(exc, BotoConnectionError | HTTPClientError):  # refused, dropped, timed out
            return ImageStoreUnavailable(f"{where}: {type(exc).__name__}")
        return ImageStoreError(f"{where}: {type(exc).__name__}: {exc}")


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


# ---------------------------------------------------------------- keys and types


def object_key(tenant_id: UUID, product_id: UUID, plu_code: str, extension: str) -> str:
    """``tenants/{tenant}/products/{product}/rpapos-{plu}.{ext}``: one object per PLU and image
    type, the same on every run (the PLU code made key-safe; the product id keeps it unique)."""
    safe = _KEY_UNSAFE.sub("_", plu_code)[:100] or "_"
    return f"tenants/{tenant_id}/products/{product_id}/rpapos-{safe}.{extension}"


def content_type_of(image: ProductImage) -> str:
    """The image's content type: the SOAP answer's (pTipo_Contenido) when it is an image type
    stored here; undeclared, from the bytes or the file name. Raises UnsupportedImage."""
    if len(image.content) > MAX_IMAGE_BYTES:
        raise UnsupportedImage(f"the image has {len(image.content)} bytes, more than {MAX_IMAGE_BYTES}")
    declared = (image.content_type or "").split(";")[0].strip().lower()
    declared = _ALIASES.get(declared, declared)
    if declared in CONTENT_TYPES:
        return declared
    if declared not in _UNDECLARED:
        raise UnsupportedImage(f"content type {declared!r} is not a stored image type")
    found = _sniff(image.content) or _BY_EXTENSION.get((image.filename or "").rpartition(".")[2].lower())
    if found is None:
        raise UnsupportedImage("the content is no PNG, JPEG, GIF, WebP or BMP image")
    return found


def _sniff(content: bytes) -> str | None:
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content.startswith(b"BM"):
        return "image/bmp"
    return None


# ---------------------------------------------------------------- one page, outside a transaction


@dataclass(frozen=True, slots=True)
class Plu:
    """A loaded PLU: its RPApos code (the id map's external id) and its product."""

    code: str
    product_id: UUID


@dataclass(frozen=True, slots=True)
class PluImage:
    """What became of one PLU's image before the page's transaction."""

    plu: Plu
    key: str | None = None  # stored under this key (None: no image, or an error)
    content_type: str | None = None
    size: int = 0
    written: bool = False  # the object was put (False: the same bytes were there)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def fetch_images(
    soap: RpaposSoapClient,
    store: ImageStore,
    tenant_id: UUID,
    plus: Sequence[Plu],
    *,
    budget_seconds: float = DEFAULT_STEP_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> list[PluImage]:
    """The images of ``plus``, in order, stored; fewer when the step's time budget runs out (at
    least one PLU is always done). Raises RpaposUnavailable / ImageStoreUnavailable (retry the
    page), SoapTokenRejected / WorkstationRequired / RpaposError / ImageStoreError (the run)."""
    deadline = clock() + budget_seconds
    done: list[PluImage] = []
    for plu in plus:
        if done and clock() >= deadline:
            break
        done.append(_fetch_one(soap, store, tenant_id, plu))
    return done


def _fetch_one(soap: RpaposSoapClient, store: ImageStore, tenant_id: UUID, plu: Plu) -> PluImage:
    try:
        image = soap.product_image(plu.code)
    except (SoapTokenRejected, WorkstationRequired):
        raise  # the connection's, not the PLU's
    except (RpaposSoapError, RpaposProtocolError) as exc:  # a fault (or an unreadable answer) for this PLU
        return PluImage(plu, error=_bounded(f"{type(exc).__name__}: {exc}", MAX_ROW_ERROR_CHARS))
    if image is None:
        return PluImage(plu)
    try:
        content_type = content_type_of(image)
    except UnsupportedImage as exc:
        return PluImage(plu, error=_bounded(f"UnsupportedImage: {exc}", MAX_ROW_ERROR_CHARS))
    key = object_key(tenant_id, plu.product_id, plu.code, CONTENT_TYPES[content_type])
    written = store.store(key, image.content, content_type)
    return PluImage(plu, key, content_type, len(image.content), written)


def _bounded(text: str, limit: int) -> str:
    line = " ".join(text.split()) or "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ---------------------------------------------------------------- inside the page's transaction


Outcome = Literal["stored", "unchanged", "no_image", "error"]


@dataclass(frozen=True, slots=True)
class PageCounts:
    extracted: int
    loaded: int
    skipped: int
    failed: int


def plus_after(connection: Connection, tenant_id: UUID, after: str | None, limit: int) -> list[Plu]:
    rows = connection.execute(
        _SQL.plus_after.sql, {"tenant_id": tenant_id, "after": after, "limit": limit}
    ).fetchall()
    return [Plu(str(row["external_id"]), row["product_id"]) for row in rows]


def open_job(
    connection: Connection,
    tenant_id: UUID,
    run_id: UUID,
    bucket: str,
    created_by: UUID | None,
    at: datetime,
) -> UUID:
    """The run's import job, ``running`` (the engine creates it once: at its first images page)."""
    row = connection.execute(
        _SQL.insert_job.sql,
        {
            "tenant_id": tenant_id,
            "import_type": IMPORT_TYPE,
            "options": Jsonb({"syncRunId": str(run_id), "bucket": bucket}),
            "created_by": created_by,
            "at": at,
        },
    ).fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise RuntimeError("INSERT ... RETURNING gave no row")
    job_id: UUID = row["id"]
    return job_id


def write_page(
    connection: Connection,
    tenant_id: UUID,
    job_id: UUID,
    first_row: int,
    images: Sequence[PluImage],
    *,
    last: bool,
    at: datetime,
) -> PageCounts:
    """image_url of the stored images, one import row per PLU (numbered from ``first_row``), the
    job's counts (and the job completed, on the ``last`` page)."""
    stored = [image for image in images if image.ok and image.key is not None]
    changed: set[UUID] = set()
    if stored:
        rows = connection.execute(
            _SQL.set_image_url.sql,
            {
                "tenant_id": tenant_id,
                "rows": Jsonb([{"product_id": str(i.plu.product_id), "key": i.key} for i in stored]),
            },
        ).fetchall()
        changed = {row["id"] for row in rows}
    outcomes = [_outcome(image, changed) for image in images]
    if images:
        connection.execute(
            _SQL.insert_rows.sql,
            {
                "tenant_id": tenant_id,
                "job_id": job_id,
                "rows": Jsonb(
                    [
                        _row(first_row + n, image, outcome)
                        for n, (image, outcome) in enumerate(zip(images, outcomes, strict=True))
                    ]
                ),
            },
        )
    failed = outcomes.count("error")
    connection.execute(
        _SQL.count_rows.sql,
        {
            "job_id": job_id,
            "rows": len(images),
            "succeeded": len(images) - failed,
            "failed": failed,
            "last": last,
            "at": at,
        },
    )
    loaded = outcomes.count("stored")
    return PageCounts(len(images), loaded, len(images) - loaded - failed, failed)


def close_job(connection: Connection, job_id: UUID, error: str, at: datetime) -> bool:
    """End a job still running ``failed`` (its run failed or was cancelled); False: it had ended."""
    row = connection.execute(
        _SQL.fail_job.sql, {"job_id": job_id, "error": _bounded(error, MAX_JOB_ERROR_CHARS), "at": at}
    ).fetchone()
    return row is not None


def _outcome(image: PluImage, changed: set[UUID]) -> Outcome:
    if not image.ok:
        return "error"
    if image.key is None:
        return "no_image"
    return "stored" if image.written or image.plu.product_id in changed else "unchanged"


def _row(number: int, image: PluImage, outcome: Outcome) -> dict[str, Any]:
    payload: dict[str, Any] = {"Codigo_PLU": image.plu.code, "objeto_archivo": image.key, "outcome": outcome}
    if image.key is not None:
        payload |= {"content_type": image.content_type, "bytes": image.size}
    return {
        "row_number": number,
        "status": "error" if outcome == "error" else "success",
        "payload": payload,
        "error": image.error,
    }
