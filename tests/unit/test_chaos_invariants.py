"""The chaos run's invariant checker finds what it must: a check that cannot fail is a defect."""

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from local import seed
from local.chaos.faults import overlaps
from local.chaos.field import compare
from local.chaos.invariants import Findings, check, expected_reversal
from local.chaos.invariants import _expected as expected_points
from local.chaos.record import Answer, FieldRecord, Record, RpaposRecord, WalletOperation
from local.chaos.workload import BAKERY, CAFE, CLOVER_MERCHANT, DELI, FORGED, VALID, Event, points_for
from local.fake_clover import clover_refund
from local.field_device import SimulatedDevice
from tests.helpers import connected_merchant, insert_raw_event, payment_event, refund_event, unique_email

Conn = psycopg.Connection[Any]


def _insert(owner: Conn, ids: dict[str, Any], name: str, query: str) -> None:
    """Runs one ``INSERT … RETURNING id`` with ``ids`` as its parameters; the new id joins them."""
    row = owner.execute(query, ids).fetchone()
    assert row is not None
    ids[name] = row["id"]


def _credit_once(owner: Conn, ids: dict[str, Any], insert_transaction: str) -> None:
    """The transaction, the member's wallet, its earn event and one ledger credit of 25 points;
    each new id is added to ``ids``."""
    for name, query in (
        ("transaction_id", insert_transaction),
        (
            "wallet_id",
            "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%(tenant_id)s, %(user_id)s)"
            " RETURNING id",
        ),
        (
            "reward_id",
            "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, transaction_id, kind, outcome,"
            " points_earned)"
            " VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, 'earn', 'credited', 25)"
            " RETURNING id",
        ),
        (
            "ledger_id",
            "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points,"
            " source_transaction_id, reward_event_id)"
            " VALUES (%(tenant_id)s, %(wallet_id)s, 'credit', 25, %(transaction_id)s, %(reward_id)s)"
            " RETURNING id",
        ),
    ):
        _insert(owner, ids, name, query)


def _credited_payment(owner: Conn, record: Record) -> dict[str, Any]:
    """A valid payment as the pipeline leaves it: raw row processed, transaction, earn, ledger credit."""
    merchant = connected_merchant(owner)
    tenant = owner.execute(
        "SELECT name FROM identity.tenants WHERE id = %s", (merchant.tenant_id,)
    ).fetchone()
    assert tenant is not None
    email = unique_email()
    user_id = seed.create_user(owner, email=email)
    event = payment_event(merchant_id=merchant.merchant_id, email=email, amount=2_500)
    payment_id = event["data"]["id"]
    raw_id = insert_raw_event(owner, merchant.tenant_id, event)
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'credited' WHERE id = %s",
        (raw_id,),
    )
    ids: dict[str, Any] = {"tenant_id": merchant.tenant_id, "user_id": user_id, "raw_id": raw_id}
    ids |= {"payment_id": payment_id, "merchant_id": merchant.merchant_id, "email": email}
    _credit_once(
        owner,
        ids,
        "INSERT INTO pos.transactions (tenant_id, user_id, provider, provider_transaction_id,"
        " amount_minor_units, currency, transaction_at, raw_event_id)"
        " VALUES (%(tenant_id)s, %(user_id)s, 'square', %(payment_id)s, 2500, 'USD', now(), %(raw_id)s)"
        " RETURNING id",
    )
    record.events[event["event_id"]] = Event(
        event["event_id"], "square", VALID, tenant["name"], json.dumps(event).encode(), 2,
        payment_id=payment_id, email=email, points=25, amount=2_500,
    )  # fmt: skip
    record.answered(Answer(event["event_id"], VALID, "square", 200, "accepted", 0.01))
    record.answered(Answer(event["event_id"], VALID, "square", 200, "duplicate", 0.01))
    return ids


@pytest.fixture
def record(owner: Conn) -> Record:
    record = Record()
    _credited_payment(owner, record)
    return record


def _figures(findings: Findings) -> dict[str, int]:
    return {
        "lost": findings.lost_events,
        "double": findings.double_credits,
        "mismatch": findings.ledger_balance_mismatches,
        "negative": findings.negative_balances,
        "partial": findings.partial_writes,
        "points": findings.expected_points_mismatches,
    }


