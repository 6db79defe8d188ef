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

    def to_document(self) -> dict[str, object]:
        """The JSON stored in reward_rules.rule_config (the rate as a JSON number).

        The rate has at most six decimals and is at most 1000, so its float has a shortest
        repr equal to the decimal, and loading it back with parse_float=Decimal is exact.
        """
        document = self.model_dump(by_alias=True, mode="json")
        document["conversionRate"] = float(self.conversion_rate)
        return document


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


def reversal_points(
    *,
    earned: int,
    amount_minor_units: int,
    refunded_total: int,
    already_reversed: int,
    rounding: RoundingPolicy,
) -> int:
    """Points a refund takes back: the refunded share of what the payment earned, cumulatively.

    Computed on the running total of refunds, so partial refunds add up to exactly the points
    earned and never more, whatever their order or number.
    """
    if earned <= 0 or amount_minor_units <= 0:
        return 0
    if refunded_total >= amount_minor_units:
        target = earned
    else:
        target = min(earned, _rounded(Fraction(earned * refunded_total, amount_minor_units), rounding))
    return max(0, target - already_reversed)
