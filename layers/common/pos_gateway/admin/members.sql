-- Tenant membership: who is a client or POS operator of a tenant. identity.tenant_users is under
-- row-level security on its tenant, so every statement here sees the request's tenant only.
-- Memberships are soft-deleted; (user_id, tenant_id) is unique, so adding a removed member again
-- revives its row.

-- name: list_members
-- Newest member first, keyset-paginated on (joined_at, membership id).
SELECT m.id, m.user_id, u.email, u.full_name, m.role, u.status, m.joined_at AS since
  FROM identity.tenant_users m
  JOIN identity.users u ON u.id = m.user_id
 WHERE m.deleted_at IS NULL
   AND (%(role)s::text IS NULL OR m.role = %(role)s::text)
   AND (%(after_at)s::timestamptz IS NULL OR (m.joined_at, m.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY m.joined_at DESC, m.id DESC
 LIMIT %(limit)s;

-- name: get_member
SELECT m.id, m.user_id, u.email, u.full_name, m.role, u.status, m.joined_at AS since
  FROM identity.tenant_users m
  JOIN identity.users u ON u.id = m.user_id
 WHERE m.user_id = %(user_id)s AND m.deleted_at IS NULL;

-- name: lock_membership
-- Live or removed: the one row of this user in the request's tenant.
SELECT id, tenant_id, user_id, role, joined_at, deleted_at
  FROM identity.tenant_users
 WHERE user_id = %(user_id)s
   FOR UPDATE;

-- name: account
SELECT id, role, status FROM identity.users WHERE id = %(user_id)s AND deleted_at IS NULL;

-- name: insert_membership
-- A concurrent add of the same user loses on the unique key and returns no row.
INSERT INTO identity.tenant_users (tenant_id, user_id, role)
VALUES (%(tenant_id)s, %(user_id)s, %(role)s)
ON CONFLICT (user_id, tenant_id) DO NOTHING
RETURNING id, tenant_id, user_id, role, joined_at, deleted_at;

-- name: revive_membership
UPDATE identity.tenant_users SET deleted_at = NULL, role = %(role)s, joined_at = now()
 WHERE id = %(membership_id)s AND deleted_at IS NOT NULL
RETURNING id, tenant_id, user_id, role, joined_at, deleted_at;

-- name: remove_membership
UPDATE identity.tenant_users SET deleted_at = now()
 WHERE id = %(membership_id)s AND deleted_at IS NULL
RETURNING id, tenant_id, user_id, role, joined_at, deleted_at;
