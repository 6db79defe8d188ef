"""Reward rules and the points arithmetic, exact on integer minor units."""

import math
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from pos_gateway.money import minor_unit_exponent


class RoundingPolicy(StrEnum):
    FLOOR = "floor"
    ROUND = "round"  # half up
    CEIL = "ceil"


class RuleConfig(BaseModel):
    """``reward_rules.rule_config``: every field of the seed's JSON, bounded."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    # Points per major currency unit (1.0 → one point per dollar).
    conversion_rate: Decimal = Field(alias="conversionRate", ge=0, le=1000, decimal_places=6)
    min_spend_minor_units: int = Field(alias="minSpendMinorUnits", ge=0, le=10**12)
    max_points_per_transaction: int = Field(alias="maxPointsPerTransaction", ge=1, le=10_000_000)
    min_balance_to_redeem: int = Field(alias="minBalanceToRedeem", ge=0, le=10**9)
    max_redemption_percentage: int = Field(alias="maxRedemptionPercentage", ge=0, le=100)
    rounding_policy: RoundingPolicy = Field(alias="roundingPolicy")


def points_for(amount_minor_units: int, currency: str, rule: RuleConfig) -> int:
    """Points earned on a payment: min spend, then rate, then rounding, then the cap."""
    if amount_minor_units < 0:
        raise ValueError("amount must not be negative")
    if amount_minor_units < rule.min_spend_minor_units:
        return 0
    exact = (
        Fraction(amount_minor_units) * Fraction(rule.conversion_rate) / 10 ** minor_unit_exponent(currency)
    )
    return min(_rounded(exact, rule.rounding_policy), rule.max_points_per_transaction)


def _rounded(value: Fraction, policy: RoundingPolicy) -> int:
    match policy:
        case RoundingPolicy.FLOOR:
            return math.floor(value)
        case RoundingPolicy.CEIL:
            return math.ceil(value)
        case RoundingPolicy.ROUND:
            return math.floor(value + Fraction(1, 2))