def test_a_clean_pipeline_passes(owner: Conn) -> None:
    record = Record()
    _credited_payment(owner, record)
    assert _figures(check(owner, record)) == {name: 0 for name in _figures(Findings())}


def test_a_doubled_ledger_credit_is_found(owner: Conn) -> None:
    record = Record()
    ids = _credited_payment(owner, record)
    before = _figures(check(owner, record))
    # The unique index stops a second credit with the same source transaction; a second credit
    # of the same reward event (written by hand, as the owner) is a double credit all the same.
    owner.execute(
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, reward_event_id)"
        " VALUES (%s, %s, 'credit', 25, %s)",
        (ids["tenant_id"], ids["wallet_id"], ids["reward_id"]),
    )
    after = _figures(check(owner, record))
    assert after["double"] > before["double"]  # seen as two credits of one transaction and of one event
    assert after["points"] == before["points"] + 1  # the wallet holds 25 points more than the run expects


def test_an_accepted_event_without_its_raw_row_is_lost(owner: Conn, record: Record) -> None:
    before = _figures(check(owner, record))
    event_id = str(uuid.uuid4())
    record.events[event_id] = Event(event_id, "square", VALID, None, b"{}", 1)
    record.answered(Answer(event_id, VALID, "square", 200, "accepted", 0.01))
    assert _figures(check(owner, record))["lost"] == before["lost"] + 1


def test_an_unprocessed_raw_event_after_the_drain_is_lost(owner: Conn, record: Record) -> None:
    before = _figures(check(owner, record))
    merchant = connected_merchant(owner)
    event = payment_event(merchant_id=merchant.merchant_id)
    insert_raw_event(owner, merchant.tenant_id, event)
    record.events[event["event_id"]] = Event(event["event_id"], "square", VALID, None, b"{}", 1)
    assert _figures(check(owner, record))["lost"] == before["lost"] + 1


def test_a_raw_row_of_a_refused_event_is_a_partial_write(owner: Conn, record: Record) -> None:
    before = _figures(check(owner, record))
    merchant = connected_merchant(owner)
    event = payment_event(merchant_id=merchant.merchant_id)
    record.events[event["event_id"]] = Event(event["event_id"], "square", FORGED, None, b"{}", 1)
    record.answered(Answer(event["event_id"], FORGED, "square", 401, "invalid_signature", 0.01))
    assert _figures(check(owner, record))["partial"] == before["partial"]
    raw_id = insert_raw_event(owner, merchant.tenant_id, event)
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now() WHERE id = %s",
        (raw_id,),
    )
    assert _figures(check(owner, record))["partial"] == before["partial"] + 1


def test_a_5xx_to_a_valid_delivery_is_counted(record: Record) -> None:
    assert record.valid_5xx() == 0
    record.answered(Answer("x", VALID, "square", 502, "http-502", 0.01))
    record.answered(Answer("y", FORGED, "square", 500, "http-500", 0.01))  # not a valid request
    assert record.valid_5xx() == 1


def test_only_a_5xx_overlapping_a_database_restart_is_excused(record: Record) -> None:
    restart = [(100.0, 101.5)]  # from the restart command to the cluster accepting again (+ slack)

    def excused(started: float, ended: float) -> bool:
        return overlaps(restart, started, ended)

    record.answered(Answer("before", VALID, "square", 503, "temporarily_unavailable", 0.2, 99.0))
    record.answered(Answer("across", VALID, "square", 503, "temporarily_unavailable", 0.5, 99.8))
    record.answered(Answer("during", VALID, "square", 0, "ConnectionError", 0.1, 101.0))
    record.answered(Answer("after", VALID, "square", 503, "temporarily_unavailable", 0.1, 101.6))
    record.answered(Answer("ok", VALID, "square", 200, "accepted", 0.1, 100.5))
    record.operated(WalletOperation("redemption", "w", -5, 503, "k", started=100.2, seconds=0.1))
    record.operated(WalletOperation("adjustment", "w", 0, 502, started=120.0, seconds=0.1))

    assert record.valid_5xx(excused) == 3  # before, after and the adjustment
    assert record.valid_5xx_excused(excused) == 3  # across, during and the redemption
    assert record.valid_5xx() == 6  # nothing excused without a restart


