-- name: lock_raw_event
-- The raw event to process, locked so concurrent deliveries of it run one after the other.
SELECT id, tenant_id, provider, event_type, raw_payload, processed
  FROM pos.pos_webhook_events_raw
 WHERE id = %(raw_event_id)s
   FOR UPDATE;

-- name: mark_raw_event_processed
-- Close a raw event with what became of it.
UPDATE pos.pos_webhook_events_raw
   SET processed = true, processed_at = now(), processing_outcome = %(outcome)s
 WHERE id = %(raw_event_id)s;

-- name: insert_transaction
-- Record a provider transaction once; a second attempt returns no row.
INSERT INTO pos.transactions (
    tenant_id, provider, provider_transaction_id, amount_minor_units, currency,
    customer_ref, transaction_at, raw_event_id, user_id)
VALUES (
    %(tenant_id)s, %(provider)s, %(provider_transaction_id)s, %(amount_minor_units)s, %(currency)s,
    %(customer_ref)s, %(transaction_at)s, %(raw_event_id)s,
    (SELECT id FROM identity.users
      WHERE deleted_at IS NULL
        AND ((%(email)s::text IS NOT NULL AND lower(email) = lower(%(email)s::text))
          OR (%(mobile)s::text IS NOT NULL AND mobile = %(mobile)s::text))
      ORDER BY (lower(email) = lower(%(email)s::text)) DESC NULLS LAST
      LIMIT 1))
ON CONFLICT (tenant_id, provider, provider_transaction_id) DO NOTHING
RETURNING id, user_id, (SELECT status FROM identity.users WHERE id = user_id) AS user_status;

-- name: ensure_wallet
-- Create the member's wallet on first credit; returns nothing when it already exists.
INSERT INTO loyalty.wallets (tenant_id, user_id)
VALUES (%(tenant_id)s, %(user_id)s)
ON CONFLICT (tenant_id, user_id) DO NOTHING
RETURNING id, status;

-- name: wallet_and_rule
-- The member's wallet (when it exists) and the rule version in force at the sale, in one trip.
SELECT w.id AS wallet_id, w.status AS wallet_status, r.id AS rule_id, r.version AS rule_version,
       r.rule_config
  FROM (SELECT 1) AS one
  LEFT JOIN loyalty.wallets w ON w.tenant_id = %(tenant_id)s AND w.user_id = %(user_id)s
  LEFT JOIN LATERAL loyalty.rule_in_force(%(tenant_id)s, %(at)s) r ON true;

-- name: find_wallet
SELECT id, status FROM loyalty.wallets WHERE tenant_id = %(tenant_id)s AND user_id = %(user_id)s;

-- name: insert_earn_event
-- The reward event of a transaction, and its ledger credit when it earned points.
WITH reward AS (
    INSERT INTO loyalty.reward_events (
        tenant_id, wallet_id, transaction_id, rule_version_id, kind, outcome, points_earned)
    VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, %(rule_id)s, 'earn', %(outcome)s, %(points)s)
    RETURNING id
), credit AS (
    INSERT INTO loyalty.wallet_ledger (
        tenant_id, wallet_id, entry_type, points, description, source_transaction_id, reward_event_id)
    SELECT %(tenant_id)s, %(wallet_id)s, 'credit', %(points)s, %(description)s, %(transaction_id)s, reward.id
      FROM reward
     WHERE %(points)s > 0
    RETURNING balance_after
)
SELECT reward.id AS reward_event_id, (SELECT balance_after FROM credit) AS balance_after FROM reward;

-- name: lock_transaction
-- The refunded payment's transaction, locked so refunds of one payment apply one at a time.
SELECT id, user_id, amount_minor_units
  FROM pos.transactions
 WHERE tenant_id = %(tenant_id)s AND provider = %(provider)s
   AND provider_transaction_id = %(provider_transaction_id)s
   FOR UPDATE;

-- name: insert_refund
-- Record a provider refund once; a second delivery returns no row.
INSERT INTO pos.refunds (
    tenant_id, transaction_id, provider, provider_refund_id, amount_minor_units, currency,
    refunded_at, raw_event_id)
VALUES (
    %(tenant_id)s, %(transaction_id)s, %(provider)s, %(provider_refund_id)s, %(amount_minor_units)s,
    %(currency)s, %(refunded_at)s, %(raw_event_id)s)
ON CONFLICT (tenant_id, provider, provider_refund_id) DO NOTHING
RETURNING id;

-- name: reversal_basis
-- What a refund is measured against: the earn event, its rule, and what was refunded and
-- reversed so far (this refund included in the refunded total).
SELECT e.wallet_id, e.points_earned, e.rule_version_id, r.rule_config,
       (SELECT coalesce(sum(f.amount_minor_units), 0)::bigint
          FROM pos.refunds f WHERE f.transaction_id = %(transaction_id)s) AS refunded_total,
       (SELECT coalesce(sum(v.points_reversed + v.points_shortfall), 0)::integer
          FROM loyalty.reward_events v
         WHERE v.transaction_id = %(transaction_id)s AND v.kind = 'reversal') AS already_reversed
  FROM loyalty.reward_events e
  LEFT JOIN loyalty.reward_rules r ON r.id = e.rule_version_id
 WHERE e.transaction_id = %(transaction_id)s AND e.kind = 'earn';

-- name: lock_wallet_balance
-- The balance a reversal may take from, locked until the debit is written.
SELECT points_balance FROM loyalty.wallets WHERE id = %(wallet_id)s FOR UPDATE;

-- name: insert_reversal_event
-- The reversal of a refund, and its ledger debit when it takes points back.
WITH reversal AS (
    INSERT INTO loyalty.reward_events (
        tenant_id, wallet_id, transaction_id, rule_version_id, kind, outcome, refund_id,
        points_reversed, points_shortfall)
    VALUES (%(tenant_id)s, %(wallet_id)s, %(transaction_id)s, %(rule_id)s, 'reversal', %(outcome)s,
            %(refund_id)s, %(points)s, %(shortfall)s)
    RETURNING id
), debit AS (
    INSERT INTO loyalty.wallet_ledger (
        tenant_id, wallet_id, entry_type, points, description, source_transaction_id, reward_event_id)
    SELECT %(tenant_id)s, %(wallet_id)s, 'debit', %(points)s, %(description)s, %(transaction_id)s, reversal.id
      FROM reversal
     WHERE %(points)s > 0
    RETURNING balance_after
)
SELECT reversal.id AS reward_event_id, (SELECT balance_after FROM debit) AS balance_after FROM reversal;
