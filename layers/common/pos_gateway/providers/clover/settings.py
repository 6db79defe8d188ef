"""Clover's settings, composed into the settings of the functions that talk to Clover."""

from pydantic import Field

from pos_gateway.settings import CreditingSettings, DatabaseSettings


class CloverWebhookSettings(DatabaseSettings):
    """The clover_webhook function (POST /webhooks/clover)."""

    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", min_length=1)
    # Secrets Manager: {"authCode": "<X-Clover-Auth code>", "appId": "<optional: the app's id>"}
    clover_webhook_secret_arn: str = Field(alias="CLOVER_WEBHOOK_SECRET_ARN", min_length=1)


class CloverCreditingSettings(CreditingSettings):
    """What reward_crediting needs for Clover events, on top of its own settings."""

    clover_api_base_url: str = Field(
        default="https://api.clover.com", alias="CLOVER_API_BASE_URL", pattern=r"^https?://[^\s/]+"
    )
    clover_connect_timeout_seconds: float = Field(
        default=3.0, alias="CLOVER_CONNECT_TIMEOUT_SECONDS", gt=0, le=30
    )
    clover_read_timeout_seconds: float = Field(default=10.0, alias="CLOVER_READ_TIMEOUT_SECONDS", gt=0, le=60)
    # Payments whose order does not say its currency (the merchant's currency).
    clover_default_currency: str = Field(
        default="USD", alias="CLOVER_DEFAULT_CURRENCY", pattern=r"^[A-Z]{3}$"
    )
    # Secrets Manager: {"currentKeyId": "k1", "keys": {"k1": "<base64 of 32 bytes>"}} (pos_gateway.crypto).
    # Without it the Clover branch is not wired and Clover events fail (retried, then parked).
    encryption_keys_secret_arn: str | None = Field(
        default=None, alias="ENCRYPTION_KEYS_SECRET_ARN", min_length=1
    )