def test_a_payment_at_square_without_its_transaction_is_lost(owner: Conn, record: Record) -> None:
    """The poller finds every payment made at Square, its webhook answered or never sent."""
    before = _figures(check(owner, record))
    event_id = str(uuid.uuid4())
    record.polled.append(
        Event(event_id, "square", VALID, CAFE, b"{}", 1, payment_id=f"pay_{uuid.uuid4().hex}")
    )
    assert _figures(check(owner, record))["lost"] == before["lost"] + 1


def test_a_polled_raw_row_is_a_partial_write_unless_the_run_made_its_payment(
    owner: Conn, record: Record
) -> None:
    merchant = connected_merchant(owner)
    event = payment_event(merchant_id=merchant.merchant_id)
    event["event_id"] = f"poll:{uuid.uuid4()}"
    raw_id = insert_raw_event(owner, merchant.tenant_id, event)
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now() WHERE id = %s",
        (raw_id,),
    )
    before = _figures(check(owner, record))["partial"]
    record.polled_event_keys.add(event["event_id"])
    assert _figures(check(owner, record))["partial"] == before - 1


# ------------------------------------------------------------------ partial refunds


def _refunded(owner: Conn, record: Record, ids: dict[str, Any], refunds: list[tuple[int, int]]) -> None:
    """Accepted Square refunds of the planted payment as crediting leaves them, each (amount,
    points it took back): raw row processed, pos.refunds row, reversal event and its ledger debit."""
    for amount, points in refunds:
        event = refund_event(merchant_id=ids["merchant_id"], payment_id=ids["payment_id"], amount=amount)
        raw_id = insert_raw_event(owner, ids["tenant_id"], event)
        owner.execute(
            "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
            " processing_outcome = 'reversed' WHERE id = %s",
            (raw_id,),
        )
        refund = owner.execute(
            "INSERT INTO pos.refunds (tenant_id, transaction_id, provider, provider_refund_id,"
            " amount_minor_units, currency, refunded_at, raw_event_id)"
            " VALUES (%s, %s, 'square', %s, %s, 'USD', now(), %s) RETURNING id",
            (ids["tenant_id"], ids["transaction_id"], event["data"]["id"], amount, raw_id),
        ).fetchone()
        assert refund is not None
        reversal = owner.execute(
            "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, transaction_id, kind, outcome,"
            " refund_id, points_reversed) VALUES (%s, %s, %s, 'reversal', %s, %s, %s) RETURNING id",
            (
                ids["tenant_id"],
                ids["wallet_id"],
                ids["transaction_id"],
                "reversed" if points else "nothing_to_reverse",
                refund["id"],
                points,
            ),
        ).fetchone()
        assert reversal is not None
        if points:
            owner.execute(
                "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points,"
                " source_transaction_id, reward_event_id) VALUES (%s, %s, 'debit', %s, %s, %s)",
                (ids["tenant_id"], ids["wallet_id"], points, ids["transaction_id"], reversal["id"]),
            )
        payment = next(e for e in record.events.values() if e.payment_id == ids["payment_id"])
        record.events[event["event_id"]] = Event(
            event["event_id"], "square", VALID, payment.tenant, json.dumps(event).encode(), 1,
            refund_of=ids["payment_id"], email=payment.email, refund_amount=amount,
        )  # fmt: skip
        record.answered(Answer(event["event_id"], VALID, "square", 200, "accepted", 0.01))


@pytest.fixture
def planted(owner: Conn) -> Iterator[Conn]:
    """The owner connection in a transaction rolled back after the test: the refunds planted
    (and the wallets they leave, right or wrong) are not seen by the tests after it."""
    with owner.transaction(force_rollback=True):
        yield owner


def _wallet_notes(findings: Findings, ids: dict[str, Any]) -> list[str]:
    return [note for note in findings.details if ids["email"] in note]


@pytest.mark.parametrize(
    ("second_reversal", "mismatches"),
    [(7, 0), (6, 1), (8, 1)],
    ids=["exact", "one-point-short", "one-point-over"],
)
def test_two_partial_refunds_take_back_their_cumulative_share(
    planted: Conn, second_reversal: int, mismatches: int
) -> None:
    # 25 points on 25.00 (a floor rule): 9.99 refunded takes floor(9.99) = 9, then 7.00 more
    # takes floor(16.99) − 9 = 7; the wallet should hold 25 − 16 = 9.
    record = Record()
    ids = _credited_payment(planted, record)
    before = _figures(check(planted, record))
    _refunded(planted, record, ids, [(999, 9), (700, second_reversal)])
    findings = check(planted, record)
    assert _figures(findings) == {**before, "points": before["points"] + mismatches}
    holds = 25 - 9 - second_reversal
    expected = [f"holds {holds}, the run expects 9"] if mismatches else []
    assert [note.split(ids["email"] + " ")[1] for note in _wallet_notes(findings, ids)] == expected


