"""The generated workload, deterministic from the seed: what is sent, and what each event should do."""

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from local.fake_clover import clover_payment

CAFE = "Blue Bottle Cafe"
BAKERY = "Corner Bakery"
DELI = "Harbor Deli"
SQUARE_MERCHANTS = {CAFE: "MLBLUEBOTTLE01", BAKERY: "MLCORNERBAKE02"}
CLOVER_MERCHANT = "MCLOVERDEMO01"
DEMO_MEMBERS = ["alice@example.com", "bob@example.com"]
# Each tenant's active rule (local/demo.py): points per major unit, rounding, cap per payment.
RULES: dict[str, tuple[Decimal, str, int]] = {
    CAFE: (Decimal(1), ROUND_FLOOR, 500),
    BAKERY: (Decimal(2), ROUND_HALF_UP, 500),
    DELI: (Decimal(1), ROUND_FLOOR, 500),
}

# Kinds of event, and whether they must get in.
VALID = "valid"
FORGED = "forged"
STALE = "stale"
MALFORMED = "malformed"
UNKNOWN_MERCHANT = "unknown_merchant"


def points_for(tenant: str, amount_minor: int) -> int:
    rate, rounding, cap = RULES[tenant]
    points = (Decimal(amount_minor) / 100 * rate).quantize(Decimal(1), rounding=rounding)
    return min(int(points), cap)


@dataclass
class Event:
    """One distinct event (delivered one or more times)."""

    key: str  # Square event_id, or Clover's merchant:objectId:type:ts (the raw row's provider_event_id)
    provider: str  # square / clover
    kind: str  # VALID / FORGED / STALE / MALFORMED / UNKNOWN_MERCHANT
    tenant: str | None
    body: bytes
    copies: int
    # What a valid event should do: a payment (points to a member) or the full refund of one.
    payment_id: str | None = None
    refund_of: str | None = None  # the payment id a refund refunds
    email: str | None = None  # the member the payment should credit (None: anonymous)
    points: int = 0  # what the payment earns by its tenant's rule


@dataclass
class Workload:
    events: list[Event]
    deliveries: list[Event]  # shuffled, each event `copies` times
    new_members: list[str]
    clover_payments: list[dict[str, Any]] = field(default_factory=list)  # put into the fake Clover

    def by_key(self) -> dict[str, Event]:
        return {event.key: event for event in self.events}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _square_payment(
    rng: random.Random, merchant: str, payment_id: str, amount: int, email: str | None
) -> dict[str, Any]:
    at = datetime.now(UTC)
    payment: dict[str, Any] = {
        "id": payment_id,
        "created_at": iso(at - timedelta(seconds=1)),
        "updated_at": iso(at - timedelta(seconds=1)),
        "amount_money": {"amount": amount, "currency": "USD"},
        "tip_money": {"amount": rng.choice([0, 0, 100, 250]), "currency": "USD"},
        "total_money": {"amount": amount, "currency": "USD"},
        "status": "COMPLETED",
        "source_type": "CARD",
        "location_id": "LCHAOS0001",
        "order_id": f"ORD_{uuid.UUID(int=rng.getrandbits(128)).hex[:16].upper()}",
        "version": 3,
    }
    if email is not None:
        payment["buyer_email_address"] = email
    return {
        "merchant_id": merchant,
        "type": "payment.updated",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "created_at": iso(at),
        "data": {"type": "payment", "id": payment_id, "object": {"payment": payment}},
    }


def _square_refund(rng: random.Random, merchant: str, payment_id: str, amount: int) -> dict[str, Any]:
    at = datetime.now(UTC)
    refund_id = f"ref_{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}"
    refund = {
        "id": refund_id,
        "status": "COMPLETED",
        "amount_money": {"amount": amount, "currency": "USD"},
        "payment_id": payment_id,
        "location_id": "LCHAOS0001",
        "created_at": iso(at - timedelta(seconds=1)),
        "updated_at": iso(at),
    }
    return {
        "merchant_id": merchant,
        "type": "refund.updated",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "created_at": iso(at),
        "data": {"type": "refund", "id": refund_id, "object": {"refund": refund}},
    }


