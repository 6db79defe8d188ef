"""Redemptions: a POS operator spends a member's points against an order, once per key.

Points policy (exact, on integers and Fractions; the order's minor units on both sides, so no
currency is needed): a point is worth ``1 / conversionRate`` minor units — the rate that earns
one point per major unit (1.0 → 1 point per dollar) makes a point worth one cent. A redemption

- needs a balance of at least ``minBalanceToRedeem`` before it;
- may cover at most ``maxRedemptionPercentage`` % of the order: ``points / rate ≤ pct% × order``,
  i.e. ``points ≤ floor(order × pct / 100 × rate)`` (a zero rate or percentage redeems nothing);
- needs the points on the wallet (the database's CHECK is the last line of defence).

The discount the POS applies is ``floor(points / rate)`` minor units (never more than the cap).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from pos_gateway.auth import Principal, require_tenant_context, require_tenant_operator
from pos_gateway.auth.repository import send_caller_standing
from pos_gateway.db import ConnectionFactory, IntegrityViolation, queries, tenant_transaction
from pos_gateway.db.connection import Connection
from pos_gateway.http import ApiError, validation_fields
from pos_gateway.idempotency import Once, OnceRunner, OnceSpec, PostgresPersistenceLayer
from pos_gateway.loyalty.rulebook import RuleVersion
from pos_gateway.loyalty.rules import RuleConfig

_SQL = queries.load(__file__, "redemption.sql")

HANDLER = "wallet_api.redemption"
ONCE = OnceSpec(
    key_prefix="redemption",
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="[wallet_id, points, order_amount_minor_units]",
)
BALANCE_CONSTRAINT = "wallets_points_balance_non_negative"
MAX_POINTS = 1_000_000_000  # ledger points are int4
MAX_ORDER_MINOR_UNITS = 10**12


# ---------------------------------------------------------------- the arithmetic


class Refusal(StrEnum):
    BELOW_MIN_BALANCE = "below_min_balance_to_redeem"
    EXCEEDS_ORDER_SHARE = "exceeds_max_redemption_percentage"
    INSUFFICIENT_BALANCE = "insufficient_balance"


def max_redeemable_points(order_amount_minor_units: int, rule: RuleConfig) -> int:
    """The most points whose value fits in the rule's share of the order."""
    share = Fraction(order_amount_minor_units * rule.max_redemption_percentage, 100)
    return math.floor(share * Fraction(rule.conversion_rate))


def discount_minor_units(points: int, rule: RuleConfig) -> int:
    """What the points take off the order, rounded down (in the merchant's favour)."""
    if rule.conversion_rate <= 0:
        raise ValueError("points have no value at a zero conversion rate")
    return math.floor(Fraction(points) / Fraction(rule.conversion_rate))


def redemption_refusal(
    *, balance: int, points: int, order_amount_minor_units: int, rule: RuleConfig
) -> Refusal | None:
    if balance < rule.min_balance_to_redeem:
        return Refusal.BELOW_MIN_BALANCE
    if points > max_redeemable_points(order_amount_minor_units, rule):
        return Refusal.EXCEEDS_ORDER_SHARE
    if points > balance:
        return Refusal.INSUFFICIENT_BALANCE
    return None


# ---------------------------------------------------------------- contracts


class RedemptionError(ApiError):
    def __init__(
        self, status_code: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, fields, status_code=status_code, code=code)