def test_refunds_of_the_whole_amount_take_back_everything(planted: Conn) -> None:
    record = Record()
    ids = _credited_payment(planted, record)
    before = _figures(check(planted, record))
    _refunded(planted, record, ids, [(1_500, 15), (1_000, 10)])  # 25.00 of 25.00: all 25 points
    findings = check(planted, record)
    assert _figures(findings) == before
    assert _wallet_notes(findings, ids) == []


def test_a_refund_that_was_not_accepted_takes_nothing(planted: Conn) -> None:
    record = Record()
    ids = _credited_payment(planted, record)
    before = _figures(check(planted, record))
    _refunded(planted, record, ids, [(999, 9)])
    refund = next(key for key, e in record.events.items() if e.refund_of)
    record.answers = [a for a in record.answers if a.key != refund]  # as if never answered 2xx
    record.answered(Answer(refund, VALID, "square", 503, "http-503", 0.01))
    findings = check(planted, record)
    assert _figures(findings) == {**before, "points": before["points"] + 1}
    assert [note.split(ids["email"] + " ")[1] for note in _wallet_notes(findings, ids)] == [
        "holds 16, the run expects 25"
    ]


def test_expected_reversal_rounds_by_the_tenant_rule() -> None:
    # 25 points: 10.5 of them refunded is 11 at the Bakery (half up), 10 at the Deli and Cafe (floor).
    assert expected_reversal(BAKERY, 25, 1_250, 525) == 11
    assert expected_reversal(BAKERY, 25, 1_250, 520) == 10  # 10.4
    assert expected_reversal(DELI, 25, 2_500, 1_050) == 10
    assert expected_reversal(CAFE, 25, 2_500, 1_099) == 10  # 10.99
    assert expected_reversal("A tenant of no rule", 25, 2_500, 1_099) == 10  # floor
    # The whole amount, or more, takes everything; nothing refunded or nothing earned, nothing.
    assert expected_reversal(BAKERY, 25, 1_250, 1_250) == 25
    assert expected_reversal(CAFE, 500, 60_000, 60_001) == 500
    assert expected_reversal(BAKERY, 25, 1_250, 1_249) == 25  # 24.98, half up
    assert expected_reversal(CAFE, 25, 2_500, 2_499) == 24  # 24.99, floor
    assert expected_reversal(CAFE, 25, 2_500, 0) == 0
    assert expected_reversal(CAFE, 0, 2_500, 2_500) == 0


def _accepted(record: Record, *events: Event) -> None:
    for event in events:
        record.events[event.key] = event
        record.answered(Answer(event.key, VALID, event.provider, 200, "accepted", 0.01))


def _square_refund_event(payment: Event, amount: int) -> Event:
    return Event(
        str(uuid.uuid4()), "square", VALID, payment.tenant, b"{}", 1,
        refund_of=payment.payment_id, email=payment.email, refund_amount=amount,
    )  # fmt: skip


def test_partial_refunds_at_the_bakery_round_half_up() -> None:
    email = unique_email()
    payment = Event(
        str(uuid.uuid4()), "square", VALID, BAKERY, b"{}", 1,
        payment_id="pay_bakery", email=email, points=points_for(BAKERY, 1_250), amount=1_250,
    )  # fmt: skip
    assert payment.points == 25
    record = Record()
    _accepted(record, payment, _square_refund_event(payment, 300), _square_refund_event(payment, 225))
    assert expected_points(record, {}) == {(BAKERY, email): 25 - 11}  # 10.5 rounds half up
    # A third refund reaching the amount takes the rest.
    _accepted(record, _square_refund_event(payment, 725))
    assert expected_points(record, {}) == {(BAKERY, email): 0}


