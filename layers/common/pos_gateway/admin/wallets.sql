-- Every query runs under row-level security: another tenant's wallet is simply not found.

-- name: get_wallet
SELECT id, tenant_id, user_id, points_balance, status, version, created_at, updated_at
  FROM loyalty.wallets WHERE id = %(wallet_id)s;

-- name: list_wallets
-- Newest first, keyset-paginated on (created_at, id).
SELECT id, tenant_id, user_id, points_balance, status, version, created_at, updated_at
  FROM loyalty.wallets
 WHERE (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s::uuid)
   AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: ledger_page
SELECT id, entry_type, points, balance_after, description, source_transaction_id, reward_event_id,
       created_by_admin, created_at
  FROM loyalty.wallet_ledger
 WHERE wallet_id = %(wallet_id)s
   AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: lock_wallet
SELECT id, tenant_id, points_balance, status, version
  FROM loyalty.wallets WHERE id = %(wallet_id)s FOR UPDATE;

-- name: set_status
UPDATE loyalty.wallets SET status = %(status)s, version = version + 1
 WHERE id = %(wallet_id)s
RETURNING id, tenant_id, user_id, points_balance, status, version, created_at, updated_at;

-- name: insert_adjustment
-- The balance and version move in the ledger trigger.
INSERT INTO loyalty.wallet_ledger (tenant_id, wallet_id, entry_type, points, description, created_by_admin)
VALUES (%(tenant_id)s, %(wallet_id)s, %(entry_type)s, %(points)s, %(description)s, %(created_by_admin)s)
RETURNING id, entry_type, points, balance_after, description, source_transaction_id, reward_event_id,
          created_by_admin, created_at;
