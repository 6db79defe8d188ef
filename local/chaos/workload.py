"""The generated workload, deterministic from the seed: what is sent, and what each event should do."""

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from local.fake_clover import clover_payment, clover_refund

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
    # What a valid event should do: a payment (points to a member) or a refund (full or partial) of one.
    payment_id: str | None = None
    refund_of: str | None = None  # the payment id a refund refunds
    email: str | None = None  # the member the payment should credit (None: anonymous)
    points: int = 0  # what the payment earns by its tenant's rule
    amount: int = 0  # a payment's amount (minor units, tip excluded): what a refund is a share of
    refund_amount: int = 0  # a refund's amount (minor units)
    # A Clover refund: the refund object the fake Clover gets (add_refund) when the refund happens,
    # i.e. just before its webhook (a Clover UPDATE of the payment) is first sent.
    clover_refund: dict[str, Any] | None = None


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


# Cumulative shares of the rolls: Square payments, Square refunds (1–3 events a roll), Clover (a
# payment, and for some a refund or two); the rest are bad events. Events come out at about 55%
# Square payments, 12% Square refunds, 15% Clover (refunds included), 18% bad.
SQUARE_PAYMENTS = 0.587
SQUARE_REFUNDS = 0.681
CLOVER = 0.808
# The rest, bad events: an unknown merchant's, forged, stale, then malformed ones (4 : 5 : 4 : 5).
UNKNOWN = CLOVER + (1 - CLOVER) * 4 / 18
FORGED_SQUARE = CLOVER + (1 - CLOVER) * 9 / 18
STALE_SQUARE = CLOVER + (1 - CLOVER) * 13 / 18
# How a refunded payment is refunded: in full (one refund), or by 2 (sometimes 3) partial refunds
# adding up to the amount or less.
FULL_REFUND = 0.5
THREE_PARTIALS = 0.3
PARTIALS_TO_THE_AMOUNT = 0.4
# A valid Clover payment that is also refunded (by one refund, or by two partial ones).
CLOVER_REFUNDED = 0.25
CLOVER_TWO_REFUNDS = 0.3


def _refund_amounts(rng: random.Random, amount: int, partials: int | None = None) -> list[int]:
    """The amounts a payment of ``amount`` is refunded by: the whole of it in one refund, or 2–3
    positive partial refunds whose sum is the amount or less (``partials``: how many, by force)."""
    if amount < 4:
        return [amount]
    if partials is None:
        if rng.random() < FULL_REFUND:
            return [amount]
        partials = 3 if rng.random() < THREE_PARTIALS else 2
    if partials <= 1:
        return [amount if rng.random() < FULL_REFUND else rng.randint(1, amount - 1)]
    total = amount if rng.random() < PARTIALS_TO_THE_AMOUNT else rng.randint(partials, amount - 1)
    cuts = sorted(rng.sample(range(1, total), partials - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def generate(seed: int, count: int, members: int = 6) -> Workload:
    """About ``count`` distinct events: ~55% Square payments, ~12% Square refunds (full or partial),
    ~15% Clover (payments, and refunds of some), the rest bad."""
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:8]
    new_members = [f"member{n}.{run}@chaos.example" for n in range(members)]
    emails = DEMO_MEMBERS + new_members
    events: list[Event] = []
    clover_payments: list[dict[str, Any]] = []
    payments: list[Event] = []
    refunded: set[str] = set()
    while len(events) < count:
        roll = rng.random()
        if roll < SQUARE_PAYMENTS:
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
                amount=amount,
            )
            events.append(event)
            payments.append(event)
        elif roll < SQUARE_REFUNDS and payments:
            paid = rng.choice(payments)
            if paid.payment_id in refunded or paid.tenant is None or paid.payment_id is None:
                continue
            refunded.add(paid.payment_id)
            for amount in _refund_amounts(rng, paid.amount):
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
                        refund_amount=amount,
                    )
                )
        elif roll < CLOVER:
            events.extend(_clover_events(rng, emails, clover_payments))
        elif roll < UNKNOWN:
            body = _square_payment(
                rng, f"MLUNKNOWN{rng.randint(0, 99):02d}", f"pay_{rng.getrandbits(64):x}", 1000, None
            )
            events.append(
                Event(body["event_id"], "square", UNKNOWN_MERCHANT, None, _body(body), rng.randint(1, 3))
            )
        elif roll < FORGED_SQUARE:
            tenant = rng.choice([CAFE, BAKERY])
            body = _square_payment(
                rng, SQUARE_MERCHANTS[tenant], f"pay_{rng.getrandbits(64):x}", 1000, emails[0]
            )
            events.append(Event(body["event_id"], "square", FORGED, tenant, _body(body), rng.randint(1, 2)))
        elif roll < STALE_SQUARE:
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


def _clover_events(rng: random.Random, emails: list[str], payments: list[dict[str, Any]]) -> list[Event]:
    """A Clover payment's CREATE webhook (or a forged / malformed one); a valid payment is put
    into the fake Clover, and some get a refund or two later: each an UPDATE webhook of the
    payment (its own ts, so its own raw row), the refund added to the fake when it is first sent."""
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
    body = _clover_body(update)
    if forged or malformed:
        return [Event(key, "clover", FORGED if forged else MALFORMED, DELI, body, rng.randint(1, 2))]
    payments.append(clover_payment(payment_id, amount=amount, email=email))
    events = [
        Event(
            key,
            "clover",
            VALID,
            DELI,
            body,
            rng.randint(1, 5),
            payment_id=payment_id,
            email=email,
            points=points_for(DELI, amount),
            amount=amount,
        )
    ]
    if rng.random() < CLOVER_REFUNDED:
        partials = 2 if rng.random() < CLOVER_TWO_REFUNDS else 1
        for refund_amount in _refund_amounts(rng, amount, partials):
            ts += rng.randint(1_000, 10**7)
            refund_id = uuid.UUID(int=rng.getrandbits(128)).hex[:13].upper()
            refund = {"objectId": f"P:{payment_id}", "type": "UPDATE", "ts": ts}
            events.append(
                Event(
                    f"{CLOVER_MERCHANT}:P:{payment_id}:UPDATE:{ts}",
                    "clover",
                    VALID,
                    DELI,
                    _clover_body(refund),
                    rng.randint(1, 5),
                    refund_of=payment_id,
                    email=email,
                    refund_amount=refund_amount,
                    clover_refund=clover_refund(amount=refund_amount, refund_id=refund_id),
                )
            )
    return events


def _clover_body(update: dict[str, Any]) -> bytes:
    return _body({"appId": "CHAOSAPP000001", "merchants": {CLOVER_MERCHANT: [update]}})


def _malformed(rng: random.Random) -> Event:
    event_id = str(uuid.UUID(int=rng.getrandbits(128)))
    if rng.random() < 0.5:
        body = b'{"event_id": "' + event_id.encode() + b'", "type": "payment.updated", not json'
    else:  # JSON, but no merchant_id, created_at or data
        body = _body({"event_id": event_id, "type": "payment.updated"})
    return Event(event_id, "square", MALFORMED, None, body, rng.randint(1, 2))
