-- name: claim_stuck_raw_events
-- Claim raw events stuck unprocessed past the grace period, across tenants; each claim counts a sweep.
SELECT id, tenant_id, provider, parked
  FROM pos.claim_stuck_raw_events(%(grace_seconds)s::integer, %(max_sweeps)s::integer, %(limit)s::integer);

-- name: record_crediting_failure
-- Note why crediting failed on a raw event that is still unprocessed (in the event's tenant).
UPDATE pos.pos_webhook_events_raw
   SET last_error = %(error)s
 WHERE id = %(raw_event_id)s AND processed = false;