def _body(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def _amount(rng: random.Random) -> int:
    if rng.random() < 0.05:
        return rng.randint(50_000, 70_000)  # capped at 500 points
    return rng.randint(40, 12_000)


def generate(seed: int, count: int, members: int = 6) -> Workload:
    """About ``count`` distinct events: ~55% Square payments, ~12% refunds, ~15% Clover, the rest bad."""
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:8]
    new_members = [f"member{n}.{run}@chaos.example" for n in range(members)]
    emails = DEMO_MEMBERS + new_members
    events: list[Event] = []
    clover_payments: list[dict[str, Any]] = []
    payments: list[Event] = []
    while len(events) < count:
        roll = rng.random()
        if roll < 0.55:
            tenant = rng.choice([CAFE, CAFE, BAKERY])
            email = rng.choice(emails) if rng.random() < 0.85 else f"anon.{rng.getrandbits(32)}@chaos.example"
            member = email if email in emails else None
            payment_id = f"pay_{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}"
            amount = _amount(rng)
            body = _square_payment(rng, SQUARE_MERCHANTS[tenant], payment_id, amount, email)
            event = Event(
                body["event_id"],
                "square",
                VALID,
                tenant,
                _body(body),
                rng.randint(1, 5),
                payment_id=payment_id,
                email=member,
                points=points_for(tenant, amount) if member else 0,
            )
            events.append(event)
            payments.append(event)
        elif roll < 0.67 and payments:
            paid = rng.choice(payments)
            if any(e.refund_of == paid.payment_id for e in events):
                continue
            if paid.tenant is None or paid.payment_id is None:
                continue
            amount = json.loads(paid.body)["data"]["object"]["payment"]["amount_money"]["amount"]
            body = _square_refund(rng, SQUARE_MERCHANTS[paid.tenant], paid.payment_id, amount)
            events.append(
                Event(
                    body["event_id"],
                    "square",
                    VALID,
                    paid.tenant,
                    _body(body),
                    rng.randint(1, 5),
                    refund_of=paid.payment_id,
                    email=paid.email,
                )
            )
        elif roll < 0.82:
            events.append(_clover_event(rng, emails, clover_payments))
        elif roll < 0.86:
            body = _square_payment(
                rng, f"MLUNKNOWN{rng.randint(0, 99):02d}", f"pay_{rng.getrandbits(64):x}", 1000, None
            )
            events.append(
                Event(body["event_id"], "square", UNKNOWN_MERCHANT, None, _body(body), rng.randint(1, 3))
            )
        elif roll < 0.91:
            tenant = rng.choice([CAFE, BAKERY])
            body = _square_payment(
                rng, SQUARE_MERCHANTS[tenant], f"pay_{rng.getrandbits(64):x}", 1000, emails[0]
            )
            events.append(Event(body["event_id"], "square", FORGED, tenant, _body(body), rng.randint(1, 2)))
        elif roll < 0.95:
            tenant = rng.choice([CAFE, BAKERY])
            body = _square_payment(
                rng, SQUARE_MERCHANTS[tenant], f"pay_{rng.getrandbits(64):x}", 1000, emails[0]
            )
            body["created_at"] = iso(datetime.now(UTC) - timedelta(days=4))
            events.append(Event(body["event_id"], "square", STALE, tenant, _body(body), rng.randint(1, 2)))
        else:
            events.append(_malformed(rng))
    deliveries = [event for event in events for _ in range(event.copies)]
    rng.shuffle(deliveries)  # out of order: a refund may come before its payment
    return Workload(events, deliveries, new_members, clover_payments)


def _clover_event(rng: random.Random, emails: list[str], payments: list[dict[str, Any]]) -> Event:
    forged = rng.random() < 0.12
    malformed = not forged and rng.random() < 0.08
    email = rng.choice(emails)
    amount = _amount(rng)
    payment_id = uuid.UUID(int=rng.getrandbits(128)).hex[:13].upper()
    ts = 1_763_651_046_000 + rng.randint(0, 10**9)
    key = f"{CLOVER_MERCHANT}:P:{payment_id}:CREATE:{ts}"
    update: dict[str, Any] = {"objectId": f"P:{payment_id}", "type": "CREATE", "ts": ts}
    if malformed:
        update = {"objectId": rng.randint(1, 9), "type": "CREATE"}
    body = _body({"appId": "CHAOSAPP000001", "merchants": {CLOVER_MERCHANT: [update]}})
    if forged or malformed:
        return Event(key, "clover", FORGED if forged else MALFORMED, DELI, body, rng.randint(1, 2))
    payments.append(clover_payment(payment_id, amount=amount, email=email))
    return Event(
        key,
        "clover",
        VALID,
        DELI,
        body,
        rng.randint(1, 5),
        payment_id=payment_id,
        email=email,
        points=points_for(DELI, amount),
    )


def _malformed(rng: random.Random) -> Event:
    event_id = str(uuid.UUID(int=rng.getrandbits(128)))
    if rng.random() < 0.5:
        body = b'{"event_id": "' + event_id.encode() + b'", "type": "payment.updated", not json'
    else:  # JSON, but no merchant_id, created_at or data
        body = _body({"event_id": event_id, "type": "payment.updated"})
    return Event(event_id, "square", MALFORMED, None, body, rng.randint(1, 2))
