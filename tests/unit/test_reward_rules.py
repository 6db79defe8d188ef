"""Points arithmetic: exact on integer minor units, rounding by policy, min spend, cap."""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pos_gateway.loyalty.rules import RoundingPolicy, RuleConfig, points_for

BASE = {
    "conversionRate": "1",
    "minSpendMinorUnits": 0,
    "maxPointsPerTransaction": 10_000_000,
    "minBalanceToRedeem": 100,
    "maxRedemptionPercentage": 100,
    "roundingPolicy": "floor",
}
# Written out here rather than taken from pos_gateway.money: an independent oracle.
EXPONENT = {"USD": 2, "EUR": 2, "JPY": 0, "CLP": 0, "KWD": 3, "BHD": 3}


def rule(**overrides) -> RuleConfig:
    return RuleConfig.model_validate({**BASE, **overrides})


def by_policy(amount: int, currency: str, **overrides) -> tuple[int, int, int]:
    floor, rounded, ceil = (
        points_for(amount, currency, rule(roundingPolicy=policy, **overrides))
        for policy in ("floor", "round", "ceil")
    )
    return floor, rounded, ceil


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (2599, "1", (25, 26, 26)),
        (2500, "1", (25, 25, 25)),
        (250, "1", (2, 3, 3)),  # exactly half: half up
        (249, "1", (2, 2, 3)),
        (251, "1", (2, 3, 3)),
        (2599, "1.5", (38, 39, 39)),  # 38.985
        (1000, "1.5", (15, 15, 15)),
        (2599, "0.1", (2, 3, 3)),  # 2.599
        (3000, "0.1", (3, 3, 3)),  # 30 * 0.1 is 3.0000000000000004 in floats
        (1000, "2.25", (22, 23, 23)),  # 22.5
        (1234, "2.25", (27, 28, 28)),  # 27.765
        (1, "1", (0, 0, 1)),
        (0, "1", (0, 0, 0)),
        (2599, "0", (0, 0, 0)),
        (333, "0.000001", (0, 0, 1)),
    ],
)
def test_rounding_policies_on_fractional_rates(amount, rate, expected):
    assert by_policy(amount, "USD", conversionRate=rate) == expected


@pytest.mark.parametrize("rate", [1.5, 0.1, 2.25])
def test_rates_given_as_json_floats_stay_exact(rate):
    config = RuleConfig.model_validate(
        json.loads(json.dumps({**BASE, "conversionRate": rate}), parse_float=Decimal)
    )
    assert config.conversion_rate == Decimal(str(rate))
    python_floats = RuleConfig.model_validate({**BASE, "conversionRate": rate})
    assert python_floats.conversion_rate == Decimal(str(rate))


def test_min_spend_boundary():
    assert by_policy(999, "USD", minSpendMinorUnits=1000) == (0, 0, 0)
    assert by_policy(1000, "USD", minSpendMinorUnits=1000) == (10, 10, 10)
    assert by_policy(1001, "USD", minSpendMinorUnits=1000) == (10, 10, 11)


def test_cap_applies_after_rounding():
    assert points_for(78050, "USD", rule(maxPointsPerTransaction=500)) == 500
    assert by_policy(2599, "USD", maxPointsPerTransaction=26) == (25, 26, 26)
    assert by_policy(2599, "USD", maxPointsPerTransaction=25) == (25, 25, 25)
    assert points_for(2599, "USD", rule(maxPointsPerTransaction=1)) == 1


def test_zero_decimal_currency():
    assert by_policy(100, "JPY") == (100, 100, 100)
    assert by_policy(100, "jpy") == (100, 100, 100)
    assert by_policy(1999, "JPY", conversionRate="0.01") == (19, 20, 20)
    assert by_policy(5000, "CLP", conversionRate="0.1") == (500, 500, 500)


def test_three_decimal_currency():
    assert by_policy(1500, "KWD") == (1, 2, 2)  # 1.500 KWD
    assert by_policy(1000, "KWD") == (1, 1, 1)
    assert by_policy(999, "KWD") == (0, 1, 1)
    assert by_policy(12345, "BHD", conversionRate="2") == (24, 25, 25)  # 24.690


def test_large_amounts_are_exact_and_capped():
    assert points_for(10**15, "USD", rule(conversionRate="1000")) == 10_000_000
    assert points_for(10**12, "USD", rule(conversionRate="0.000001")) == 10_000
    assert (
        points_for(999_999_999_999_999, "USD", rule(conversionRate="0.000001", roundingPolicy="ceil"))
        == 10_000_000
    )
    assert (
        points_for(123_456_789_012, "JPY", rule(conversionRate="0.000001", roundingPolicy="floor")) == 123_456
    )


def test_results_are_ints_never_floats():
    for policy in RoundingPolicy:
        result = points_for(2599, "USD", rule(conversionRate="1.5", roundingPolicy=policy.value))
        assert type(result) is int


