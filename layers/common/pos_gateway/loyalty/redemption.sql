-- name: limit_lock_waits
-- How long a request waits for a wallet or an idempotency key another request holds (then 503).
SELECT set_config('lock_timeout', %(lock_timeout)s, true);

-- name: lock_wallet
-- The wallet to redeem from (row-level security hides other tenants' wallets) and its member's
-- standing, locked until the debit commits: concurrent redemptions check the balance in turn.
SELECT w.id, w.points_balance, w.status, u.status AS member_status
  FROM loyalty.wallets w
  LEFT JOIN identity.users u ON u.id = w.user_id AND u.deleted_at IS NULL
 WHERE w.id = %(wallet_id)s
   FOR UPDATE OF w;

-- name: active_rule
-- The tenant's active rule version: redemptions follow the rules of now.
SELECT id, version, rule_config
  FROM loyalty.reward_rules
 WHERE tenant_id = %(tenant_id)s AND is_active;

-- name: insert_redemption
-- The redemption's reward event and its ledger debit (the trigger moves the balance).
WITH redemption AS (
    INSERT INTO loyalty.reward_events (
        tenant_id, wallet_id, rule_version_id, kind, outcome, points_redeemed, redeemed_by,
        order_amount_minor_units)
    VALUES (%(tenant_id)s, %(wallet_id)s, %(rule_id)s, 'redeem', 'redeemed', %(points)s, %(redeemed_by)s,
            %(order_amount_minor_units)s)
    RETURNING id, created_at
), debit AS (
    INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, description, reward_event_id)
    SELECT %(tenant_id)s, %(wallet_id)s, 'debit', %(points)s, %(description)s, redemption.id
      FROM redemption
    RETURNING balance_after
)
SELECT redemption.id, redemption.created_at, debit.balance_after
  FROM redemption CROSS JOIN debit;
