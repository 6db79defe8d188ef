-- name: void_of
-- The void of a sale or of an abono, if it was voided.
SELECT id
  FROM field_sales.voids
 WHERE tenant_id = %(tenant_id)s
   AND (sale_id = %(sale_id)s::uuid OR abono_id = %(abono_id)s::uuid);

-- name: insert_void
-- The compensating record of a sale or an abono (a second void fails on voids_*_key).
INSERT INTO field_sales.voids (id, tenant_id, sale_id, abono_id, reason, voided_by, device_id)
VALUES (%(id)s, %(tenant_id)s, %(sale_id)s::uuid, %(abono_id)s::uuid, %(reason)s, %(voided_by)s, %(device_id)s)
RETURNING id;
