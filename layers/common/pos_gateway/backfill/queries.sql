-- name: claim_connections
-- Take active Square connections to poll, least recently polled first, across tenants.
SELECT connection_id, tenant_id, merchant_account_id, access_token_enc, payments_watermark_at
  FROM pos.square_poll_claim_connections(%(limit)s::integer);

-- name: location_watermarks
-- The polling progress of each location of one connection.
SELECT location_id, payments_watermark_at
  FROM pos.square_poll_location_watermarks(%(connection_id)s::uuid);

-- name: store_page
-- Store one page of polled payments as raw events and move the location's watermark; returns new ids.
SELECT raw_event_id
  FROM pos.square_poll_store_page(%(connection_id)s::uuid, %(location_id)s::text, %(events)s::jsonb,
                                  %(watermark_at)s::timestamptz);

-- name: record_poll_outcome
-- Note how polling one connection ended (NULL error: success).
SELECT pos.square_poll_record_outcome(%(connection_id)s::uuid, %(status)s::text, %(error)s::text) AS updated;

-- name: tokens_due
-- Square connections whose access token expires before the given instant, soonest first.
SELECT connection_id, tenant_id, access_token_enc, refresh_token_enc, token_expires_at
  FROM pos.square_tokens_due(%(expiring_before)s::timestamptz, %(limit)s::integer);

-- name: store_refreshed_tokens
-- Replace a connection's sealed tokens if its access token is still the one that was read.
SELECT pos.square_store_refreshed_tokens(%(connection_id)s::uuid, %(previous_access_token_enc)s::text,
                                         %(access_token_enc)s::text, %(refresh_token_enc)s::text,
                                         %(token_expires_at)s::timestamptz) AS updated;

-- name: record_refresh_failure
-- Note a failed refresh, taking the connection out of service when the status says so.
SELECT pos.square_record_refresh_failure(%(connection_id)s::uuid, %(status)s::text, %(error)s::text) AS updated;
