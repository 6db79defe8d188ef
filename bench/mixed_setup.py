"""The mixed phase's shops, untimed: a tenant per side with its rule, operator and wallets,
and the Square webhooks of the plan's payments and refunds stored as ingest leaves them; and
the check that both sides wrote the same rows and the plan's balances.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import tuple_row

from bench.database import scalar
from bench.fixture import NOTIFICATION_URL, SIGNATURE_KEY, Fixture, Shop
from bench.measure import BenchError
from bench.mixed_plan import CreditOp, Payment, Plan, Refund
from pos_gateway.providers.square import compute_signature

INSERT_RAW = """
INSERT INTO pos.pos_webhook_events_raw (
    id, tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header)
VALUES (%(id)s, %(tenant_id)s, 'square', %(event_type)s, %(event_id)s, %(merchant_id)s,
        %(body)s::text::jsonb, %(body)s::text, %(signature)s)
"""


@dataclass(frozen=True, slots=True)
class MixedShop:
    shop: Shop
    rule_id: uuid.UUID
    operator_id: uuid.UUID  # a pos_operator of the tenant: the redemptions' caller
    wallets: dict[uuid.UUID, uuid.UUID]  # user_id → wallet_id, opened before the run
    raw_events: dict[int, uuid.UUID]  # op seq → its stored raw event


def mixed_shop(fixture: Fixture, label: str, plan: Plan) -> MixedShop:
    """A fresh tenant whose members all hold an (empty) wallet, with the plan's raw events."""
    from local import seed  # after configure_environment: it imports pos_gateway.loyalty

    with fixture.db.owner(tuple_row) as conn:
        tenant_id = seed.create_tenant(conn, f"Bench mixed {label}")
        merchant_id = f"BENCH-MIXED-{label.upper()}"
        seed.connect_square_merchant(conn, tenant_id, merchant_id, seed.dev_cipher())
        rule_id = seed.create_rule(conn, tenant_id)
        email = f"operator-{label}@bench.example"
        operator_id = seed.create_user(conn, email=email, role="pos_operator", full_name="Operator")
        seed.add_member(conn, tenant_id, operator_id, "pos_operator")
        wallets = {
            member.user_id: uuid.UUID(
                str(
                    scalar(
                        conn,
                        "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%s, %s) RETURNING id",
                        (tenant_id, member.user_id),
                    )
                )
            )
            for member in fixture.members
        }
    shop = Shop(tenant_id, merchant_id)
    return MixedShop(shop, rule_id, operator_id, wallets, _store_raw_events(fixture, shop, plan))


def _store_raw_events(fixture: Fixture, shop: Shop, plan: Plan) -> dict[int, uuid.UUID]:
    now = datetime.now(UTC)
    rows = [_raw_row(shop, op, now) for block in plan.blocks for op in block.credits]
    with fixture.db.owner(tuple_row) as conn, conn.cursor() as cursor:
        cursor.executemany(INSERT_RAW, rows)
    return {row["seq"]: row["id"] for row in rows}


def _raw_row(shop: Shop, op: CreditOp, now: datetime) -> dict[str, Any]:
    event_type, data = _payment_data(op, now) if isinstance(op, Payment) else _refund_data(op, now)
    event_id = str(uuid.uuid4())
    envelope = {
        "merchant_id": shop.merchant_id,
        "type": event_type,
        "event_id": event_id,
        "created_at": _iso(now),
        "data": data,
    }
    body = json.dumps(envelope, separators=(",", ":"))
    return {
        "seq": op.seq,
        "id": uuid.uuid4(),
        "tenant_id": shop.tenant_id,
        "event_type": event_type,
        "event_id": event_id,
        "merchant_id": shop.merchant_id,
        "body": body,
        "signature": compute_signature(SIGNATURE_KEY, NOTIFICATION_URL, body.encode("utf-8")),
    }


def _payment_data(payment: Payment, now: datetime) -> tuple[str, dict[str, Any]]:
    money = {"amount": payment.amount, "currency": "USD"}
    body = {
        "id": payment.payment_id,
        "status": "COMPLETED",
        "amount_money": money,
        "total_money": money,
        "created_at": _iso(now),
        "updated_at": _iso(now),
        "buyer_email_address": payment.member.email,
        "location_id": "BENCH-LOCATION",
        "source_type": "CARD",
    }
    return "payment.updated", {"type": "payment", "id": payment.payment_id, "object": {"payment": body}}


def _refund_data(refund: Refund, now: datetime) -> tuple[str, dict[str, Any]]:
    body = {
        "id": refund.refund_id,
        "status": "COMPLETED",
        "amount_money": {"amount": refund.amount, "currency": "USD"},
        "payment_id": refund.payment.payment_id,
        "location_id": "BENCH-LOCATION",
        "created_at": _iso(now),
        "updated_at": _iso(now),
    }
    return "refund.updated", {"type": "refund", "id": refund.refund_id, "object": {"refund": body}}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


CHECKS = {
    "raw events": "SELECT processing_outcome, count(*) FROM pos.pos_webhook_events_raw"
    " WHERE tenant_id = %(t)s GROUP BY 1 ORDER BY 1",
    "reward events": "SELECT kind, outcome, count(*), sum(points_earned), sum(points_redeemed),"
    " sum(points_reversed), sum(points_shortfall) FROM loyalty.reward_events"
    " WHERE tenant_id = %(t)s GROUP BY 1, 2 ORDER BY 1, 2",
    "ledger": "SELECT entry_type, count(*), sum(points) FROM loyalty.wallet_ledger"
    " WHERE tenant_id = %(t)s GROUP BY 1 ORDER BY 1",
    "rows": "SELECT (SELECT count(*) FROM pos.transactions WHERE tenant_id = %(t)s),"
    " (SELECT count(*) || ' / ' || sum(amount_minor_units) FROM pos.refunds WHERE tenant_id = %(t)s),"
    " (SELECT count(*) FROM pos.idempotency_keys WHERE tenant_id = %(t)s AND status = 'COMPLETED')",
    "balances": "SELECT w.user_id, w.points_balance, (SELECT coalesce(sum(CASE l.entry_type"
    " WHEN 'credit' THEN l.points ELSE -l.points END), 0) FROM loyalty.wallet_ledger l"
    " WHERE l.wallet_id = w.id) FROM loyalty.wallets w WHERE w.tenant_id = %(t)s ORDER BY 1",
}


def check_mixed(fixture: Fixture, plan: Plan, project: MixedShop, baseline: MixedShop) -> None:
    """Both sides wrote the same rows and points, and every balance is the plan's (and its ledger's)."""
    expected = sorted((user, balance, balance) for user, balance in plan.balances.items())
    with fixture.db.owner(tuple_row) as conn:
        for name, query in CHECKS.items():
            sides = [
                conn.execute(query, {"t": shop.shop.tenant_id}).fetchall() for shop in (project, baseline)
            ]
            if sides[0] != sides[1]:
                raise BenchError(f"mixed {name}: project {sides[0]}, baseline {sides[1]}")
            if name == "balances" and sorted(sides[0]) != expected:
                raise BenchError(f"mixed balances differ from the plan's: {sides[0]} vs {expected}")
