"""The mixed baseline: the rows payments, refunds and redemptions write, in plain SQL.

One transaction per operation, as the project's roles (crediting for payments and refunds, the
wallet API's for redemptions), with every number taken from the plan: no locks, no reads.
"""

import hashlib
import json
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from bench.bare_crediting import (
    BARE_INSERT_CREDIT,
    BARE_INSERT_IDEMPOTENCY_KEY,
    BARE_INSERT_REWARD,
    BARE_INSERT_TRANSACTION,
)
from bench.database import SET_TENANT, Conn, scalar
from bench.mixed_plan import Block, Payment, Redemption, Refund
from bench.mixed_setup import MixedShop

BARE_MARK = """
UPDATE pos.pos_webhook_events_raw
   SET processed = true, processed_at = now(), processing_outcome = %s
 WHERE id = %s
"""
BARE_INSERT_REFUND = """
INSERT INTO pos.refunds (
    tenant_id, transaction_id, provider, provider_refund_id, amount_minor_units, currency,
    refunded_at, raw_event_id)
VALUES (%(tenant_id)s, %(transaction_id)s, 'square', %(refund_id)s, %(amount)s, 'USD', now(),
        %(raw_event_id)s)
RETURNING id
"""
BARE_INSERT_REVERSAL = """
INSERT INTO loyalty.reward_events (
    tenant_id, wallet_id, transaction_id, rule_version_id, kind, outcome, refund_id,
    points_reversed, points_shortfall)
VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, %(rule_id)s, 'reversal', %(outcome)s,
        %(refund_row_id)s, %(taken)s, %(shortfall)s)
RETURNING id
"""
BARE_INSERT_DEBIT = """
INSERT INTO loyalty.wallet_ledger (
    tenant_id, wallet_id, entry_type, points, description, source_transaction_id, reward_event_id)
VALUES (%(tenant_id)s, %(wallet_id)s, 'debit', %(points)s, %(description)s, %(transaction_id)s,
        %(reward_event_id)s)
"""
BARE_INSERT_REDEMPTION = """
INSERT INTO loyalty.reward_events (
    tenant_id, wallet_id, rule_version_id, kind, outcome, points_redeemed, redeemed_by,
    order_amount_minor_units)
VALUES (%(tenant_id)s, %(wallet_id)s, %(rule_id)s, 'redeem', 'redeemed', %(points)s, %(operator_id)s,
        %(order)s)
RETURNING id
"""
BARE_INSERT_REDEMPTION_DEBIT = """
INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, description, reward_event_id)
VALUES (%(tenant_id)s, %(wallet_id)s, 'debit', %(points)s, %(description)s, %(reward_event_id)s)
"""
BARE_INSERT_REDEMPTION_KEY = """
INSERT INTO pos.idempotency_keys (key, tenant_id, handler, status, payload_hash, response_data)
VALUES (%(key)s, %(tenant_id)s, 'wallet_api.redemption', 'COMPLETED', %(payload_hash)s, %(response)s)
"""


