"""Square: webhook signatures, event envelopes and payment normalization."""

from pos_gateway.providers.square.models import (
    PAYMENT_EVENT_TYPES,
    SquareEvent,
    SquarePayment,
    parse_event,
    payment_record,
)
from pos_gateway.providers.square.signature import compute_signature, is_valid_signature

__all__ = [
    "PAYMENT_EVENT_TYPES",
    "SquareEvent",
    "SquarePayment",
    "compute_signature",
    "is_valid_signature",
    "parse_event",
    "payment_record",
]