def test_refunds_beyond_the_amount_take_no_more_than_was_earned() -> None:
    email = unique_email()
    payment = Event(
        str(uuid.uuid4()), "square", VALID, CAFE, b"{}", 1,
        payment_id="pay_cafe", email=email, points=25, amount=2_500,
    )  # fmt: skip
    record = Record()
    _accepted(record, payment, _square_refund_event(payment, 2_000), _square_refund_event(payment, 2_000))
    assert expected_points(record, {}) == {(CAFE, email): 0}


def test_a_clover_refund_takes_its_share_even_when_only_its_update_got_in() -> None:
    email = unique_email()
    create = Event(
        f"{CLOVER_MERCHANT}:P:PAYCLOVER0001:CREATE:1", "clover", VALID, DELI, b"{}", 1,
        payment_id="PAYCLOVER0001", email=email, points=points_for(DELI, 2_500), amount=2_500,
    )  # fmt: skip
    refund = Event(
        f"{CLOVER_MERCHANT}:P:PAYCLOVER0001:UPDATE:2", "clover", VALID, DELI, b"{}", 1,
        refund_of="PAYCLOVER0001", email=email, refund_amount=1_050,
        clover_refund=clover_refund(amount=1_050, refund_id="REFCLOVER0001"),
    )  # fmt: skip
    record = Record(events={create.key: create})
    _accepted(record, refund)  # the CREATE never answered 2xx: the update's fetch credits it
    assert expected_points(record, {}) == {(DELI, email): 25 - 10}  # 10.5, floor
    _accepted(record, create)
    assert expected_points(record, {}) == {(DELI, email): 15}


# ------------------------------------------------------------------ offline field sales


def _credited_field_sale(owner: Conn, record: Record) -> dict[str, Any]:
    """A member's field sale of 25.90 as crediting leaves it (transaction, earn, one credit of 25),
    with the run's record of it: synced by the device, to be credited once."""
    merchant = connected_merchant(owner)
    tenant = owner.execute(
        "SELECT name FROM identity.tenants WHERE id = %s", (merchant.tenant_id,)
    ).fetchone()
    assert tenant is not None
    mobile = f"+5198{uuid.uuid4().int % 10**7:07d}"
    sale_id = str(uuid.uuid4())
    ids: dict[str, Any] = {
        "tenant_id": merchant.tenant_id,
        "user_id": seed.create_user(owner, mobile=mobile),
        "sale_id": sale_id,
    }
    _credit_once(
        owner,
        ids,
        "INSERT INTO pos.transactions (tenant_id, user_id, provider, provider_transaction_id,"
        " amount_minor_units, currency, transaction_at)"
        " VALUES (%(tenant_id)s, %(user_id)s, 'field', %(sale_id)s, 2590, 'PEN', now()) RETURNING id",
    )
    record.field_sync = FieldRecord(
        str(merchant.tenant_id), tenant["name"], mobile, member_sales={sale_id: Decimal("25.90")}
    )
    return ids


def _field_figures(findings: Findings) -> dict[str, int]:
    return {
        "unsynced": findings.field_unsynced,
        "differing": findings.field_mismatches,
        "credits": findings.field_credit_mismatches,
    }


def test_a_clean_field_sale_passes(owner: Conn) -> None:
    record = Record()
    _credited_field_sale(owner, record)
    assert _field_figures(check(owner, record)) == {"unsynced": 0, "differing": 0, "credits": 0}


def test_a_second_credit_of_a_field_sale_is_found(owner: Conn) -> None:
    record = Record()
    ids = _credited_field_sale(owner, record)
    owner.execute(
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, reward_event_id)"
        " VALUES (%s, %s, 'credit', 25, %s)",
        (ids["tenant_id"], ids["wallet_id"], ids["reward_id"]),
    )
    findings = check(owner, record)
    # The sale credited twice, and the member holding 50 points for a sale that earns 25.
    assert findings.field_credit_mismatches == 2
    assert any(ids["sale_id"] in note and "2 time(s)" in note for note in findings.details)


def test_an_uncredited_member_sale_is_found(owner: Conn) -> None:
    record = Record()
    _credited_field_sale(owner, record)
    assert record.field_sync is not None
    record.field_sync.member_sales[str(uuid.uuid4())] = Decimal("3.10")  # never credited
    assert _field_figures(check(owner, record))["credits"] == 2  # 0 credits; 25 held, 28 earned


