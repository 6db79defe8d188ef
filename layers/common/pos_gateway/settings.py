"""Typed settings per function, read from the environment once at cold start."""

import os
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _EnvironmentModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def from_env(cls) -> Self:
        return cls.model_validate(dict(os.environ))


class DatabaseSettings(_EnvironmentModel):
    # Secrets Manager secret (RDS format) holding this function's own database role.
    db_secret_arn: str = Field(alias="DB_SECRET_ARN", min_length=1)
    secret_max_age_seconds: int = Field(default=300, alias="SECRET_MAX_AGE_SECONDS", ge=0)


class IngestSettings(DatabaseSettings):
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)
    square_webhook_secret_arn: str = Field(alias="SQUARE_WEBHOOK_SECRET_ARN", min_length=1)
    # Square retries for about a day; anything signed longer ago than this is refused as stale.
    square_max_event_age_seconds: int = Field(default=259_200, alias="SQUARE_MAX_EVENT_AGE_SECONDS", ge=60)


class CreditingSettings(DatabaseSettings):
    # The queue the handler reads: work that must wait (RetryLater) is made visible again later.
    ingest_queue_url: str | None = Field(default=None, alias="INGEST_QUEUE_URL", min_length=1)


class SweeperSettings(DatabaseSettings):
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)
    # An event unprocessed this long after arrival (and after its last sweep) is enqueued again.
    grace_seconds: int = Field(default=120, alias="SWEEPER_GRACE_SECONDS", ge=0)
    # An event swept this many times is parked on the next sweep instead: left for operators.
    max_sweeps: int = Field(default=5, alias="SWEEPER_MAX_SWEEPS", ge=0)
    # Bounded work per invocation: at most batch_size × max_batches events.
    batch_size: int = Field(default=100, alias="SWEEPER_BATCH_SIZE", ge=1, le=1000)
    max_batches: int = Field(default=10, alias="SWEEPER_MAX_BATCHES", ge=1, le=100)


class LinkerSettings(DatabaseSettings):
    # (tenant, member) pairs read per call of the candidates function.
    batch_size: int = Field(default=100, alias="LINKER_BATCH_SIZE", ge=1, le=1000)
    # Bounded work per invocation: at most this many pairs linked (each in its own transaction).
    max_pairs: int = Field(default=500, alias="LINKER_MAX_PAIRS", ge=1, le=10_000)
    # A run stops taking pairs when less time than this is left before the function's timeout.
    reserve_milliseconds: int = Field(default=5_000, alias="LINKER_RESERVE_MS", ge=0, le=60_000)


class AdminSettings(DatabaseSettings):
    # A read replica for the admin API's reads (seed 002), e.g. postgresql://replica.internal:5432/pos;
    # user and password come from the function's own secret when the URL carries none.
    database_read_url: str | None = Field(default=None, alias="DATABASE_READ_URL", min_length=1)
    # {"currentKeyId": ..., "keys": {...}}: POS credentials are encrypted before they are stored.
    encryption_keys_secret_arn: str = Field(alias="ENCRYPTION_KEYS_SECRET_ARN", min_length=1)
    # Replays of raw events go to the ingest queue; the dead-letter queue is watched and redriven.
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL", min_length=1)
    max_body_bytes: int = Field(default=65_536, alias="ADMIN_MAX_BODY_BYTES", ge=1024, le=1_048_576)
    # The RPApos sync state machine that operators' runs start (StartExecution) and wake
    # (SendTaskSuccess); unset: starting a run answers 503 sync_not_configured.
    state_machine_arn: str | None = Field(default=None, alias="STATE_MACHINE_ARN", min_length=1)
    # The db4 SOAP service (device registration, account validation); unset: the contract's
    # https://db4.2rpa.com/WSRPA/Servicio.asmx. Tests and the local stack point it at the fake.
    rpapos_soap_endpoint: str | None = Field(default=None, alias="RPAPOS_SOAP_ENDPOINT", min_length=1)
    # Each SOAP call gives up after this long: well inside the function's 29 s.
    rpapos_soap_timeout_seconds: float = Field(default=15.0, alias="RPAPOS_SOAP_TIMEOUT_SECONDS", gt=0, le=25)

    @field_validator("database_read_url", "state_machine_arn", "rpapos_soap_endpoint", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # The template passes "" when no replica is configured.
        return None if value == "" else value


class RpaposSyncSettings(DatabaseSettings):
    """The tasks of the RPApos sync state machine (functions/rpapos_sync)."""

    # {"currentKeyId": ..., "keys": {...}}: the connection's password and SOAP token are sealed.
    encryption_keys_secret_arn: str = Field(alias="ENCRYPTION_KEYS_SECRET_ARN", min_length=1)
    # A connection's REST base URL, {subdomain} replaced by its subdomain (the fake's locally).
    rpapos_base_url_template: str = Field(
        default="https://{subdomain}.2rpa.com",
        alias="RPAPOS_BASE_URL_TEMPLATE",
        pattern=r"^https?://.*\{subdomain\}",
    )
    # The db4 SOAP service (modifier groups and items); unset: the contract's
    # https://db4.2rpa.com/WSRPA/Servicio.asmx.
    rpapos_soap_endpoint: str | None = Field(default=None, alias="RPAPOS_SOAP_ENDPOINT", min_length=1)
    # Each SOAP call gives up after this long: well inside the function's timeout.
    rpapos_soap_timeout_seconds: float = Field(
        default=60.0, alias="RPAPOS_SOAP_TIMEOUT_SECONDS", gt=0, le=240
    )
    # Records per extracted page (one page per state machine step); RPApos serves 1000 at most.
    page_size: int = Field(default=500, alias="RPAPOS_PAGE_SIZE", ge=1, le=1000)

    @field_validator("rpapos_soap_endpoint", mode="before")
    @classmethod
    def _no_endpoint_is_none(cls, value: object) -> object:
        return None if value == "" else value

    # The product image import (runs with include_images): the bucket the images go to
    # (template: ProductImagesBucket; moto's locally). Unset: such a run fails in its images phase.
    product_images_bucket: str | None = Field(default=None, alias="PRODUCT_IMAGES_BUCKET", min_length=1)
    # PLUs per images step: one Producto_U_M call and one object each.
    image_page_size: int = Field(default=50, alias="RPAPOS_IMAGE_PAGE_SIZE", ge=1, le=500)
    # An images step takes no further PLU after this long (the function's timeout is 300 s).
    image_step_seconds: float = Field(default=120.0, alias="RPAPOS_IMAGE_STEP_SECONDS", gt=0, le=240)

    @field_validator("product_images_bucket", mode="before")
    @classmethod
    def _no_bucket_is_none(cls, value: object) -> object:
        return None if value == "" else value


class RpaposSchedulerSettings(DatabaseSettings):
    """The RPApos scheduler (functions/rpapos_scheduler, EventBridge rate(5 minutes))."""

    # The RPApos sync state machine: every run the scheduler creates is started there.
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", min_length=1)
    # Bounded work per tick: at most this many runs started (the longest waiting first).
    max_runs: int = Field(default=50, alias="RPAPOS_SCHEDULER_MAX_RUNS", ge=1, le=1000)


class FieldSyncSettings(DatabaseSettings):
    # Synced sales with a customer are enqueued for crediting (the outbox sweeper covers failures).
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)
    # 500 operations of a few KiB each; anything larger is refused before it is parsed.
    max_body_bytes: int = Field(default=4_194_304, alias="FIELD_MAX_BODY_BYTES", ge=65_536, le=6_291_456)
