"""Square: webhook signatures, event envelopes and payment normalization."""

from pos_gateway.providers.square.models import (
    PAYMENT_EVENT_TYPES,
    REFUND_EVENT_TYPES,
    SquareEvent,
    SquarePayment,
    SquareRefund,
    parse_event,
    payment_record,
    refund_record,
)
from pos_gateway.providers.square.signature import compute_signature, is_valid_signature

__all__ = [
    "PAYMENT_EVENT_TYPES",
    "REFUND_EVENT_TYPES",
    "SquareEvent",
    "SquarePayment",
    "SquareRefund",
    "compute_signature",
    "is_valid_signature",
    "parse_event",
    "payment_record",
    "refund_record",
]
