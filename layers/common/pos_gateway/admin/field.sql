-- Field sales (migration 0027) as the admin API manages them: settings, sellers, devices,
-- products and stock. Every table is under row-level security on its tenant, so each statement
-- sees the request's tenant only; the explicit tenant_id conditions say so for the reader too.
-- No statement here ever selects a device's credential_hash.

-- ---------------------------------------------------------------- settings

-- name: get_settings
-- The stored settings, or the column defaults of migration 0027 for a tenant without a row
-- (field_sales.authenticate_device answers the same currency, 'PEN', for such a tenant).
SELECT coalesce(s.modo_operacion, 'inventario_propio') AS modo_operacion,
       coalesce(s.control_kilos, true) AS control_kilos,
       coalesce(s.usar_distribucion, false) AS usar_distribucion,
       coalesce(s.permitir_venta_sin_stock, false) AS permitir_venta_sin_stock,
       coalesce(s.permitir_saldo_a_favor, false) AS permitir_saldo_a_favor,
       coalesce(s.currency, 'PEN') AS currency,
       s.tenant_id IS NOT NULL AS configured,
       s.created_at, s.updated_at
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN field_sales.business_settings s ON s.tenant_id = %(tenant_id)s;

-- name: lock_settings
SELECT tenant_id FROM field_sales.business_settings WHERE tenant_id = %(tenant_id)s FOR UPDATE;

-- name: upsert_settings
INSERT INTO field_sales.business_settings (tenant_id, modo_operacion, control_kilos, usar_distribucion,
                                           permitir_venta_sin_stock, permitir_saldo_a_favor, currency)
VALUES (%(tenant_id)s, %(modo_operacion)s, %(control_kilos)s, %(usar_distribucion)s,
        %(permitir_venta_sin_stock)s, %(permitir_saldo_a_favor)s, %(currency)s)
ON CONFLICT (tenant_id) DO UPDATE
   SET modo_operacion = EXCLUDED.modo_operacion,
       control_kilos = EXCLUDED.control_kilos,
       usar_distribucion = EXCLUDED.usar_distribucion,
       permitir_venta_sin_stock = EXCLUDED.permitir_venta_sin_stock,
       permitir_saldo_a_favor = EXCLUDED.permitir_saldo_a_favor,
       currency = EXCLUDED.currency;

-- ---------------------------------------------------------------- sellers (business_users)

-- name: account
-- identity.users has no row-level security: any live account may be given a seat.
SELECT id FROM identity.users WHERE id = %(user_id)s AND deleted_at IS NULL;

-- name: get_seller
SELECT b.id, b.user_id, u.email, u.full_name, u.status AS user_status, b.role, b.sales_point,
       b.commission_rate, b.is_active, b.joined_at, b.updated_at
  FROM field_sales.business_users b
  JOIN identity.users u ON u.id = b.user_id
 WHERE b.tenant_id = %(tenant_id)s AND b.id = %(seller_id)s;

