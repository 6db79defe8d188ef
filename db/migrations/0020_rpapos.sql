-- RPApos sync (seed 000): connections to an RPApos tenant, the id map that makes every load
-- idempotent, sync runs with their plan, progress and pause / cancel controls, and the raw
-- extraction archive. The seed's business_id is tenant_id here (ARCHITECTURE §4).
--
-- Tables reference each other as (tenant_id, id) pairs, as loyalty does for wallets: foreign key
-- checks bypass row-level security, so a single-column reference could point at another tenant's
-- row; the pair cannot.

DO $$
BEGIN
    -- Roles are cluster-wide: create it once, whichever database migrates first.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pos_gateway_rpapos') THEN
        CREATE ROLE pos_gateway_rpapos LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

CREATE SCHEMA rpapos;

-- Every value of the seed's enum (phase 1, phase 2, modifiers), in its order; the same as
-- pos_gateway.rpapos.contract.EntityType (a test compares them).
CREATE TYPE rpapos.rpapos_entity_type AS ENUM (
    'plu', 'plu_grupo', 'sku', 'sku_grupo', 'batch_maestro', 'proveedor', 'unidad_medida',
    'moneda', 'tipo_gestion', 'area', 'bodega', 'usuario', 'estacion_trabajo', 'dispositivo_io',
    'compra', 'traslado', 'conteo_fisico', 'merma', 'salida_sku', 'produccion',
    'mesa', 'persona', 'precio', 'produccion_grupo',
    'plu_option_group', 'plu_option_item', 'plu_option_group_assignment'
);

-- ---------------------------------------------------------------- connections

-- One row per tenant + subdomain pair. Credentials are AES-256-GCM envelopes
-- (pos_gateway.crypto: v1.<key id>.<nonce>.<ciphertext>), bound to this row and column; a value
-- that is not an envelope (a plaintext password, say) is refused.
CREATE TABLE rpapos.rpapos_connection (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id              uuid NOT NULL REFERENCES identity.tenants (id),
    -- https://{subdomain}.2rpa.com: one DNS label, lower case.
    subdomain              text NOT NULL
                           CHECK (subdomain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    usuario                text NOT NULL CHECK (length(btrim(usuario)) BETWEEN 1 AND 255),
    password_encrypted     text NOT NULL,
    api_key_encrypted      text NOT NULL DEFAULT '',
    timezone               text NOT NULL DEFAULT 'America/Guatemala'
                           CHECK (length(timezone) BETWEEN 1 AND 64),
    currency_code          text NOT NULL DEFAULT 'GTQ' CHECK (currency_code ~ '^[A-Z]{3}$'),
    status                 text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'disconnected', 'error')),
    -- Scheduled sync hook; NULL: only runs started by an operator.
    sync_interval_minutes  integer CHECK (sync_interval_minutes > 0),
    -- RPApos order type (tipo_gestion code) -> FlowPOS order type.
    tipo_gestion_map       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tipo_gestion_map) = 'object'),
    last_synced_at         timestamptz,
    last_full_sync_at      timestamptz,
    -- Set on sync failure (short text: callers keep it under 1000 characters).
    last_error             text CHECK (char_length(last_error) <= 1000),
    -- SAT login (defaults to usuario when only the SAT password is set).
    sat_usuario            text CHECK (length(btrim(sat_usuario)) BETWEEN 1 AND 255),
    sat_password_encrypted text,
    -- Device token from Dispositivo_Registra_2 (pToken of the db4 SOAP service); the API says
    -- hasSoapToken (IS NOT NULL), never the token.
    soap_token_encrypted   text,
    -- From the SAT device registration.
    localizacion_id        smallint,
    conexion_db            integer,
    conexion_mainframe     integer,
    -- Workstation id, required for Catalogo_4 / Producto_U_M.
    estacion_trabajo       smallint,
    created_by             uuid REFERENCES identity.users (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    -- Addition: soft delete (master data). The row keeps its subdomain: connecting the same
    -- subdomain again revives it (its id map and runs stay attached).
    deleted_at             timestamptz,
    CONSTRAINT rpapos_connection_tenant_subdomain_key UNIQUE (tenant_id, subdomain),
    -- Lets runs reference (tenant, connection) so a run can never cross tenants.
    CONSTRAINT rpapos_connection_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT rpapos_connection_password_sealed
        CHECK (password_encrypted ~ '^v1\.[^.]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'),
    CONSTRAINT rpapos_connection_api_key_sealed
        CHECK (api_key_encrypted = '' OR api_key_encrypted ~ '^v1\.[^.]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'),
    CONSTRAINT rpapos_connection_sat_password_sealed
        CHECK (sat_password_encrypted ~ '^v1\.[^.]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'),
    CONSTRAINT rpapos_connection_soap_token_sealed
        CHECK (soap_token_encrypted ~ '^v1\.[^.]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$')
);
CREATE INDEX rpapos_connection_created_by_idx ON rpapos.rpapos_connection (created_by);
CREATE TRIGGER rpapos_connection_touch BEFORE UPDATE ON rpapos.rpapos_connection
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

