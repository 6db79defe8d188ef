"""Rule versions: publishing retires the previous one; each sale is credited by the rules of its time."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import errors
from pydantic import ValidationError

from local import seed
from pos_gateway.loyalty.rulebook import publish_rule_version, rule_in_force
from pos_gateway.messages import CreditRequest
from tests.helpers import connected_merchant, credit_request, payment_event, store_event, unique_email

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def double_rate() -> dict[str, object]:
    return {**seed.DEFAULT_RULE, "conversionRate": 2.0}


def test_publishing_retires_the_active_version_in_the_same_transaction(owner):
    merchant = connected_merchant(owner)

    second = publish_rule_version(owner, merchant.tenant_id, double_rate(), APRIL)

    rows = owner.execute(
        "SELECT version, is_active, activated_at IS NOT NULL AS activated FROM loyalty.reward_rules"
        " WHERE tenant_id = %s ORDER BY version",
        (merchant.tenant_id,),
    ).fetchall()
    assert [(r["version"], r["is_active"], r["activated"]) for r in rows] == [
        (1, False, True),
        (2, True, True),
    ]
    assert second.version == 2


def test_a_failed_publication_leaves_the_active_version_alone(owner):
    merchant = connected_merchant(owner)
    with pytest.raises(errors.ForeignKeyViolation):
        publish_rule_version(owner, merchant.tenant_id, double_rate(), APRIL, created_by=uuid.uuid4())

    active = owner.execute(
        "SELECT version FROM loyalty.reward_rules WHERE tenant_id = %s AND is_active", (merchant.tenant_id,)
    ).fetchall()
    assert [r["version"] for r in active] == [1]


def test_an_invalid_config_is_refused_with_field_level_errors(owner):
    merchant = connected_merchant(owner)
    with pytest.raises(ValidationError) as excinfo:
        publish_rule_version(
            owner, merchant.tenant_id, {**seed.DEFAULT_RULE, "maxRedemptionPercentage": 150}, APRIL
        )
    assert [error["loc"] for error in excinfo.value.errors()] == [("maxRedemptionPercentage",)]
    assert owner.execute(
        "SELECT count(*) AS n FROM loyalty.reward_rules WHERE tenant_id = %s", (merchant.tenant_id,)
    ).fetchone() == {"n": 1}


def test_the_version_in_force_follows_effective_from(owner):
    merchant = connected_merchant(owner)  # version 1 from seed.PROGRAM_START
    publish_rule_version(owner, merchant.tenant_id, double_rate(), APRIL)

    def version_at(at: datetime) -> int | None:
        found = rule_in_force(owner, merchant.tenant_id, at)
        return found.version if found else None

    assert version_at(seed.PROGRAM_START - timedelta(seconds=1)) is None
    assert version_at(MARCH) == 1
    assert version_at(APRIL - timedelta(microseconds=1)) == 1
    assert version_at(APRIL) == 2


def test_a_late_event_is_credited_by_the_version_of_its_time(owner, store, crediting):
    # Given a sale in March, stored but not processed before April's rule (2 per dollar) came
    merchant = connected_merchant(owner)
    email = unique_email()
    seed.create_user(owner, email=email)

    def sale(at: datetime) -> CreditRequest:
        event = payment_event(merchant_id=merchant.merchant_id, email=email, amount=5000, created_at=at)
        return credit_request(store_event(store, event))

    march_sale = sale(MARCH)
    publish_rule_version(owner, merchant.tenant_id, double_rate(), APRIL)
    april_sale = sale(APRIL + timedelta(days=1))

    # When both are processed now
    march = crediting.process(march_sale)
    april = crediting.process(april_sale)

    # Then each earned by its own version, and its reward event says which
    assert (march.points_earned, april.points_earned) == (50, 100)
    versions = owner.execute(
        "SELECT e.transaction_id, r.version FROM loyalty.reward_events e"
        " JOIN loyalty.reward_rules r ON r.id = e.rule_version_id WHERE e.transaction_id = ANY(%s)",
        ([march.transaction_id, april.transaction_id],),
    ).fetchall()
    assert {row["transaction_id"]: row["version"] for row in versions} == {
        march.transaction_id: 1,
        april.transaction_id: 2,
    }


def test_an_active_version_must_have_been_activated(owner):
    merchant = connected_merchant(owner, with_rule=False)
    with pytest.raises(errors.CheckViolation, match="reward_rules_active_was_activated"):
        owner.execute(
            "INSERT INTO loyalty.reward_rules (tenant_id, rule_config, is_active) VALUES (%s, '{}', true)",
            (merchant.tenant_id,),
        )
