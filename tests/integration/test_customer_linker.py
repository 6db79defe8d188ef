"""The scheduled customer linker against real Postgres: what it finds, links, credits, and may touch."""

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString
from uuid import UUID

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import errors
from psycopg.types.json import Jsonb

from local import seed
from local.database import Database
from pos_gateway.db import ConnectionFactory, queries, tenant_transaction
from pos_gateway.loyalty import linking
from pos_gateway.loyalty.linker import CustomerLinker, LinkCandidates, LinkerPolicy, LinkPair, LinkReport
from pos_gateway.loyalty.linking import LinkResult, link_member
from pos_gateway.loyalty.rulebook import publish_rule_version
from tests.helpers import (
    FakeLambdaContext,
    Merchant,
    clear_parameter_caches,
    connected_merchant,
    count,
    credit_request,
    fresh_import,
    one,
    payment_event,
    store_event,
    unique,
    unique_email,
)

LINKER = "pos_gateway_linker"
CANDIDATES_FUNCTION = "pos.customer_link_candidates(uuid, uuid, integer)"
SCHEDULED_EVENT = Path(__file__).resolve().parents[2] / "events" / "customer_linker" / "scheduled.json"
LINKING_SQL = queries.load(linking.__file__, "linking.sql")
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)

Connection = psycopg.Connection[Any]


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def linker_connections(database: Database) -> Iterator[ConnectionFactory]:
    connections = database.connections(LINKER)
    yield connections
    connections.close()


@pytest.fixture(autouse=True)
def _nothing_to_link(owner: Connection) -> None:
    """Each test starts with no pair to link: the linker looks across every tenant."""
    owner.execute(
        "UPDATE identity.users u SET deleted_at = now() WHERE u.id IN"
        " (SELECT c.user_id FROM pos.customer_link_candidates(NULL, NULL, 1000) c)"
    )


def linker(connections: ConnectionFactory, *, batch_size: int = 100, max_pairs: int = 500) -> CustomerLinker:
    return CustomerLinker(connections, LinkerPolicy(batch_size=batch_size, max_pairs=max_pairs))


def anonymous_sale(
    store: Any, crediting: Any, merchant: Merchant, email: str, amount: int, at: datetime
) -> None:
    """A Square sale whose buyer has no account yet, through ingest's store and crediting."""
    event = payment_event(merchant_id=merchant.merchant_id, email=email, amount=amount, created_at=at)
    result = crediting.process(credit_request(store_event(store, event)))
    assert result.outcome == "anonymous"


def sale_with(
    owner: Connection, tenant_id: UUID, customer: dict[str, str] | None, *, user_id: UUID | None = None
) -> UUID:
    """A transaction written directly, with any customer reference (a mobile, say)."""
    row = owner.execute(
        "INSERT INTO pos.transactions (tenant_id, user_id, provider, provider_transaction_id,"
        " amount_minor_units, currency, transaction_at, customer_ref)"
        " VALUES (%s, %s, 'square', %s, 4200, 'USD', %s, %s) RETURNING id",
        (tenant_id, user_id, unique("pay_"), MARCH, Jsonb(customer) if customer is not None else None),
    ).fetchone()
    return UUID(str(one(row)["id"]))


def unique_mobile() -> str:
    return "+1415" + str(int(unique("")[:6], 16) % 10_000_000).zfill(7)


def pairs_in(candidates: list[LinkPair], *tenants: Merchant) -> set[tuple[UUID, UUID]]:
    ids = {t.tenant_id for t in tenants}
    return {(p.tenant_id, p.user_id) for p in candidates if p.tenant_id in ids}


def balance(owner: Connection, tenant_id: UUID, user_id: UUID) -> int:
    row = owner.execute(
        "SELECT points_balance FROM loyalty.wallets WHERE tenant_id = %s AND user_id = %s",
        (tenant_id, user_id),
    ).fetchone()
    return int(row["points_balance"]) if row else 0


def ledger_size(owner: Connection) -> int:
    return count(owner, "SELECT count(*) AS n FROM loyalty.wallet_ledger")


# ---------------------------------------------------------------- the candidates function