class BareMixed:
    def __init__(self, crediting: Conn, wallet_api: Conn, shop: MixedShop) -> None:
        self._crediting = crediting
        self._wallet_api = wallet_api
        self._shop = shop
        self._tenant = shop.shop.tenant_id
        self._transactions: dict[str, uuid.UUID] = {}  # payment_id → its transaction row

    def block(self, block: Block) -> None:
        for op in block.credits:
            if isinstance(op, Payment):
                self.payment(op)
            else:
                self.refund(op)
        for redemption in block.redemptions:
            self.redeem(redemption)

    def _params(self, member_id: uuid.UUID, raw_event_id: uuid.UUID) -> dict[str, Any]:
        return {
            "tenant_id": self._tenant,
            "wallet_id": self._shop.wallets[member_id],
            "rule_id": self._shop.rule_id,
            "raw_event_id": raw_event_id,
        }

    def payment(self, op: Payment) -> None:
        conn, raw_event_id = self._crediting, self._shop.raw_events[op.seq]
        params = self._params(op.member.user_id, raw_event_id) | {
            "payment_id": op.payment_id,
            "amount": op.amount,
            "customer_ref": Jsonb({"email": op.member.email}),
            "user_id": op.member.user_id,
            "points": op.points,
            "description": f"square payment {op.payment_id}",
            "key": f"square:{self._shop.shop.merchant_id}:{op.payment_id}",
        }
        with conn.transaction():
            conn.execute(SET_TENANT, (str(self._tenant),))
            params["transaction_id"] = scalar(conn, BARE_INSERT_TRANSACTION, params)
            params["reward_event_id"] = scalar(conn, BARE_INSERT_REWARD, params)
            conn.execute(BARE_INSERT_CREDIT, params)
            params["snapshot"] = Jsonb(
                {
                    "transactionId": str(params["transaction_id"]),
                    "outcome": "credited",
                    "pointsEarned": op.points,
                }
            )
            conn.execute(BARE_INSERT_IDEMPOTENCY_KEY, params)
            conn.execute(BARE_MARK, ("credited", raw_event_id))
        self._transactions[op.payment_id] = params["transaction_id"]

    def refund(self, op: Refund) -> None:
        conn, raw_event_id = self._crediting, self._shop.raw_events[op.seq]
        with conn.transaction():
            conn.execute(SET_TENANT, (str(self._tenant),))
            if not op.repeat:
                self._reverse(conn, op, raw_event_id)
            conn.execute(BARE_MARK, (op.outcome, raw_event_id))

    def _reverse(self, conn: Conn, op: Refund, raw_event_id: uuid.UUID) -> None:
        payment = op.payment
        params = self._params(payment.member.user_id, raw_event_id) | {
            "transaction_id": self._transactions[payment.payment_id],
            "refund_id": op.refund_id,
            "amount": op.amount,
            "outcome": "reversed" if op.owed else "nothing_to_reverse",
            "taken": op.taken,
            "points": op.taken,
            "shortfall": op.owed - op.taken,
            "description": f"square refund {op.refund_id} of payment {payment.payment_id}",
        }
        params["refund_row_id"] = scalar(conn, BARE_INSERT_REFUND, params)
        params["reward_event_id"] = scalar(conn, BARE_INSERT_REVERSAL, params)
        if op.taken:
            conn.execute(BARE_INSERT_DEBIT, params)
        params["key"] = f"square:{self._shop.shop.merchant_id}:refund:{op.refund_id}"
        params["snapshot"] = Jsonb(
            {
                "refundId": str(params["refund_row_id"]),
                "pointsReversed": op.taken,
                "pointsShortfall": op.owed - op.taken,
            }
        )
        conn.execute(BARE_INSERT_IDEMPOTENCY_KEY, params)

    def redeem(self, op: Redemption) -> None:
        conn = self._wallet_api
        wallet_id = self._shop.wallets[op.member.user_id]
        params: dict[str, Any] = {
            "tenant_id": self._tenant,
            "wallet_id": wallet_id,
            "rule_id": self._shop.rule_id,
            "points": op.points,
            "operator_id": self._shop.operator_id,
            "order": op.order_amount,
            "description": f"redemption {op.idempotency_key}",
            "key": f"{self._tenant}:redemption#{_sha256(op.idempotency_key)}",
            "payload_hash": _sha256([str(wallet_id), op.points, op.order_amount]),
        }
        with conn.transaction():
            conn.execute(SET_TENANT, (str(self._tenant),))
            params["reward_event_id"] = scalar(conn, BARE_INSERT_REDEMPTION, params)
            conn.execute(BARE_INSERT_REDEMPTION_DEBIT, params)
            params["response"] = json.dumps(
                {
                    "redemptionId": str(params["reward_event_id"]),
                    "walletId": str(wallet_id),
                    "idempotencyKey": op.idempotency_key,
                    "pointsRedeemed": op.points,
                    "orderAmountMinorUnits": op.order_amount,
                    "discountMinorUnits": op.points,
                    "pointsBalance": op.balance_after,
                }
            )
            conn.execute(BARE_INSERT_REDEMPTION_KEY, params)


def _sha256(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()
