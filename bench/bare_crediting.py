"""The crediting baseline: the rows crediting writes, in plain SQL, one transaction per event."""

import math
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from bench.database import SET_TENANT, Conn, scalar
from bench.fixture import Shop, StoredDelivery

BARE_INSERT_TRANSACTION = """
INSERT INTO pos.transactions (
    tenant_id, provider, provider_transaction_id, amount_minor_units, currency,
    customer_ref, transaction_at, raw_event_id, user_id)
VALUES (%(tenant_id)s, 'square', %(payment_id)s, %(amount)s, 'USD',
        %(customer_ref)s, now(), %(raw_event_id)s, %(user_id)s)
RETURNING id
"""
BARE_INSERT_WALLET = "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%s, %s) RETURNING id"
BARE_INSERT_REWARD = """
INSERT INTO loyalty.reward_events (
    tenant_id, wallet_id, transaction_id, rule_version_id, kind, outcome, points_earned)
VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, %(rule_id)s, 'earn', 'credited', %(points)s)
RETURNING id
"""
BARE_INSERT_CREDIT = """
INSERT INTO loyalty.wallet_ledger (
    tenant_id, wallet_id, entry_type, points, description, source_transaction_id, reward_event_id)
VALUES (%(tenant_id)s, %(wallet_id)s, 'credit', %(points)s, %(description)s, %(transaction_id)s,
        %(reward_event_id)s)
"""
BARE_INSERT_IDEMPOTENCY_KEY = """
INSERT INTO pos.idempotency_keys (key, tenant_id, handler, result_snapshot)
VALUES (%(key)s, %(tenant_id)s, 'square_webhook', %(snapshot)s)
"""
BARE_MARK_PROCESSED = """
UPDATE pos.pos_webhook_events_raw
   SET processed = true, processed_at = now(), processing_outcome = 'credited'
 WHERE id = %s
"""


class BareCrediting:
    """The rows crediting writes, with plain SQL and everything already known client-side."""

    def __init__(self, conn: Conn, shop: Shop, rule_id: uuid.UUID) -> None:
        self._conn = conn
        self._tenant = shop.tenant_id
        self._rule_id = rule_id
        self._wallets: dict[uuid.UUID, uuid.UUID] = {}

    def credit(self, item: StoredDelivery) -> None:
        delivery, conn = item.delivery, self._conn
        points = default_rule_points(delivery.sale.amount)
        params: dict[str, Any] = {
            "tenant_id": self._tenant,
            "payment_id": delivery.payment_id,
            "amount": delivery.sale.amount,
            "customer_ref": Jsonb({"email": delivery.sale.member.email}),
            "raw_event_id": item.raw_event_id,
            "user_id": delivery.sale.member.user_id,
            "rule_id": self._rule_id,
            "points": points,
            "description": f"square payment {delivery.payment_id}",
        }
        with conn.transaction():
            conn.execute(SET_TENANT, (str(self._tenant),))
            params["transaction_id"] = scalar(conn, BARE_INSERT_TRANSACTION, params)
            params["wallet_id"] = self._wallet(delivery.sale.member.user_id)
            params["reward_event_id"] = scalar(conn, BARE_INSERT_REWARD, params)
            if points > 0:
                conn.execute(BARE_INSERT_CREDIT, params)
            params["key"] = f"square:{delivery.shop.merchant_id}:{delivery.payment_id}"
            params["snapshot"] = Jsonb(
                {"transactionId": str(params["transaction_id"]), "pointsEarned": points}
            )
            conn.execute(BARE_INSERT_IDEMPOTENCY_KEY, params)
            conn.execute(BARE_MARK_PROCESSED, (item.raw_event_id,))

    def _wallet(self, user_id: uuid.UUID) -> uuid.UUID:
        wallet_id = self._wallets.get(user_id)
        if wallet_id is None:
            wallet_id = scalar(self._conn, BARE_INSERT_WALLET, (self._tenant, user_id))
            self._wallets[user_id] = wallet_id
        return wallet_id


def default_rule_points(amount_cents: int) -> int:
    """seed.DEFAULT_RULE's points: conversion rate per dollar, floored, capped."""
    from local import seed  # not at import: see bench.fixture.seed_fixture

    rule = seed.DEFAULT_RULE
    points = math.floor(amount_cents * rule["conversionRate"] / 100)
    return int(min(points, rule["maxPointsPerTransaction"]))
