"""A polled payment, dressed as the ``payment.updated`` webhook Square would have sent for it.

Crediting then treats it exactly as a webhook: same parser, same normalization, and the same
unique constraints (one transaction per tenant + provider + payment id) decide that a payment
seen both ways is credited once.

The event id is derived from the payment id and the payment's ``updated_at``: polling the same
state of a payment again yields the same id, which the raw event table's (provider,
provider_event_id) key refuses; a later state (completed, refunded) is a new event, as with
webhooks. The ``poll:`` prefix keeps these ids apart from Square's own event ids (UUIDs).
"""

import json
import re
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from pos_gateway.backfill.repository import PolledEvent
from pos_gateway.providers import square
from pos_gateway.providers.square.api import ListedPayment, rfc3339

POLLED_EVENT_TYPE = "payment.updated"
EVENT_ID_PREFIX = "poll:"
# Fixed for ever: changing it would give every payment already polled a new event id.
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4f43-9a57-3c2b1d0e5a71")
# json.dumps writes U+0000 as \u0000: one not preceded by an escaped backslash.
_JSON_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class UnusablePayment(ValueError):
    """A listed payment crediting could not read (webhook ingest would have refused it too)."""


def polled_event_id(payment_id: str, updated_at: datetime) -> str:
    state = f"{payment_id}|{updated_at.astimezone(UTC).isoformat(timespec='microseconds')}"
    return EVENT_ID_PREFIX + str(uuid.uuid5(_EVENT_ID_NAMESPACE, state))


def polled_event(merchant_id: str, payment: ListedPayment) -> PolledEvent:
    """The envelope of one listed payment; raises UnusablePayment when it is not a valid payment."""
    state_at = payment.updated_at or payment.created_at
    event_id = polled_event_id(payment.id, state_at)
    envelope = {
        "merchant_id": merchant_id,
        "type": POLLED_EVENT_TYPE,
        "event_id": event_id,
        "created_at": rfc3339(state_at),
        "data": {"type": "payment", "id": payment.id, "object": {"payment": payment.raw}},
    }
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
    if _JSON_NUL_ESCAPE.search(body):
        # PostgreSQL's jsonb and text cannot hold U+0000.
        raise UnusablePayment(f"payment {payment.id} contains a NUL character")
    try:
        square.parse_event(body.encode("utf-8"))
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False))
        raise UnusablePayment(f"payment {payment.id} is not a valid Square payment: {fields}") from None
    return PolledEvent(event_id=event_id, event_type=POLLED_EVENT_TYPE, body=body)
