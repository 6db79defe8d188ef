"""Clover: webhook auth code and messages, the REST client, payment normalization."""

from pos_gateway.providers.clover.client import PRODUCTION_BASE_URL, CloverClient, retry_after
from pos_gateway.providers.clover.errors import (
    CloverApiError,
    CloverConnectionUnusable,
    CloverError,
    CloverNotFound,
    CloverUnauthorized,
    ProviderBusy,
)
from pos_gateway.providers.clover.payments import (
    PAYMENT_EXPANSIONS,
    CloverPayment,
    normalize_email,
    normalize_phone,
    payment_record,
    refund_records,
)
from pos_gateway.providers.clover.webhook import (
    CLOVER_AUTH_HEADER,
    CloverNotification,
    CloverUpdate,
    CloverVerification,
    MerchantUpdate,
    is_valid_auth_code,
)

__all__ = [
    "CLOVER_AUTH_HEADER",
    "PAYMENT_EXPANSIONS",
    "PRODUCTION_BASE_URL",
    "CloverApiError",
    "CloverClient",
    "CloverConnectionUnusable",
    "CloverError",
    "CloverNotFound",
    "CloverNotification",
    "CloverPayment",
    "CloverUnauthorized",
    "CloverUpdate",
    "CloverVerification",
    "MerchantUpdate",
    "ProviderBusy",
    "is_valid_auth_code",
    "normalize_email",
    "normalize_phone",
    "payment_record",
    "refund_records",
    "retry_after",
]
