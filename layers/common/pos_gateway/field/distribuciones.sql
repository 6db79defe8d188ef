-- name: lock_distribucion
-- A distribution, locked until the push commits (sales count against it, voids give back).
SELECT id, vendedor_id, punto_venta, kilos_asignados, kilos_vendidos, monto_recaudado, fecha, estado,
       version, updated_at
  FROM field_sales.distribuciones
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s
   FOR UPDATE;

-- name: lock_open_distribucion
-- The seller's one open distribution (distribuciones_one_open_key), locked.
SELECT id, vendedor_id, punto_venta, kilos_asignados, kilos_vendidos, monto_recaudado, fecha, estado,
       version, updated_at
  FROM field_sales.distribuciones
 WHERE tenant_id = %(tenant_id)s AND vendedor_id = %(vendedor_id)s AND estado <> 'cerrado'
   FOR UPDATE;

-- name: active_seller
-- A seller of the tenant who may be given a distribution.
SELECT id
  FROM field_sales.business_users
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND is_active;

-- name: insert_distribucion
INSERT INTO field_sales.distribuciones (id, tenant_id, vendedor_id, punto_venta, kilos_asignados, fecha,
                                        estado, created_by)
VALUES (%(id)s, %(tenant_id)s, %(vendedor_id)s, %(punto_venta)s, %(kilos_asignados)s, %(fecha)s,
        %(estado)s, %(created_by)s)
RETURNING version;

-- name: update_distribucion
-- Only the fields the device set change (set_<field>); the version it saw is checked once more.
UPDATE field_sales.distribuciones
   SET estado = CASE WHEN %(set_estado)s THEN %(estado)s::text ELSE estado END,
       kilos_asignados = CASE WHEN %(set_kilos_asignados)s THEN %(kilos_asignados)s::numeric
                              ELSE kilos_asignados END,
       punto_venta = CASE WHEN %(set_punto_venta)s THEN %(punto_venta)s::text ELSE punto_venta END,
       version = version + 1
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND version = %(version)s
RETURNING version;

-- name: count_sale
-- What a sale takes from (or its void gives back to) the distribution. Derived totals, not the
-- device's fields: the version stays.
UPDATE field_sales.distribuciones
   SET kilos_vendidos = kilos_vendidos + %(kilos)s,
       monto_recaudado = monto_recaudado + %(monto)s
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s
RETURNING kilos_vendidos;
