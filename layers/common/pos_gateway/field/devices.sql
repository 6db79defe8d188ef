-- name: authenticate_device
-- The device, its seller and tenant, when the credential matches and everything is active.
SELECT tenant_id, device_id, business_user_id, role, currency, country
  FROM field_sales.authenticate_device(%(device_id)s, %(credential_hash)s);

-- name: touch_device
-- When the device was last heard from (in the request's tenant transaction).
UPDATE field_sales.devices SET last_seen_at = now() WHERE tenant_id = %(tenant_id)s AND id = %(device_id)s;