def test_candidates_are_pairs_across_tenants_of_active_members_and_unclaimed_sales(owner, linker_connections):
    cafe, bakery = connected_merchant(owner), connected_merchant(owner)
    alice, bob_mobile = unique_email("alice"), unique_mobile()
    alice_id = seed.create_user(owner, email=alice)
    bob_id = seed.create_user(owner, email=unique_email("bob"), mobile=bob_mobile)
    # Given Alice's sales in both tenants (one with her email in capitals), Bob's by mobile at the bakery,
    sale_with(owner, cafe.tenant_id, {"email": alice.upper()})
    sale_with(owner, bakery.tenant_id, {"email": alice})
    sale_with(owner, bakery.tenant_id, {"mobile": bob_mobile})
    # sales of members who may not claim (suspended, pending approval, deleted),
    for status, deleted in (("suspended", False), ("pending_approval", False), ("active", True)):
        email = unique_email(status)
        user_id = seed.create_user(owner, email=email, status=status)
        if deleted:
            owner.execute("UPDATE identity.users SET deleted_at = now() WHERE id = %s", (user_id,))
        sale_with(owner, cafe.tenant_id, {"email": email})
    # a sale already claimed by a member, a sale of nobody known, and one with no customer at all
    carol = unique_email("carol")
    carol_id = seed.create_user(owner, email=carol)
    sale_with(owner, cafe.tenant_id, {"email": carol}, user_id=carol_id)
    sale_with(owner, cafe.tenant_id, {"email": unique_email("walkin")})
    sale_with(owner, cafe.tenant_id, None)

    # When the linker asks for candidates
    found = LinkCandidates(linker_connections).page(None, 1000)

    # Then only the active members' unclaimed sales make pairs, one per tenant and member
    assert pairs_in(found, cafe, bakery) == {
        (cafe.tenant_id, alice_id),
        (bakery.tenant_id, alice_id),
        (bakery.tenant_id, bob_id),
    }
    assert len(found) == len(set(found)) == 3
    # in (tenant, user) order, so a run can page on past any pair
    assert found == sorted(found, key=lambda p: (p.tenant_id, p.user_id))
    assert LinkCandidates(linker_connections).page(found[0], 1000) == found[1:]
    assert LinkCandidates(linker_connections).page(None, 2) == found[:2]


@pytest.mark.parametrize(
    ("after_tenant", "after_user", "limit"),
    [(None, None, 0), (None, None, 1001), (None, None, None), (UUID(int=1), None, 10)],
)
def test_the_candidates_function_refuses_nonsense_parameters(database, after_tenant, after_user, limit):
    with database.connect_as(LINKER) as conn, pytest.raises(errors.InvalidParameterValue):
        conn.execute(
            "SELECT * FROM pos.customer_link_candidates(%s::uuid, %s::uuid, %s::integer)",
            (after_tenant, after_user, limit),
        )


def test_lookups_by_contact_use_the_unclaimed_contact_indexes(owner):
    # The candidates function probes a member's contact in every tenant; link_member looks up one
    # tenant's sales of a member. Among a few thousand walk-ins, both go through the contact-first
    # partial indexes (written and analyzed in a transaction that is rolled back).
    merchant = connected_merchant(owner)
    probe = (
        "SELECT DISTINCT t.tenant_id FROM pos.transactions t"
        " WHERE lower(t.customer_ref ->> 'email') = lower(%(email)s) AND t.user_id IS NULL"
    )
    params = {"email": "w17@example.com", "mobile": "+14155550017", "tenant_id": merchant.tenant_id}
    with owner.transaction(force_rollback=True):
        owner.execute(
            "INSERT INTO pos.transactions (tenant_id, provider, provider_transaction_id, amount_minor_units,"
            " transaction_at, customer_ref)"
            " SELECT %s, 'square', 'walkin_' || n, 100, now(), CASE WHEN n %% 2 = 0"
            "   THEN jsonb_build_object('email', 'w' || n || '@example.com')"
            "   ELSE jsonb_build_object('mobile', '+1415555' || lpad(n::text, 4, '0')) END"
            "  FROM generate_series(1, 4000) AS n",
            (merchant.tenant_id,),
        )
        owner.execute("ANALYZE pos.transactions")
        plans = {
            name: "\n".join(row["QUERY PLAN"] for row in owner.execute(f"EXPLAIN {query}", params).fetchall())
            for name, query in (("probe", probe), ("link", LINKING_SQL.unclaimed_transactions.sql))
        }
    assert "transactions_unclaimed_email_contact_idx" in plans["probe"]
    assert "transactions_unclaimed_email_contact_idx" in plans["link"]
    assert "transactions_unclaimed_mobile_contact_idx" in plans["link"]


# ---------------------------------------------------------------- linking


