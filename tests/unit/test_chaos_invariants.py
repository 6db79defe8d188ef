"""The chaos run's invariant checker finds what it must: a check that cannot fail is a defect."""

import json
import uuid
from typing import Any

import psycopg
import pytest

from local import seed
from local.chaos.invariants import Findings, check
from local.chaos.record import Answer, Record
from local.chaos.workload import FORGED, VALID, Event
from tests.helpers import connected_merchant, insert_raw_event, payment_event, unique_email

Conn = psycopg.Connection[Any]


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
    for name, query in (
        (
            "transaction_id",
            "INSERT INTO pos.transactions (tenant_id, user_id, provider, provider_transaction_id,"
            " amount_minor_units, currency, transaction_at, raw_event_id)"
            " VALUES (%(tenant_id)s, %(user_id)s, 'square', %(payment_id)s, 2500, 'USD', now(), %(raw_id)s)"
            " RETURNING id",
        ),
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
        row = owner.execute(query, {**ids, "payment_id": payment_id}).fetchone()
        assert row is not None
        ids[name] = row["id"]
    record.events[event["event_id"]] = Event(
        event["event_id"], "square", VALID, tenant["name"], json.dumps(event).encode(), 2,
        payment_id=payment_id, email=email, points=25,
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