def test_a_synced_operation_without_its_log_row_is_not_synced(owner: Conn) -> None:
    record = Record()
    _credited_field_sale(owner, record)
    assert record.field_sync is not None
    # As if its field_sales.sync_operations row had been removed: the device holds it as synced.
    record.field_sync.synced_op_ids.add(str(uuid.uuid4()))
    record.field_sync.unsynced = 1  # and one record the device could not sync
    assert _field_figures(check(owner, record))["unsynced"] == 2


def test_a_field_record_differing_from_the_server_is_found() -> None:
    pollo = uuid.uuid4()
    device = SimulatedDevice("http://127.0.0.1:9", "credential", {"pollo": pollo})
    customer = device.add_customer("Cliente", phone="987 654 321")
    sale = device.sell("2.000", client_id=customer)  # 19.80 on credit
    abono = device.pay(customer, "5.00")
    device.server = {
        ("customers", str(customer)): {"debt": "14.80"},
        ("sales", str(sale)): {"totalAmount": "19.80", "items": [{"quantity": "2.000"}]},
        ("abonos", str(abono)): {"amount": "5.00"},
        ("inventory", str(pollo)): {"quantity": "498.000"},
    }
    assert compare(device, pollo, Decimal("500")) == []

    device.server[("sales", str(sale))]["totalAmount"] = "9.90"
    device.server[("inventory", str(pollo))]["quantity"] = "496.000"
    del device.server[("abonos", str(abono))]
    differences = compare(device, pollo, Decimal("500"))
    assert len(differences) == 3, differences


def _reverse_field_sale(owner: Conn, ids: dict[str, Any]) -> None:
    """The void of the sale as crediting reverses it: a refund of the whole sale, a reversal event
    taking its 25 points back, and the ledger debit of them."""
    ids["void_id"] = str(uuid.uuid4())
    for name, query in (
        (
            "refund_id",
            "INSERT INTO pos.refunds (tenant_id, transaction_id, provider, provider_refund_id,"
            " amount_minor_units, currency, refunded_at)"
            " VALUES (%(tenant_id)s, %(transaction_id)s, 'field', %(void_id)s, 2590, 'PEN', now())"
            " RETURNING id",
        ),
        (
            "reversal_id",
            "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, transaction_id, kind, outcome,"
            " refund_id, points_reversed)"
            " VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, 'reversal', 'reversed',"
            " %(refund_id)s, 25) RETURNING id",
        ),
        (
            "debit_id",
            "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points,"
            " source_transaction_id, reward_event_id)"
            " VALUES (%(tenant_id)s, %(wallet_id)s, 'debit', 25, %(transaction_id)s, %(reversal_id)s)"
            " RETURNING id",
        ),
    ):
        _insert(owner, ids, name, query)


def test_a_voided_member_sale_without_its_reversal_is_found(owner: Conn) -> None:
    record = Record()
    ids = _credited_field_sale(owner, record)
    assert record.field_sync is not None
    record.field_sync.voided.add(ids["sale_id"])  # the admin's device voided it; crediting never reversed it

    findings = check(owner, record)

    # No reversal of the voided sale, and the member holding 25 points for no sale that counts.
    assert _field_figures(findings) == {"unsynced": 0, "differing": 0, "credits": 2}
    assert any(ids["sale_id"] in note and "reversed 0 time(s)" in note for note in findings.details)
    assert any("holds 25 points" in note and "earn 0" in note for note in findings.details)


def test_a_voided_member_sale_reversed_once_passes_and_earns_nothing(owner: Conn) -> None:
    record = Record()
    ids = _credited_field_sale(owner, record)
    _reverse_field_sale(owner, ids)
    assert record.field_sync is not None
    record.field_sync.voided.add(ids["sale_id"])

    # Credited once, reversed once: net 0, and the wallet (0) is what the sales not voided earn.
    assert _field_figures(check(owner, record)) == {"unsynced": 0, "differing": 0, "credits": 0}

    # Not voided by the run's account, the same reversal is found (and the wallet is 25 short).
    record.field_sync.voided.clear()
    assert _field_figures(check(owner, record))["credits"] == 2


