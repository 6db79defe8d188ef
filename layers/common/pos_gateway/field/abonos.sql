-- name: find_abono
SELECT id, client_id, amount
  FROM field_sales.abonos
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: insert_abono
INSERT INTO field_sales.abonos (id, tenant_id, client_id, seller_id, amount, payment_method, notes, currency,
                                paid_at, device_id)
VALUES (%(id)s, %(tenant_id)s, %(client_id)s, %(seller_id)s, %(amount)s, %(payment_method)s, %(notes)s,
        %(currency)s, %(paid_at)s, %(device_id)s)
RETURNING id;
