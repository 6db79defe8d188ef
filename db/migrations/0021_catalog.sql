-- The FlowPOS catalog (ARCHITECTURE §4): the tables the RPApos sync loads into. Every table is
-- tenant-scoped under row-level security; master data is soft-deleted (deleted_at); prices and
-- quantities are numeric(19,4), never floats.
--
-- The id map (rpapos.rpapos_id_map) is what makes a load idempotent; the unique codes below are a
-- second guard, so that a load can never make two live rows of one natural key. RPApos numbers
-- PLUs and SKUs (and their groups) in separate code spaces, so those codes are unique per kind.
-- As in 0020, references inside a tenant are (tenant_id, id) pairs: a row can never point at
-- another tenant's row (foreign key checks bypass row-level security).

CREATE SCHEMA catalog;

-- ---------------------------------------------------------------- reference data

-- From unidad_medida.
CREATE TABLE catalog.unit_of_measure (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES identity.tenants (id),
    code         text CHECK (length(code) BETWEEN 1 AND 255),
    name         text NOT NULL CHECK (length(btrim(name)) > 0),
    abbreviation text CHECK (char_length(abbreviation) <= 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    CONSTRAINT unit_of_measure_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX unit_of_measure_code_key ON catalog.unit_of_measure (tenant_id, code)
    WHERE deleted_at IS NULL;

-- From moneda. code is the ISO 4217 code prices carry as currency_code.
CREATE TABLE catalog.currency (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES identity.tenants (id),
    code          text NOT NULL CHECK (code ~ '^[A-Z]{3}$'),
    name          text NOT NULL CHECK (length(btrim(name)) > 0),
    symbol        text CHECK (char_length(symbol) <= 16),
    -- Units of the connection's currency per unit of this one.
    exchange_rate numeric(19, 8) CHECK (exchange_rate > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    CONSTRAINT currency_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX currency_code_key ON catalog.currency (tenant_id, code) WHERE deleted_at IS NULL;

-- From plu_grupo (kind plu), sku_grupo (sku) and produccion_grupo (produccion).
CREATE TABLE catalog.product_category (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    kind       text NOT NULL CHECK (kind IN ('plu', 'sku', 'produccion')),
    code       text CHECK (length(code) BETWEEN 1 AND 255),
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    parent_id  uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT product_category_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT product_category_parent_fkey FOREIGN KEY (tenant_id, parent_id)
        REFERENCES catalog.product_category (tenant_id, id),
    CONSTRAINT product_category_not_own_parent CHECK (parent_id <> id)
);
CREATE UNIQUE INDEX product_category_code_key ON catalog.product_category (tenant_id, kind, code)
    WHERE deleted_at IS NULL;
CREATE INDEX product_category_parent_idx ON catalog.product_category (tenant_id, parent_id);

-- From proveedor.
CREATE TABLE catalog.supplier (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    code       text CHECK (length(code) BETWEEN 1 AND 255),
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    tax_id     text CHECK (char_length(tax_id) <= 64),
    email      text CHECK (char_length(email) <= 320),
    phone      text CHECK (char_length(phone) <= 64),
    address    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT supplier_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX supplier_code_key ON catalog.supplier (tenant_id, code) WHERE deleted_at IS NULL;

-- From bodega.
CREATE TABLE catalog.warehouse (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    code       text CHECK (length(code) BETWEEN 1 AND 255),
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT warehouse_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX warehouse_code_key ON catalog.warehouse (tenant_id, code) WHERE deleted_at IS NULL;

-- From area: a part of the venue (dining room, bar), stocked from a warehouse.
CREATE TABLE catalog.area (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES identity.tenants (id),
    warehouse_id uuid,
    code         text CHECK (length(code) BETWEEN 1 AND 255),
    name         text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    CONSTRAINT area_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT area_warehouse_fkey FOREIGN KEY (tenant_id, warehouse_id)
        REFERENCES catalog.warehouse (tenant_id, id)
);
CREATE UNIQUE INDEX area_code_key ON catalog.area (tenant_id, code) WHERE deleted_at IS NULL;
CREATE INDEX area_warehouse_idx ON catalog.area (tenant_id, warehouse_id);

-- From tipo_gestion; flowpos_order_type comes from rpapos_connection.tipo_gestion_map.
CREATE TABLE catalog.order_type (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES identity.tenants (id),
    code               text CHECK (length(code) BETWEEN 1 AND 255),
    name               text NOT NULL CHECK (length(btrim(name)) > 0),
    flowpos_order_type text CHECK (length(flowpos_order_type) BETWEEN 1 AND 64),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    CONSTRAINT order_type_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX order_type_code_key ON catalog.order_type (tenant_id, code) WHERE deleted_at IS NULL;

-- From mesa (read per area: its code is unique within the area).
CREATE TABLE catalog.dining_table (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    area_id    uuid NOT NULL,
    code       text CHECK (length(code) BETWEEN 1 AND 255),
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    seats      integer CHECK (seats > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT dining_table_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT dining_table_area_fkey FOREIGN KEY (tenant_id, area_id) REFERENCES catalog.area (tenant_id, id)
);
CREATE UNIQUE INDEX dining_table_code_key ON catalog.dining_table (tenant_id, area_id, code)
    WHERE deleted_at IS NULL;
CREATE INDEX dining_table_area_idx ON catalog.dining_table (tenant_id, area_id);

-- From persona.
CREATE TABLE catalog.customer (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    code       text CHECK (length(code) BETWEEN 1 AND 255),
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    tax_id     text CHECK (char_length(tax_id) <= 64),
    email      text CHECK (char_length(email) <= 320),
    phone      text CHECK (char_length(phone) <= 64),
    address    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT customer_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX customer_code_key ON catalog.customer (tenant_id, code) WHERE deleted_at IS NULL;

-- ---------------------------------------------------------------- products

-- From plu (sold: is_raw_material false) and sku (raw material: true). image_url is the stored
-- image path, set by the product image import (matched through the id map, entity plu).
CREATE TABLE catalog.product (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES identity.tenants (id),
    -- Codigo_PLU / Codigo_SKU: the product's code (its SKU in FlowPOS terms).
    code            text CHECK (length(code) BETWEEN 1 AND 255),
    name            text NOT NULL CHECK (length(btrim(name)) > 0),
    description     text,
    category_id     uuid,
    unit_id         uuid,
    price           numeric(19, 4) CHECK (price >= 0),
    currency_code   text CHECK (currency_code ~ '^[A-Z]{3}$'),
    is_raw_material boolean NOT NULL DEFAULT false,
    image_url       text CHECK (char_length(image_url) <= 2048),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT product_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT product_category_fkey FOREIGN KEY (tenant_id, category_id)
        REFERENCES catalog.product_category (tenant_id, id),
    CONSTRAINT product_unit_fkey FOREIGN KEY (tenant_id, unit_id)
        REFERENCES catalog.unit_of_measure (tenant_id, id),
    CONSTRAINT product_price_has_currency CHECK (price IS NULL OR currency_code IS NOT NULL)
);
CREATE UNIQUE INDEX product_code_key ON catalog.product (tenant_id, is_raw_material, code)
    WHERE deleted_at IS NULL;
CREATE INDEX product_category_idx ON catalog.product (tenant_id, category_id);
CREATE INDEX product_unit_idx ON catalog.product (tenant_id, unit_id);

-- From precio: a product's price in a price list, per currency.
CREATE TABLE catalog.product_price (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES identity.tenants (id),
    product_id    uuid NOT NULL,
    price_list    text NOT NULL DEFAULT 'default' CHECK (length(btrim(price_list)) BETWEEN 1 AND 255),
    price         numeric(19, 4) NOT NULL CHECK (price >= 0),
    currency_code text NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    CONSTRAINT product_price_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT product_price_product_fkey FOREIGN KEY (tenant_id, product_id)
        REFERENCES catalog.product (tenant_id, id)
);
-- One live price per product, list and currency.
CREATE UNIQUE INDEX product_price_list_key ON catalog.product_price (tenant_id, product_id, price_list, currency_code)
    WHERE deleted_at IS NULL;
CREATE INDEX product_price_product_idx ON catalog.product_price (tenant_id, product_id);

-- From batch_maestro: a PLU (product_id) made of SKUs, yield_quantity of it per batch.
CREATE TABLE catalog.recipe (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES identity.tenants (id),
    product_id     uuid NOT NULL,
    code           text CHECK (length(code) BETWEEN 1 AND 255),
    name           text NOT NULL CHECK (length(btrim(name)) > 0),
    yield_quantity numeric(19, 4) NOT NULL DEFAULT 1 CHECK (yield_quantity > 0),
    unit_id        uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    CONSTRAINT recipe_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT recipe_product_fkey FOREIGN KEY (tenant_id, product_id) REFERENCES catalog.product (tenant_id, id),
    CONSTRAINT recipe_unit_fkey FOREIGN KEY (tenant_id, unit_id) REFERENCES catalog.unit_of_measure (tenant_id, id)
);
CREATE UNIQUE INDEX recipe_code_key ON catalog.recipe (tenant_id, code) WHERE deleted_at IS NULL;
CREATE INDEX recipe_product_idx ON catalog.recipe (tenant_id, product_id);
CREATE INDEX recipe_unit_idx ON catalog.recipe (tenant_id, unit_id);

-- An ingredient of a recipe: quantity of a product (a SKU) per batch, in unit_id (the product's
-- own unit when NULL). A reload revives or soft-deletes items; a product is listed once.
CREATE TABLE catalog.recipe_item (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    recipe_id  uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity   numeric(19, 4) NOT NULL CHECK (quantity > 0),
    unit_id    uuid,
    position   integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT recipe_item_recipe_fkey FOREIGN KEY (tenant_id, recipe_id) REFERENCES catalog.recipe (tenant_id, id),
    CONSTRAINT recipe_item_product_fkey FOREIGN KEY (tenant_id, product_id)
        REFERENCES catalog.product (tenant_id, id),
    CONSTRAINT recipe_item_unit_fkey FOREIGN KEY (tenant_id, unit_id)
        REFERENCES catalog.unit_of_measure (tenant_id, id),
    CONSTRAINT recipe_item_recipe_product_key UNIQUE (tenant_id, recipe_id, product_id)
);
CREATE INDEX recipe_item_product_idx ON catalog.recipe_item (tenant_id, product_id);
CREATE INDEX recipe_item_unit_idx ON catalog.recipe_item (tenant_id, unit_id);

-- ---------------------------------------------------------------- modifiers

-- From plu_option_group (SOAP Catalogo_4, Producto_Grupo).
CREATE TABLE catalog.product_modifier_group (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES identity.tenants (id),
    code           text CHECK (length(code) BETWEEN 1 AND 255),
    name           text NOT NULL CHECK (length(btrim(name)) > 0),
    min_selections integer NOT NULL DEFAULT 0 CHECK (min_selections >= 0),
    -- NULL: no upper bound.
    max_selections integer,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    CONSTRAINT product_modifier_group_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT product_modifier_group_selections
        CHECK (max_selections IS NULL OR max_selections >= greatest(min_selections, 1))
);
CREATE UNIQUE INDEX product_modifier_group_code_key ON catalog.product_modifier_group (tenant_id, code)
    WHERE deleted_at IS NULL;

-- From plu_option_item (SOAP Producto_Grupo_Detalle): an option of a group, optionally a product.
CREATE TABLE catalog.product_modifier (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES identity.tenants (id),
    group_id    uuid NOT NULL,
    product_id  uuid,
    code        text CHECK (length(code) BETWEEN 1 AND 255),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    -- Added to (or, negative, taken from) the item's price.
    price_delta numeric(19, 4) NOT NULL DEFAULT 0,
    position    integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    CONSTRAINT product_modifier_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT product_modifier_group_fkey FOREIGN KEY (tenant_id, group_id)
        REFERENCES catalog.product_modifier_group (tenant_id, id),
    CONSTRAINT product_modifier_product_fkey FOREIGN KEY (tenant_id, product_id)
        REFERENCES catalog.product (tenant_id, id)
);
CREATE UNIQUE INDEX product_modifier_code_key ON catalog.product_modifier (tenant_id, group_id, code)
    WHERE deleted_at IS NULL;
-- A group's options in order (and the group foreign key).
CREATE INDEX product_modifier_group_idx ON catalog.product_modifier (tenant_id, group_id, position);
CREATE INDEX product_modifier_product_idx ON catalog.product_modifier (tenant_id, product_id);

-- From plu_option_group_assignment: the groups offered with a product. One row per pair
-- (a removed assignment is soft-deleted, and revived when it comes back).
CREATE TABLE catalog.product_modifier_group_assignment (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES identity.tenants (id),
    product_id uuid NOT NULL,
    group_id   uuid NOT NULL,
    position   integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT product_modifier_group_assignment_product_fkey FOREIGN KEY (tenant_id, product_id)
        REFERENCES catalog.product (tenant_id, id),
    CONSTRAINT product_modifier_group_assignment_group_fkey FOREIGN KEY (tenant_id, group_id)
        REFERENCES catalog.product_modifier_group (tenant_id, id),
    CONSTRAINT product_modifier_group_assignment_pair_key UNIQUE (tenant_id, product_id, group_id)
);
CREATE INDEX product_modifier_group_assignment_group_idx
    ON catalog.product_modifier_group_assignment (tenant_id, group_id);

-- ---------------------------------------------------------------- stock movements

-- From the operational documents: compra (from a supplier into warehouse_id), traslado (from
-- warehouse_id to to_warehouse_id), conteo_fisico, merma, salida_sku and produccion (at
-- warehouse_id). idempotency_key (e.g. rpapos:compra:<Numero_Compra>) makes a document load
-- once per tenant, however often it is extracted. A voided document is soft-deleted.
CREATE TABLE catalog.stock_movement (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES identity.tenants (id),
    kind            text NOT NULL
                    CHECK (kind IN ('compra', 'traslado', 'conteo_fisico', 'merma', 'salida_sku', 'produccion')),
    document_number text CHECK (length(document_number) BETWEEN 1 AND 255),
    occurred_at     timestamptz NOT NULL,
    warehouse_id    uuid NOT NULL,
    to_warehouse_id uuid,
    supplier_id     uuid,
    -- The currency of the lines' unit_cost.
    currency_code   text CHECK (currency_code ~ '^[A-Z]{3}$'),
    notes           text,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CONSTRAINT stock_movement_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT stock_movement_idempotency_key UNIQUE (tenant_id, idempotency_key),
    CONSTRAINT stock_movement_warehouse_fkey FOREIGN KEY (tenant_id, warehouse_id)
        REFERENCES catalog.warehouse (tenant_id, id),
    CONSTRAINT stock_movement_to_warehouse_fkey FOREIGN KEY (tenant_id, to_warehouse_id)
        REFERENCES catalog.warehouse (tenant_id, id),
    CONSTRAINT stock_movement_supplier_fkey FOREIGN KEY (tenant_id, supplier_id)
        REFERENCES catalog.supplier (tenant_id, id),
    -- A transfer, and only a transfer, goes somewhere else.
    CONSTRAINT stock_movement_transfer_destination
        CHECK ((kind = 'traslado') = (to_warehouse_id IS NOT NULL) AND to_warehouse_id <> warehouse_id),
    CONSTRAINT stock_movement_supplier_on_purchase CHECK (supplier_id IS NULL OR kind = 'compra')
);
CREATE INDEX stock_movement_time_idx ON catalog.stock_movement (tenant_id, occurred_at DESC);
CREATE INDEX stock_movement_warehouse_idx ON catalog.stock_movement (tenant_id, warehouse_id, occurred_at DESC);
CREATE INDEX stock_movement_to_warehouse_idx ON catalog.stock_movement (tenant_id, to_warehouse_id)
    WHERE to_warehouse_id IS NOT NULL;
CREATE INDEX stock_movement_supplier_idx ON catalog.stock_movement (tenant_id, supplier_id)
    WHERE supplier_id IS NOT NULL;

-- A line of a document: quantity of a product (in its unit) as the document states it (a
-- physical count states the counted quantity), at unit_cost. Keyed by its line number, so a
-- reload updates the document line by line.
CREATE TABLE catalog.stock_movement_line (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES identity.tenants (id),
    movement_id uuid NOT NULL,
    line_number integer NOT NULL CHECK (line_number >= 1),
    product_id  uuid NOT NULL,
    quantity    numeric(19, 4) NOT NULL,
    unit_cost   numeric(19, 4) CHECK (unit_cost >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_movement_line_movement_fkey FOREIGN KEY (tenant_id, movement_id)
        REFERENCES catalog.stock_movement (tenant_id, id),
    CONSTRAINT stock_movement_line_product_fkey FOREIGN KEY (tenant_id, product_id)
        REFERENCES catalog.product (tenant_id, id),
    CONSTRAINT stock_movement_line_number_key UNIQUE (tenant_id, movement_id, line_number)
);
CREATE INDEX stock_movement_line_product_idx ON catalog.stock_movement_line (tenant_id, product_id);

-- ---------------------------------------------------------------- imports

-- A bulk import and its per-row outcomes. The RPApos product image import is import_type
-- 'product-image' with options.syncRunId = the rpapos_sync_run id (one row per PLU).
CREATE TABLE catalog.import_job (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES identity.tenants (id),
    import_type   text NOT NULL CHECK (import_type ~ '^[a-z][a-z0-9_-]{0,63}$'),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    options       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    total_rows    integer NOT NULL DEFAULT 0 CHECK (total_rows >= 0),
    success_count integer NOT NULL DEFAULT 0 CHECK (success_count >= 0),
    error_count   integer NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    last_error    text CHECK (char_length(last_error) <= 1000),
    created_by    uuid REFERENCES identity.users (id),
    started_at    timestamptz,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT import_job_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT import_job_completed_at CHECK ((status IN ('completed', 'failed')) = (completed_at IS NOT NULL))
);
CREATE INDEX import_job_tenant_idx ON catalog.import_job (tenant_id, created_at DESC);
CREATE INDEX import_job_created_by_idx ON catalog.import_job (created_by);
-- GET /rpapos/sync-runs/{id}/product-image-import-job.
CREATE INDEX import_job_sync_run_idx ON catalog.import_job (tenant_id, (options ->> 'syncRunId'))
    WHERE options ? 'syncRunId';

CREATE TABLE catalog.import_row (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES identity.tenants (id),
    import_job_id uuid NOT NULL,
    row_number    integer NOT NULL CHECK (row_number >= 1),
    status        text NOT NULL CHECK (status IN ('success', 'error')),
    -- What the row was about (for images: Codigo_PLU, objeto_archivo).
    payload       jsonb NOT NULL DEFAULT '{}',
    error         text CHECK (char_length(error) <= 2000),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT import_row_job_fkey FOREIGN KEY (tenant_id, import_job_id)
        REFERENCES catalog.import_job (tenant_id, id),
    CONSTRAINT import_row_job_row_key UNIQUE (import_job_id, row_number),
    CONSTRAINT import_row_error_has_message CHECK (status <> 'error' OR error IS NOT NULL)
);
-- The (tenant, job) foreign key, and a job's errors.
CREATE INDEX import_row_job_status_idx ON catalog.import_row (tenant_id, import_job_id, status);

-- The id map's link to an import job (0020 made the column; the table exists now).
ALTER TABLE rpapos.rpapos_id_map
    ADD CONSTRAINT rpapos_id_map_import_job_fkey FOREIGN KEY (tenant_id, import_job_id)
        REFERENCES catalog.import_job (tenant_id, id);
CREATE INDEX rpapos_id_map_import_job_idx ON rpapos.rpapos_id_map (tenant_id, import_job_id)
    WHERE import_job_id IS NOT NULL;

-- ---------------------------------------------------------------- triggers and row-level security

-- Every table: updated_at touched on update, tenant isolation (as 0006), and the admin's audited
-- cross-tenant reads (as 0016).
DO $$
DECLARE
    tbl regclass;
    tbl_name text;
BEGIN
    FOR tbl, tbl_name IN
        SELECT c.oid::regclass, c.relname
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = 'catalog'
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at()',
            tbl_name || '_touch', tbl);
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

-- ---------------------------------------------------------------- grants

-- The sync loads the catalog: reads, inserts, updates (soft delete included). Never deletes.
GRANT USAGE ON SCHEMA catalog TO pos_gateway_rpapos;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA catalog TO pos_gateway_rpapos;

-- The admin API reads it (a sync run's image import job among others).
GRANT USAGE ON SCHEMA catalog TO pos_gateway_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA catalog TO pos_gateway_admin;
