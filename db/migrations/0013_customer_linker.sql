-- Customer linker (seed 001): a scheduled job finds the members whose email or mobile matches a
-- tenant's unclaimed sales, across tenants, and links them (pos_gateway.loyalty.linking). The
-- role sees the candidates only through the SECURITY DEFINER function below; each link runs in
-- the pair's tenant, under row-level security, with the column grants it needs and no more.

DO $$
BEGIN
    -- Roles are cluster-wide: create it once, whichever database migrates first.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pos_gateway_linker') THEN
        CREATE ROLE pos_gateway_linker LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- Unclaimed sales by contact. 0012 indexed them tenant first, which serves one member linked in
-- one tenant but not the linker's question (which tenants hold unclaimed sales of this contact?).
-- Contact first serves both (the tenant is the second key), so these replace 0012's indexes
-- rather than add two more to every anonymous sale's insert.
DROP INDEX pos.transactions_unclaimed_email_idx;
DROP INDEX pos.transactions_unclaimed_mobile_idx;
CREATE INDEX transactions_unclaimed_email_contact_idx
    ON pos.transactions (lower(customer_ref ->> 'email'), tenant_id) WHERE user_id IS NULL;
CREATE INDEX transactions_unclaimed_mobile_contact_idx
    ON pos.transactions ((customer_ref ->> 'mobile'), tenant_id) WHERE user_id IS NULL;

-- Up to p_limit distinct (tenant, member) pairs in which the member, active and not deleted,
-- matches unclaimed sales of the tenant by email (case-insensitive) or mobile. Pairs come in
-- (tenant_id, user_id) order, after (p_after_tenant_id, p_after_user_id) when given, so a run
-- pages on past a pair it could not link. Reads only: each pair is claimed in its own tenant.
CREATE FUNCTION pos.customer_link_candidates(p_after_tenant_id uuid, p_after_user_id uuid, p_limit integer)
    RETURNS TABLE (tenant_id uuid, user_id uuid)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000
       OR (p_after_tenant_id IS NULL) <> (p_after_user_id IS NULL) THEN
        RAISE EXCEPTION 'invalid link candidates page: after (%, %), limit %',
            p_after_tenant_id, p_after_user_id, p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Driven by the members, each probing the contact indexes above (a few pages per member), not
    -- by the unclaimed sales: those only grow (walk-ins who never join stay unclaimed for good).
    RETURN QUERY
    SELECT pair.tenant_id, pair.user_id
      FROM (
            SELECT sale.tenant_id, u.id AS user_id
              FROM identity.users u
             CROSS JOIN LATERAL (
                    SELECT DISTINCT t.tenant_id
                      FROM pos.transactions t
                     WHERE lower(t.customer_ref ->> 'email') = lower(u.email) AND t.user_id IS NULL) sale
             WHERE u.email IS NOT NULL AND u.status = 'active' AND u.deleted_at IS NULL
            UNION
            SELECT sale.tenant_id, u.id
              FROM identity.users u
             CROSS JOIN LATERAL (
                    SELECT DISTINCT t.tenant_id
                      FROM pos.transactions t
                     WHERE t.customer_ref ->> 'mobile' = u.mobile AND t.user_id IS NULL) sale
             WHERE u.mobile IS NOT NULL AND u.status = 'active' AND u.deleted_at IS NULL
           ) pair
     WHERE p_after_tenant_id IS NULL
        OR (pair.tenant_id, pair.user_id) > (p_after_tenant_id, p_after_user_id)
     ORDER BY pair.tenant_id, pair.user_id
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION pos.customer_link_candidates(uuid, uuid, integer) FROM PUBLIC;

-- ---------------------------------------------------------------- grants: linker
-- app: the row-level security policies call app.current_tenant_id().
GRANT USAGE ON SCHEMA app, identity, pos, loyalty TO pos_gateway_linker;
GRANT EXECUTE ON FUNCTION pos.customer_link_candidates(uuid, uuid, integer) TO pos_gateway_linker;

-- The member's contact and standing (users belong to no tenant: the columns are the limit).
GRANT SELECT (id, email, mobile, status, deleted_at) ON identity.users TO pos_gateway_linker;
-- The tenant's unclaimed sales, locked and claimed once (FOR UPDATE needs an UPDATE grant).
GRANT SELECT (id, tenant_id, user_id, provider, provider_transaction_id, amount_minor_units, currency,
              customer_ref, transaction_at)
    ON pos.transactions TO pos_gateway_linker;
GRANT UPDATE (user_id) ON pos.transactions TO pos_gateway_linker;
-- The member's wallet (created on the first credit), the rule version in force at each sale, and
-- the earn event with its ledger credit. The balance moves only through the ledger trigger.
GRANT SELECT (id, tenant_id, user_id, status) ON loyalty.wallets TO pos_gateway_linker;
GRANT INSERT (tenant_id, user_id) ON loyalty.wallets TO pos_gateway_linker;
-- Rules are read whole (the rule-in-force lookup selects the row); row-level security keeps them
-- to the pair's tenant.
GRANT SELECT ON loyalty.reward_rules TO pos_gateway_linker;
GRANT SELECT (id) ON loyalty.reward_events TO pos_gateway_linker;
GRANT INSERT (tenant_id, wallet_id, transaction_id, rule_version_id, kind, outcome, points_earned)
    ON loyalty.reward_events TO pos_gateway_linker;
GRANT SELECT (balance_after) ON loyalty.wallet_ledger TO pos_gateway_linker;
GRANT INSERT (tenant_id, wallet_id, entry_type, points, description, source_transaction_id,
              reward_event_id)
    ON loyalty.wallet_ledger TO pos_gateway_linker;