-- ---------------------------------------------------------------- id map

-- Idempotency for every entity type: an RPApos record (its key as text) is loaded into exactly
-- one FlowPOS row per tenant. flowpos_entity_id points into the catalog table the entity type
-- loads into (polymorphic: no foreign key). import_job_id gets its foreign key in 0021.
CREATE TABLE rpapos.rpapos_id_map (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           uuid NOT NULL REFERENCES identity.tenants (id),
    entity_type         rpapos.rpapos_entity_type NOT NULL,
    external_id         text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
    flowpos_entity_id   uuid NOT NULL,
    import_job_id       uuid,
    -- Change detection: a record whose hash did not change is skipped.
    source_payload_hash text CHECK (char_length(source_payload_hash) <= 128),
    last_synced_at      timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rpapos_id_map_tenant_entity_external_key UNIQUE (tenant_id, entity_type, external_id)
);
-- The seed's (tenant, entity type) index, extended to the target: it also answers "which RPApos
-- record is this FlowPOS row" (the unique key above answers the forward lookup).
CREATE INDEX rpapos_id_map_target_idx ON rpapos.rpapos_id_map (tenant_id, entity_type, flowpos_entity_id);
CREATE TRIGGER rpapos_id_map_touch BEFORE UPDATE ON rpapos.rpapos_id_map
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

-- ---------------------------------------------------------------- sync runs

