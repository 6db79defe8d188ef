"""The migrated schema, checked from the catalog against the architecture's rules."""

import pytest

APP_SCHEMAS = ("identity", "pos", "loyalty", "audit", "rpapos", "catalog")
APP_ROLES = (
    "pos_gateway_ingest",
    "pos_gateway_crediting",
    "pos_gateway_admin",
    "pos_gateway_sweeper",
    "pos_gateway_poller",
    "pos_gateway_token_refresher",
    "pos_gateway_wallet_api",
    "pos_gateway_linker",
    "pos_gateway_rpapos",
    "pos_gateway_field",
)
SEED_001_TABLES = {
    ("identity", "users"),
    ("identity", "tenants"),
    ("identity", "tenant_users"),
    ("pos", "pos_connections"),
    ("pos", "pos_webhook_events_raw"),
    ("pos", "transactions"),
    ("pos", "idempotency_keys"),
    ("loyalty", "wallets"),
    ("loyalty", "wallet_ledger"),
    ("loyalty", "reward_rules"),
    ("loyalty", "reward_events"),
    ("audit", "admin_audit_logs"),
}
SEED_000_TABLES = {
    ("rpapos", "rpapos_connection"),
    ("rpapos", "rpapos_id_map"),
    ("rpapos", "rpapos_sync_run"),
    ("rpapos", "rpapos_extraction_archive"),
}
# pg_trigger.tgtype bits
ROW, BEFORE, DELETE, UPDATE, TRUNCATE = 1, 2, 8, 16, 32


@pytest.fixture(scope="module")
def catalog(database):
    with database.owner() as conn:
        yield conn


def tables(catalog) -> set[tuple[str, str]]:
    rows = catalog.execute(
        "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)",
        (list(APP_SCHEMAS),),
    ).fetchall()
    return {(row["schema"], row["name"]) for row in rows}


def test_schemas_exist(catalog):
    found = {row["nspname"] for row in catalog.execute("SELECT nspname FROM pg_namespace").fetchall()}
    assert set(APP_SCHEMAS) <= found


def test_every_seed_001_table_exists(catalog):
    assert tables(catalog) >= SEED_001_TABLES


def test_every_seed_000_table_exists(catalog):
    assert tables(catalog) >= SEED_000_TABLES


def test_every_tenant_scoped_table_has_row_level_security_and_a_policy(catalog):
    rows = catalog.execute(
        """
        SELECT n.nspname AS schema, c.relname AS name, c.relrowsecurity AS rls,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(schemas)s)
           AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                                                      AND NOT a.attisdropped)
                OR (n.nspname, c.relname) = ('identity', 'tenants'))
        """,
        {"schemas": list(APP_SCHEMAS)},
    ).fetchall()
    checked = {(row["schema"], row["name"]) for row in rows}
    assert checked >= {
        ("identity", "tenants"),
        ("identity", "tenant_users"),
        ("pos", "pos_webhook_events_raw"),
        ("pos", "transactions"),
        ("loyalty", "wallets"),
        ("loyalty", "wallet_ledger"),
        ("audit", "admin_audit_logs"),
        ("rpapos", "rpapos_connection"),
        ("rpapos", "rpapos_sync_run"),
        ("catalog", "product"),
        ("catalog", "stock_movement"),
    }
    unprotected = [f"{r['schema']}.{r['name']}" for r in rows if not r["rls"] or r["policies"] == 0]
    assert unprotected == []


def test_policies_key_on_the_transaction_tenant_setting(catalog):
    rows = catalog.execute(
        "SELECT polrelid::regclass::text AS tbl, polname, polcmd, pg_get_expr(polqual, polrelid) AS qual,"
        " pg_get_expr(polwithcheck, polrelid) AS check_expr,"
        " ARRAY(SELECT rolname FROM pg_roles WHERE oid = ANY(polroles)) AS roles FROM pg_policy"
    ).fetchall()
    assert rows
    for row in rows:
        if row["polname"] == "platform_read":
            # The admin's audited cross-tenant reads: read-only, for that role alone.
            assert (row["polcmd"], row["roles"], row["qual"]) == (
                "r",
                ["pos_gateway_admin"],
                "app.platform_read()",
            )
            continue
        assert "current_tenant_id()" in row["qual"], row
        assert row["check_expr"] is None or "current_tenant_id()" in row["check_expr"], row


def test_every_tenant_table_has_the_platform_read_policy(catalog):
    missing = catalog.execute(
        "SELECT c.oid::regclass::text AS tbl FROM pg_class c"
        " WHERE c.relrowsecurity AND NOT EXISTS"
        " (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'platform_read')"
    ).fetchall()
    assert missing == []


def test_every_timestamp_is_timestamptz(catalog):
    rows = catalog.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = ANY(%s) AND (data_type LIKE 'timestamp%%' OR column_name LIKE '%%\\_at')",
        (list(APP_SCHEMAS),),
    ).fetchall()
    assert len(rows) > 20
    wrong = [
        f"{r['table_schema']}.{r['table_name']}.{r['column_name']} is {r['data_type']}"
        for r in rows
        if r["data_type"] != "timestamp with time zone"
    ]
    assert wrong == []


