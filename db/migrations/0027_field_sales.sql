-- Offline field sales (seed 004, with the financial rules of seed 002): sellers' devices push
-- queued customers, sales, debt payments (abonos) and daily distributions, and pull what they
-- need. The seed's business is the tenant; its business_users are the sellers.
--
-- Records a device creates keep the device's UUID; their key is (tenant_id, id), so one
-- tenant's ids never collide with, nor reveal, another's. References are (tenant_id, id) pairs
-- (foreign key checks bypass row-level security; a pair cannot point into another tenant).
--
-- Money is numeric(19,4), weights numeric(10,3): never floats. Sales, sale items, abonos and
-- voids are append-only (a correction is a void, a compensating record).

DO $$
BEGIN
    -- Roles are cluster-wide: create it once, whichever database migrates first.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pos_gateway_field') THEN
        CREATE ROLE pos_gateway_field LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

CREATE SCHEMA field_sales;

-- Pull pages through changes in commit-safe order: every tracked row carries the transaction
-- that last wrote it and a sequence number; a pull only serves rows whose transaction is older
-- than every transaction still running, so a page never skips a row committed later.
CREATE SEQUENCE field_sales.change_seq;

CREATE FUNCTION field_sales.mark_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.change_xid := pg_current_xact_id();
    NEW.change_seq := nextval('field_sales.change_seq');
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- ---------------------------------------------------------------- business and sellers

-- The seed's business settings (businesses.modo_operacion ... permitir_venta_sin_stock).
CREATE TABLE field_sales.business_settings (
    tenant_id                  uuid PRIMARY KEY REFERENCES identity.tenants (id),
    modo_operacion             text NOT NULL DEFAULT 'inventario_propio'
                               CHECK (modo_operacion IN ('inventario_propio', 'sin_inventario', 'pedidos', 'mixto')),
    control_kilos              boolean NOT NULL DEFAULT true,
    usar_distribucion          boolean NOT NULL DEFAULT false,
    permitir_venta_sin_stock   boolean NOT NULL DEFAULT false,
    -- An abono larger than the customer's debt leaves a credit balance only when allowed.
    permitir_saldo_a_favor     boolean NOT NULL DEFAULT false,
    currency                   text NOT NULL DEFAULT 'PEN' CHECK (currency ~ '^[A-Z]{3}$'),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- The seed's business_users: a user's role, sales point and commission in one business.
CREATE TABLE field_sales.business_users (
    id              uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    tenant_id       uuid NOT NULL REFERENCES identity.tenants (id),
    user_id         uuid NOT NULL REFERENCES identity.users (id),
    role            text NOT NULL CHECK (role IN ('admin_negocio', 'vendedor')),
    sales_point     varchar(100),
    commission_rate numeric(5, 2) NOT NULL DEFAULT 0 CHECK (commission_rate BETWEEN 0 AND 100),
    is_active       boolean NOT NULL DEFAULT true,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT business_users_member_key UNIQUE (tenant_id, user_id)
);
CREATE INDEX business_users_user_idx ON field_sales.business_users (user_id);

-- A seller's device: the credential is shown once when issued; only its SHA-256 is kept.
CREATE TABLE field_sales.devices (
    id               uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    tenant_id        uuid NOT NULL,
    business_user_id uuid NOT NULL,
    label            varchar(100) NOT NULL CHECK (length(label) > 0),
    credential_hash  bytea NOT NULL CHECK (length(credential_hash) = 32),
    revoked_at       timestamptz,
    revoked_reason   text,
    last_seen_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, business_user_id) REFERENCES field_sales.business_users (tenant_id, id)
);
CREATE INDEX devices_business_user_idx ON field_sales.devices (tenant_id, business_user_id);

-- ---------------------------------------------------------------- catalog and stock

