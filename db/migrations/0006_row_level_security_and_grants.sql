-- Tenant isolation and least privilege. Every table with a tenant_id column is filtered by
-- app.current_tenant_id(); the app roles are neither owners nor BYPASSRLS, so the policies
-- always apply to them.

DO $$
DECLARE
    tbl regclass;
BEGIN
    FOREACH tbl IN ARRAY ARRAY[
        'identity.tenant_users', 'pos.pos_connections', 'pos.transactions',
        'loyalty.wallets', 'loyalty.wallet_ledger', 'loyalty.reward_rules', 'loyalty.reward_events'
    ]::regclass[]
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %s
                 USING (tenant_id = app.current_tenant_id())
                 WITH CHECK (tenant_id = app.current_tenant_id())', tbl);
    END LOOP;

    -- Tables whose tenant may be NULL (quarantined events, platform-wide keys and actions):
    -- without a tenant context only the tenant-less rows are visible.
    FOREACH tbl IN ARRAY ARRAY[
        'pos.pos_webhook_events_raw', 'pos.idempotency_keys', 'audit.admin_audit_logs'
    ]::regclass[]
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %s
                 USING (tenant_id IS NOT DISTINCT FROM app.current_tenant_id())
                 WITH CHECK (tenant_id IS NOT DISTINCT FROM app.current_tenant_id())', tbl);
    END LOOP;
END
$$;

ALTER TABLE identity.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON identity.tenants
    USING (id = app.current_tenant_id())
    WITH CHECK (id = app.current_tenant_id());

GRANT USAGE ON SCHEMA app, identity, pos, loyalty
    TO pos_gateway_ingest, pos_gateway_crediting, pos_gateway_admin;
GRANT USAGE ON SCHEMA audit TO pos_gateway_admin;

-- Ingest: route by merchant, append raw events. Nothing else.
GRANT EXECUTE ON FUNCTION pos.resolve_merchant_tenant(text, text) TO pos_gateway_ingest;
GRANT INSERT (tenant_id, provider, event_type, provider_event_id, merchant_account_id,
              raw_payload, raw_body, signature_header, quarantine_reason)
    ON pos.pos_webhook_events_raw TO pos_gateway_ingest;
GRANT SELECT (id, provider, provider_event_id) ON pos.pos_webhook_events_raw TO pos_gateway_ingest;

-- Crediting: read raw events and mark them processed; write transactions, wallets,
-- reward events and ledger entries. The balance moves only through the ledger trigger.
GRANT SELECT ON pos.pos_webhook_events_raw TO pos_gateway_crediting;
GRANT UPDATE (processed, processed_at, processing_outcome)
    ON pos.pos_webhook_events_raw TO pos_gateway_crediting;
GRANT SELECT ON identity.users, identity.tenants, pos.pos_connections, loyalty.reward_rules
    TO pos_gateway_crediting;
GRANT SELECT, INSERT ON pos.transactions, pos.idempotency_keys, loyalty.reward_events
    TO pos_gateway_crediting;
GRANT SELECT ON loyalty.wallets TO pos_gateway_crediting;
GRANT INSERT (tenant_id, user_id) ON loyalty.wallets TO pos_gateway_crediting;
GRANT SELECT ON loyalty.wallet_ledger TO pos_gateway_crediting;
GRANT INSERT (tenant_id, wallet_id, entry_type, points, description, source_transaction_id,
              reward_event_id)
    ON loyalty.wallet_ledger TO pos_gateway_crediting;

-- Admin: reads everything in its tenant context and appends audit entries; the admin API
-- adds its own write grants as its routes land.
GRANT SELECT ON ALL TABLES IN SCHEMA identity, pos, loyalty, audit TO pos_gateway_admin;
GRANT INSERT ON audit.admin_audit_logs TO pos_gateway_admin;
