-- name: admin_caller
-- The caller's account, membership and tenant as this transaction's tenant context sees them.
SELECT user_found, user_status, user_role, membership_role, tenant_status
  FROM identity.admin_caller(%(user_id)s, %(tenant_id)s);

-- name: enable_platform_read
-- A platform admin's cross-tenant read: only the admin role's SELECT policies honour it.
SELECT set_config('app.platform_read', 'on', true);