def test_a_second_reversal_of_a_voided_member_sale_is_found(owner: Conn) -> None:
    record = Record()
    ids = _credited_field_sale(owner, record)
    _reverse_field_sale(owner, ids)
    assert record.field_sync is not None
    record.field_sync.voided.add(ids["sale_id"])
    # As if a second void of the sale had got in: its refund and a reversal of nothing more.
    refund = owner.execute(
        "INSERT INTO pos.refunds (tenant_id, transaction_id, provider, provider_refund_id,"
        " amount_minor_units, currency, refunded_at) VALUES (%s, %s, 'field', %s, 2590, 'PEN', now())"
        " RETURNING id",
        (ids["tenant_id"], ids["transaction_id"], str(uuid.uuid4())),
    ).fetchone()
    assert refund is not None
    owner.execute(
        "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, transaction_id, kind, outcome, refund_id)"
        " VALUES (%s, %s, %s, 'reversal', 'reversed', %s)",
        (ids["tenant_id"], ids["wallet_id"], ids["transaction_id"], refund["id"]),
    )
    findings = check(owner, record)
    assert findings.field_credit_mismatches == 1
    assert any(ids["sale_id"] in note and "reversed 2 time(s)" in note for note in findings.details)


def test_a_void_the_server_does_not_show_is_found() -> None:
    pollo = uuid.uuid4()
    device = SimulatedDevice("http://127.0.0.1:9", "credential", {"pollo": pollo})
    customer = device.add_customer("Cliente", phone="912 345 678")
    kept = device.sell("2.000", client_id=customer)  # 19.80 on credit
    returned = device.sell("1.000", client_id=customer)  # 9.90 on credit, then voided
    void_id = device.void_sale(returned)
    assert device.queue[-1].wire()["operationType"] == "delete"
    assert device.queue[-1].wire()["data"] == {"id": str(returned)}
    assert device.expected_debt(customer) == Decimal("19.80")
    assert device.kilos_sold() == Decimal("2.000")
    assert device.voided_sales() == {str(returned)}
    device.server = {
        ("customers", str(customer)): {"debt": "19.80"},
        ("sales", str(kept)): {"totalAmount": "19.80", "items": [{"quantity": "2.000"}]},
        ("sales", str(returned)): {"totalAmount": "9.90", "items": [{"quantity": "1.000"}]},
        ("voids", str(void_id)): {"saleId": str(returned), "reason": "voided on device"},
        ("inventory", str(pollo)): {"quantity": "498.000"},
    }
    assert compare(device, pollo, Decimal("500")) == []

    # The server never voided it: no void record, the debt and the stock still count the sale.
    del device.server[("voids", str(void_id))]
    device.server[("customers", str(customer))]["debt"] = "29.70"
    device.server[("inventory", str(pollo))]["quantity"] = "497.000"
    differences = compare(device, pollo, Decimal("500"))
    assert len(differences) == 4, differences
    assert any("shows no void" in text for text in differences)


# ---------------------------------------------------------------- an RPApos catalog sync alongside

_CATALOG_STATS = {
    "plu": {
        "extracted": 3,
        "loaded": 3,
        "skipped": 0,
        "failed": 0,
        "archived_only": 0,
        "status": "completed",
    },
    "sku": {
        "extracted": 2,
        "loaded": 2,
        "skipped": 0,
        "failed": 0,
        "archived_only": 0,
        "status": "completed",
    },
}


def _rpapos_run(owner: Conn, tenant_id: uuid.UUID, connection_id: uuid.UUID, stats: dict[str, Any]) -> str:
    row = owner.execute(
        "INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, status, entity_types,"
        " per_entity_stats, completed_at)"
        " VALUES (%s, %s, 'catalog', 'completed', '{sku,plu}', %s::jsonb, now()) RETURNING id",
        (tenant_id, connection_id, json.dumps(stats)),
    ).fetchone()
    assert row is not None
    return str(row["id"])


