-- name: lock_wallet_with_rule
-- The wallet, locked until the debit commits, its member's standing and the tenant's active rule:
-- one row, wallet columns NULL when there is no such wallet, rule columns when there is no active
-- rule (the function, in migration 0014, keeps its plan for the session).
SELECT id, points_balance, status, member_status, rule_id, rule_version, rule_config
  FROM loyalty.lock_wallet_for_redemption(%(wallet_id)s, %(tenant_id)s);

-- name: insert_redemption
-- The redemption's reward event and its ledger debit (the trigger moves the balance), with the
-- balance after the debit (function in migration 0014).
SELECT id, created_at, balance_after
  FROM loyalty.record_redemption(%(tenant_id)s, %(wallet_id)s, %(rule_id)s, %(points)s, %(redeemed_by)s,
                                 %(order_amount_minor_units)s, %(description)s);
