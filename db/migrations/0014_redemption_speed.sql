-- Redemptions in fewer round trips and one idempotency write (pos_gateway.idempotency).
--
-- Inside the caller's transaction a key is claimed without writing it: a transaction-scoped
-- advisory lock on the key serializes every claim of it (a concurrent duplicate waits here until
-- the holder commits or rolls back, bounded by lock_timeout), and the record is written once,
-- COMPLETED, in the same transaction as the work. Record-by-record claims (INPROGRESS rows in
-- their own transactions) take the same lock, so the two modes never both claim one key.

-- Lock the key for the rest of the transaction, then read its record with a fresh snapshot
-- (a VOLATILE function's statements see what the holder committed while this one waited).
-- Refuses to run outside the tenant context the caller claims: the layer does not set it again.
CREATE FUNCTION pos.claim_idempotency_key(p_key text, p_tenant_id uuid)
    RETURNS TABLE (status text, expires_at timestamptz, in_progress_expires_at timestamptz,
                   payload_hash text, response_data text)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF app.current_tenant_id() IS DISTINCT FROM p_tenant_id THEN
        RAISE EXCEPTION 'idempotency key claimed for tenant % in the context of tenant %',
            p_tenant_id, app.current_tenant_id()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('pos.idempotency_keys'), hashtext(p_key));
    RETURN QUERY
        SELECT k.status, k.expires_at, k.in_progress_expires_at, k.payload_hash, k.response_data
          FROM pos.idempotency_keys k
         WHERE k.key = p_key;
END
$$;
REVOKE ALL ON FUNCTION pos.claim_idempotency_key(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pos.claim_idempotency_key(text, uuid) TO pos_gateway_wallet_api;

-- The two reads a redemption makes before deciding, as functions: PL/pgSQL keeps their plans for
-- the session (the app's connections prepare nothing, for RDS Proxy), where the plain queries
-- were parsed, rewritten for row-level security and planned on every call. SECURITY INVOKER:
-- the caller's grants and row-level security apply as before.

-- The caller's account, their live pos_operator membership and the tenant, as the tenant's
-- transaction sees them (memberships and tenants are under row-level security).
CREATE FUNCTION identity.caller_standing(p_user_id uuid, p_tenant_id uuid)
    RETURNS TABLE (user_found boolean, user_status text, user_role text, is_pos_operator boolean,
                   tenant_status text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RETURN QUERY
        SELECT u.id IS NOT NULL,
               u.status,
               u.role,
               EXISTS (SELECT 1
                         FROM identity.tenant_users m
                        WHERE m.user_id = p_user_id AND m.tenant_id = p_tenant_id
                          AND m.role = 'pos_operator' AND m.deleted_at IS NULL),
               (SELECT t.status FROM identity.tenants t
                 WHERE t.id = p_tenant_id AND t.deleted_at IS NULL)
          FROM (SELECT 1) AS one
          LEFT JOIN identity.users u ON u.id = p_user_id AND u.deleted_at IS NULL;
END
$$;
REVOKE ALL ON FUNCTION identity.caller_standing(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.caller_standing(uuid, uuid) TO pos_gateway_wallet_api;

-- The wallet to redeem from and its member's standing, locked until the debit commits
-- (concurrent redemptions check the balance in turn: a locked row is read again as its holder
-- committed it), with the tenant's active rule. Always one row: the wallet columns are NULL when
-- there is no such wallet (or row-level security hides it), the rule columns when there is no
-- active rule.
CREATE FUNCTION loyalty.lock_wallet_for_redemption(p_wallet_id uuid, p_tenant_id uuid)
    RETURNS TABLE (id uuid, points_balance integer, status text, member_status text,
                   rule_id uuid, rule_version integer, rule_config jsonb)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RETURN QUERY
        WITH wallet AS MATERIALIZED (
            SELECT w.id, w.points_balance, w.status, u.status AS member_status
              FROM loyalty.wallets w
              LEFT JOIN identity.users u ON u.id = w.user_id AND u.deleted_at IS NULL
             WHERE w.id = p_wallet_id
               FOR UPDATE OF w
        )
        SELECT wallet.id, wallet.points_balance, wallet.status, wallet.member_status,
               r.id, r.version, r.rule_config
          FROM (SELECT 1) AS one
          LEFT JOIN wallet ON true
          LEFT JOIN loyalty.reward_rules r ON r.tenant_id = p_tenant_id AND r.is_active;
END
$$;
REVOKE ALL ON FUNCTION loyalty.lock_wallet_for_redemption(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION loyalty.lock_wallet_for_redemption(uuid, uuid) TO pos_gateway_wallet_api;

-- The redemption's reward event and its ledger debit (the ledger trigger moves the balance),
-- with the debit's balance after: the one write a redemption makes besides its idempotency
-- record, as a function for the same reason.
CREATE FUNCTION loyalty.record_redemption(
    p_tenant_id uuid, p_wallet_id uuid, p_rule_id uuid, p_points integer, p_redeemed_by uuid,
    p_order_amount_minor_units bigint, p_description text)
    RETURNS TABLE (id uuid, created_at timestamptz, balance_after integer)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RETURN QUERY
        WITH redemption AS (
            INSERT INTO loyalty.reward_events AS e (
                tenant_id, wallet_id, rule_version_id, kind, outcome, points_redeemed, redeemed_by,
                order_amount_minor_units)
            VALUES (p_tenant_id, p_wallet_id, p_rule_id, 'redeem', 'redeemed', p_points, p_redeemed_by,
                    p_order_amount_minor_units)
            RETURNING e.id, e.created_at
        ), debit AS (
            INSERT INTO loyalty.wallet_ledger AS l (
                tenant_id, wallet_id, entry_type, points, description, reward_event_id)
            SELECT p_tenant_id, p_wallet_id, 'debit', p_points, p_description, redemption.id
              FROM redemption
            RETURNING l.balance_after
        )
        SELECT redemption.id, redemption.created_at, debit.balance_after
          FROM redemption CROSS JOIN debit;
END
$$;
REVOKE ALL ON FUNCTION loyalty.record_redemption(uuid, uuid, uuid, integer, uuid, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION loyalty.record_redemption(uuid, uuid, uuid, integer, uuid, bigint, text)
    TO pos_gateway_wallet_api;