def _synced_catalog(owner: Conn) -> RpaposRecord:
    """A catalog run and the second run after it as the engine leaves them: 3 PLUs and 2 SKUs,
    each one catalog.product row with its id-map row; the second run skipped everything."""
    tenant_id = seed.create_tenant(owner, f"RPApos {uuid.uuid4().hex[:8]}", country="GT")
    connection_id = uuid.uuid4()
    owner.execute(
        "INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted)"
        " VALUES (%s, %s, %s, 'admin', 'v1.k.aaaa.bbbb')",
        (connection_id, tenant_id, f"t{uuid.uuid4().hex[:12]}"),
    )
    for entity, n in (("plu", 3), ("sku", 2)):
        for index in range(n):
            product = owner.execute(
                "INSERT INTO catalog.product (tenant_id, code, name, is_raw_material)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (tenant_id, f"{entity}-{index}", f"{entity} {index}", entity == "sku"),
            ).fetchone()
            assert product is not None
            owner.execute(
                "INSERT INTO rpapos.rpapos_id_map (tenant_id, entity_type, external_id, flowpos_entity_id)"
                " VALUES (%s, %s, %s, %s)",
                (tenant_id, entity, str(index), product["id"]),
            )
    first = _rpapos_run(owner, tenant_id, connection_id, _CATALOG_STATS)
    unchanged = {
        entity: {**stats, "loaded": 0, "skipped": stats["extracted"]}
        for entity, stats in _CATALOG_STATS.items()
    }
    second = _rpapos_run(owner, tenant_id, connection_id, unchanged)
    return RpaposRecord(
        str(tenant_id), expected_products=5, run_id=first, run_status="completed", second_run_id=second
    )


def _rpapos_figures(findings: Findings) -> dict[str, int]:
    return {
        "not completed": findings.rpapos_runs_not_completed,
        "not once": findings.rpapos_not_loaded_once,
        "second writes": findings.rpapos_second_run_writes,
    }


def test_a_clean_rpapos_sync_passes(owner: Conn) -> None:
    record = Record(rpapos=_synced_catalog(owner))
    assert _rpapos_figures(check(owner, record)) == {"not completed": 0, "not once": 0, "second writes": 0}


def test_a_failed_rpapos_run_is_not_completed(owner: Conn) -> None:
    record = Record(rpapos=_synced_catalog(owner))
    assert record.rpapos is not None
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET status = 'failed', last_error = 'planted' WHERE id = %s",
        (record.rpapos.run_id,),
    )
    findings = check(owner, record)
    assert findings.rpapos_runs_not_completed == 1
    assert any("is failed, not completed" in note for note in findings.details)


def test_an_rpapos_run_the_api_did_not_start_is_not_completed(owner: Conn) -> None:
    record = Record(rpapos=_synced_catalog(owner))
    assert record.rpapos is not None
    record.rpapos.start_failures = 1
    assert _rpapos_figures(check(owner, record))["not completed"] == 1


def test_an_extra_product_without_its_id_map_row_is_not_loaded_once(owner: Conn) -> None:
    record = Record(rpapos=_synced_catalog(owner))
    assert record.rpapos is not None
    owner.execute(
        "INSERT INTO catalog.product (tenant_id, code, name) VALUES (%s, 'stray', 'Stray product')",
        (record.rpapos.tenant_id,),
    )
    findings = check(owner, record)
    assert findings.rpapos_not_loaded_once == 1
    assert any("6 catalog.product row(s), 5 PLU/SKU id-map row(s)" in note for note in findings.details)


def test_entity_stats_that_do_not_add_up_are_not_loaded_once(owner: Conn) -> None:
    record = Record(rpapos=_synced_catalog(owner))
    assert record.rpapos is not None
    plu = {**_CATALOG_STATS["plu"], "loaded": 2, "failed": 0}  # one record extracted, never counted
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET per_entity_stats = jsonb_set(per_entity_stats, '{plu}', %s::jsonb)"
        " WHERE id = %s",
        (json.dumps(plu), record.rpapos.run_id),
    )
    assert _rpapos_figures(check(owner, record)) == {"not completed": 0, "not once": 1, "second writes": 0}


def test_a_second_run_that_loads_is_found(owner: Conn) -> None:
    record = Record(rpapos=_synced_catalog(owner))
    assert record.rpapos is not None
    sku = {**_CATALOG_STATS["sku"], "loaded": 1, "skipped": 1}  # a record written again, unchanged
    owner.execute(
        "UPDATE rpapos.rpapos_sync_run SET per_entity_stats = jsonb_set(per_entity_stats, '{sku}', %s::jsonb)"
        " WHERE id = %s",
        (json.dumps(sku), record.rpapos.second_run_id),
    )
    assert _rpapos_figures(check(owner, record))["second writes"] == 1
