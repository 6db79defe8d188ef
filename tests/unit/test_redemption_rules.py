"""The redemption arithmetic and the request contract, without I/O."""

import json
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local import seed
from pos_gateway.loyalty.redemption import (
    MAX_POINTS,
    RedemptionError,
    Refusal,
    discount_minor_units,
    max_redeemable_points,
    parse_redemption,
    redemption_refusal,
)
from pos_gateway.loyalty.rules import RuleConfig

WALLET = str(uuid.uuid4())


def rule(**overrides: Any) -> RuleConfig:
    return RuleConfig.model_validate({**seed.DEFAULT_RULE, **overrides})


# ---------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("order", "pct", "rate", "expected"),
    [
        (10_000, 100, "1.0", 10_000),  # a point is a cent at one point per dollar
        (10_000, 50, "1.0", 5_000),
        (999, 50, "1.0", 499),  # 499.5 points' worth: rounded down
        (10_000, 100, "0.5", 5_000),  # a point is worth two cents
        (10_000, 100, "2", 20_000),  # a point is worth half a cent
        (1, 100, "0.333333", 0),
        (3, 100, "0.333333", 0),  # 0.999999 points
        (10_000, 0, "1.0", 0),
        (10_000, 100, "0", 0),  # a zero rate redeems nothing
    ],
)
def test_max_redeemable_points(order, pct, rate, expected):
    assert max_redeemable_points(order, rule(maxRedemptionPercentage=pct, conversionRate=rate)) == expected


@pytest.mark.parametrize(
    ("points", "rate", "expected"),
    [(100, "1.0", 100), (100, "0.5", 200), (3, "2", 1), (1, "0.333333", 3), (10, "0.3", 33)],
)
def test_discount_is_the_points_value_rounded_down(points, rate, expected):
    assert discount_minor_units(points, rule(conversionRate=rate)) == expected


def test_points_have_no_value_at_a_zero_rate():
    with pytest.raises(ValueError, match="zero conversion rate"):
        discount_minor_units(1, rule(conversionRate=0))


rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=6)


@given(
    order=st.integers(min_value=1, max_value=10**12),
    pct=st.integers(min_value=0, max_value=100),
    rate=rates,
    points=st.integers(min_value=1, max_value=MAX_POINTS),
)
def test_the_cap_is_exactly_the_share_of_the_order(order, pct, rate, points):
    config = rule(maxRedemptionPercentage=pct, conversionRate=rate)
    fits = points <= max_redeemable_points(order, config)
    # value = points / rate minor units; the cap: value <= pct% of the order (never with rate 0)
    expected = rate > 0 and Fraction(points) / Fraction(rate) * 100 <= pct * order
    assert fits == expected
    if fits:
        assert discount_minor_units(points, config) * 100 <= pct * order


@pytest.mark.parametrize(
    ("balance", "points", "order", "expected"),
    [
        (1000, 300, 10_000, None),
        (1000, 1000, 10_000, None),  # the whole balance
        (99, 10, 10_000, Refusal.BELOW_MIN_BALANCE),  # below minBalanceToRedeem (100)
        (100, 100, 10_000, None),  # exactly the minimum
        (1000, 300, 599, Refusal.EXCEEDS_ORDER_SHARE),  # 50% of 599 is 299.5 points' worth
        (1000, 299, 599, None),
        (200, 300, 10_000, Refusal.INSUFFICIENT_BALANCE),
    ],
)
def test_redemption_refusal(balance, points, order, expected):
    config = rule(minBalanceToRedeem=100, maxRedemptionPercentage=50)
    assert (
        redemption_refusal(balance=balance, points=points, order_amount_minor_units=order, rule=config)
        == expected
    )


# ---------------------------------------------------------------- the request


def body(**overrides: Any) -> bytes:
    payload = {"points": 100, "orderAmountMinorUnits": 2500, "idempotencyKey": "order-0001", **overrides}
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


def test_a_valid_request_parses():
    request = parse_redemption(WALLET, body())
    assert request.model_dump(mode="json") == {
        "wallet_id": WALLET,
        "points": 100,
        "order_amount_minor_units": 2500,
        "idempotency_key": "order-0001",
    }


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (body(points=0), "points"),
        (body(points=-5), "points"),
        (body(points=MAX_POINTS + 1), "points"),
        (body(points=1.5), "points"),
        (body(points=10.0), "points"),
        (body(points="10"), "points"),
        (body(points=True), "points"),
        (body(points=...), "points"),
        (body(orderAmountMinorUnits=0), "orderAmountMinorUnits"),
        (body(orderAmountMinorUnits=10**13), "orderAmountMinorUnits"),
        (body(idempotencyKey=...), "idempotencyKey"),
        (body(idempotencyKey="short"), "idempotencyKey"),
        (body(idempotencyKey="k" * 129), "idempotencyKey"),
        (body(idempotencyKey="has space 1"), "idempotencyKey"),
        (body(idempotencyKey=12345678), "idempotencyKey"),
        (body(walletId=WALLET), "walletId"),  # extra fields are refused
        (body(order_amount_minor_units=1), "order_amount_minor_units"),
        (b"not json", ""),
        (b"", ""),
        (b"[]", ""),
        (b"\xff\xfe", ""),
    ],
)
def test_bad_input_is_reported_with_its_location(raw, loc):
    with pytest.raises(RedemptionError) as caught:
        parse_redemption(WALLET, raw)
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_request")
    assert loc in [detail["loc"] for detail in caught.value.fields]


def test_a_bad_wallet_id_is_reported_with_the_body_problems():
    with pytest.raises(RedemptionError) as caught:
        parse_redemption("not-a-uuid", body(points=0))
    assert {detail["loc"] for detail in caught.value.fields} == {"walletId", "points"}
    json.dumps(caught.value.fields)  # serializable as an error body


def test_the_sample_event_is_a_valid_redemption():
    event = json.loads(
        (Path(__file__).resolve().parents[2] / "events" / "wallet_api" / "redeem_points.json").read_text()
    )
    request = parse_redemption(event["pathParameters"]["walletId"], event["body"].encode())
    assert request.points == 250
