-- Operations lists run under row-level security: a tenant's context shows its rows, a platform
-- admin's cross-tenant read (no context) shows every tenant's. Time windows are [from, to).

-- name: list_transactions
-- Newest first, keyset-paginated on (transaction_at, id). The customer reference (PII) stays out.
SELECT t.id, t.tenant_id, t.user_id, t.provider, t.provider_transaction_id, t.amount_minor_units,
       t.currency, t.transaction_at, t.raw_event_id, t.created_at
  FROM pos.transactions t
 WHERE (%(tenant_id)s::uuid IS NULL OR t.tenant_id = %(tenant_id)s::uuid)
   AND (%(user_id)s::uuid IS NULL OR t.user_id = %(user_id)s::uuid)
   AND (%(provider)s::text IS NULL OR t.provider = %(provider)s::text)
   AND (%(from_time)s::timestamptz IS NULL OR t.transaction_at >= %(from_time)s::timestamptz)
   AND (%(to_time)s::timestamptz IS NULL OR t.transaction_at < %(to_time)s::timestamptz)
   AND (%(after_at)s::timestamptz IS NULL
        OR (t.transaction_at, t.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY t.transaction_at DESC, t.id DESC
 LIMIT %(limit)s;

-- name: list_reward_events
-- Newest first on (created_at, id); the member through the wallet, the provider through the
-- transaction (a redemption has none, so a provider filter leaves it out).
SELECT e.id, e.tenant_id, e.wallet_id, w.user_id, e.kind, e.outcome, e.transaction_id, t.provider,
       e.refund_id, e.rule_version_id, e.points_earned, e.points_redeemed, e.points_reversed,
       e.points_shortfall, e.created_at
  FROM loyalty.reward_events e
  JOIN loyalty.wallets w ON w.id = e.wallet_id AND w.tenant_id = e.tenant_id
  LEFT JOIN pos.transactions t ON t.id = e.transaction_id
 WHERE (%(tenant_id)s::uuid IS NULL OR e.tenant_id = %(tenant_id)s::uuid)
   AND (%(user_id)s::uuid IS NULL OR w.user_id = %(user_id)s::uuid)
   AND (%(provider)s::text IS NULL OR t.provider = %(provider)s::text)
   AND (%(kind)s::text IS NULL OR e.kind = %(kind)s::text)
   AND (%(from_time)s::timestamptz IS NULL OR e.created_at >= %(from_time)s::timestamptz)
   AND (%(to_time)s::timestamptz IS NULL OR e.created_at < %(to_time)s::timestamptz)
   AND (%(after_at)s::timestamptz IS NULL
        OR (e.created_at, e.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY e.created_at DESC, e.id DESC
 LIMIT %(limit)s;

-- name: list_webhook_events
-- Metadata only (never the body or its signature), newest first on (created_at, id). Quarantined
-- events have no tenant: only a read without a tenant context sees them.
SELECT r.id, r.tenant_id, r.provider, r.event_type, r.provider_event_id, r.merchant_account_id,
       CASE WHEN r.tenant_id IS NULL THEN 'quarantined'
            WHEN r.processed THEN 'processed'
            WHEN r.parked_at IS NOT NULL THEN 'parked'
            ELSE 'pending' END AS state,
       r.processing_outcome, r.sweep_count, r.parked_at, r.last_error, r.quarantine_reason,
       r.released_at, r.created_at, r.processed_at
  FROM pos.pos_webhook_events_raw r
 WHERE (%(tenant_id)s::uuid IS NULL OR r.tenant_id = %(tenant_id)s::uuid)
   AND (%(provider)s::text IS NULL OR r.provider = %(provider)s::text)
   AND CASE %(state)s::text
           WHEN 'quarantined' THEN r.tenant_id IS NULL
           WHEN 'processed' THEN r.tenant_id IS NOT NULL AND r.processed
           WHEN 'parked' THEN r.tenant_id IS NOT NULL AND NOT r.processed AND r.parked_at IS NOT NULL
           WHEN 'pending' THEN r.tenant_id IS NOT NULL AND NOT r.processed AND r.parked_at IS NULL
           ELSE true END
   AND (%(from_time)s::timestamptz IS NULL OR r.created_at >= %(from_time)s::timestamptz)
   AND (%(to_time)s::timestamptz IS NULL OR r.created_at < %(to_time)s::timestamptz)
   AND (%(after_at)s::timestamptz IS NULL
        OR (r.created_at, r.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT %(limit)s;

-- name: replay_raw_events
-- Across tenants, in the admin's change transaction (no tenant context); see migration 0019.
SELECT event_id, outcome, tenant_id, provider
  FROM pos.replay_raw_events(%(event_ids)s::uuid[]);
