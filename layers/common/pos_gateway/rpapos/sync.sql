-- The RPApos sync engine (role pos_gateway_rpapos), one tenant transaction at a time: row-level
-- security keeps every statement in the run's tenant. Only columns of the role's grants are
-- written (db/migrations/0020_rpapos.sql).

-- name: run_for_step
-- The run and what its extraction needs of the connection (sealed credentials included: the
-- engine opens them, they never leave it).
SELECT r.id, r.mode, r.status, r.paused, r.cancel_requested,
       r.entity_types::text[] AS entity_types, r.current_entity::text AS current_entity, r.cursor,
       r.date_from, r.date_to, r.started_at, r.include_images, r.created_by,
       c.id AS connection_id, c.subdomain, c.usuario, c.password_encrypted, c.timezone,
       c.currency_code, c.tipo_gestion_map, c.soap_token_encrypted, c.estacion_trabajo,
       c.last_synced_at, c.deleted_at AS connection_deleted_at
  FROM rpapos.rpapos_sync_run r
  JOIN rpapos.rpapos_connection c ON c.tenant_id = r.tenant_id AND c.id = r.connection_id
 WHERE r.id = %(run_id)s;

-- name: lock_run
SELECT status, paused, cancel_requested, cursor, per_entity_stats, mode, started_at, connection_id,
       entity_types::text[] AS entity_types
  FROM rpapos.rpapos_sync_run
 WHERE id = %(run_id)s
   FOR UPDATE;

-- name: end_cancelled
-- Ending a run sets completed_at and clears task_token in the same UPDATE.
UPDATE rpapos.rpapos_sync_run
   SET status = 'cancelled', completed_at = %(at)s, task_token = NULL
 WHERE id = %(run_id)s AND status IN ('running', 'paused') AND cancel_requested
RETURNING id;

-- name: mark_parked
-- The engine stops before a page: the run is parked until an operator resumes or cancels it.
UPDATE rpapos.rpapos_sync_run
   SET status = 'paused'
 WHERE id = %(run_id)s AND status = 'running' AND paused AND NOT cancel_requested
RETURNING id;

-- name: store_task_token
-- Only while the run is still parked: resumed or cancelled meanwhile, nobody would answer it.
UPDATE rpapos.rpapos_sync_run
   SET task_token = %(task_token)s
 WHERE id = %(run_id)s AND status = 'paused' AND paused AND NOT cancel_requested
RETURNING id;

-- name: parent_after
-- The next parent record (an area for mesas, a modifier group for its items) loaded for the
-- tenant, in external id order: keyset, so parents loaded meanwhile do not shift the cursor.
SELECT external_id
  FROM rpapos.rpapos_id_map
 WHERE tenant_id = %(tenant_id)s AND entity_type = %(entity_type)s::rpapos.rpapos_entity_type
   AND (%(after)s::text IS NULL OR external_id > %(after)s::text)
 ORDER BY external_id
 LIMIT 1;

-- name: insert_archive
INSERT INTO rpapos.rpapos_extraction_archive (tenant_id, sync_run_id, entity_type, page, cursor,
                                              record_count, payload, extracted_at)
VALUES (%(tenant_id)s, %(run_id)s, %(entity_type)s::rpapos.rpapos_entity_type, %(page)s, %(cursor)s,
        %(record_count)s, %(payload)s, %(extracted_at)s);

-- name: record_page
UPDATE rpapos.rpapos_sync_run
   SET status = 'running', current_entity = %(current_entity)s::rpapos.rpapos_entity_type,
       cursor = %(cursor)s, per_entity_stats = %(per_entity_stats)s
 WHERE id = %(run_id)s;

-- name: complete_run
UPDATE rpapos.rpapos_sync_run
   SET status = 'completed', completed_at = %(at)s, task_token = NULL
 WHERE id = %(run_id)s;

-- name: record_success_on_connection
-- last_synced_at / last_full_sync_at are the run's start: a record changed while it ran is read
-- again by the next incremental run. A connection in error works again.
UPDATE rpapos.rpapos_connection
   SET last_synced_at = coalesce(%(last_synced_at)s, last_synced_at),
       last_full_sync_at = coalesce(%(last_full_sync_at)s, last_full_sync_at),
       last_error = NULL,
       status = CASE WHEN status = 'error' THEN 'active' ELSE status END
 WHERE id = %(connection_id)s;

-- name: fail_run
UPDATE rpapos.rpapos_sync_run
   SET status = 'failed', completed_at = %(at)s, task_token = NULL, last_error = %(error)s,
       per_entity_stats = %(per_entity_stats)s
 WHERE id = %(run_id)s;

-- name: record_failure_on_connection
UPDATE rpapos.rpapos_connection
   SET last_error = %(error)s,
       status = CASE WHEN %(status)s::text IS NOT NULL AND status <> 'disconnected'
                     THEN %(status)s::text ELSE status END
 WHERE id = %(connection_id)s;

-- name: attach_execution
UPDATE rpapos.rpapos_sync_run
   SET execution_arn = %(execution_arn)s
 WHERE id = %(run_id)s AND status IN ('running', 'paused')
RETURNING id;
