-- name: caller_standing
-- The caller's account, their live pos_operator membership and the tenant, as this tenant's
-- transaction sees them (memberships and tenants are under row-level security). The function
-- (migration 0014) keeps its plan for the session.
SELECT user_found, user_status, user_role, is_pos_operator, tenant_status
  FROM identity.caller_standing(%(user_id)s, %(tenant_id)s);
