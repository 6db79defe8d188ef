"""The chaos run's generated workload: partial Square refunds, Clover refunds, determinism."""

import json
from collections import Counter, defaultdict

import pytest
import requests

from local.chaos.workload import CLOVER_MERCHANT, DELI, VALID, Event, Workload, generate, points_for
from local.fake_clover import FakeClover, clover_payment, clover_refund


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(7, 1_500)


def _refunds_by_payment(workload: Workload, provider: str) -> dict[str, list[Event]]:
    refunds: dict[str, list[Event]] = defaultdict(list)
    for event in workload.events:
        if event.refund_of and event.provider == provider:
            refunds[event.refund_of].append(event)
    return refunds


def test_square_payments_get_a_full_refund_or_partial_ones_adding_up_to_the_amount_at_most(
    workload: Workload,
) -> None:
    payments = {e.payment_id: e for e in workload.events if e.payment_id and e.provider == "square"}
    refunds = _refunds_by_payment(workload, "square")
    shapes: Counter[str] = Counter()
    for payment_id, events in refunds.items():
        payment = payments[payment_id]
        total = sum(e.refund_amount for e in events)
        assert all(e.refund_amount > 0 for e in events)
        assert total <= payment.amount
        for event in events:
            assert (event.kind, event.tenant, event.email) == (VALID, payment.tenant, payment.email)
            refund = json.loads(event.body)["data"]["object"]["refund"]
            assert refund["payment_id"] == payment_id
            assert refund["amount_money"]["amount"] == event.refund_amount
        if len(events) == 1:
            assert total == payment.amount
            shapes["full"] += 1
        else:
            shapes[f"{len(events)} partials, {'the amount' if total == payment.amount else 'less'}"] += 1
    assert set(shapes) == {"full", "2 partials, the amount", "2 partials, less", "3 partials, the amount",
                           "3 partials, less"}, shapes  # fmt: skip
    # Each refund is its own event with its own refund id, delivered 1–5 times.
    square_refunds = [e for events in refunds.values() for e in events]
    refund_ids = {json.loads(e.body)["data"]["id"] for e in square_refunds}
    assert len(refund_ids) == len(square_refunds)
    assert {e.copies for e in square_refunds} == {1, 2, 3, 4, 5}
    assert len({e.key for e in workload.events}) == len(workload.events)


def test_some_clover_payments_get_refund_updates_with_their_refund(workload: Workload) -> None:
    payments = {e.payment_id: e for e in workload.events if e.payment_id and e.provider == "clover"}
    stored = {p["id"]: p for p in workload.clover_payments}
    refunds = _refunds_by_payment(workload, "clover")
    assert any(len(events) == 2 for events in refunds.values())
    assert any(e.refund_amount == payments[e.refund_of or ""].amount for v in refunds.values() for e in v)
    assert any(e.refund_amount < payments[e.refund_of or ""].amount for v in refunds.values() for e in v)
    for payment_id, events in refunds.items():
        payment = payments[payment_id]
        assert (payment.amount, payment.tenant) == (stored[payment_id]["amount"], DELI)
        assert payment.points == points_for(DELI, payment.amount)
        assert stored[payment_id]["refunds"] == {"elements": []}  # the refund happens when sent
        assert sum(e.refund_amount for e in events) <= payment.amount
        for event in events:
            assert (event.kind, event.provider, event.email) == (VALID, "clover", payment.email)
            assert event.clover_refund is not None
            assert event.clover_refund["amount"] == event.refund_amount > 0
            (update,) = json.loads(event.body)["merchants"][CLOVER_MERCHANT]
            assert (update["objectId"], update["type"]) == (f"P:{payment_id}", "UPDATE")
            assert event.key == f"{CLOVER_MERCHANT}:P:{payment_id}:UPDATE:{update['ts']}"
            assert event.key != payment.key
    refund_ids = [e.clover_refund["id"] for v in refunds.values() for e in v if e.clover_refund]
    assert len(set(refund_ids)) == len(refund_ids)


def _shape(workload: Workload) -> list[tuple[object, ...]]:
    return [
        (e.key, e.provider, e.kind, e.tenant, e.copies, e.payment_id, e.refund_of, e.email, e.points,
         e.amount, e.refund_amount, (e.clover_refund or {}).get("id"))
        for e in workload.events
    ]  # fmt: skip


def test_the_workload_is_deterministic_for_a_seed(workload: Workload) -> None:
    again = generate(7, 1_500)
    assert _shape(again) == _shape(workload)
    assert [e.key for e in again.deliveries] == [e.key for e in workload.deliveries]
    assert [p["id"] for p in again.clover_payments] == [p["id"] for p in workload.clover_payments]
    assert _shape(generate(8, 1_500)) != _shape(workload)


def test_the_mix_keeps_its_proportions() -> None:
    events = generate(11, 6_000).events
    mix = Counter(
        "clover" if e.provider == "clover" else "bad" if e.kind != VALID else "refund" if e.refund_of
        else "payment"
        for e in events
    )  # fmt: skip
    shares = {name: n / len(events) for name, n in mix.items()}
    assert 0.51 < shares["payment"] < 0.59, shares
    assert 0.10 < shares["refund"] < 0.15, shares
    assert 0.13 < shares["clover"] < 0.18, shares
    assert 0.15 < shares["bad"] < 0.21, shares


def test_the_fake_clover_adds_a_refund_once() -> None:
    with FakeClover() as clover:
        clover.grant_token("MID1", "token-1")
        clover.put_payment("MID1", clover_payment("PAY1", amount=2_500, email="a@example.com"))
        refund = clover_refund(amount=1_000, refund_id="REF1")
        assert clover.add_refund("MID1", "PAY1", refund)
        assert not clover.add_refund("MID1", "PAY1", refund)  # the same refund sent again
        assert clover.add_refund("MID1", "PAY1", clover_refund(amount=500, refund_id="REF2"))
        with pytest.raises(KeyError):
            clover.add_refund("MID1", "NOPAY", refund)
        answer = requests.get(
            f"{clover.base_url}/v3/merchants/MID1/payments/PAY1?expand=refunds",
            headers={"Authorization": "Bearer token-1"},
            timeout=5,
        )
    assert answer.status_code == 200
    elements = answer.json()["refunds"]["elements"]
    assert elements[0] == {**refund, "payment": {"id": "PAY1"}}
    assert [(r["id"], r["amount"], r["payment"]) for r in elements] == [
        ("REF1", 1_000, {"id": "PAY1"}),
        ("REF2", 500, {"id": "PAY1"}),
    ]