class RedemptionBody(BaseModel):
    """POST /wallets/{walletId}/redemptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points: int = Field(strict=True, ge=1, le=MAX_POINTS)
    order_amount_minor_units: int = Field(
        alias="orderAmountMinorUnits", strict=True, ge=1, le=MAX_ORDER_MINOR_UNITS
    )
    idempotency_key: str = Field(
        alias="idempotencyKey", min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$"
    )


class RedemptionRequest(BaseModel):
    """The body and its wallet: the payload the idempotency key and its hash are taken from."""

    model_config = ConfigDict(frozen=True)

    wallet_id: UUID
    points: int
    order_amount_minor_units: int
    idempotency_key: str


class RedemptionReceipt(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    redemption_id: UUID
    wallet_id: UUID
    idempotency_key: str
    points_redeemed: int
    order_amount_minor_units: int
    discount_minor_units: int
    points_balance: int
    rule_version: int
    redeemed_at: datetime


_WALLET_ID = TypeAdapter(UUID)


def parse_redemption(wallet_id: str, body: bytes) -> RedemptionRequest:
    """Validate the path and the body together; every problem is reported, nothing is written."""
    details: list[dict[str, Any]] = []
    wallet: UUID | None = None
    parsed: RedemptionBody | None = None
    try:
        wallet = _WALLET_ID.validate_python(wallet_id)
    except ValidationError as exc:
        details += validation_fields(exc, "walletId")
    try:
        parsed = RedemptionBody.model_validate_json(body)
    except ValidationError as exc:
        details += validation_fields(exc)
    if wallet is None or parsed is None:
        raise RedemptionError(400, "invalid_request", "the request is not a valid redemption", details)
    return RedemptionRequest(wallet_id=wallet, **parsed.model_dump())


# ---------------------------------------------------------------- data access


@dataclass(frozen=True, slots=True)
class LockedWallet:
    id: UUID
    points_balance: int
    status: str
    member_status: str | None  # None when the member's account was deleted


@dataclass(frozen=True, slots=True)
class WalletAndRule:
    wallet: LockedWallet | None  # None: no such wallet in the tenant
    rule: RuleVersion | None  # None: the tenant has no active rule


class RedemptionRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def send_lock_wallet(self, wallet_id: UUID, tenant_id: UUID) -> Callable[[], WalletAndRule]:
        """Lock the wallet and read the active rule: sent now, read when called (see redeem)."""
        cursor = self._connection.execute(
            _SQL.lock_wallet_with_rule.sql, {"wallet_id": wallet_id, "tenant_id": tenant_id}
        )

        def read() -> WalletAndRule:
            row = cursor.fetchone()
            if row is None:
                raise LookupError("lock_wallet_with_rule returned no row")
            wallet = None
            if row["id"] is not None:
                wallet = LockedWallet(row["id"], row["points_balance"], row["status"], row["member_status"])
            rule = None
            if row["rule_id"] is not None:
                config = RuleConfig.model_validate(row["rule_config"])
                rule = RuleVersion(row["rule_id"], row["rule_version"], config)
            return WalletAndRule(wallet, rule)

        return read

    def insert_redemption(self, **params: Any) -> dict[str, Any]:
        row = self._connection.execute(_SQL.insert_redemption.sql, params).fetchone()
        if row is None:
            raise LookupError("insert_redemption returned no row")
        return row


# ---------------------------------------------------------------- the service


class RedemptionService:
    """One per container: Powertools' idempotency configuration and function are built once."""

    def __init__(self, connections: ConnectionFactory, *, lock_timeout: str = "5s") -> None:
        self._connections = connections
        self._lock_timeout = lock_timeout
        self._once = OnceRunner(ONCE, RedemptionReceipt, PostgresPersistenceLayer(handler=HANDLER))

    def redeem(
        self, principal: Principal, request: RedemptionRequest, lambda_context: LambdaContext | None = None
    ) -> Once[RedemptionReceipt]:
        """Authorize, then redeem once per (tenant, key): all in one tenant transaction.

        Three round trips: BEGIN, the tenant context with the lock timeout, the caller's
        standing, the key's claim and the wallet's lock with the active rule travel together;
        then the debit; then the completed record with the COMMIT. The claim and the wallet lock
        run before the standing is checked, but they write nothing: a refused caller's
        transaction rolls back, and no stored answer is served before the check.
        """
        tenant_id = require_tenant_context(principal)
        connection = self._connections.get()
        try:
            with (
                tenant_transaction(connection, tenant_id, pipeline=True, lock_timeout=self._lock_timeout),
                self._once.in_transaction(connection, tenant_id),
            ):
                repository = RedemptionRepository(connection)
                standing = send_caller_standing(connection, principal)
                self._once.send_claim(request)  # the key first, then the wallet: one lock order
                wallet_and_rule = repository.send_lock_wallet(request.wallet_id, tenant_id)
                require_tenant_operator(principal, standing())
                return self._once.run(
                    request,
                    lambda: _redeem(repository, principal, tenant_id, request, wallet_and_rule()),
                    lambda_context,
                )
        except IntegrityViolation as exc:
            if exc.constraint == BALANCE_CONSTRAINT:  # unreachable under the wallet lock
                raise RedemptionError(409, Refusal.INSUFFICIENT_BALANCE, "not enough points") from exc
            raise


def _redeem(
    repository: RedemptionRepository,
    principal: Principal,
    tenant_id: UUID,
    request: RedemptionRequest,
    locked: WalletAndRule,
) -> RedemptionReceipt:
    wallet = locked.wallet
    if wallet is None:
        raise RedemptionError(404, "wallet_not_found", "no such wallet")
    _require_usable(wallet)
    rule = locked.rule
    if rule is None:
        raise RedemptionError(409, "no_active_rule", "the tenant has no active reward rule")
    refusal = redemption_refusal(
        balance=wallet.points_balance,
        points=request.points,
        order_amount_minor_units=request.order_amount_minor_units,
        rule=rule.config,
    )
    if refusal is not None:
        raise _refused(refusal, wallet, request, rule.config)
    row = repository.insert_redemption(
        tenant_id=tenant_id,
        wallet_id=wallet.id,
        rule_id=rule.id,
        points=request.points,
        redeemed_by=principal.user_id,
        order_amount_minor_units=request.order_amount_minor_units,
        description=f"redemption {request.idempotency_key}",
    )
    return RedemptionReceipt(
        redemption_id=row["id"],
        wallet_id=wallet.id,
        idempotency_key=request.idempotency_key,
        points_redeemed=request.points,
        order_amount_minor_units=request.order_amount_minor_units,
        discount_minor_units=discount_minor_units(request.points, rule.config),
        points_balance=row["balance_after"],
        rule_version=rule.version,
        redeemed_at=row["created_at"],
    )


def _require_usable(wallet: LockedWallet) -> None:
    if wallet.status == "frozen":
        raise RedemptionError(409, "wallet_frozen", "the wallet is frozen")
    if wallet.member_status == "suspended":
        raise RedemptionError(409, "member_suspended", "the wallet's member is suspended")
    if wallet.member_status != "active":
        raise RedemptionError(409, "member_not_active", "the wallet's member is not active")


def _refused(
    refusal: Refusal, wallet: LockedWallet, request: RedemptionRequest, rule: RuleConfig
) -> RedemptionError:
    match refusal:
        case Refusal.BELOW_MIN_BALANCE:
            detail = {
                "minBalanceToRedeem": rule.min_balance_to_redeem,
                "pointsBalance": wallet.points_balance,
            }
            return RedemptionError(409, refusal, "the balance is below the minimum to redeem", [detail])
        case Refusal.EXCEEDS_ORDER_SHARE:
            detail = {
                "maxRedemptionPercentage": rule.max_redemption_percentage,
                "maxRedeemablePoints": max_redeemable_points(request.order_amount_minor_units, rule),
            }
            return RedemptionError(422, refusal, "the points exceed the order share they may cover", [detail])
        case Refusal.INSUFFICIENT_BALANCE:
            return RedemptionError(
                409, refusal, "not enough points", [{"pointsBalance": wallet.points_balance}]
            )
