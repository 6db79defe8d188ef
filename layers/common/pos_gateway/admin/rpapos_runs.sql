-- Sync runs and image import jobs as operators read them, and the two compensations a failed
-- Step Functions call needs (pos_gateway.admin.rpapos_runs). Row-level security keeps every
-- statement in the request's tenant; the task token is never selected for an answer.

-- name: connection_exists
SELECT id FROM rpapos.rpapos_connection WHERE id = %(connection_id)s;

-- name: list_runs
-- A connection's runs, newest first, keyset-paginated on (started_at, id).
SELECT id, tenant_id, connection_id, mode, status, paused, cancel_requested,
       entity_types::text[] AS entity_types, include_images, current_entity::text AS current_entity,
       cursor, per_entity_stats, date_from, date_to, execution_arn, last_error, started_at,
       completed_at, created_by, created_at, updated_at
  FROM rpapos.rpapos_sync_run
 WHERE connection_id = %(connection_id)s
   AND (%(after_at)s::timestamptz IS NULL OR (started_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY started_at DESC, id DESC
 LIMIT %(limit)s;

-- name: lock_run_state
-- The run's state before a change (locked first: the audited "before" is the one changed).
SELECT id, connection_id, status, paused, cancel_requested
  FROM rpapos.rpapos_sync_run
 WHERE id = %(run_id)s
   FOR UPDATE;

-- name: fail_unstarted_run
-- StartExecution failed after the run committed: nothing will ever run it, so it ends now (it
-- no longer blocks the connection's next run). The admin role may not write the run's
-- last_error: the reason goes on the connection, as a failed sync's does.
UPDATE rpapos.rpapos_sync_run
   SET status = 'failed', completed_at = now(), task_token = NULL
 WHERE id = %(run_id)s AND status IN ('running', 'paused')
RETURNING connection_id;

-- name: note_connection_error
UPDATE rpapos.rpapos_connection
   SET last_error = %(last_error)s
 WHERE id = %(connection_id)s;

-- name: repark_run
-- SendTaskSuccess failed after a resume or a cancel committed: the execution still waits on the
-- token. The run goes back to parked with it (a cancel stays requested), so that resuming or
-- cancelling again sends it again.
UPDATE rpapos.rpapos_sync_run
   SET status = 'paused', paused = true, completed_at = NULL, task_token = %(task_token)s
 WHERE id = %(run_id)s AND task_token IS NULL
   AND (status = 'running' OR (status = 'cancelled' AND cancel_requested))
RETURNING id;

-- name: image_import_job
-- The product image import of a run (import_type product-image, options.syncRunId); the newest
-- when there were several.
SELECT id, tenant_id, import_type, status, options, total_rows, success_count, error_count,
       last_error, created_by, started_at, completed_at, created_at, updated_at
  FROM catalog.import_job
 WHERE options ? 'syncRunId' AND options ->> 'syncRunId' = %(run_id)s::text
   AND import_type = 'product-image'
 ORDER BY created_at DESC, id DESC
 LIMIT 1;