def test_the_linker_claims_and_credits_each_sale_once_by_the_rules_of_its_time(
    owner, store, crediting, linker_connections
):
    # Given sales to a customer without an account at two merchants, a 2-per-dollar rule from April
    cafe, bakery = connected_merchant(owner), connected_merchant(owner)
    email = unique_email("dana")
    anonymous_sale(store, crediting, cafe, email.upper(), 5000, MARCH)
    publish_rule_version(owner, cafe.tenant_id, {**seed.DEFAULT_RULE, "conversionRate": 2.0}, APRIL)
    anonymous_sale(store, crediting, cafe, email, 5000, APRIL + timedelta(days=1))
    anonymous_sale(store, crediting, bakery, email, 1234, MARCH)
    # When she joins and the linker runs
    user_id = seed.create_user(owner, email=email)
    report = linker(linker_connections).run()

    # Then each sale is hers, credited by the version of its time: 50 + 100 at the cafe, 12 at the bakery
    assert report == LinkReport(
        pairs=2, pairs_linked=2, transactions_claimed=3, points_credited=162, failures=0, batches=1
    )
    assert (balance(owner, cafe.tenant_id, user_id), balance(owner, bakery.tenant_id, user_id)) == (150, 12)
    versions = owner.execute(
        "SELECT r.version, e.points_earned FROM loyalty.reward_events e"
        " JOIN loyalty.reward_rules r ON r.id = e.rule_version_id"
        " WHERE e.tenant_id = %s AND e.kind = 'earn' ORDER BY r.version",
        (cafe.tenant_id,),
    ).fetchall()
    assert versions == [{"version": 1, "points_earned": 50}, {"version": 2, "points_earned": 100}]

    # and a second run finds nothing and changes nothing
    ledger = ledger_size(owner)
    assert linker(linker_connections).run() == LinkReport(batches=1)
    assert ledger_size(owner) == ledger
    assert balance(owner, cafe.tenant_id, user_id) == 150


def test_concurrent_linker_runs_credit_once(database, owner, store, crediting):
    merchant = connected_merchant(owner)
    emails = [unique_email(f"m{n}") for n in range(3)]
    for email in emails:
        for _ in range(2):
            anonymous_sale(store, crediting, merchant, email, 1000, MARCH)
    members = [seed.create_user(owner, email=email) for email in emails]
    runs = 4
    barrier = threading.Barrier(runs)

    def run(_: int) -> LinkReport:
        connections = database.connections(LINKER)
        connections.get()  # connected before the barrier, so the runs themselves overlap
        barrier.wait(timeout=30)
        try:
            return linker(connections).run()
        finally:
            connections.close()

    with ThreadPoolExecutor(max_workers=runs) as pool:
        reports = list(pool.map(run, range(runs)))

    assert sum(r.transactions_claimed for r in reports) == 6
    assert sum(r.points_credited for r in reports) == 60
    assert sum(r.failures for r in reports) == 0
    assert [balance(owner, merchant.tenant_id, m) for m in members] == [20, 20, 20]
    assert (
        count(
            owner,
            "SELECT count(*) AS n FROM loyalty.reward_events WHERE tenant_id = %s AND kind = 'earn'",
            (merchant.tenant_id,),
        )
        == 6
    )


def test_a_run_is_bounded_and_pages_on_past_a_pair_that_fails(owner, linker_connections):
    merchant = connected_merchant(owner)
    emails = [unique_email(f"p{n}") for n in range(4)]
    for email in emails:
        sale_with(owner, merchant.tenant_id, {"email": email})
    members = {seed.create_user(owner, email=email) for email in emails}
    ordered = [p.user_id for p in LinkCandidates(linker_connections).page(None, 1000)]
    poison = ordered[0]

    def link(connections: ConnectionFactory, tenant_id: UUID, user_id: UUID) -> LinkResult:
        if user_id == poison:
            raise LookupError("wallet not visible")
        return link_member(connections, tenant_id, user_id)

    # When a run may take 3 pairs, 2 a page, and the first pair fails
    bounded = CustomerLinker(linker_connections, LinkerPolicy(batch_size=2, max_pairs=3), link=link)
    first = bounded.run()

    # Then it counts the failure and links the two pairs after it
    assert first == LinkReport(
        pairs=3, pairs_linked=2, transactions_claimed=2, points_credited=84, failures=1, batches=2
    )
    # and the next (unbounded) run links the last one, leaving the failing pair for later
    second = CustomerLinker(linker_connections, LinkerPolicy(batch_size=2, max_pairs=10), link=link).run()
    assert (second.pairs_linked, second.failures) == (1, 1)
    assert {p.user_id for p in LinkCandidates(linker_connections).page(None, 1000)} == {poison}
    assert members == set(ordered)


