-- Admin API (seeds 001, 002, 003): the admin role's writes, the caller's standing, platform reads.
--
-- pos_gateway_admin is neither owner nor BYPASSRLS. Every request runs in one tenant's context
-- (app.tenant_id), except a platform admin's cross-tenant reads: those set app.platform_read
-- for their transaction, which only SELECT policies granted to this role honour, and the admin
-- API records each such read in the audit trail.

CREATE FUNCTION app.platform_read() RETURNS boolean
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(current_setting('app.platform_read', true), '') = 'on' $$;

DO $$
DECLARE
    tbl regclass;
BEGIN
    FOR tbl IN
        SELECT c.oid::regclass
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND c.relrowsecurity
           AND n.nspname IN ('identity', 'pos', 'loyalty', 'audit')
    LOOP
        EXECUTE format(
            'CREATE POLICY platform_read ON %s FOR SELECT TO pos_gateway_admin USING (app.platform_read())',
            tbl);
    END LOOP;
END
$$;

-- The caller of an admin request as the request's transaction sees them: the account, the live
-- membership in the tenant of the context (memberships and tenants are under row-level security,
-- so a tenant role only ever sees its own tenant) and that tenant.
CREATE FUNCTION identity.admin_caller(p_user_id uuid, p_tenant_id uuid)
    RETURNS TABLE (user_found boolean, user_status text, user_role text, membership_role text,
                   tenant_status text)
    LANGUAGE sql STABLE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT u.id IS NOT NULL,
           u.status,
           u.role,
           (SELECT m.role FROM identity.tenant_users m
             WHERE m.user_id = p_user_id AND m.tenant_id = p_tenant_id AND m.deleted_at IS NULL),
           (SELECT t.status FROM identity.tenants t WHERE t.id = p_tenant_id AND t.deleted_at IS NULL)
      FROM (SELECT 1) AS one
      LEFT JOIN identity.users u ON u.id = p_user_id AND u.deleted_at IS NULL
$$;
REVOKE ALL ON FUNCTION identity.admin_caller(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.admin_caller(uuid, uuid) TO pos_gateway_admin;

GRANT EXECUTE ON FUNCTION loyalty.rule_in_force(uuid, timestamptz) TO pos_gateway_admin;

-- Writes, column by column. Nothing is deleted: tenants, memberships and connections are
-- soft-deleted, wallets move only through ledger entries, audit rows are append-only.
GRANT INSERT (id, name, country, status, pos_provider_preference, onboarding_profile)
    ON identity.tenants TO pos_gateway_admin;
GRANT UPDATE (name, country, status, pos_provider_preference, onboarding_profile, deleted_at)
    ON identity.tenants TO pos_gateway_admin;
GRANT UPDATE (status) ON identity.users TO pos_gateway_admin;
GRANT INSERT (user_id, tenant_id, role) ON identity.tenant_users TO pos_gateway_admin;
GRANT UPDATE (role, deleted_at) ON identity.tenant_users TO pos_gateway_admin;
GRANT UPDATE (status, version) ON loyalty.wallets TO pos_gateway_admin;
GRANT INSERT (tenant_id, wallet_id, entry_type, points, description, created_by_admin)
    ON loyalty.wallet_ledger TO pos_gateway_admin;
GRANT INSERT (tenant_id, rule_config, effective_from, created_by, is_active, activated_at)
    ON loyalty.reward_rules TO pos_gateway_admin;
GRANT UPDATE (is_active, activated_at) ON loyalty.reward_rules TO pos_gateway_admin;
GRANT INSERT (id, tenant_id, pos_type, merchant_account_id, access_token_enc, refresh_token_enc,
              status, token_expires_at)
    ON pos.pos_connections TO pos_gateway_admin;
GRANT UPDATE (access_token_enc, refresh_token_enc, token_expires_at, status, last_error, deleted_at)
    ON pos.pos_connections TO pos_gateway_admin;
-- Replay hands a parked event back to the sweeper.
GRANT UPDATE (parked_at, sweep_count, last_swept_at) ON pos.pos_webhook_events_raw TO pos_gateway_admin;

-- The actions that change money or access carry their reason, whoever writes the row.
ALTER TABLE audit.admin_audit_logs ADD CONSTRAINT admin_audit_logs_reason_required CHECK (
    action NOT IN ('wallet.adjust', 'wallet.freeze', 'wallet.unfreeze', 'user.suspend')
    OR length(btrim(coalesce(reason, ''))) > 0);
CREATE INDEX admin_audit_logs_action_idx ON audit.admin_audit_logs (action, created_at);
