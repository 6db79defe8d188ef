-- Roles, schemas and the helpers every later migration relies on.
-- Runs as the migrator role (owner of every object); app roles get only what they use.

DO $$
DECLARE
    role_name text;
BEGIN
    -- Roles are cluster-wide: create them once, whichever database migrates first.
    FOREACH role_name IN ARRAY ARRAY['pos_gateway_ingest', 'pos_gateway_crediting', 'pos_gateway_admin']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', role_name);
        END IF;
    END LOOP;
END
$$;

CREATE SCHEMA app;
CREATE SCHEMA identity;
CREATE SCHEMA pos;
CREATE SCHEMA loyalty;
CREATE SCHEMA audit;

-- The tenant of the current transaction, set by the data layer with set_config(..., true).
CREATE FUNCTION app.current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION app.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Ledgers, audit logs and raw events are append-only: any UPDATE, DELETE or TRUNCATE fails.
CREATE FUNCTION app.forbid_mutation() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
