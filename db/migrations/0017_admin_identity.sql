-- Admin API, identity routes: when a membership began, and the orders the admin lists page in.
--
-- A removed membership keeps its row (soft delete; (user_id, tenant_id) is unique), and adding
-- the member again revives that row. created_at stays the row's birth; joined_at is when the
-- live membership began, which the admin API shows as "since".

ALTER TABLE identity.tenant_users ADD COLUMN joined_at timestamptz;
-- Existing memberships began when their row was made (without touching updated_at).
ALTER TABLE identity.tenant_users DISABLE TRIGGER tenant_users_touch;
UPDATE identity.tenant_users SET joined_at = created_at;
ALTER TABLE identity.tenant_users ENABLE TRIGGER tenant_users_touch;
ALTER TABLE identity.tenant_users
    ALTER COLUMN joined_at SET DEFAULT now(),
    ALTER COLUMN joined_at SET NOT NULL;

GRANT UPDATE (joined_at) ON identity.tenant_users TO pos_gateway_admin;

-- GET /admin/users and GET /admin/tenants: newest first, keyset on (created_at, id).
CREATE INDEX users_created_idx ON identity.users (created_at, id);
CREATE INDEX tenants_created_idx ON identity.tenants (created_at, id);
-- GET /admin/tenants/{id}/members: newest member first within the tenant.
CREATE INDEX tenant_users_tenant_joined_idx ON identity.tenant_users (tenant_id, joined_at, id);
