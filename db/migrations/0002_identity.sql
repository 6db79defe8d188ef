-- Users, tenants and membership (seed 001, identity context).

CREATE TABLE identity.users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text,
    mobile      text,
    full_name   text,
    role        text NOT NULL CHECK (role IN ('consumer', 'client', 'pos_operator', 'admin')),
    status      text NOT NULL DEFAULT 'pending_approval'
                CHECK (status IN ('active', 'pending_approval', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT users_email_format CHECK (email IS NULL OR email ~ '^[^@\s]+@[^@\s]+$'),
    CONSTRAINT users_mobile_format CHECK (mobile IS NULL OR mobile ~ '^\+[1-9][0-9]{6,14}$')
);
-- Emails are matched case-insensitively, mobiles in E.164.
CREATE UNIQUE INDEX users_email_key ON identity.users (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_mobile_key ON identity.users (mobile) WHERE mobile IS NOT NULL;
CREATE TRIGGER users_touch BEFORE UPDATE ON identity.users
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

CREATE TABLE identity.tenants (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                    text NOT NULL CHECK (length(btrim(name)) > 0),
    country                 text NOT NULL DEFAULT 'US' CHECK (country ~ '^[A-Z]{2}$'),
    status                  text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    pos_provider_preference text CHECK (pos_provider_preference IN ('square', 'clover', 'other')),
    onboarding_profile      jsonb CHECK (onboarding_profile IS NULL OR jsonb_typeof(onboarding_profile) = 'object'),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);
CREATE TRIGGER tenants_touch BEFORE UPDATE ON identity.tenants
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

CREATE TABLE identity.tenant_users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES identity.users (id),
    tenant_id   uuid NOT NULL REFERENCES identity.tenants (id),
    role        text NOT NULL CHECK (role IN ('client', 'pos_operator')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT tenant_users_user_tenant_key UNIQUE (user_id, tenant_id)
);
CREATE INDEX tenant_users_tenant_idx ON identity.tenant_users (tenant_id);
CREATE TRIGGER tenant_users_touch BEFORE UPDATE ON identity.tenant_users
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