def test_every_foreign_key_is_covered_by_an_index(catalog):
    foreign_keys = catalog.execute(
        """
        SELECT con.conname, con.conrelid::regclass::text AS tbl, con.conrelid,
               array_agg(a.attname ORDER BY k.ord) AS columns, array_agg(k.attnum ORDER BY k.ord) AS attnums
          FROM pg_constraint con
          JOIN pg_namespace n ON n.oid = con.connamespace
          CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
         WHERE con.contype = 'f' AND n.nspname = ANY(%s)
         GROUP BY con.conname, con.conrelid
        """,
        (list(APP_SCHEMAS),),
    ).fetchall()
    assert len(foreign_keys) >= 20
    indexes = catalog.execute(
        "SELECT indrelid, indkey::int2[] AS keys, pg_get_expr(indpred, indrelid) AS predicate,"
        " indexrelid::regclass::text AS name FROM pg_index"
    ).fetchall()

    def covers(index, fk) -> bool:
        if index["indrelid"] != fk["conrelid"]:
            return False
        leading = list(index["keys"])[: len(fk["attnums"])]
        if set(leading) != set(fk["attnums"]):
            return False
        # A partial index serves FK lookups only when equality on the key implies its predicate.
        return index["predicate"] is None or index["predicate"] in {
            f"({c} IS NOT NULL)" for c in fk["columns"]
        }

    uncovered = [
        f"{fk['tbl']}({', '.join(fk['columns'])}) [{fk['conname']}]"
        for fk in foreign_keys
        if not any(covers(index, fk) for index in indexes)
    ]
    assert uncovered == []


@pytest.mark.parametrize(
    ("table", "guarded"),
    [
        ("loyalty.wallet_ledger", {UPDATE, DELETE, TRUNCATE}),
        ("loyalty.reward_events", {UPDATE, DELETE, TRUNCATE}),
        ("audit.admin_audit_logs", {UPDATE, DELETE, TRUNCATE}),
        ("pos.pos_webhook_events_raw", {UPDATE, DELETE, TRUNCATE}),
        ("rpapos.rpapos_extraction_archive", {UPDATE, DELETE, TRUNCATE}),
    ],
)
def test_append_only_tables_have_guard_triggers(catalog, table, guarded):
    rows = catalog.execute(
        """
        SELECT t.tgname, t.tgtype, t.tgenabled, p.proname
          FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal
           AND p.proname IN ('forbid_mutation', 'guard_raw_event_update')
        """,
        (table,),
    ).fetchall()
    covered: set[int] = set()
    for row in rows:
        assert row["tgenabled"] in {"O", "A"}, f"{row['tgname']} is disabled"
        assert row["tgtype"] & BEFORE, f"{row['tgname']} must fire BEFORE the change"
        for event in (UPDATE, DELETE, TRUNCATE):
            if row["tgtype"] & event:
                covered.add(event)
    assert covered >= guarded


def test_append_only_guards_are_row_level_for_update_and_delete(catalog):
    rows = catalog.execute(
        "SELECT tgrelid::regclass::text AS tbl, tgtype FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE p.proname IN ('forbid_mutation', 'guard_raw_event_update') AND tgtype & %s <> 0",
        (UPDATE | DELETE,),
    ).fetchall()
    assert rows
    assert all(row["tgtype"] & ROW for row in rows)


def test_every_function_role_is_checked_here(catalog):
    roles = catalog.execute(
        "SELECT rolname FROM pg_roles"
        " WHERE rolname LIKE 'pos\\_gateway\\_%' AND rolname <> 'pos_gateway_migrator'"
    ).fetchall()
    assert {row["rolname"] for row in roles} == set(APP_ROLES)


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_are_unprivileged(catalog, role):
    row = catalog.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin"
        " FROM pg_roles WHERE rolname = %s",
        (role,),
    ).fetchone()
    assert row == {
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolcanlogin": True,
    }
    inherited = catalog.execute(
        "SELECT r.rolname FROM pg_roles r WHERE pg_has_role(%s, r.oid, 'MEMBER') AND r.rolname <> %s"
        " AND (r.rolsuper OR r.rolbypassrls OR r.rolname LIKE 'pg\\_%%'"
        "      OR r.rolname = 'pos_gateway_migrator')",
        (role, role),
    ).fetchall()
    assert inherited == []


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_end_transactions_left_idle(catalog, role):
    settings = catalog.execute(
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole"
        " WHERE r.rolname = %s AND s.setdatabase = 0",
        (role,),
    ).fetchone()
    assert settings is not None
    assert "idle_in_transaction_session_timeout=60s" in settings["setconfig"]


@pytest.mark.parametrize("role", APP_ROLES)
def test_app_roles_own_nothing(catalog, role):
    owned = catalog.execute(
        """
        WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
        SELECT 'relation ' || oid::regclass::text AS object FROM pg_class WHERE relowner = (SELECT oid FROM r)
        UNION ALL
        SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM r)
        UNION ALL
        SELECT 'function ' || oid::regprocedure::text FROM pg_proc WHERE proowner = (SELECT oid FROM r)
        UNION ALL
        SELECT 'type ' || oid::regtype::text FROM pg_type WHERE typowner = (SELECT oid FROM r)
        UNION ALL
        SELECT 'database ' || datname FROM pg_database WHERE datdba = (SELECT oid FROM r)
        """,
        {"role": role},
    ).fetchall()
    assert owned == []


def test_every_table_is_owned_by_the_migrator(catalog):
    owners = catalog.execute(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s) AND c.relkind = 'r'",
        (list(APP_SCHEMAS),),
    ).fetchall()
    assert [row["owner"] for row in owners] == ["pos_gateway_migrator"]