CREATE TABLE field_sales.products (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES identity.tenants (id),
    name        varchar(255) NOT NULL CHECK (length(name) > 0),
    type        text NOT NULL CHECK (type IN ('pollo', 'huevo', 'otro')),
    unit        text NOT NULL CHECK (unit IN ('kg', 'unidad')),
    base_price  numeric(19, 4) NOT NULL CHECK (base_price >= 0),
    is_active   boolean NOT NULL DEFAULT true,
    version     integer NOT NULL DEFAULT 1,
    change_xid  xid8 NOT NULL,
    change_seq  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Current stock per product. It may go below zero only when the business sells without stock.
CREATE TABLE field_sales.inventory (
    tenant_id   uuid NOT NULL,
    product_id  uuid NOT NULL,
    quantity    numeric(10, 3) NOT NULL DEFAULT 0,
    change_xid  xid8 NOT NULL,
    change_seq  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, product_id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES field_sales.products (tenant_id, id)
);

-- ---------------------------------------------------------------- customers and distributions

CREATE TABLE field_sales.customers (
    id          uuid NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES identity.tenants (id),
    name        varchar(255) NOT NULL CHECK (length(name) > 0),
    dni         varchar(20),
    phone       varchar(50),
    -- Not in the seed: with the phone, how a customer is matched to a loyalty member.
    email       varchar(255),
    address     text,
    notes       text,
    created_by  uuid NOT NULL,
    -- Σ balance due of credit sales − Σ abonos, voids excluded; kept in the transaction that
    -- changes it (the customer row is locked first), checked against the sums by tests.
    debt        numeric(19, 4) NOT NULL DEFAULT 0,
    -- The device's optimistic lock: bumped by every change of the customer's own fields.
    version     integer NOT NULL DEFAULT 1,
    change_xid  xid8 NOT NULL,
    change_seq  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES field_sales.business_users (tenant_id, id)
);
CREATE INDEX customers_created_by_idx ON field_sales.customers (tenant_id, created_by);

CREATE TABLE field_sales.distribuciones (
    id               uuid NOT NULL,
    tenant_id        uuid NOT NULL REFERENCES identity.tenants (id),
    vendedor_id      uuid NOT NULL,
    punto_venta      varchar(100),
    kilos_asignados  numeric(10, 3) NOT NULL CHECK (kilos_asignados >= 0),
    kilos_vendidos   numeric(10, 3) NOT NULL DEFAULT 0,
    monto_recaudado  numeric(19, 4) NOT NULL DEFAULT 0,
    fecha            date NOT NULL,
    estado           text NOT NULL DEFAULT 'activo' CHECK (estado IN ('activo', 'en_ruta', 'cerrado')),
    created_by       uuid NOT NULL,
    version          integer NOT NULL DEFAULT 1,
    change_xid       xid8 NOT NULL,
    change_seq       bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, vendedor_id) REFERENCES field_sales.business_users (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES field_sales.business_users (tenant_id, id)
);
-- A seller sells from one open distribution at a time: the one a sale decrements.
CREATE UNIQUE INDEX distribuciones_one_open_key
    ON field_sales.distribuciones (tenant_id, vendedor_id) WHERE estado <> 'cerrado';
CREATE INDEX distribuciones_vendedor_idx ON field_sales.distribuciones (tenant_id, vendedor_id, fecha);
CREATE INDEX distribuciones_created_by_idx ON field_sales.distribuciones (tenant_id, created_by);

-- ---------------------------------------------------------------- sales, abonos, voids

CREATE TABLE field_sales.sales (
    id              uuid NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES identity.tenants (id),
    client_id       uuid,
    seller_id       uuid NOT NULL,
    distribucion_id uuid,
    sale_type       text NOT NULL CHECK (sale_type IN ('contado', 'credito')),
    total_amount    numeric(19, 4) NOT NULL CHECK (total_amount >= 0),
    amount_paid     numeric(19, 4) NOT NULL CHECK (amount_paid >= 0),
    balance_due     numeric(19, 4) NOT NULL CHECK (balance_due >= 0),
    tara            numeric(10, 3) NOT NULL DEFAULT 0 CHECK (tara >= 0),
    net_weight      numeric(10, 3) NOT NULL DEFAULT 0 CHECK (net_weight >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    sale_date       timestamptz NOT NULL,
    device_id       uuid NOT NULL,
    -- What the sale took when it landed (by the settings of that moment), so that its void gives
    -- back exactly that whatever the settings are by then: the inventory of its items, and the
    -- kilos (with amount_paid as monto_recaudado) counted against its distribution.
    stock_decremented  boolean NOT NULL DEFAULT false,
    distribucion_kilos numeric(10, 3) CHECK (distribucion_kilos >= 0),
    change_xid      xid8 NOT NULL,
    change_seq      bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT sales_amounts CHECK (total_amount = amount_paid + balance_due),
    CONSTRAINT sales_distribucion_kilos CHECK (distribucion_kilos IS NULL OR distribucion_id IS NOT NULL),
    -- A cash sale is paid in full; only a credit sale leaves a balance (and needs a customer).
    CONSTRAINT sales_cash_paid CHECK (sale_type = 'credito' OR balance_due = 0),
    CONSTRAINT sales_credit_customer CHECK (sale_type = 'contado' OR client_id IS NOT NULL),
    FOREIGN KEY (tenant_id, client_id) REFERENCES field_sales.customers (tenant_id, id),
    FOREIGN KEY (tenant_id, seller_id) REFERENCES field_sales.business_users (tenant_id, id),
    FOREIGN KEY (tenant_id, distribucion_id) REFERENCES field_sales.distribuciones (tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES field_sales.devices (tenant_id, id)
);
CREATE INDEX sales_client_idx ON field_sales.sales (tenant_id, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX sales_seller_idx ON field_sales.sales (tenant_id, seller_id, sale_date);
CREATE INDEX sales_distribucion_idx ON field_sales.sales (tenant_id, distribucion_id)
    WHERE distribucion_id IS NOT NULL;
CREATE INDEX sales_device_idx ON field_sales.sales (tenant_id, device_id);

-- Line items snapshot the product's name and the unit price used at the time of the sale.
CREATE TABLE field_sales.sale_items (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL,
    sale_id      uuid NOT NULL,
    line_no      integer NOT NULL CHECK (line_no >= 1),
    product_id   uuid NOT NULL,
    product_name varchar(255) NOT NULL CHECK (length(product_name) > 0),
    quantity     numeric(10, 3) NOT NULL CHECK (quantity > 0),
    unit_price   numeric(19, 4) NOT NULL CHECK (unit_price >= 0),
    subtotal     numeric(19, 4) NOT NULL CHECK (subtotal >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT sale_items_line_key UNIQUE (tenant_id, sale_id, line_no),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES field_sales.sales (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES field_sales.products (tenant_id, id)
);
CREATE INDEX sale_items_product_idx ON field_sales.sale_items (tenant_id, product_id);

CREATE TABLE field_sales.abonos (
    id              uuid NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES identity.tenants (id),
    client_id       uuid NOT NULL,
    seller_id       uuid NOT NULL,
    amount          numeric(19, 4) NOT NULL CHECK (amount > 0),
    payment_method  text NOT NULL CHECK (payment_method IN ('efectivo', 'yape', 'plin', 'transferencia')),
    notes           text,
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    paid_at         timestamptz NOT NULL,
    device_id       uuid NOT NULL,
    change_xid      xid8 NOT NULL,
    change_seq      bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES field_sales.customers (tenant_id, id),
    FOREIGN KEY (tenant_id, seller_id) REFERENCES field_sales.business_users (tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES field_sales.devices (tenant_id, id)
);
CREATE INDEX abonos_client_idx ON field_sales.abonos (tenant_id, client_id);
CREATE INDEX abonos_seller_idx ON field_sales.abonos (tenant_id, seller_id);
CREATE INDEX abonos_device_idx ON field_sales.abonos (tenant_id, device_id);

-- The compensating record of a sale or an abono (its id is the opId of the device's delete).
CREATE TABLE field_sales.voids (
    id          uuid NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES identity.tenants (id),
    sale_id     uuid,
    abono_id    uuid,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    voided_by   uuid NOT NULL,
    device_id   uuid NOT NULL,
    change_xid  xid8 NOT NULL,
    change_seq  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT voids_one_target CHECK ((sale_id IS NULL) <> (abono_id IS NULL)),
    -- Voided once: a second void of the same record is refused.
    CONSTRAINT voids_sale_key UNIQUE (tenant_id, sale_id),
    CONSTRAINT voids_abono_key UNIQUE (tenant_id, abono_id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES field_sales.sales (tenant_id, id),
    FOREIGN KEY (tenant_id, abono_id) REFERENCES field_sales.abonos (tenant_id, id),
    FOREIGN KEY (tenant_id, voided_by) REFERENCES field_sales.business_users (tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES field_sales.devices (tenant_id, id)
);
CREATE INDEX voids_voided_by_idx ON field_sales.voids (tenant_id, voided_by);
CREATE INDEX voids_device_idx ON field_sales.voids (tenant_id, device_id);

-- ---------------------------------------------------------------- pushed operations

-- One row per operation that landed: the same opId again is answered from here, never applied
-- twice. Operations that were refused wrote nothing and are evaluated again when resent.
CREATE TABLE field_sales.sync_operations (
    tenant_id       uuid NOT NULL REFERENCES identity.tenants (id),
    op_id           uuid NOT NULL,
    device_id       uuid NOT NULL,
    collection      text NOT NULL,
    operation_type  text NOT NULL CHECK (operation_type IN ('create', 'update', 'delete')),
    record_id       uuid NOT NULL,
    -- SHA-256 of the operation as sent: the same opId with other content is refused.
    request_hash    text NOT NULL CHECK (length(request_hash) = 64),
    result          jsonb NOT NULL,
    client_created_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, op_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES field_sales.devices (tenant_id, id)
);
CREATE INDEX sync_operations_device_idx ON field_sales.sync_operations (tenant_id, device_id, created_at);

-- ---------------------------------------------------------------- change tracking, immutability

CREATE INDEX products_changes_idx ON field_sales.products (tenant_id, change_xid, change_seq);
CREATE INDEX inventory_changes_idx ON field_sales.inventory (tenant_id, change_xid, change_seq);
CREATE INDEX customers_changes_idx ON field_sales.customers (tenant_id, change_xid, change_seq);
CREATE INDEX distribuciones_changes_idx ON field_sales.distribuciones (tenant_id, change_xid, change_seq);
CREATE INDEX sales_changes_idx ON field_sales.sales (tenant_id, change_xid, change_seq);
CREATE INDEX abonos_changes_idx ON field_sales.abonos (tenant_id, change_xid, change_seq);
CREATE INDEX voids_changes_idx ON field_sales.voids (tenant_id, change_xid, change_seq);

DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['products', 'inventory', 'customers', 'distribuciones', 'sales', 'abonos', 'voids']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON field_sales.%I
                 FOR EACH ROW EXECUTE FUNCTION field_sales.mark_change()', tbl || '_change', tbl);
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['business_settings', 'business_users', 'devices']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE ON field_sales.%I
                 FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at()', tbl || '_touch', tbl);
    END LOOP;
    -- Money records and the operation log are append-only.
    FOREACH tbl IN ARRAY ARRAY['sales', 'sale_items', 'abonos', 'voids', 'sync_operations']
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON field_sales.%I
                 FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation()', tbl || '_append_only', tbl);
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE TRUNCATE ON field_sales.%I
                 FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation()', tbl || '_no_truncate', tbl);
    END LOOP;
END
$$;

-- Every table: tenant isolation (as 0006) and the admin's audited cross-tenant reads (as 0016).
DO $$
DECLARE
    tbl regclass;
BEGIN
    FOR tbl IN
        SELECT c.oid::regclass
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = 'field_sales'
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

-- ---------------------------------------------------------------- device authentication

-- A request's device credential names its device; the tenant is not known before this lookup,
-- so it runs as the owner (row-level security would hide every device). It answers only for a
-- matching, unrevoked credential of an active seller in an active tenant.
CREATE FUNCTION field_sales.authenticate_device(p_device_id uuid, p_credential_hash bytea)
    RETURNS TABLE (tenant_id uuid, device_id uuid, business_user_id uuid, role text, currency text,
                   country text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT d.tenant_id, d.id, b.id, b.role, coalesce(s.currency, 'PEN'), t.country
      FROM field_sales.devices d
      JOIN field_sales.business_users b ON b.tenant_id = d.tenant_id AND b.id = d.business_user_id
      JOIN identity.tenants t ON t.id = d.tenant_id
      JOIN identity.users u ON u.id = b.user_id
      LEFT JOIN field_sales.business_settings s ON s.tenant_id = d.tenant_id
     WHERE d.id = p_device_id
       AND d.credential_hash = p_credential_hash
       AND d.revoked_at IS NULL
       AND b.is_active
       AND t.status = 'active' AND t.deleted_at IS NULL
       AND u.status = 'active' AND u.deleted_at IS NULL
$$;
REVOKE ALL ON FUNCTION field_sales.authenticate_device(uuid, bytea) FROM PUBLIC;

-- ---------------------------------------------------------------- the loyalty feed

-- A field sale enters the crediting pipeline as a raw event of provider 'field' (the device is
-- authenticated instead of a signature) and becomes a transaction like Square's and Clover's.
ALTER TABLE pos.pos_webhook_events_raw DROP CONSTRAINT pos_webhook_events_raw_provider_check;
ALTER TABLE pos.pos_webhook_events_raw
    ADD CONSTRAINT pos_webhook_events_raw_provider_check CHECK (provider IN ('square', 'clover', 'field'));
ALTER TABLE pos.transactions DROP CONSTRAINT transactions_provider_check;
ALTER TABLE pos.transactions
    ADD CONSTRAINT transactions_provider_check CHECK (provider IN ('square', 'clover', 'field'));
ALTER TABLE pos.refunds DROP CONSTRAINT refunds_provider_check;
ALTER TABLE pos.refunds
    ADD CONSTRAINT refunds_provider_check CHECK (provider IN ('square', 'clover', 'field'));

-- ---------------------------------------------------------------- grants

-- The sync function: its tenant's field data (no deletes: deletions are soft or voids), the
-- operation log, and appending raw events for the crediting pipeline.
GRANT USAGE ON SCHEMA app, identity, pos, field_sales TO pos_gateway_field;
GRANT EXECUTE ON FUNCTION field_sales.authenticate_device(uuid, bytea) TO pos_gateway_field;
GRANT SELECT ON ALL TABLES IN SCHEMA field_sales TO pos_gateway_field;
GRANT INSERT ON field_sales.customers, field_sales.distribuciones, field_sales.sales,
    field_sales.sale_items, field_sales.abonos, field_sales.voids, field_sales.sync_operations,
    field_sales.inventory
    TO pos_gateway_field;
GRANT UPDATE ON field_sales.customers, field_sales.distribuciones, field_sales.inventory
    TO pos_gateway_field;
GRANT UPDATE (last_seen_at) ON field_sales.devices TO pos_gateway_field;
GRANT USAGE ON SEQUENCE field_sales.change_seq TO pos_gateway_field;
GRANT INSERT (tenant_id, provider, event_type, provider_event_id, merchant_account_id, raw_payload, raw_body)
    ON pos.pos_webhook_events_raw TO pos_gateway_field;
GRANT SELECT (id, tenant_id, provider, provider_event_id) ON pos.pos_webhook_events_raw TO pos_gateway_field;

-- The admin API: settings, sellers, devices, products and stock; reads of everything.
GRANT USAGE ON SCHEMA field_sales TO pos_gateway_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA field_sales TO pos_gateway_admin;
GRANT INSERT, UPDATE ON field_sales.business_settings, field_sales.business_users, field_sales.products,
    field_sales.inventory
    TO pos_gateway_admin;
-- The device id is chosen first: the credential names it, and only its hash is stored.
GRANT INSERT (id, tenant_id, business_user_id, label, credential_hash),
      UPDATE (revoked_at, revoked_reason)
    ON field_sales.devices TO pos_gateway_admin;
GRANT USAGE ON SEQUENCE field_sales.change_seq TO pos_gateway_admin;

-- A transaction left open holds back every pull (rows newer than the oldest running transaction
-- wait for it) and holds its locks: the functions' roles end one idle for a minute.
DO $$
DECLARE
    role_name text;
BEGIN
    FOR role_name IN
        SELECT rolname FROM pg_roles
         WHERE rolname LIKE 'pos\_gateway\_%' AND rolname <> 'pos_gateway_migrator'
    LOOP
        EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', role_name, '60s');
    END LOOP;
END
$$;
