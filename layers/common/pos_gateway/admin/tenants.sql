-- Tenants as the admin API sees them. Row-level security keys identity.tenants on its id: a
-- request in a tenant's context sees that tenant only; a platform admin's audited cross-tenant
-- read (no tenant context) sees them all.

-- name: get_tenant
SELECT id, name, country, status, pos_provider_preference, onboarding_profile,
       created_at, updated_at, deleted_at
  FROM identity.tenants
 WHERE id = %(tenant_id)s AND deleted_at IS NULL;

-- name: list_tenants
-- Newest first, keyset-paginated on (created_at, id); the name pattern is escaped by the caller.
SELECT id, name, country, status, pos_provider_preference, onboarding_profile,
       created_at, updated_at, deleted_at
  FROM identity.tenants
 WHERE (%(include_deleted)s::boolean OR deleted_at IS NULL)
   AND (%(pattern)s::text IS NULL OR name ILIKE %(pattern)s::text ESCAPE '\')
   AND (%(status)s::text IS NULL OR status = %(status)s::text)
   AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: insert_tenant
-- The id comes from the caller: the transaction's tenant context is that id, so the policy's
-- WITH CHECK admits the row.
INSERT INTO identity.tenants (id, name, country, pos_provider_preference, onboarding_profile)
VALUES (%(tenant_id)s, %(name)s, %(country)s, %(pos_provider_preference)s, %(onboarding_profile)s)
RETURNING id, name, country, status, pos_provider_preference, onboarding_profile,
          created_at, updated_at, deleted_at;

-- name: lock_tenant
SELECT id, name, country, status, pos_provider_preference, onboarding_profile,
       created_at, updated_at, deleted_at
  FROM identity.tenants
 WHERE id = %(tenant_id)s AND deleted_at IS NULL
   FOR UPDATE;

-- name: update_tenant
-- Each column changes only when its set_ flag is true (a NULL value clears a nullable column).
UPDATE identity.tenants
   SET name = CASE WHEN %(set_name)s::boolean THEN %(name)s::text ELSE name END,
       country = CASE WHEN %(set_country)s::boolean THEN %(country)s::text ELSE country END,
       status = CASE WHEN %(set_status)s::boolean THEN %(status)s::text ELSE status END,
       pos_provider_preference = CASE WHEN %(set_pos_provider_preference)s::boolean
                                      THEN %(pos_provider_preference)s::text
                                      ELSE pos_provider_preference END,
       onboarding_profile = CASE WHEN %(set_onboarding_profile)s::boolean
                                 THEN %(onboarding_profile)s::jsonb
                                 ELSE onboarding_profile END
 WHERE id = %(tenant_id)s AND deleted_at IS NULL
RETURNING id, name, country, status, pos_provider_preference, onboarding_profile,
          created_at, updated_at, deleted_at;

-- name: delete_tenant
UPDATE identity.tenants SET deleted_at = now()
 WHERE id = %(tenant_id)s AND deleted_at IS NULL
RETURNING id, name, country, status, pos_provider_preference, onboarding_profile,
          created_at, updated_at, deleted_at;
