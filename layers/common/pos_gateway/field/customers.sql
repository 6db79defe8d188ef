-- name: lock_customer
-- A customer (deleted ones too), locked until the push commits: its debt and version change here.
SELECT id, name, dni, phone, email, address, notes, created_by, debt, version, created_at, updated_at,
       deleted_at
  FROM field_sales.customers
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s
   FOR UPDATE;

-- name: insert_customer
-- A customer created on a device, under the device's id for it.
INSERT INTO field_sales.customers (id, tenant_id, name, dni, phone, email, address, notes, created_by)
VALUES (%(id)s, %(tenant_id)s, %(name)s, %(dni)s, %(phone)s, %(email)s, %(address)s, %(notes)s,
        %(created_by)s)
RETURNING version;

-- name: update_customer
-- Only the fields the device set change (set_<field>); the version it saw is checked once more.
UPDATE field_sales.customers
   SET name = CASE WHEN %(set_name)s THEN %(name)s::text ELSE name END,
       dni = CASE WHEN %(set_dni)s THEN %(dni)s::text ELSE dni END,
       phone = CASE WHEN %(set_phone)s THEN %(phone)s::text ELSE phone END,
       email = CASE WHEN %(set_email)s THEN %(email)s::text ELSE email END,
       address = CASE WHEN %(set_address)s THEN %(address)s::text ELSE address END,
       notes = CASE WHEN %(set_notes)s THEN %(notes)s::text ELSE notes END,
       version = version + 1
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND version = %(version)s AND deleted_at IS NULL
RETURNING version;

-- name: delete_customer
-- A soft delete: the customer's sales and abonos keep referring to it.
UPDATE field_sales.customers
   SET deleted_at = now(), version = version + 1
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND version = %(version)s AND deleted_at IS NULL
RETURNING version;

-- name: add_debt
-- A credit sale adds its balance due, an abono takes its amount off; voids undo either. Not a
-- change of the customer's own fields: the version stays.
UPDATE field_sales.customers
   SET debt = debt + %(delta)s
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s
RETURNING debt;
