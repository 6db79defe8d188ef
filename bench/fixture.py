"""The workload: two seeded shops, their members, and signed Square webhooks of their sales."""

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import tuple_row

from local.database import Database
from pos_gateway.providers.square import compute_signature

SIGNATURE_KEY = "bench-signature-key"
NOTIFICATION_URL = "https://bench.example/webhooks/square"
OWNER_INSERT_RAW = """
INSERT INTO pos.pos_webhook_events_raw (
    id, tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header)
VALUES (%(id)s, %(tenant_id)s, 'square', 'payment.updated', %(event_id)s, %(merchant_id)s,
        %(body)s::text::jsonb, %(body)s::text, %(signature)s)
"""


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    email: str


@dataclass(frozen=True, slots=True)
class Shop:
    tenant_id: uuid.UUID
    merchant_id: str


@dataclass(frozen=True, slots=True)
class Fixture:
    db: Database
    project: Shop  # written through the project's code
    baseline: Shop  # written with bare SQL; a separate tenant so each side starts without wallets
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Sale:
    member: Member
    amount: int  # USD cents


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signed Square payment webhook, exactly as Square would POST it."""

    event_id: str
    payment_id: str
    shop: Shop
    sale: Sale
    body: bytes
    signature: str


def seed_fixture(db: Database, members: int) -> Fixture:
    # Imported here, after configure_environment: local.seed imports pos_gateway.loyalty, whose
    # child loggers take POWERTOOLS_SERVICE_NAME when created (else they log nowhere).
    from local import seed

    cipher = seed.dev_cipher()
    with db.owner(tuple_row) as conn:
        shops = []
        for label in ("project", "baseline"):
            tenant_id = seed.create_tenant(conn, f"Bench {label}")
            merchant_id = f"BENCH-{label.upper()}"
            seed.connect_square_merchant(conn, tenant_id, merchant_id, cipher)
            seed.create_rule(conn, tenant_id)
            shops.append(Shop(tenant_id, merchant_id))
        people = []
        for index in range(members):
            email = f"member{index:03d}@bench.example"
            people.append(Member(seed.create_user(conn, email=email, full_name=f"Member {index}"), email))
    return Fixture(db, shops[0], shops[1], tuple(people))


def make_sales(fixture: Fixture, count: int, rng: random.Random) -> list[Sale]:
    return [Sale(rng.choice(fixture.members), rng.randrange(100, 25_000)) for _ in range(count)]


def deliver(shop: Shop, sale: Sale, now: datetime) -> Delivery:
    event_id = str(uuid.uuid4())
    payment_id = f"bench-pay-{uuid.uuid4().hex}"
    created_at = now.isoformat().replace("+00:00", "Z")
    payment = {
        "id": payment_id,
        "status": "COMPLETED",
        "amount_money": {"amount": sale.amount, "currency": "USD"},
        "total_money": {"amount": sale.amount, "currency": "USD"},
        "created_at": created_at,
        "updated_at": created_at,
        "buyer_email_address": sale.member.email,
        "location_id": "BENCH-LOCATION",
        "source_type": "CARD",
    }
    envelope = {
        "merchant_id": shop.merchant_id,
        "type": "payment.updated",
        "event_id": event_id,
        "created_at": created_at,
        "data": {"type": "payment", "id": payment_id, "object": {"payment": payment}},
    }
    body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
    signature = compute_signature(SIGNATURE_KEY, NOTIFICATION_URL, body)
    return Delivery(event_id, payment_id, shop, sale, body, signature)


def deliveries(shop: Shop, sales: Sequence[Sale]) -> list[Delivery]:
    now = datetime.now(UTC)
    return [deliver(shop, sale, now) for sale in sales]


def raw_params(delivery: Delivery) -> dict[str, Any]:
    """The delivery as parameters of an INSERT into pos.pos_webhook_events_raw."""
    return {
        "tenant_id": delivery.shop.tenant_id,
        "event_id": delivery.event_id,
        "merchant_id": delivery.shop.merchant_id,
        "body": delivery.body.decode("utf-8"),
        "signature": delivery.signature,
    }


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    raw_event_id: uuid.UUID
    delivery: Delivery


def store_raw_events(db: Database, batch: Sequence[Delivery]) -> list[StoredDelivery]:
    """Raw events as ingest leaves them (inserted in bulk, untimed)."""
    stored = [StoredDelivery(uuid.uuid4(), delivery) for delivery in batch]
    with db.owner(tuple_row) as conn, conn.cursor() as cursor:
        cursor.executemany(
            OWNER_INSERT_RAW, [{"id": item.raw_event_id, **raw_params(item.delivery)} for item in stored]
        )
    return stored
