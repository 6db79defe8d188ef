-- name: lock_tenant_pushes
-- Pushes of one tenant apply one after another (devices never deadlock on each other's rows, and
-- a retry of a batch still running waits, then finds its results). Released at commit.
SELECT pg_advisory_xact_lock(hashtextextended('field_sales.push:' || %(tenant_id)s::text, 0));

-- name: business_settings
-- The tenant's settings; without a settings row, the defaults of migration 0027.
SELECT coalesce(s.control_kilos, true) AS control_kilos,
       coalesce(s.usar_distribucion, false) AS usar_distribucion,
       coalesce(s.permitir_venta_sin_stock, false) AS permitir_venta_sin_stock,
       coalesce(s.permitir_saldo_a_favor, false) AS permitir_saldo_a_favor,
       coalesce(s.currency, 'PEN') AS currency
  FROM (SELECT %(tenant_id)s::uuid AS tenant_id) AS tenant
  LEFT JOIN field_sales.business_settings s ON s.tenant_id = tenant.tenant_id;

-- name: landed_operations
-- The batch's opIds that already landed, with the hash of what was sent and the stored result.
SELECT op_id, request_hash, result
  FROM field_sales.sync_operations
 WHERE tenant_id = %(tenant_id)s AND op_id = ANY(%(op_ids)s::uuid[]);

-- name: record_operations
-- The operations that landed in a batch, with their results: the same opId again is answered from
-- here. One row per element of the arrays (all of one length).
INSERT INTO field_sales.sync_operations (tenant_id, op_id, device_id, collection, operation_type, record_id,
                                         request_hash, result, client_created_at)
SELECT %(tenant_id)s, landed.op_id, %(device_id)s, landed.collection, landed.operation_type, landed.record_id,
       landed.request_hash, landed.result::jsonb, landed.client_created_at
  FROM unnest(%(op_ids)s::uuid[], %(collections)s::text[], %(operation_types)s::text[], %(record_ids)s::uuid[],
              %(request_hashes)s::text[], %(results)s::text[], %(client_created_ats)s::timestamptz[])
       WITH ORDINALITY AS landed (op_id, collection, operation_type, record_id, request_hash, result,
                                  client_created_at, position)
 ORDER BY landed.position;

-- name: savepoint
-- Each operation applies in its own savepoint (released when it lands, rolled back when refused).
SAVEPOINT field_operation;

-- name: release_savepoint
RELEASE SAVEPOINT field_operation;

-- name: rollback_to_savepoint
ROLLBACK TO SAVEPOINT field_operation;
