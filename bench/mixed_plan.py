"""The mixed workload, planned up front: payments, refunds and redemptions, with their effect.

Both sides run the same plan in the same order: blocks of one SQS batch of SQS_BATCH_SIZE
payments and refunds, then the redemptions drawn alongside them. The plan simulates the
ledger (the default rule, seed.DEFAULT_RULE), so every redemption fits its wallet's balance
and every refund knows what it takes back; the bare baseline writes exactly these numbers,
and both sides' final balances are checked against them.
"""

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bench.crediting import SQS_BATCH_SIZE
from bench.fixture import Member

KINDS = ("payment", "refund", "redemption")
WEIGHTS = (70, 15, 15)
REPEAT_SHARE = 0.15  # of refunds: refund.updated delivered again for a refund already recorded
FULL_SHARE = 0.4  # of the other refunds: the whole amount left (else a part of it)
MIN_BALANCE_TO_REDEEM = 100  # seed.DEFAULT_RULE["minBalanceToRedeem"]
MAX_POINTS_PER_TRANSACTION = 500  # seed.DEFAULT_RULE["maxPointsPerTransaction"]; 1 point per dollar


@dataclass(frozen=True, slots=True)
class Payment:
    seq: int  # unique per op: names its raw event on each side
    payment_id: str
    member: Member
    amount: int  # USD cents
    points: int


@dataclass(frozen=True, slots=True)
class Refund:
    seq: int
    refund_id: str
    payment: Payment
    amount: int
    repeat: bool  # a second delivery of a recorded refund: only its processed marker is written
    owed: int  # points the refund takes back (its running share of the payment's points)
    taken: int  # what the balance covered; owed - taken is the shortfall

    @property
    def outcome(self) -> str:
        if self.repeat:
            return "duplicate_refund"
        return "reversed" if self.owed else "nothing_to_reverse"


@dataclass(frozen=True, slots=True)
class Redemption:
    member: Member
    points: int
    order_amount: int
    idempotency_key: str
    balance_after: int


type CreditOp = Payment | Refund


@dataclass(frozen=True, slots=True)
class Block:
    credits: tuple[CreditOp, ...]  # one SQS batch, records in order
    redemptions: tuple[Redemption, ...]  # then these, one request each

    @property
    def ops(self) -> int:
        return len(self.credits) + len(self.redemptions)


@dataclass(frozen=True, slots=True)
class Plan:
    blocks: tuple[Block, ...]
    balances: dict[uuid.UUID, int]  # user_id → final balance

    def count(self, kind: type[Payment | Refund | Redemption]) -> int:
        ops = [op for block in self.blocks for op in (*block.credits, *block.redemptions)]
        return sum(isinstance(op, kind) for op in ops)


@dataclass(slots=True)
class _Paid:
    payment: Payment
    refunded: int = 0
    reversed: int = 0  # points_reversed + points_shortfall of its reversals so far


def plan_mixed(members: Sequence[Member], warmup_blocks: int, ops: int, rng: random.Random) -> Plan:
    """``warmup_blocks`` blocks, then blocks until at least ``ops`` operations follow them."""
    simulation = _Simulation(members, rng)
    blocks: list[Block] = []
    measured = 0
    while len(blocks) < warmup_blocks or measured < ops:
        block = simulation.block()
        measured += block.ops if len(blocks) >= warmup_blocks else 0
        blocks.append(block)
    return Plan(tuple(blocks), dict(simulation.balances))


def payment_points(amount: int) -> int:
    return min(amount // 100, MAX_POINTS_PER_TRANSACTION)


def reversal_points(paid: _Paid) -> int:
    """The refunds' running share of the payment's points, floored, less what was taken back."""
    earned, amount = paid.payment.points, paid.payment.amount
    target = earned if paid.refunded >= amount else min(earned, earned * paid.refunded // amount)
    return max(0, target - paid.reversed)


class _Simulation:
    def __init__(self, members: Sequence[Member], rng: random.Random) -> None:
        self.members = tuple(members)
        self.rng = rng
        self.balances = {member.user_id: 0 for member in members}
        self.paid: list[_Paid] = []  # payments of earlier blocks, refundable
        self.refunds: list[Refund] = []  # first deliveries of earlier blocks' refunds
        self.seq = 0

    def block(self) -> Block:
        kinds: list[str] = []
        while sum(kind != "redemption" for kind in kinds) < SQS_BATCH_SIZE:
            kinds.append(self.rng.choices(KINDS, WEIGHTS)[0])
        refundable, recorded = list(self.paid), list(self.refunds)  # earlier blocks only
        credits: list[CreditOp] = []
        for kind in kinds:
            if kind == "refund":
                credits.append(self._refund(refundable, recorded) or self._payment())
            elif kind == "payment":
                credits.append(self._payment())
        redemptions = [self._redemption() for kind in kinds if kind == "redemption"]
        self.paid += [_Paid(op) for op in credits if isinstance(op, Payment)]
        self.refunds += [op for op in credits if isinstance(op, Refund) and not op.repeat]
        return Block(tuple(credits), tuple(r for r in redemptions if r is not None))

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _payment(self) -> Payment:
        member, amount = self.rng.choice(self.members), self.rng.randrange(100, 25_000)
        points = payment_points(amount)
        self.balances[member.user_id] += points
        return Payment(self._next(), f"bench-mix-pay-{uuid.uuid4().hex}", member, amount, points)

    def _refund(self, refundable: list[_Paid], recorded: list[Refund]) -> Refund | None:
        if recorded and self.rng.random() < REPEAT_SHARE:
            first = self.rng.choice(recorded)
            return Refund(self._next(), first.refund_id, first.payment, first.amount, True, 0, 0)
        candidates = [paid for paid in refundable if paid.refunded < paid.payment.amount]
        if not candidates:
            return None
        paid = self.rng.choice(candidates)
        left = paid.payment.amount - paid.refunded
        amount = left if left == 1 or self.rng.random() < FULL_SHARE else self.rng.randrange(1, left)
        paid.refunded += amount
        owed = reversal_points(paid)
        paid.reversed += owed
        user = paid.payment.member.user_id
        taken = min(owed, self.balances[user])
        self.balances[user] -= taken
        refund_id = f"bench-mix-ref-{uuid.uuid4().hex}"
        return Refund(self._next(), refund_id, paid.payment, amount, False, owed, taken)

    def _redemption(self) -> Redemption | None:
        eligible = [m for m in self.members if self.balances[m.user_id] >= MIN_BALANCE_TO_REDEEM]
        if not eligible:
            return None
        member = self.rng.choice(eligible)
        points = self.rng.randint(1, self.balances[member.user_id])
        self.balances[member.user_id] -= points
        key = f"bench-mix-{self._next():06d}"
        order = self.rng.randint(points, 3 * points)  # the points cover at most the whole order
        return Redemption(member, points, order, key, self.balances[member.user_id])
