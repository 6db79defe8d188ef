-- Users as a platform admin sees them. identity.users has no row-level security (an account is
-- not any one tenant's); the memberships are, and show only in a platform read.

-- name: get_user
SELECT id, email, mobile, full_name, role, status, created_at, updated_at
  FROM identity.users
 WHERE id = %(user_id)s AND deleted_at IS NULL;

-- name: list_users
-- Newest first, keyset-paginated on (created_at, id); the search pattern is escaped by the caller
-- and only ever compared as text.
SELECT id, email, mobile, full_name, role, status, created_at, updated_at
  FROM identity.users
 WHERE deleted_at IS NULL
   AND (%(pattern)s::text IS NULL
        OR email ILIKE %(pattern)s::text ESCAPE '\'
        OR mobile ILIKE %(pattern)s::text ESCAPE '\'
        OR full_name ILIKE %(pattern)s::text ESCAPE '\')
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(role)s::text IS NULL OR role = %(role)s::text)
   AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: user_memberships
-- The live memberships in tenants that are not deleted, oldest first.
SELECT m.tenant_id, t.name AS tenant_name, t.status AS tenant_status, m.role, m.joined_at AS since
  FROM identity.tenant_users m
  JOIN identity.tenants t ON t.id = m.tenant_id AND t.deleted_at IS NULL
 WHERE m.user_id = %(user_id)s AND m.deleted_at IS NULL
 ORDER BY m.joined_at, m.tenant_id;

-- name: lock_user
SELECT id, email, mobile, full_name, role, status, created_at, updated_at
  FROM identity.users
 WHERE id = %(user_id)s AND deleted_at IS NULL
   FOR UPDATE;

-- name: set_status
UPDATE identity.users SET status = %(status)s
 WHERE id = %(user_id)s AND deleted_at IS NULL
RETURNING id, email, mobile, full_name, role, status, created_at, updated_at;
