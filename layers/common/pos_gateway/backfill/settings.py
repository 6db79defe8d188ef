"""Typed settings of the Square poller and the token refresher, read once at cold start."""

from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.providers.square.api import DEFAULT_BASE_URL, DEFAULT_VERSION, MAX_PAGE_SIZE
from pos_gateway.settings import DatabaseSettings


class SquareApiSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # https://connect.squareupsandbox.com for the sandbox; the local stack points it at its fake.
    square_api_base_url: str = Field(
        default=DEFAULT_BASE_URL, alias="SQUARE_API_BASE_URL", pattern=r"^https?://[^\s/]+(/.*)?$"
    )
    square_api_version: str = Field(
        default=DEFAULT_VERSION, alias="SQUARE_API_VERSION", pattern=r"^\d{4}-\d{2}-\d{2}$"
    )
    square_connect_timeout_seconds: float = Field(
        default=3.05, alias="SQUARE_CONNECT_TIMEOUT_SECONDS", gt=0, le=30
    )
    square_read_timeout_seconds: float = Field(default=10.0, alias="SQUARE_READ_TIMEOUT_SECONDS", gt=0, le=60)


class EncryptionSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # {"currentKeyId": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": "..."}} (pos_gateway.crypto).
    encryption_keys_secret_arn: str = Field(alias="ENCRYPTION_KEYS_SECRET_ARN", min_length=1)


class SquarePollerSettings(DatabaseSettings, SquareApiSettings, EncryptionSettings):
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)
    # Each location is listed again from its watermark minus this overlap: Square's listing is
    # eventually consistent, and a payment completed soon after creation shows up again.
    overlap_seconds: int = Field(default=600, alias="SQUARE_POLL_OVERLAP_SECONDS", ge=0, le=7 * 86400)
    # How far back a location is listed the first time (no watermark yet).
    first_lookback_seconds: int = Field(
        default=86400, alias="SQUARE_POLL_FIRST_LOOKBACK_SECONDS", ge=60, le=365 * 86400
    )
    # Bounded work per run: at most max_connections connections, max_pages pages per location, and
    # no new page once less than reserve_ms of the invocation is left.
    max_connections: int = Field(default=50, alias="SQUARE_POLL_MAX_CONNECTIONS", ge=1, le=1000)
    max_pages_per_location: int = Field(default=10, alias="SQUARE_POLL_MAX_PAGES", ge=1, le=1000)
    page_size: int = Field(default=MAX_PAGE_SIZE, alias="SQUARE_POLL_PAGE_SIZE", ge=1, le=MAX_PAGE_SIZE)
    # No new connection is started with less than this much of the invocation left.
    reserve_milliseconds: int = Field(default=20_000, alias="SQUARE_POLL_RESERVE_MS", ge=0)


class TokenRefresherSettings(DatabaseSettings, SquareApiSettings, EncryptionSettings):
    # {"clientId": "sq0idp-...", "clientSecret": "sq0csp-..."}: the Square application's OAuth credentials.
    square_oauth_secret_arn: str = Field(alias="SQUARE_OAUTH_SECRET_ARN", min_length=1)
    # Tokens expiring within this many days are refreshed (Square's access tokens live 30 days).
    refresh_window_days: int = Field(default=7, alias="SQUARE_TOKEN_REFRESH_WINDOW_DAYS", ge=1, le=29)
    max_connections: int = Field(default=200, alias="SQUARE_TOKEN_REFRESH_MAX_CONNECTIONS", ge=1, le=5000)
    reserve_milliseconds: int = Field(default=10_000, alias="SQUARE_TOKEN_REFRESH_RESERVE_MS", ge=0)
