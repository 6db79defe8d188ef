-- RPApos sync runs as operators and the scheduler start and steer them (role pos_gateway_admin,
-- inside the caller's tenant transaction: row-level security keeps every statement in the tenant).
-- Only columns of the admin role's grants are written (db/migrations/0020_rpapos.sql); the
-- task_token is read to hand it back to the caller, never selected for an answer.

-- name: connection_for_run
SELECT id, status, last_synced_at, deleted_at
  FROM rpapos.rpapos_connection
 WHERE id = %(connection_id)s;

-- name: active_run_of_connection
SELECT id
  FROM rpapos.rpapos_sync_run
 WHERE connection_id = %(connection_id)s AND status IN ('running', 'paused');

-- name: insert_run
-- The cursor stays NULL: the engine starts a run that has none at its first entity, page 1
-- (the admin role may not write cursor or current_entity).
INSERT INTO rpapos.rpapos_sync_run (tenant_id, connection_id, mode, status, entity_types, include_images,
                                    per_entity_stats, date_from, date_to, execution_arn, created_by)
VALUES (%(tenant_id)s, %(connection_id)s, %(mode)s, 'running',
        %(entity_types)s::text[]::rpapos.rpapos_entity_type[], %(include_images)s, %(per_entity_stats)s,
        %(date_from)s, %(date_to)s, %(execution_arn)s, %(created_by)s)
RETURNING id;

-- name: get_run
SELECT id, tenant_id, connection_id, mode, status, paused, cancel_requested,
       entity_types::text[] AS entity_types, include_images, current_entity::text AS current_entity, cursor,
       per_entity_stats, date_from, date_to, execution_arn, last_error, started_at, completed_at,
       created_by, created_at, updated_at
  FROM rpapos.rpapos_sync_run
 WHERE id = %(run_id)s;

-- name: lock_run
SELECT id, status, paused, cancel_requested, task_token
  FROM rpapos.rpapos_sync_run
 WHERE id = %(run_id)s
   FOR UPDATE;

-- name: request_pause
UPDATE rpapos.rpapos_sync_run
   SET paused = true
 WHERE id = %(run_id)s;

-- name: clear_pause
-- The run goes on: the stored callback token (if the run was parked) is handed to the caller,
-- who wakes the execution with it; it is never kept past this.
UPDATE rpapos.rpapos_sync_run
   SET paused = false, status = 'running', task_token = NULL
 WHERE id = %(run_id)s;

-- name: request_cancel
UPDATE rpapos.rpapos_sync_run
   SET cancel_requested = true
 WHERE id = %(run_id)s;

-- name: cancel_parked
-- A parked run has no page in flight: it ends now, and the same UPDATE clears its token.
UPDATE rpapos.rpapos_sync_run
   SET cancel_requested = true, status = 'cancelled', completed_at = now(), task_token = NULL
 WHERE id = %(run_id)s;
