-- The product image import of a sync run (pos_gateway.rpapos.images), as role pos_gateway_rpapos
-- inside the engine's tenant transaction: row-level security scopes every statement; tenant_id
-- is named as well so that the (tenant, ...) indexes serve them.

-- name: plus_after
-- The next PLUs loaded for the tenant, in external id order (keyset: PLUs loaded meanwhile do not
-- shift the walk), with their products; soft-deleted products are left out. Ordered through the
-- (tenant_id, external_id) index of 0022 (the entity type is checked on the rows it finds).
SELECT m.external_id, m.flowpos_entity_id AS product_id
  FROM rpapos.rpapos_id_map m
  JOIN catalog.product p ON p.tenant_id = m.tenant_id AND p.id = m.flowpos_entity_id
 WHERE m.tenant_id = %(tenant_id)s
   AND m.entity_type = 'plu'
   AND (%(after)s::text IS NULL OR m.external_id > %(after)s::text)
   AND p.deleted_at IS NULL
 ORDER BY m.external_id
 LIMIT %(limit)s;

-- name: insert_job
INSERT INTO catalog.import_job (tenant_id, import_type, status, options, created_by, started_at)
VALUES (%(tenant_id)s, %(import_type)s, 'running', %(options)s, %(created_by)s, %(at)s)
RETURNING id;

-- name: set_image_url
-- The stored images' keys; returns the products whose image_url changed.
UPDATE catalog.product AS p
   SET image_url = r.key
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS r (product_id uuid, key text)
 WHERE p.tenant_id = %(tenant_id)s AND p.id = r.product_id
   AND p.image_url IS DISTINCT FROM r.key
RETURNING p.id;

-- name: insert_rows
-- A row number is written once per job (import_row_job_row_key): the engine's cursor check makes
-- sure a page is never written twice, and this would refuse it if it were.
INSERT INTO catalog.import_row (tenant_id, import_job_id, row_number, status, payload, error)
SELECT %(tenant_id)s, %(job_id)s, r.row_number, r.status, r.payload, r.error
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS r (row_number integer, status text, payload jsonb, error text);

-- name: count_rows
UPDATE catalog.import_job
   SET total_rows = total_rows + %(rows)s,
       success_count = success_count + %(succeeded)s,
       error_count = error_count + %(failed)s,
       status = CASE WHEN %(last)s THEN 'completed' ELSE status END,
       completed_at = CASE WHEN %(last)s THEN %(at)s ELSE completed_at END
 WHERE id = %(job_id)s;

-- name: fail_job
UPDATE catalog.import_job
   SET status = 'failed', completed_at = %(at)s, last_error = %(error)s
 WHERE id = %(job_id)s AND status IN ('pending', 'running')
RETURNING id;