-- name: list_sellers
-- Newest seat first, keyset-paginated on (joined_at, id).
SELECT b.id, b.user_id, u.email, u.full_name, u.status AS user_status, b.role, b.sales_point,
       b.commission_rate, b.is_active, b.joined_at, b.updated_at
  FROM field_sales.business_users b
  JOIN identity.users u ON u.id = b.user_id
 WHERE b.tenant_id = %(tenant_id)s
   AND (%(is_active)s::boolean IS NULL OR b.is_active = %(is_active)s::boolean)
   AND (%(after_at)s::timestamptz IS NULL OR (b.joined_at, b.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY b.joined_at DESC, b.id DESC
 LIMIT %(limit)s;

-- name: insert_seller
-- A second seat of the same user (a concurrent request included) loses on the unique key: no row.
INSERT INTO field_sales.business_users (tenant_id, user_id, role, sales_point, commission_rate)
VALUES (%(tenant_id)s, %(user_id)s, %(role)s, %(sales_point)s, %(commission_rate)s)
ON CONFLICT (tenant_id, user_id) DO NOTHING
RETURNING id;

-- name: lock_seller
SELECT id, is_active
  FROM field_sales.business_users
 WHERE tenant_id = %(tenant_id)s AND id = %(seller_id)s
   FOR UPDATE;

-- name: update_seller
-- Each column changes only when its set_ flag is true (a NULL sales_point clears it).
UPDATE field_sales.business_users
   SET role = CASE WHEN %(set_role)s::boolean THEN %(role)s::text ELSE role END,
       sales_point = CASE WHEN %(set_sales_point)s::boolean THEN %(sales_point)s::varchar ELSE sales_point END,
       commission_rate = CASE WHEN %(set_commission_rate)s::boolean
                              THEN %(commission_rate)s::numeric ELSE commission_rate END,
       is_active = CASE WHEN %(set_is_active)s::boolean THEN %(is_active)s::boolean ELSE is_active END
 WHERE tenant_id = %(tenant_id)s AND id = %(seller_id)s;

-- ---------------------------------------------------------------- devices

-- name: insert_device
-- The id is chosen before the insert: the credential names it (fsd_<id hex>_<secret>).
INSERT INTO field_sales.devices (id, tenant_id, business_user_id, label, credential_hash)
VALUES (%(id)s, %(tenant_id)s, %(seller_id)s, %(label)s, %(credential_hash)s);

-- name: get_device
SELECT id, business_user_id AS seller_id, label, created_at, last_seen_at, revoked_at, revoked_reason
  FROM field_sales.devices
 WHERE tenant_id = %(tenant_id)s AND id = %(device_id)s;

-- name: list_devices
-- Newest first, keyset-paginated on (created_at, id); revoked devices too (revoked_at says so).
SELECT id, business_user_id AS seller_id, label, created_at, last_seen_at, revoked_at, revoked_reason
  FROM field_sales.devices
 WHERE tenant_id = %(tenant_id)s
   AND (%(seller_id)s::uuid IS NULL OR business_user_id = %(seller_id)s::uuid)
   AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: lock_device
SELECT id, revoked_at
  FROM field_sales.devices
 WHERE tenant_id = %(tenant_id)s AND id = %(device_id)s
   FOR UPDATE;

-- name: revoke_device
UPDATE field_sales.devices
   SET revoked_at = now(), revoked_reason = %(reason)s
 WHERE tenant_id = %(tenant_id)s AND id = %(device_id)s AND revoked_at IS NULL;

-- ---------------------------------------------------------------- products and stock

-- name: get_product
SELECT p.id, p.name, p.type, p.unit, p.base_price, p.is_active, p.version,
       coalesce(i.quantity, 0) AS stock, i.updated_at AS stock_updated_at,
       p.created_at, p.updated_at, p.deleted_at
  FROM field_sales.products p
  LEFT JOIN field_sales.inventory i ON i.tenant_id = p.tenant_id AND i.product_id = p.id
 WHERE p.tenant_id = %(tenant_id)s AND p.id = %(product_id)s;

-- name: list_products
-- Newest first, keyset-paginated on (created_at, id); soft-deleted ones only when asked for.
SELECT p.id, p.name, p.type, p.unit, p.base_price, p.is_active, p.version,
       coalesce(i.quantity, 0) AS stock, i.updated_at AS stock_updated_at,
       p.created_at, p.updated_at, p.deleted_at
  FROM field_sales.products p
  LEFT JOIN field_sales.inventory i ON i.tenant_id = p.tenant_id AND i.product_id = p.id
 WHERE p.tenant_id = %(tenant_id)s
   AND (%(include_deleted)s::boolean OR p.deleted_at IS NULL)
   AND (%(after_at)s::timestamptz IS NULL OR (p.created_at, p.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY p.created_at DESC, p.id DESC
 LIMIT %(limit)s;

-- name: insert_product
-- change_xid and change_seq come from the mark_change trigger.
INSERT INTO field_sales.products (tenant_id, name, type, unit, base_price)
VALUES (%(tenant_id)s, %(name)s, %(type)s, %(unit)s, %(base_price)s)
RETURNING id;

-- name: lock_product
SELECT id, deleted_at
  FROM field_sales.products
 WHERE tenant_id = %(tenant_id)s AND id = %(product_id)s
   FOR UPDATE;

-- name: update_product
-- Every accepted change is a new version: devices compare it to detect a stale copy.
UPDATE field_sales.products
   SET name = CASE WHEN %(set_name)s::boolean THEN %(name)s::varchar ELSE name END,
       base_price = CASE WHEN %(set_base_price)s::boolean THEN %(base_price)s::numeric ELSE base_price END,
       is_active = CASE WHEN %(set_is_active)s::boolean THEN %(is_active)s::boolean ELSE is_active END,
       version = version + 1
 WHERE tenant_id = %(tenant_id)s AND id = %(product_id)s AND deleted_at IS NULL;

-- name: delete_product
-- Soft delete: sale items keep referring to it; the next pull carries it as a tombstone.
UPDATE field_sales.products
   SET deleted_at = now(), version = version + 1
 WHERE tenant_id = %(tenant_id)s AND id = %(product_id)s AND deleted_at IS NULL;

-- name: lock_inventory
SELECT quantity
  FROM field_sales.inventory
 WHERE tenant_id = %(tenant_id)s AND product_id = %(product_id)s
   FOR UPDATE;

-- name: set_inventory
-- The stock counted by the operator replaces what the books say (a product made without an
-- inventory row gets one).
INSERT INTO field_sales.inventory (tenant_id, product_id, quantity)
VALUES (%(tenant_id)s, %(product_id)s, %(quantity)s)
ON CONFLICT (tenant_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity;