-- One row per migration / sync execution (its id is the API's syncRunId).
CREATE TABLE rpapos.rpapos_sync_run (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES identity.tenants (id),
    connection_id    uuid NOT NULL,
    mode             text NOT NULL CHECK (mode IN ('catalog', 'historical', 'incremental', 'custom')),
    status           text NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'paused', 'completed', 'failed', 'cancelled')),
    -- Pause requested (set by an operator, polled by the run every 5 s); status says whether
    -- the run is parked.
    paused           boolean NOT NULL DEFAULT false,
    -- Addition: cancel requested by an operator; the run ends as cancelled at its next check.
    cancel_requested boolean NOT NULL DEFAULT false,
    -- Addition: the plan, in extraction order (pos_gateway.rpapos.planner).
    entity_types     rpapos.rpapos_entity_type[] NOT NULL,
    -- Addition: where the run is: the entity being extracted and its cursor (entity, page, and
    -- the parent for per-parent entities), so a retried or resumed step carries on from there.
    current_entity   rpapos.rpapos_entity_type,
    cursor           jsonb CHECK (jsonb_typeof(cursor) = 'object'),
    -- Map of entity -> {extracted, loaded, failed, skipped, status}; may hold synthetic keys
    -- (product_images) that are not enum values.
    per_entity_stats jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(per_entity_stats) = 'object'),
    -- Historical window (optional but for historical runs).
    date_from        timestamptz,
    date_to          timestamptz,
    -- Addition: the Step Functions callback token, stored while the run is parked paused
    -- (resume or cancel answers it); never kept past the end of the run.
    task_token       text,
    -- Addition: the Step Functions execution running this run.
    execution_arn    text CHECK (char_length(execution_arn) <= 2048),
    -- Addition: why the run failed (the connection's last_error says it too).
    last_error       text CHECK (char_length(last_error) <= 1000),
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    created_by       uuid REFERENCES identity.users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Addition: runs change as they progress.
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Deleting a connection (an operator's hard delete; the API soft-deletes) takes its runs along,
    -- as in the seed, unless their archive holds them (the archive is append-only).
    CONSTRAINT rpapos_sync_run_connection_fkey FOREIGN KEY (tenant_id, connection_id)
        REFERENCES rpapos.rpapos_connection (tenant_id, id) ON DELETE CASCADE,
    -- Lets archive rows reference (tenant, run).
    CONSTRAINT rpapos_sync_run_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT rpapos_sync_run_plan_not_empty
        CHECK (cardinality(entity_types) >= 1 AND array_position(entity_types, NULL) IS NULL),
    CONSTRAINT rpapos_sync_run_window CHECK (date_to > date_from),
    CONSTRAINT rpapos_sync_run_historical_window
        CHECK (mode <> 'historical' OR (date_from IS NOT NULL AND date_to IS NOT NULL)),
    -- A run has ended exactly when it is completed, failed or cancelled.
    CONSTRAINT rpapos_sync_run_completed_at
        CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    CONSTRAINT rpapos_sync_run_task_token_while_active
        CHECK (task_token IS NULL OR status IN ('running', 'paused'))
);
-- At most one running or paused run per connection.
CREATE UNIQUE INDEX rpapos_sync_run_one_active_per_connection
    ON rpapos.rpapos_sync_run (connection_id) WHERE status IN ('running', 'paused');
-- The seed's indexes: (connection_id, status) and the tenant's runs (newest first).
CREATE INDEX rpapos_sync_run_connection_status_idx ON rpapos.rpapos_sync_run (connection_id, status);
CREATE INDEX rpapos_sync_run_tenant_idx ON rpapos.rpapos_sync_run (tenant_id, started_at DESC);
-- The (tenant, connection) foreign key, and a connection's runs newest first.
CREATE INDEX rpapos_sync_run_connection_idx
    ON rpapos.rpapos_sync_run (tenant_id, connection_id, started_at DESC);
CREATE INDEX rpapos_sync_run_created_by_idx ON rpapos.rpapos_sync_run (created_by);
CREATE TRIGGER rpapos_sync_run_touch BEFORE UPDATE ON rpapos.rpapos_sync_run
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

-- ---------------------------------------------------------------- extraction archive

-- Raw JSON snapshots for audit and replay: one row per extracted page. Append-only.
CREATE TABLE rpapos.rpapos_extraction_archive (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES identity.tenants (id),
    sync_run_id  uuid NOT NULL,
    entity_type  rpapos.rpapos_entity_type NOT NULL,
    -- Addition: the page (1-based) and the cursor it was read at, so it can be replayed.
    page         integer CHECK (page >= 1),
    cursor       jsonb CHECK (jsonb_typeof(cursor) = 'object'),
    record_count integer NOT NULL CHECK (record_count >= 0),
    -- The extracted records, as an array.
    payload      jsonb NOT NULL,
    extracted_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rpapos_extraction_archive_sync_run_fkey FOREIGN KEY (tenant_id, sync_run_id)
        REFERENCES rpapos.rpapos_sync_run (tenant_id, id),
    CONSTRAINT rpapos_extraction_archive_payload_array
        CHECK (jsonb_typeof(payload) = 'array' AND record_count = jsonb_array_length(payload))
);
-- The seed's (tenant, run) index, extended to find a page to replay.
CREATE INDEX rpapos_extraction_archive_run_idx
    ON rpapos.rpapos_extraction_archive (tenant_id, sync_run_id, entity_type, page);
CREATE TRIGGER rpapos_extraction_archive_append_only BEFORE UPDATE OR DELETE ON rpapos.rpapos_extraction_archive
    FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER rpapos_extraction_archive_no_truncate BEFORE TRUNCATE ON rpapos.rpapos_extraction_archive
    FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation();

-- ---------------------------------------------------------------- row-level security

-- Tenant isolation (as 0006) and the admin's audited cross-tenant reads (as 0016), on every table.
DO $$
DECLARE
    tbl regclass;
BEGIN
    FOR tbl IN
        SELECT c.oid::regclass
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = 'rpapos'
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %s
                 USING (tenant_id = app.current_tenant_id())
                 WITH CHECK (tenant_id = app.current_tenant_id())', tbl);
        EXECUTE format(
            'CREATE POLICY platform_read ON %s FOR SELECT TO pos_gateway_admin USING (app.platform_read())',
            tbl);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- grants: sync functions

-- app: the policies call app.current_tenant_id(). No identity, pos or loyalty privilege at all.
GRANT USAGE ON SCHEMA app, rpapos TO pos_gateway_rpapos;

-- The connection, credentials included (the functions open the envelopes), and what a sync
-- records on it: progress, failure, and the SAT device registration.
GRANT SELECT ON rpapos.rpapos_connection TO pos_gateway_rpapos;
GRANT UPDATE (last_synced_at, last_full_sync_at, last_error, status, soap_token_encrypted,
              localizacion_id, conexion_db, conexion_mainframe)
    ON rpapos.rpapos_connection TO pos_gateway_rpapos;
-- Runs: the scheduler starts them; the state machine records progress, parks and ends them.
-- Never deleted.
GRANT SELECT ON rpapos.rpapos_sync_run TO pos_gateway_rpapos;
GRANT INSERT (id, tenant_id, connection_id, mode, status, entity_types, current_entity, cursor,
              per_entity_stats, date_from, date_to, execution_arn, started_at, created_by)
    ON rpapos.rpapos_sync_run TO pos_gateway_rpapos;
GRANT UPDATE (status, current_entity, cursor, per_entity_stats, task_token, execution_arn,
              last_error, completed_at)
    ON rpapos.rpapos_sync_run TO pos_gateway_rpapos;
-- The archive: appended, read back to replay a page.
GRANT SELECT ON rpapos.rpapos_extraction_archive TO pos_gateway_rpapos;
GRANT INSERT (id, tenant_id, sync_run_id, entity_type, page, cursor, record_count, payload, extracted_at)
    ON rpapos.rpapos_extraction_archive TO pos_gateway_rpapos;
-- The id map: looked up, inserted, and moved on when a record is loaded again.
GRANT SELECT ON rpapos.rpapos_id_map TO pos_gateway_rpapos;
GRANT INSERT (id, tenant_id, entity_type, external_id, flowpos_entity_id, import_job_id,
              source_payload_hash, last_synced_at)
    ON rpapos.rpapos_id_map TO pos_gateway_rpapos;
GRANT UPDATE (flowpos_entity_id, import_job_id, source_payload_hash, last_synced_at)
    ON rpapos.rpapos_id_map TO pos_gateway_rpapos;

-- ---------------------------------------------------------------- grants: admin API

GRANT USAGE ON SCHEMA rpapos TO pos_gateway_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA rpapos TO pos_gateway_admin;
-- Connections are created and edited (credentials sealed by the API, bound to the row id it
-- chooses), devices registered, and soft-deleted; the subdomain and tenant never change.
GRANT INSERT (id, tenant_id, subdomain, usuario, password_encrypted, api_key_encrypted, timezone,
              currency_code, status, sync_interval_minutes, tipo_gestion_map, sat_usuario,
              sat_password_encrypted, soap_token_encrypted, localizacion_id, conexion_db,
              conexion_mainframe, estacion_trabajo, created_by)
    ON rpapos.rpapos_connection TO pos_gateway_admin;
GRANT UPDATE (usuario, password_encrypted, api_key_encrypted, timezone, currency_code, status,
              sync_interval_minutes, tipo_gestion_map, last_error, sat_usuario, sat_password_encrypted,
              soap_token_encrypted, localizacion_id, conexion_db, conexion_mainframe, estacion_trabajo,
              deleted_at, updated_at)
    ON rpapos.rpapos_connection TO pos_gateway_admin;
-- Runs started by an operator; pause, resume and cancel.
GRANT INSERT (id, tenant_id, connection_id, mode, status, entity_types, per_entity_stats,
              date_from, date_to, execution_arn, created_by)
    ON rpapos.rpapos_sync_run TO pos_gateway_admin;
GRANT UPDATE (paused, cancel_requested, status, completed_at, task_token, updated_at)
    ON rpapos.rpapos_sync_run TO pos_gateway_admin;
