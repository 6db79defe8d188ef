"""Every database rule, attacked directly: the database itself must refuse."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from local import seed
from local.database import Database
from pos_gateway.db import tenant_transaction
from tests.helpers import (
    count,
    create_wallet,
    insert_raw_event,
    insert_transaction,
    ledger_entry,
    rule_config,
    unique,
    unique_email,
    wallet_state,
)

CREDITING = "pos_gateway_crediting"
INGEST = "pos_gateway_ingest"


@dataclass(frozen=True)
class TenantData:
    tenant_id: UUID
    user_id: UUID
    wallet_id: UUID
    raw_event_id: UUID
    transaction_id: UUID
    ledger_id: UUID


def tenant_with_data(owner: psycopg.Connection[Any]) -> TenantData:
    tenant_id = seed.create_tenant(owner, unique("Tenant "))
    seed.create_rule(owner, tenant_id)
    user_id = seed.create_user(owner, email=unique_email())
    wallet_id = create_wallet(owner, tenant_id, user_id)
    raw_event_id = insert_raw_event(owner, tenant_id)
    transaction_id = insert_transaction(owner, tenant_id, user_id=user_id, raw_event_id=raw_event_id)
    ledger = ledger_entry(owner, tenant_id, wallet_id, "credit", 25, transaction_id)
    return TenantData(tenant_id, user_id, wallet_id, raw_event_id, transaction_id, ledger["id"])


@pytest.fixture
def tenant_a(owner: psycopg.Connection[Any]) -> TenantData:
    return tenant_with_data(owner)


@pytest.fixture
def tenant_b(owner: psycopg.Connection[Any]) -> TenantData:
    return tenant_with_data(owner)


@pytest.fixture
def crediting_conn(database: Database) -> Iterator[psycopg.Connection[Any]]:
    with database.connect_as(CREDITING) as conn:
        yield conn


@pytest.fixture
def ingest_conn(database: Database) -> Iterator[psycopg.Connection[Any]]:
    with database.connect_as(INGEST) as conn:
        yield conn


def constraint_of(excinfo: pytest.ExceptionInfo[psycopg.Error]) -> str | None:
    return excinfo.value.diag.constraint_name


# ---------------------------------------------------------------- uniqueness


def test_a_transaction_is_credited_at_most_once(owner, tenant_a):
    with pytest.raises(errors.UniqueViolation) as excinfo:
        ledger_entry(owner, tenant_a.tenant_id, tenant_a.wallet_id, "credit", 25, tenant_a.transaction_id)
    assert constraint_of(excinfo) == "wallet_ledger_one_credit_per_transaction"
    assert wallet_state(owner, tenant_a.wallet_id)["points_balance"] == 25


def test_a_transaction_earns_at_most_one_reward_event(owner, tenant_a):
    insert = (
        "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, transaction_id, kind, outcome,"
        " points_earned) VALUES (%s, %s, %s, 'earn', 'credited', 5)"
    )
    params = (tenant_a.tenant_id, tenant_a.wallet_id, tenant_a.transaction_id)
    owner.execute(insert, params)
    with pytest.raises(errors.UniqueViolation) as excinfo:
        owner.execute(insert, params)
    assert constraint_of(excinfo) == "reward_events_one_earn_per_transaction"


def test_a_provider_transaction_is_recorded_once_per_tenant(owner, tenant_a, tenant_b):
    payment_id = unique("pay_")
    insert_transaction(owner, tenant_a.tenant_id, provider_transaction_id=payment_id)
    with pytest.raises(errors.UniqueViolation) as excinfo:
        insert_transaction(owner, tenant_a.tenant_id, provider_transaction_id=payment_id, amount=1)
    assert constraint_of(excinfo) == "transactions_provider_txn_key"
    # The key is per tenant: another tenant may have a payment with the same provider id.
    insert_transaction(owner, tenant_b.tenant_id, provider_transaction_id=payment_id)


def test_a_tenant_has_one_active_rule(owner, tenant_a):
    with pytest.raises(errors.UniqueViolation) as excinfo:
        owner.execute(
            "INSERT INTO loyalty.reward_rules (tenant_id, rule_config, is_active, activated_at)"
            " VALUES (%s, %s, true, now())",
            (tenant_a.tenant_id, Jsonb(rule_config())),
        )
    assert constraint_of(excinfo) == "reward_rules_one_active_per_tenant"


def test_rule_versions_increment_per_tenant(owner):
    first, second = (seed.create_tenant(owner, unique("Tenant ")) for _ in range(2))
    for _ in range(3):
        seed.create_rule(owner, first)
    seed.create_rule(owner, second)
    rows = owner.execute(
        "SELECT tenant_id, version, is_active FROM loyalty.reward_rules WHERE tenant_id IN (%s, %s)"
        " ORDER BY tenant_id = %s DESC, version",
        (first, second, first),
    ).fetchall()
    assert [(r["tenant_id"], r["version"], r["is_active"]) for r in rows] == [
        (first, 1, False),
        (first, 2, False),
        (first, 3, True),
        (second, 1, True),
    ]
    with pytest.raises(errors.UniqueViolation) as excinfo:
        owner.execute(
            "INSERT INTO loyalty.reward_rules (tenant_id, version, is_active, rule_config)"
            " VALUES (%s, 2, false, '{}')",
            (first,),
        )
    assert constraint_of(excinfo) == "reward_rules_tenant_version_key"


# ---------------------------------------------------------------- the ledger and the balance


def test_the_ledger_trigger_maintains_balance_after_and_version(owner, tenant_a):
    wallet = tenant_a.wallet_id
    before = wallet_state(owner, wallet)
    assert before["points_balance"] == 25
    balances = [
        ledger_entry(owner, tenant_a.tenant_id, wallet, kind, points)["balance_after"]
        for kind, points in [("credit", 10), ("debit", 30), ("credit", 7), ("debit", 12)]
    ]
    assert balances == [35, 5, 12, 0]
    after = wallet_state(owner, wallet)
    assert after["points_balance"] == 0
    assert after["version"] == before["version"] + 4


def test_a_client_supplied_balance_after_is_overwritten(owner, tenant_a):
    row = owner.execute(
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, balance_after)"
        " VALUES (%s, %s, 'credit', 5, 999999) RETURNING balance_after",
        (tenant_a.tenant_id, tenant_a.wallet_id),
    ).fetchone()
    assert row["balance_after"] == 30


def test_a_debit_larger_than_the_balance_is_refused(owner, tenant_a):
    with pytest.raises(errors.CheckViolation) as excinfo:
        ledger_entry(owner, tenant_a.tenant_id, tenant_a.wallet_id, "debit", 26)
    assert constraint_of(excinfo) == "wallets_points_balance_non_negative"
    assert wallet_state(owner, tenant_a.wallet_id)["points_balance"] == 25
    debits = owner.execute(
        "SELECT count(*) AS n FROM loyalty.wallet_ledger WHERE wallet_id = %s AND entry_type = 'debit'",
        (tenant_a.wallet_id,),
    ).fetchone()
    assert debits["n"] == 0


def test_a_ledger_entry_cannot_point_at_another_tenants_wallet(owner, tenant_a, tenant_b):
    with pytest.raises(errors.ForeignKeyViolation):
        ledger_entry(owner, tenant_a.tenant_id, tenant_b.wallet_id, "credit", 5)
    assert wallet_state(owner, tenant_b.wallet_id)["points_balance"] == 25


@pytest.mark.parametrize("points", [0, -5])
def test_ledger_points_are_positive(owner, tenant_a, points):
    with pytest.raises(errors.CheckViolation):
        ledger_entry(owner, tenant_a.tenant_id, tenant_a.wallet_id, "credit", points)


# ---------------------------------------------------------------- append-only, even for a superuser


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE loyalty.wallet_ledger SET points = 1000 WHERE id = %(ledger_id)s",
        "UPDATE loyalty.wallet_ledger SET description = 'fixed' WHERE id = %(ledger_id)s",
        "DELETE FROM loyalty.wallet_ledger WHERE id = %(ledger_id)s",
        "TRUNCATE loyalty.wallet_ledger CASCADE",
    ],
    ids=["update-points", "update-description", "delete", "truncate"],
)
def test_the_ledger_is_append_only_even_for_the_owner(owner, tenant_a, statement):
    is_superuser = owner.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert is_superuser["rolsuper"] is True
    with pytest.raises(errors.RestrictViolation, match=r"loyalty\.wallet_ledger is append-only"):
        owner.execute(statement, {"ledger_id": tenant_a.ledger_id})
    row = owner.execute(
        "SELECT points, description FROM loyalty.wallet_ledger WHERE id = %s", (tenant_a.ledger_id,)
    ).fetchone()
    assert row == {"points": 25, "description": None}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE loyalty.reward_events SET points_earned = 1000 WHERE id = %(id)s",
        "DELETE FROM loyalty.reward_events WHERE id = %(id)s",
    ],
    ids=["update", "delete"],
)
def test_reward_events_are_append_only(owner, tenant_a, statement):
    row = owner.execute(
        "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, kind, outcome, points_earned)"
        " VALUES (%s, %s, 'earn', 'credited', 5) RETURNING id",
        (tenant_a.tenant_id, tenant_a.wallet_id),
    ).fetchone()
    with pytest.raises(errors.RestrictViolation, match=r"loyalty\.reward_events is append-only"):
        owner.execute(statement, {"id": row["id"]})


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.admin_audit_logs SET reason = 'rewritten' WHERE id = %(id)s",
        "UPDATE audit.admin_audit_logs SET after_state = '{}' WHERE id = %(id)s",
        "DELETE FROM audit.admin_audit_logs WHERE id = %(id)s",
        "TRUNCATE audit.admin_audit_logs",
    ],
    ids=["update-reason", "update-state", "delete", "truncate"],
)
def test_admin_audit_logs_are_append_only(owner, tenant_a, statement):
    row = owner.execute(
        "INSERT INTO audit.admin_audit_logs (actor_user_id, tenant_id, action, target_entity_id,"
        " target_entity_type, before_state, after_state, reason)"
        " VALUES (%s, %s, 'wallet.freeze', %s, 'wallet', %s, %s, 'fraud check') RETURNING id",
        (
            tenant_a.user_id,
            tenant_a.tenant_id,
            str(tenant_a.wallet_id),
            Jsonb({"status": "active"}),
            Jsonb({"status": "frozen"}),
        ),
    ).fetchone()
    with pytest.raises(errors.RestrictViolation, match=r"audit\.admin_audit_logs is append-only"):
        owner.execute(statement, {"id": row["id"]})
    kept = owner.execute("SELECT reason FROM audit.admin_audit_logs WHERE id = %s", (row["id"],)).fetchone()
    assert kept == {"reason": "fraud check"}


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("raw_payload", '{"forged": true}'),
        ("raw_body", "{}"),
        ("provider_event_id", "another-event"),
        ("merchant_account_id", "MLOTHER"),
        ("signature_header", "resigned"),
        ("event_type", "payment.updated"),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_a_raw_event_cannot_be_rewritten(owner, tenant_a, column, value):
    with pytest.raises(errors.RestrictViolation, match="only the processing marker may change"):
        owner.execute(
            psycopg.sql.SQL("UPDATE pos.pos_webhook_events_raw SET {} = %s WHERE id = %s").format(
                psycopg.sql.Identifier(column)
            ),
            (value, tenant_a.raw_event_id),
        )


def test_a_raw_event_cannot_move_to_another_tenant(owner, tenant_a, tenant_b):
    with pytest.raises(errors.RestrictViolation):
        owner.execute(
            "UPDATE pos.pos_webhook_events_raw SET tenant_id = %s WHERE id = %s",
            (tenant_b.tenant_id, tenant_a.raw_event_id),
        )


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM pos.pos_webhook_events_raw WHERE id = %(id)s",
        "TRUNCATE pos.pos_webhook_events_raw CASCADE",
    ],
    ids=["delete", "truncate"],
)
def test_a_raw_event_cannot_be_deleted(owner, tenant_a, statement):
    with pytest.raises(errors.RestrictViolation, match=r"pos\.pos_webhook_events_raw is append-only"):
        owner.execute(statement, {"id": tenant_a.raw_event_id})
    assert owner.execute(
        "SELECT 1 FROM pos.pos_webhook_events_raw WHERE id = %s", (tenant_a.raw_event_id,)
    ).fetchone()


def test_only_the_processing_marker_of_a_raw_event_changes_and_never_back(owner, tenant_a):
    raw_id = tenant_a.raw_event_id
    owner.execute(
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now(),"
        " processing_outcome = 'credited' WHERE id = %s",
        (raw_id,),
    )
    row = owner.execute(
        "SELECT processed, processing_outcome, updated_at > created_at AS touched"
        " FROM pos.pos_webhook_events_raw WHERE id = %s",
        (raw_id,),
    ).fetchone()
    assert row == {"processed": True, "processing_outcome": "credited", "touched": True}
    with pytest.raises(errors.RestrictViolation, match="cannot be marked unprocessed"):
        owner.execute(
            "UPDATE pos.pos_webhook_events_raw SET processed = false, processed_at = NULL WHERE id = %s",
            (raw_id,),
        )


def test_processed_and_processed_at_go_together(owner, tenant_a):
    with pytest.raises(errors.CheckViolation) as excinfo:
        owner.execute(
            "UPDATE pos.pos_webhook_events_raw SET processed = true WHERE id = %s", (tenant_a.raw_event_id,)
        )
    assert constraint_of(excinfo) == "pos_webhook_events_raw_processed_at"


def test_a_raw_event_needs_a_tenant_or_a_quarantine_reason(owner):
    with pytest.raises(errors.CheckViolation) as excinfo:
        owner.execute(
            "INSERT INTO pos.pos_webhook_events_raw (provider, event_type, provider_event_id,"
            " merchant_account_id, raw_payload, raw_body)"
            " VALUES ('square', 'payment.created', %s, 'M', '{}', '{}')",
            (unique("evt-"),),
        )
    assert constraint_of(excinfo) == "pos_webhook_events_raw_tenant_or_quarantine"


# ---------------------------------------------------------------- least privilege


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE loyalty.wallets SET points_balance = 1000000 WHERE id = %(wallet)s",
        "UPDATE loyalty.wallets SET status = 'active' WHERE id = %(wallet)s",
        "UPDATE loyalty.wallet_ledger SET points = 1000 WHERE id = %(ledger)s",
        "DELETE FROM loyalty.wallet_ledger WHERE id = %(ledger)s",
        "DELETE FROM pos.transactions WHERE id = %(transaction)s",
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, balance_after)"
        " VALUES (%(tenant)s, %(wallet)s, 'credit', 1, 1000000)",
        "UPDATE pos.pos_webhook_events_raw SET raw_payload = '{}' WHERE id = %(raw)s",
        "UPDATE loyalty.reward_rules SET rule_config = '{}' WHERE tenant_id = %(tenant)s",
    ],
    ids=[
        "wallet-balance",
        "wallet-status",
        "ledger-update",
        "ledger-delete",
        "transaction-delete",
        "ledger-balance-after",
        "raw-payload",
        "rule-config",
    ],
)
def test_the_crediting_role_cannot_write_outside_its_grants(crediting_conn, owner, tenant_a, statement):
    params = {
        "wallet": tenant_a.wallet_id,
        "ledger": tenant_a.ledger_id,
        "transaction": tenant_a.transaction_id,
        "tenant": tenant_a.tenant_id,
        "raw": tenant_a.raw_event_id,
    }
    with (
        pytest.raises(errors.InsufficientPrivilege, match="permission denied"),
        tenant_transaction(crediting_conn, tenant_a.tenant_id),
    ):
        crediting_conn.execute(statement, params)
    assert wallet_state(owner, tenant_a.wallet_id)["points_balance"] == 25


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM pos.transactions",
        "SELECT id FROM pos.pos_connections",
        "SELECT access_token_enc FROM pos.pos_connections",
        "SELECT raw_payload FROM pos.pos_webhook_events_raw",
        "SELECT * FROM loyalty.wallets",
        "SELECT * FROM identity.users",
        "UPDATE pos.pos_webhook_events_raw SET processed = true, processed_at = now()",
    ],
)
def test_the_ingest_role_sees_only_what_ingest_needs(ingest_conn, tenant_a, statement):
    with (
        pytest.raises(errors.InsufficientPrivilege, match="permission denied"),
        tenant_transaction(ingest_conn, tenant_a.tenant_id),
    ):
        ingest_conn.execute(statement)


# ---------------------------------------------------------------- row-level security

TENANT_TABLES = (
    "loyalty.reward_rules",
    "loyalty.wallet_ledger",
    "loyalty.wallets",
    "pos.pos_webhook_events_raw",
    "pos.transactions",
)


def visible(conn: psycopg.Connection[Any], table: str, tenant_id: UUID) -> int:
    statement = psycopg.sql.SQL("SELECT count(*) AS n FROM {} WHERE tenant_id = %s").format(
        psycopg.sql.SQL(table)
    )
    return count(conn, statement, (tenant_id,))


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_another_tenants_rows_are_invisible(crediting_conn, tenant_a, tenant_b, table):
    with tenant_transaction(crediting_conn, tenant_a.tenant_id):
        assert visible(crediting_conn, table, tenant_a.tenant_id) >= 1
        assert visible(crediting_conn, table, tenant_b.tenant_id) == 0


def test_another_tenants_rows_cannot_be_fetched_by_id(crediting_conn, tenant_a, tenant_b):
    with tenant_transaction(crediting_conn, tenant_a.tenant_id):
        rows = [
            crediting_conn.execute(
                "SELECT id FROM pos.transactions WHERE id = %s", (tenant_b.transaction_id,)
            ),
            crediting_conn.execute("SELECT id FROM loyalty.wallets WHERE id = %s", (tenant_b.wallet_id,)),
            crediting_conn.execute(
                "SELECT id FROM pos.pos_webhook_events_raw WHERE id = %s", (tenant_b.raw_event_id,)
            ),
            crediting_conn.execute("SELECT id FROM identity.tenants WHERE id = %s", (tenant_b.tenant_id,)),
        ]
        assert [cursor.fetchall() for cursor in rows] == [[], [], [], []]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO pos.transactions (tenant_id, provider, provider_transaction_id, amount_minor_units,"
        " transaction_at) VALUES (%(b)s, 'square', 'pay_cross_tenant', 100, now())",
        "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%(b)s, %(user)s)",
        "INSERT INTO loyalty.reward_events (tenant_id, wallet_id, kind, outcome)"
        " VALUES (%(b)s, %(b_wallet)s, 'earn', 'credited')",
        "INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points)"
        " VALUES (%(b)s, %(b_wallet)s, 'credit', 1000)",
        "INSERT INTO pos.idempotency_keys (key, tenant_id, handler) VALUES ('square:x:cross', %(b)s, 'test')",
    ],
    ids=["transaction", "wallet", "reward-event", "ledger", "idempotency-key"],
)
def test_writing_a_row_for_another_tenant_is_refused(crediting_conn, owner, tenant_a, tenant_b, statement):
    params = {"b": tenant_b.tenant_id, "b_wallet": tenant_b.wallet_id, "user": seed.create_user(owner)}
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        tenant_transaction(crediting_conn, tenant_a.tenant_id),
    ):
        crediting_conn.execute(statement, params)
    assert wallet_state(owner, tenant_b.wallet_id)["points_balance"] == 25


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_without_a_tenant_context_no_tenant_rows_are_visible(crediting_conn, tenant_a, table):
    with tenant_transaction(crediting_conn, None):
        count = crediting_conn.execute(
            psycopg.sql.SQL("SELECT count(*) AS n FROM {} WHERE tenant_id IS NOT NULL").format(
                psycopg.sql.SQL(table)
            )
        ).fetchone()
        assert count["n"] == 0
        assert crediting_conn.execute("SELECT count(*) AS n FROM identity.tenants").fetchone()["n"] == 0


def test_the_tenant_setting_does_not_outlive_its_transaction(crediting_conn, tenant_a):
    with tenant_transaction(crediting_conn, tenant_a.tenant_id):
        assert visible(crediting_conn, "pos.transactions", tenant_a.tenant_id) >= 1
    assert visible(crediting_conn, "pos.transactions", tenant_a.tenant_id) == 0


def test_the_crediting_role_reads_its_own_tenant_through_the_data_layer(crediting_conn, tenant_a):
    with tenant_transaction(crediting_conn, tenant_a.tenant_id):
        wallet = crediting_conn.execute(
            "SELECT points_balance FROM loyalty.wallets WHERE id = %s", (tenant_a.wallet_id,)
        ).fetchone()
        rules = crediting_conn.execute("SELECT rule_config FROM loyalty.reward_rules").fetchall()
    assert wallet == {"points_balance": 25}
    assert [rule["rule_config"]["roundingPolicy"] for rule in rules] == ["floor"]