def test_a_run_stops_taking_pairs_when_time_runs_short(owner, linker_connections):
    merchant = connected_merchant(owner)
    email = unique_email("late")
    sale_with(owner, merchant.tenant_id, {"email": email})
    seed.create_user(owner, email=email)
    policy = LinkerPolicy(batch_size=10, max_pairs=10, reserve_milliseconds=5_000)

    report = CustomerLinker(linker_connections, policy).run(time_left_ms=lambda: 4_000)

    assert report == LinkReport(stopped_early=True)
    assert len(LinkCandidates(linker_connections).page(None, 10)) == 1


# ---------------------------------------------------------------- least privilege


EXPECTED_COLUMN_GRANTS = {
    ("identity.users", "SELECT"): {"id", "email", "mobile", "status", "deleted_at"},
    ("pos.transactions", "SELECT"): {
        "id",
        "tenant_id",
        "user_id",
        "provider",
        "provider_transaction_id",
        "amount_minor_units",
        "currency",
        "customer_ref",
        "transaction_at",
    },
    ("pos.transactions", "UPDATE"): {"user_id"},
    ("loyalty.wallets", "SELECT"): {"id", "tenant_id", "user_id", "status"},
    ("loyalty.wallets", "INSERT"): {"tenant_id", "user_id"},
    ("loyalty.reward_events", "SELECT"): {"id"},
    ("loyalty.reward_events", "INSERT"): {
        "tenant_id",
        "wallet_id",
        "transaction_id",
        "rule_version_id",
        "kind",
        "outcome",
        "points_earned",
    },
    ("loyalty.wallet_ledger", "SELECT"): {"balance_after"},
    ("loyalty.wallet_ledger", "INSERT"): {
        "tenant_id",
        "wallet_id",
        "entry_type",
        "points",
        "description",
        "source_transaction_id",
        "reward_event_id",
    },
}


def test_the_linker_role_holds_exactly_the_grants_linking_needs(owner):
    table_grants = owner.execute(
        "SELECT table_schema || '.' || table_name AS tbl, privilege_type"
        " FROM information_schema.role_table_grants WHERE grantee = %s",
        (LINKER,),
    ).fetchall()
    # Column grants that a table grant does not already cover
    column_grants = owner.execute(
        "SELECT c.table_schema || '.' || c.table_name AS tbl, c.privilege_type, c.column_name"
        " FROM information_schema.role_column_grants c WHERE c.grantee = %s AND NOT EXISTS"
        " (SELECT 1 FROM information_schema.role_table_grants t WHERE t.grantee = c.grantee"
        "  AND (t.table_schema, t.table_name, t.privilege_type)"
        "    = (c.table_schema, c.table_name, c.privilege_type))",
        (LINKER,),
    ).fetchall()
    found: dict[tuple[str, str], set[str]] = {}
    for row in column_grants:
        found.setdefault((row["tbl"], row["privilege_type"]), set()).add(row["column_name"])

    # Whole rule rows (RLS keeps them to the tenant); every other table column by column
    assert table_grants == [{"tbl": "loyalty.reward_rules", "privilege_type": "SELECT"}]
    assert found == EXPECTED_COLUMN_GRANTS


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT id FROM pos.pos_webhook_events_raw",
        "SELECT access_token_enc FROM pos.pos_connections",
        "SELECT id FROM identity.tenants",
        "SELECT user_id FROM identity.tenant_users",
        "SELECT full_name FROM identity.users",
        "SELECT key FROM pos.idempotency_keys",
        "SELECT id FROM pos.refunds",
        "SELECT points_balance FROM loyalty.wallets",
        "SELECT points FROM loyalty.wallet_ledger",
        "SELECT points_earned FROM loyalty.reward_events",
        "SELECT id FROM audit.admin_audit_logs",
        "UPDATE pos.transactions SET amount_minor_units = 0",
        "UPDATE identity.users SET status = 'active'",
        "UPDATE loyalty.wallets SET points_balance = 1000000",
        "DELETE FROM pos.transactions",
        "INSERT INTO pos.transactions (tenant_id, provider, provider_transaction_id, amount_minor_units,"
        " transaction_at) VALUES (gen_random_uuid(), 'square', 'x', 1, now())",
        "SELECT * FROM pos.claim_stuck_raw_events(0, 5, 10)",
        "SELECT pos.resolve_merchant_tenant('square', 'MLX')",
    ],
)
def test_the_linker_role_cannot_reach_beyond_linking(database, statement: LiteralString):
    with database.connect_as(LINKER) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_linker_role_sees_and_writes_only_the_tenant_it_links_in(database, owner):
    mine, theirs = connected_merchant(owner), connected_merchant(owner)
    email = unique_email("rls")
    user_id = seed.create_user(owner, email=email)
    sale_with(owner, mine.tenant_id, {"email": email})
    their_sale = sale_with(owner, theirs.tenant_id, {"email": email})
    with database.connect_as(LINKER) as conn:
        # Without a tenant context it sees no sale, no wallet, no rule
        for table in ("pos.transactions", "loyalty.wallets", "loyalty.reward_rules"):
            assert count(conn, f"SELECT count(*) AS n FROM {table}") == 0
        with tenant_transaction(conn, mine.tenant_id):
            # In its tenant, only that tenant's rows
            tenants = conn.execute("SELECT DISTINCT tenant_id FROM pos.transactions").fetchall()
            assert tenants == [{"tenant_id": mine.tenant_id}]
            # and another tenant's sale can be neither claimed nor credited from here
            claimed = conn.execute(
                "UPDATE pos.transactions SET user_id = %s WHERE id = %s", (user_id, their_sale)
            )
            assert claimed.rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege), tenant_transaction(conn, mine.tenant_id):
            conn.execute(
                "INSERT INTO loyalty.wallets (tenant_id, user_id) VALUES (%s, %s)",
                (theirs.tenant_id, user_id),
            )
    assert owner.execute("SELECT user_id FROM pos.transactions WHERE id = %s", (their_sale,)).fetchone() == {
        "user_id": None
    }


