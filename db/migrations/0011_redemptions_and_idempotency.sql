-- Point redemptions by POS operators (seeds 001, 002) and the idempotency store they share with
-- crediting: pos.idempotency_keys gains the columns of a Powertools idempotency record.

DO $$
BEGIN
    -- Roles are cluster-wide: create it once, whichever database migrates first.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pos_gateway_wallet_api') THEN
        CREATE ROLE pos_gateway_wallet_api LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- ---------------------------------------------------------------- idempotency records
-- Crediting keeps inserting (key, tenant_id, handler, result_snapshot): its rows are complete
-- records by default. Powertools records (pos_gateway.idempotency) fill the new columns.
ALTER TABLE pos.idempotency_keys
    ADD COLUMN status                 text NOT NULL DEFAULT 'COMPLETED'
                                      CHECK (status IN ('INPROGRESS', 'COMPLETED')),
    -- While INPROGRESS: when the invocation that holds the key runs out of time.
    ADD COLUMN in_progress_expires_at timestamptz,
    -- Hash of the request fields a replay must repeat exactly ('' when not validated).
    ADD COLUMN payload_hash           text NOT NULL DEFAULT '' CHECK (char_length(payload_hash) <= 128),
    -- The response served again to a replay: the JSON text Powertools serialized.
    ADD COLUMN response_data          text;
CREATE TRIGGER idempotency_keys_touch BEFORE UPDATE ON pos.idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

-- Expired keys go in batches, across tenants (row-level security would show a scheduled job
-- without a tenant context only the tenant-less keys). Returns how many were deleted.
CREATE FUNCTION pos.delete_expired_idempotency_keys(p_limit integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    deleted integer;
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'invalid limit %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH expired AS (
        SELECT k.key
          FROM pos.idempotency_keys k
         WHERE k.expires_at < now()
         ORDER BY k.expires_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM pos.idempotency_keys k USING expired WHERE k.key = expired.key;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION pos.delete_expired_idempotency_keys(integer) FROM PUBLIC;

-- ---------------------------------------------------------------- redemptions
-- A redemption is a reward event (kind 'redeem') with its ledger debit; it records who redeemed
-- and against which order amount.
ALTER TABLE loyalty.reward_events
    ADD COLUMN redeemed_by              uuid REFERENCES identity.users (id),
    ADD COLUMN order_amount_minor_units bigint CHECK (order_amount_minor_units > 0),
    ADD CONSTRAINT reward_events_redemption_shape CHECK (
        kind <> 'redeem'
        OR (outcome = 'redeemed' AND points_redeemed > 0 AND redeemed_by IS NOT NULL
            AND order_amount_minor_units IS NOT NULL));
CREATE INDEX reward_events_redeemed_by_idx ON loyalty.reward_events (redeemed_by);

-- ---------------------------------------------------------------- grants: wallet API
GRANT USAGE ON SCHEMA app, identity, pos, loyalty TO pos_gateway_wallet_api;

-- Who is calling: the user's standing, their membership and tenant (both under RLS).
GRANT SELECT (id, role, status, deleted_at) ON identity.users TO pos_gateway_wallet_api;
GRANT SELECT (id, status, deleted_at) ON identity.tenants TO pos_gateway_wallet_api;
GRANT SELECT (user_id, tenant_id, role, deleted_at) ON identity.tenant_users TO pos_gateway_wallet_api;

-- The active rule, the wallet (locked: FOR UPDATE needs an UPDATE grant), the redemption event
-- and its debit. The balance moves only through the ledger trigger.
GRANT SELECT (id, tenant_id, version, is_active, rule_config) ON loyalty.reward_rules TO pos_gateway_wallet_api;
GRANT SELECT (id, tenant_id, user_id, points_balance, status) ON loyalty.wallets TO pos_gateway_wallet_api;
GRANT UPDATE (updated_at) ON loyalty.wallets TO pos_gateway_wallet_api;
GRANT SELECT (id, tenant_id, created_at) ON loyalty.reward_events TO pos_gateway_wallet_api;
GRANT INSERT (tenant_id, wallet_id, rule_version_id, kind, outcome, points_redeemed, redeemed_by,
              order_amount_minor_units)
    ON loyalty.reward_events TO pos_gateway_wallet_api;
GRANT SELECT (id, tenant_id, balance_after) ON loyalty.wallet_ledger TO pos_gateway_wallet_api;
GRANT INSERT (tenant_id, wallet_id, entry_type, points, description, reward_event_id)
    ON loyalty.wallet_ledger TO pos_gateway_wallet_api;

-- Its idempotency records (row-level security keeps them to the request's tenant), and the
-- expired-key cleanup.
GRANT SELECT (key, tenant_id, handler, status, expires_at, in_progress_expires_at, payload_hash,
              response_data)
    ON pos.idempotency_keys TO pos_gateway_wallet_api;
GRANT INSERT (key, tenant_id, handler, status, expires_at, in_progress_expires_at, payload_hash,
              response_data)
    ON pos.idempotency_keys TO pos_gateway_wallet_api;
GRANT UPDATE (handler, status, expires_at, in_progress_expires_at, payload_hash, response_data, created_at)
    ON pos.idempotency_keys TO pos_gateway_wallet_api;
GRANT DELETE ON pos.idempotency_keys TO pos_gateway_wallet_api;
GRANT EXECUTE ON FUNCTION pos.delete_expired_idempotency_keys(integer) TO pos_gateway_wallet_api;