def test_negative_amount_is_refused():
    with pytest.raises(ValueError, match="negative"):
        points_for(-1, "USD", rule())


def exact_points(amount: int, rate: Decimal, currency: str, policy: str) -> int:
    """Integer-only oracle: the rate has at most 6 decimals."""
    numerator = amount * int(rate * 10**6)
    denominator: int = 10 ** (EXPONENT[currency] + 6)  # int ** int is typed Any (could be a float)
    if policy == "floor":
        return numerator // denominator
    if policy == "ceil":
        return -(-numerator // denominator)
    return (2 * numerator + denominator) // (2 * denominator)


@given(
    amount=st.integers(min_value=0, max_value=10**15),
    rate=st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False),
    currency=st.sampled_from(sorted(EXPONENT)),
    min_spend=st.integers(min_value=0, max_value=10**12),
    cap=st.integers(min_value=1, max_value=10_000_000),
)
def test_rounding_properties(amount, rate, currency, min_spend, cap):
    settings = {"conversionRate": str(rate), "minSpendMinorUnits": min_spend, "maxPointsPerTransaction": cap}
    floor, rounded, ceil = by_policy(amount, currency, **settings)
    assert floor <= rounded <= ceil
    assert ceil - floor <= 1
    assert max(floor, rounded, ceil) <= cap
    assert all(type(value) is int and value >= 0 for value in (floor, rounded, ceil))
    if amount < min_spend:
        assert (floor, rounded, ceil) == (0, 0, 0)
    else:
        expected = tuple(
            min(exact_points(amount, rate, currency, p), cap) for p in ("floor", "round", "ceil")
        )
        assert (floor, rounded, ceil) == expected


# ---------------------------------------------------------------- RuleConfig validation


def error_locs(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[tuple[int | str, ...], str]:
    return {error["loc"]: error["type"] for error in excinfo.value.errors()}


@pytest.mark.parametrize(
    ("overrides", "loc", "error_type"),
    [
        ({"conversionRate": "-0.5"}, ("conversionRate",), "greater_than_equal"),
        ({"conversionRate": "1000.5"}, ("conversionRate",), "less_than_equal"),
        ({"conversionRate": "0.0000001"}, ("conversionRate",), "decimal_max_places"),
        ({"conversionRate": "NaN"}, ("conversionRate",), "finite_number"),
        ({"roundingPolicy": "bankers"}, ("roundingPolicy",), "enum"),
        ({"roundingPolicy": "FLOOR"}, ("roundingPolicy",), "enum"),
        ({"maxRedemptionPercentage": 101}, ("maxRedemptionPercentage",), "less_than_equal"),
        ({"maxRedemptionPercentage": -1}, ("maxRedemptionPercentage",), "greater_than_equal"),
        ({"maxPointsPerTransaction": 0}, ("maxPointsPerTransaction",), "greater_than_equal"),
        ({"minSpendMinorUnits": -1}, ("minSpendMinorUnits",), "greater_than_equal"),
        ({"minSpendMinorUnits": 1.5}, ("minSpendMinorUnits",), "int_from_float"),
        ({"pointsPerVisit": 5}, ("pointsPerVisit",), "extra_forbidden"),
    ],
)
def test_rule_config_rejects_with_field_level_errors(overrides, loc, error_type):
    with pytest.raises(ValidationError) as excinfo:
        rule(**overrides)
    assert error_locs(excinfo) == {loc: error_type}


@pytest.mark.parametrize("missing", sorted(BASE))
def test_rule_config_requires_every_field(missing):
    data = {key: value for key, value in BASE.items() if key != missing}
    with pytest.raises(ValidationError) as excinfo:
        RuleConfig.model_validate(data)
    assert error_locs(excinfo) == {(missing,): "missing"}


def test_rule_config_reports_every_bad_field_at_once():
    with pytest.raises(ValidationError) as excinfo:
        rule(conversionRate="-1", roundingPolicy="nearest", maxRedemptionPercentage=150, bonus=True)
    assert set(error_locs(excinfo)) == {
        ("conversionRate",),
        ("roundingPolicy",),
        ("maxRedemptionPercentage",),
        ("bonus",),
    }


def test_rule_config_accepts_field_names_and_is_frozen():
    config = RuleConfig(
        conversion_rate=Decimal("1.25"),
        min_spend_minor_units=0,
        max_points_per_transaction=10,
        min_balance_to_redeem=0,
        max_redemption_percentage=50,
        rounding_policy=RoundingPolicy.CEIL,
    )
    assert config.model_dump(by_alias=True)["roundingPolicy"] == "ceil"
    with pytest.raises(ValidationError):
        config.conversion_rate = Decimal(2)  # type: ignore[misc]  # writing a frozen field is the point
