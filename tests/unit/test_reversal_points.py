"""The refund arithmetic: the refunded share of the points, cumulative, never more than earned."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_gateway.loyalty.rules import RoundingPolicy, reversal_points


def reverse(earned: int, amount: int, refunded: int, already: int = 0, rounding: str = "floor") -> int:
    return reversal_points(
        earned=earned,
        amount_minor_units=amount,
        refunded_total=refunded,
        already_reversed=already,
        rounding=RoundingPolicy(rounding),
    )


def test_a_full_refund_reverses_everything() -> None:
    assert reverse(earned=500, amount=78050, refunded=78050) == 500


def test_a_partial_refund_reverses_its_share_by_the_crediting_rounding() -> None:
    # 25 points on 25.99; 10.00 refunded is 9.619… points
    assert reverse(25, 2599, 1000, rounding="floor") == 9
    assert reverse(25, 2599, 1000, rounding="round") == 10
    assert reverse(25, 2599, 1000, rounding="ceil") == 10


def test_later_refunds_count_what_was_already_reversed() -> None:
    first = reverse(25, 2599, 1000)
    second = reverse(25, 2599, 2599, already=first)
    assert (first, second) == (9, 16)


def test_over_refunding_never_reverses_more_than_earned() -> None:
    assert reverse(25, 2599, 5000, already=25) == 0
    assert reverse(25, 2599, 5000) == 25


@pytest.mark.parametrize(("earned", "amount"), [(0, 1000), (10, 0)])
def test_nothing_earned_or_nothing_paid_reverses_nothing(earned: int, amount: int) -> None:
    assert reverse(earned, amount, 1000) == 0


@given(
    earned=st.integers(min_value=0, max_value=10_000_000),
    amount=st.integers(min_value=1, max_value=10**12),
    parts=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=8),
    rounding=st.sampled_from(["floor", "round", "ceil"]),
)
def test_any_sequence_of_refunds_reverses_at_most_what_was_earned(
    earned: int, amount: int, parts: list[int], rounding: str
) -> None:
    reversed_so_far, refunded = 0, 0
    for part in parts:
        refunded += part
        step = reverse(earned, amount, refunded, reversed_so_far, rounding)
        assert step >= 0
        reversed_so_far += step
        assert reversed_so_far <= earned
        # never more than the refunded share, give or take the rounding of one point
        assert reversed_so_far <= min(Fraction(earned), Fraction(earned * refunded, amount) + 1)
    if refunded >= amount:
        assert reversed_so_far == earned
