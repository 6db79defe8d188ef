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

-- name: record_operation
-- An operation that landed, with its result: the same opId again is answered from here.
INSERT INTO field_sales.sync_operations (tenant_id, op_id, device_id, collection, operation_type, record_id,
                                         request_hash, result, client_created_at)
VALUES (%(tenant_id)s, %(op_id)s, %(device_id)s, %(collection)s, %(operation_type)s, %(record_id)s,
        %(request_hash)s, %(result)s::text::jsonb, %(client_created_at)s);
