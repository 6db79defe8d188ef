-- The RPApos scheduler (role pos_gateway_rpapos): the due connections across tenants come from the
-- SECURITY DEFINER function of 0024 (ids only); every other statement runs in the tenant's
-- own transaction, under row-level security.

-- name: due_connections
SELECT connection_id, tenant_id
  FROM rpapos.rpapos_scheduler_due_connections(%(limit)s);

-- name: unstarted_runs
-- Running runs that no execution ever picked up (0026), past the grace period.
SELECT sync_run_id, tenant_id
  FROM rpapos.rpapos_unstarted_runs(%(grace_seconds)s, %(limit)s);

-- name: fail_unstarted_run
-- StartExecution failed: nothing will ever run it, so it ends now and frees the connection.
-- A run whose execution attached itself did start (the answer was lost): left alone.
UPDATE rpapos.rpapos_sync_run
   SET status = 'failed', completed_at = now(), last_error = %(error)s
 WHERE id = %(run_id)s AND status = 'running' AND execution_arn IS NULL
RETURNING connection_id;

-- name: note_connection_error
UPDATE rpapos.rpapos_connection
   SET last_error = %(error)s
 WHERE id = %(connection_id)s;