def test_only_the_linker_may_run_the_candidates_function_and_it_runs_as_the_migrator(owner):
    function = one(
        owner.execute(
            "SELECT prosecdef, pg_get_userbyid(proowner) AS owner, proconfig, provolatile FROM pg_proc"
            " WHERE oid = %s::regprocedure",
            (CANDIDATES_FUNCTION,),
        ).fetchone()
    )
    assert function == {
        "prosecdef": True,
        "owner": "pos_gateway_migrator",
        "proconfig": ["search_path=pg_catalog, pg_temp"],
        "provolatile": "s",
    }
    allowed = {
        row["rolname"]
        for row in owner.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pos\\_gateway\\_%%'"
            " AND has_function_privilege(oid, %s::regprocedure, 'EXECUTE')",
            (CANDIDATES_FUNCTION,),
        ).fetchall()
    }
    assert allowed == {"pos_gateway_migrator", LINKER}
    public = owner.execute(
        "SELECT count(*) AS n FROM pg_proc p, aclexplode(p.proacl) a"
        " WHERE p.oid = %s::regprocedure AND a.grantee = 0",
        (CANDIDATES_FUNCTION,),
    ).fetchone()
    assert public == {"n": 0}


# ---------------------------------------------------------------- the handler


@pytest.fixture(scope="module")
def linker_handler(database: Database) -> Iterator[Any]:
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="db/linker", SecretString=json.dumps(database.secret(LINKER)))["ARN"]
        clear_parameter_caches()
        env.setenv("POWERTOOLS_SERVICE_NAME", "customer_linker")
        env.setenv("DB_SECRET_ARN", arn)
        env.setenv("LINKER_BATCH_SIZE", "50")
        env.setenv("LINKER_MAX_PAIRS", "200")
        handler = fresh_import("functions.customer_linker.app")
        yield handler
        handler.linker._connections.close()
        clear_parameter_caches()


def test_the_scheduled_handler_links_a_new_member_and_reports_its_metrics(owner, linker_handler, capsys):
    # Given a walk-in's $42.00 sale, then an account with her mobile
    merchant = connected_merchant(owner)
    mobile = unique_mobile()
    sale_with(owner, merchant.tenant_id, {"mobile": mobile})
    user_id = seed.create_user(owner, mobile=mobile)
    capsys.readouterr()

    # When EventBridge runs the linker
    event = json.loads(SCHEDULED_EVENT.read_text())
    response = linker_handler.lambda_handler(event, FakeLambdaContext(function_name="customer_linker"))

    # Then the sale is hers with its 42 points, and the run's numbers go out as metrics
    assert response == {
        "pairs": 1,
        "pairsLinked": 1,
        "transactionsClaimed": 1,
        "pointsCredited": 42,
        "failures": 0,
        "batches": 1,
        "stoppedEarly": False,
    }
    assert balance(owner, merchant.tenant_id, user_id) == 42
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [metrics] = [m for m in emitted if "PairsLinked" in m]
    assert metrics["service"] == "customer_linker"
    assert {
        name: metrics[name]
        for name in ("PairsLinked", "TransactionsClaimed", "PointsCredited", "LinkFailures")
    } == {
        "PairsLinked": [1.0],
        "TransactionsClaimed": [1.0],
        "PointsCredited": [42.0],
        "LinkFailures": [0.0],
    }
