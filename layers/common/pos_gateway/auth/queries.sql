-- name: caller_standing
-- The caller's account, their live pos_operator membership and the tenant, as this tenant's
-- transaction sees them (memberships and tenants are under row-level security).
SELECT u.id IS NOT NULL AS user_found,
       u.status AS user_status,
       u.role AS user_role,
       EXISTS (SELECT 1
                 FROM identity.tenant_users m
                WHERE m.user_id = %(user_id)s AND m.tenant_id = %(tenant_id)s
                  AND m.role = 'pos_operator' AND m.deleted_at IS NULL) AS is_pos_operator,
       (SELECT t.status FROM identity.tenants t
         WHERE t.id = %(tenant_id)s AND t.deleted_at IS NULL) AS tenant_status
  FROM (SELECT 1) AS one
  LEFT JOIN identity.users u ON u.id = %(user_id)s AND u.deleted_at IS NULL;
