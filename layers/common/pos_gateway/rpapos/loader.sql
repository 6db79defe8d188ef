-- The RPApos loader (pos_gateway.rpapos.loader), as role pos_gateway_rpapos inside the caller's
-- tenant transaction. Row-level security scopes every statement; tenant_id is named as well so
-- that the (tenant, ...) indexes serve the lookups.
--
-- A page is written set-based: the rows travel as one jsonb array (%(rows)s, read with
-- jsonb_to_recordset: a Decimal arrives as its exact text), one statement per table per page.
-- Only the columns the loader maps are ever written: FlowPOS-side columns (product.image_url,
-- product.description, recipe.yield_quantity...) keep their values.
--
-- Inserts adopt a live row holding the same natural key (the unique indexes of 0021), so a
-- catalog row made before the id map knew it is taken over, never duplicated. They return the
-- written row's id per external id by joining back on that natural key.
-- Updates set deleted_at once (a later undelete clears it) and return the ids they reached; a
-- mapped row that no longer exists is inserted again (the id map moves to it).

-- name: find_mapped
-- The id map entries of these external ids among these entity types. Looked up by external id
-- (0022: under row-level security an enum comparison is never an index condition); an entry
-- of another listed type with the same external id may come along, the caller ignores it.
SELECT m.entity_type::text AS entity_type, m.external_id, m.flowpos_entity_id, m.source_payload_hash
  FROM rpapos.rpapos_id_map m
 WHERE m.tenant_id = %(tenant_id)s
   AND m.external_id = ANY(%(external_ids)s::text[])
   AND m.entity_type = ANY(%(entity_types)s::rpapos.rpapos_entity_type[]);

-- name: run_timezone
-- The timezone of the connection a sync run reads (operational document dates are local time).
SELECT c.timezone
  FROM rpapos.rpapos_sync_run r
  JOIN rpapos.rpapos_connection c ON c.tenant_id = r.tenant_id AND c.id = r.connection_id
 WHERE r.tenant_id = %(tenant_id)s AND r.id = %(sync_run_id)s;

-- name: upsert_id_map
-- New entries, and new hashes (or targets) for known ones.
INSERT INTO rpapos.rpapos_id_map AS m
       (tenant_id, entity_type, external_id, flowpos_entity_id, source_payload_hash, last_synced_at)
SELECT %(tenant_id)s, %(entity_type)s::rpapos.rpapos_entity_type, r.external_id, r.flowpos_entity_id,
       r.source_payload_hash, now()
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS r (external_id text, flowpos_entity_id uuid, source_payload_hash text)
    ON CONFLICT (tenant_id, entity_type, external_id) DO UPDATE
   SET flowpos_entity_id = excluded.flowpos_entity_id,
       source_payload_hash = excluded.source_payload_hash,
       last_synced_at = excluded.last_synced_at;

-- ---------------------------------------------------------------- reference data

-- name: insert_currency
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, symbol text, exchange_rate numeric)
), written AS (
    INSERT INTO catalog.currency AS t (tenant_id, code, name, symbol, exchange_rate, deleted_at)
    SELECT %(tenant_id)s, code, name, symbol, exchange_rate, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, symbol = excluded.symbol, exchange_rate = excluded.exchange_rate
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_currency
UPDATE catalog.currency AS t
   SET code = r.code, name = r.name, symbol = r.symbol, exchange_rate = r.exchange_rate,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, symbol text, exchange_rate numeric)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_unit_of_measure
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, abbreviation text)
), written AS (
    INSERT INTO catalog.unit_of_measure AS t (tenant_id, code, name, abbreviation, deleted_at)
    SELECT %(tenant_id)s, code, name, abbreviation, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, abbreviation = excluded.abbreviation
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_unit_of_measure
UPDATE catalog.unit_of_measure AS t
   SET code = r.code, name = r.name, abbreviation = r.abbreviation,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, abbreviation text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_product_category
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, kind text, code text, name text)
), written AS (
    INSERT INTO catalog.product_category AS t (tenant_id, kind, code, name, deleted_at)
    SELECT %(tenant_id)s, kind, code, name, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, kind, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name
    RETURNING t.id, t.kind, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON (w.kind, w.code) = (i.kind, i.code);

-- name: update_product_category
UPDATE catalog.product_category AS t
   SET kind = r.kind, code = r.code, name = r.name,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, kind text, code text, name text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_supplier
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, tax_id text, email text, phone text,
              address text)
), written AS (
    INSERT INTO catalog.supplier AS t (tenant_id, code, name, tax_id, email, phone, address, deleted_at)
    SELECT %(tenant_id)s, code, name, tax_id, email, phone, address, CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, tax_id = excluded.tax_id, email = excluded.email, phone = excluded.phone,
           address = excluded.address
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_supplier
UPDATE catalog.supplier AS t
   SET code = r.code, name = r.name, tax_id = r.tax_id, email = r.email, phone = r.phone, address = r.address,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, tax_id text, email text,
             phone text, address text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_customer
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, tax_id text, email text, phone text,
              address text)
), written AS (
    INSERT INTO catalog.customer AS t (tenant_id, code, name, tax_id, email, phone, address, deleted_at)
    SELECT %(tenant_id)s, code, name, tax_id, email, phone, address, CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, tax_id = excluded.tax_id, email = excluded.email, phone = excluded.phone,
           address = excluded.address
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_customer
UPDATE catalog.customer AS t
   SET code = r.code, name = r.name, tax_id = r.tax_id, email = r.email, phone = r.phone, address = r.address,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, tax_id text, email text,
             phone text, address text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_warehouse
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r (external_id text, deleted boolean, code text, name text)
), written AS (
    INSERT INTO catalog.warehouse AS t (tenant_id, code, name, deleted_at)
    SELECT %(tenant_id)s, code, name, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE SET name = excluded.name
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_warehouse
UPDATE catalog.warehouse AS t
   SET code = r.code, name = r.name, deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS r (flowpos_entity_id uuid, deleted boolean, code text, name text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_area
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, warehouse_id uuid)
), written AS (
    INSERT INTO catalog.area AS t (tenant_id, code, name, warehouse_id, deleted_at)
    SELECT %(tenant_id)s, code, name, warehouse_id, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, warehouse_id = excluded.warehouse_id
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_area
UPDATE catalog.area AS t
   SET code = r.code, name = r.name, warehouse_id = r.warehouse_id,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, warehouse_id uuid)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_dining_table
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, area_id uuid, seats integer)
), written AS (
    INSERT INTO catalog.dining_table AS t (tenant_id, code, name, area_id, seats, deleted_at)
    SELECT %(tenant_id)s, code, name, area_id, seats, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, area_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, seats = excluded.seats
    RETURNING t.id, t.area_id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON (w.area_id, w.code) = (i.area_id, i.code);

-- name: update_dining_table
UPDATE catalog.dining_table AS t
   SET code = r.code, name = r.name, area_id = r.area_id, seats = r.seats,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, area_id uuid, seats integer)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_order_type
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, flowpos_order_type text)
), written AS (
    INSERT INTO catalog.order_type AS t (tenant_id, code, name, flowpos_order_type, deleted_at)
    SELECT %(tenant_id)s, code, name, flowpos_order_type, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, flowpos_order_type = excluded.flowpos_order_type
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_order_type
UPDATE catalog.order_type AS t
   SET code = r.code, name = r.name, flowpos_order_type = r.flowpos_order_type,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, flowpos_order_type text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- ---------------------------------------------------------------- products and prices

-- name: insert_product
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, is_raw_material boolean,
              category_id uuid, unit_id uuid, price numeric, currency_code text)
), written AS (
    INSERT INTO catalog.product AS t
           (tenant_id, code, name, is_raw_material, category_id, unit_id, price, currency_code, deleted_at)
    SELECT %(tenant_id)s, code, name, is_raw_material, category_id, unit_id, price, currency_code,
           CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, is_raw_material, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, category_id = excluded.category_id, unit_id = excluded.unit_id,
           price = excluded.price, currency_code = excluded.currency_code
    RETURNING t.id, t.is_raw_material, t.code
)
SELECT i.external_id, w.id
  FROM input i JOIN written w ON (w.is_raw_material, w.code) = (i.is_raw_material, i.code);

-- name: update_product
UPDATE catalog.product AS t
   SET code = r.code, name = r.name, is_raw_material = r.is_raw_material, category_id = r.category_id,
       unit_id = r.unit_id, price = r.price, currency_code = r.currency_code,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, is_raw_material boolean,
             category_id uuid, unit_id uuid, price numeric, currency_code text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_product_price
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, product_id uuid, price_list text, price numeric,
              currency_code text)
), written AS (
    INSERT INTO catalog.product_price AS t (tenant_id, product_id, price_list, price, currency_code, deleted_at)
    SELECT %(tenant_id)s, product_id, price_list, price, currency_code, CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, product_id, price_list, currency_code) WHERE deleted_at IS NULL DO UPDATE
       SET price = excluded.price
    RETURNING t.id, t.product_id, t.price_list, t.currency_code
)
SELECT i.external_id, w.id
  FROM input i
  JOIN written w ON (w.product_id, w.price_list, w.currency_code) = (i.product_id, i.price_list, i.currency_code);

-- name: update_product_price
UPDATE catalog.product_price AS t
   SET product_id = r.product_id, price_list = r.price_list, price = r.price, currency_code = r.currency_code,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, product_id uuid, price_list text, price numeric,
             currency_code text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_recipe
-- yield_quantity and unit_id keep their defaults: batch_maestro states ingredient quantities.
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, product_id uuid)
), written AS (
    INSERT INTO catalog.recipe AS t (tenant_id, code, name, product_id, deleted_at)
    SELECT %(tenant_id)s, code, name, product_id, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, product_id = excluded.product_id
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_recipe
UPDATE catalog.recipe AS t
   SET code = r.code, name = r.name, product_id = r.product_id,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, product_id uuid)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: sync_recipe_items
-- The written recipes' items become exactly the listed ones: upserted (revived if soft-deleted),
-- the others soft-deleted. Unchanged items are not touched.
WITH items AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (parent_id uuid, product_id uuid, quantity numeric, unit_id uuid, position integer)
), upserted AS (
    INSERT INTO catalog.recipe_item AS t (tenant_id, recipe_id, product_id, quantity, unit_id, position)
    SELECT %(tenant_id)s, parent_id, product_id, quantity, unit_id, position FROM items
        ON CONFLICT (tenant_id, recipe_id, product_id) DO UPDATE
       SET quantity = excluded.quantity, unit_id = excluded.unit_id, position = excluded.position,
           deleted_at = NULL
     WHERE (t.quantity, t.unit_id, t.position, t.deleted_at)
           IS DISTINCT FROM (excluded.quantity, excluded.unit_id, excluded.position, NULL::timestamptz)
    RETURNING t.id
)
UPDATE catalog.recipe_item AS t
   SET deleted_at = now()
 WHERE t.tenant_id = %(tenant_id)s AND t.recipe_id = ANY(%(parent_ids)s::uuid[]) AND t.deleted_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM items i WHERE i.parent_id = t.recipe_id AND i.product_id = t.product_id);

-- ---------------------------------------------------------------- modifiers

-- name: insert_product_modifier_group
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, min_selections integer,
              max_selections integer)
), written AS (
    INSERT INTO catalog.product_modifier_group AS t
           (tenant_id, code, name, min_selections, max_selections, deleted_at)
    SELECT %(tenant_id)s, code, name, min_selections, max_selections, CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, min_selections = excluded.min_selections,
           max_selections = excluded.max_selections
    RETURNING t.id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.code = i.code;

-- name: update_product_modifier_group
UPDATE catalog.product_modifier_group AS t
   SET code = r.code, name = r.name, min_selections = r.min_selections, max_selections = r.max_selections,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, min_selections integer,
             max_selections integer)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_product_modifier
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, code text, name text, group_id uuid, product_id uuid,
              price_delta numeric, position integer)
), written AS (
    INSERT INTO catalog.product_modifier AS t
           (tenant_id, code, name, group_id, product_id, price_delta, position, deleted_at)
    SELECT %(tenant_id)s, code, name, group_id, product_id, price_delta, position,
           CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, group_id, code) WHERE deleted_at IS NULL DO UPDATE
       SET name = excluded.name, product_id = excluded.product_id, price_delta = excluded.price_delta,
           position = excluded.position
    RETURNING t.id, t.group_id, t.code
)
SELECT i.external_id, w.id FROM input i JOIN written w ON (w.group_id, w.code) = (i.group_id, i.code);

-- name: update_product_modifier
UPDATE catalog.product_modifier AS t
   SET code = r.code, name = r.name, group_id = r.group_id, product_id = r.product_id,
       price_delta = r.price_delta, position = r.position,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, code text, name text, group_id uuid, product_id uuid,
             price_delta numeric, position integer)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: insert_product_modifier_group_assignment
-- One row per pair, deleted or not (the unique key is not partial): a pair that exists is
-- taken over, its deleted_at set once or cleared.
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, product_id uuid, group_id uuid, position integer)
), written AS (
    INSERT INTO catalog.product_modifier_group_assignment AS t (tenant_id, product_id, group_id, position, deleted_at)
    SELECT %(tenant_id)s, product_id, group_id, position, CASE WHEN deleted THEN now() END FROM input
        ON CONFLICT (tenant_id, product_id, group_id) DO UPDATE
       SET position = excluded.position,
           deleted_at = CASE WHEN excluded.deleted_at IS NOT NULL THEN coalesce(t.deleted_at, excluded.deleted_at) END
    RETURNING t.id, t.product_id, t.group_id
)
SELECT i.external_id, w.id
  FROM input i JOIN written w ON (w.product_id, w.group_id) = (i.product_id, i.group_id);

-- name: update_product_modifier_group_assignment
UPDATE catalog.product_modifier_group_assignment AS t
   SET product_id = r.product_id, group_id = r.group_id, position = r.position,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, product_id uuid, group_id uuid, position integer)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: live_assignments
-- The live modifier group assignments of these products, with their group's code (a pair's
-- external id is <plu>:<group code>).
SELECT a.id, a.product_id, g.code AS group_code
  FROM catalog.product_modifier_group_assignment a
  JOIN catalog.product_modifier_group g ON g.tenant_id = a.tenant_id AND g.id = a.group_id
 WHERE a.tenant_id = %(tenant_id)s AND a.product_id = ANY(%(product_ids)s::uuid[]) AND a.deleted_at IS NULL;

-- name: retire_assignments
-- Pairs a PLU no longer offers: the assignments are soft-deleted and their id map hashes
-- cleared, so that a pair coming back is loaded again (revived). Returns the pairs retired.
WITH retired AS (
    UPDATE catalog.product_modifier_group_assignment AS t
       SET deleted_at = now()
     WHERE t.id = ANY(%(assignment_ids)s::uuid[]) AND t.deleted_at IS NULL
    RETURNING t.id
)
UPDATE rpapos.rpapos_id_map AS m
   SET source_payload_hash = NULL, last_synced_at = now()
 WHERE m.tenant_id = %(tenant_id)s AND m.external_id = ANY(%(pairs)s::text[])
   AND m.entity_type = 'plu_option_group_assignment'
   AND m.flowpos_entity_id IN (SELECT id FROM retired)
RETURNING m.external_id;

-- ---------------------------------------------------------------- stock movements

-- name: insert_stock_movement
-- The idempotency key is unique whether the movement is voided or not: one row per document.
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (external_id text, deleted boolean, kind text, document_number text, occurred_at timestamptz,
              warehouse_id uuid, to_warehouse_id uuid, supplier_id uuid, currency_code text, notes text,
              idempotency_key text)
), written AS (
    INSERT INTO catalog.stock_movement AS t
           (tenant_id, kind, document_number, occurred_at, warehouse_id, to_warehouse_id, supplier_id,
            currency_code, notes, idempotency_key, deleted_at)
    SELECT %(tenant_id)s, kind, document_number, occurred_at, warehouse_id, to_warehouse_id, supplier_id,
           currency_code, notes, idempotency_key, CASE WHEN deleted THEN now() END
      FROM input
        ON CONFLICT (tenant_id, idempotency_key) DO UPDATE
       SET kind = excluded.kind, document_number = excluded.document_number,
           occurred_at = excluded.occurred_at, warehouse_id = excluded.warehouse_id,
           to_warehouse_id = excluded.to_warehouse_id, supplier_id = excluded.supplier_id,
           currency_code = excluded.currency_code, notes = excluded.notes,
           deleted_at = CASE WHEN excluded.deleted_at IS NOT NULL THEN coalesce(t.deleted_at, excluded.deleted_at) END
    RETURNING t.id, t.idempotency_key
)
SELECT i.external_id, w.id FROM input i JOIN written w ON w.idempotency_key = i.idempotency_key;

-- name: update_stock_movement
UPDATE catalog.stock_movement AS t
   SET kind = r.kind, document_number = r.document_number, occurred_at = r.occurred_at,
       warehouse_id = r.warehouse_id, to_warehouse_id = r.to_warehouse_id, supplier_id = r.supplier_id,
       currency_code = r.currency_code, notes = r.notes, idempotency_key = r.idempotency_key,
       deleted_at = CASE WHEN r.deleted THEN coalesce(t.deleted_at, now()) END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r (flowpos_entity_id uuid, deleted boolean, kind text, document_number text, occurred_at timestamptz,
             warehouse_id uuid, to_warehouse_id uuid, supplier_id uuid, currency_code text, notes text,
             idempotency_key text)
 WHERE t.tenant_id = %(tenant_id)s AND t.id = r.flowpos_entity_id
RETURNING t.id;

-- name: sync_stock_movement_lines
-- The written movements' lines, by line number. Lines have neither deleted_at nor a DELETE
-- grant: a line the document no longer has is kept with quantity 0 and no cost.
WITH lines AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r (parent_id uuid, line_number integer, product_id uuid, quantity numeric, unit_cost numeric)
), upserted AS (
    INSERT INTO catalog.stock_movement_line AS t (tenant_id, movement_id, line_number, product_id, quantity, unit_cost)
    SELECT %(tenant_id)s, parent_id, line_number, product_id, quantity, unit_cost FROM lines
        ON CONFLICT (tenant_id, movement_id, line_number) DO UPDATE
       SET product_id = excluded.product_id, quantity = excluded.quantity, unit_cost = excluded.unit_cost
     WHERE (t.product_id, t.quantity, t.unit_cost)
           IS DISTINCT FROM (excluded.product_id, excluded.quantity, excluded.unit_cost)
    RETURNING t.id
)
UPDATE catalog.stock_movement_line AS t
   SET quantity = 0, unit_cost = NULL
 WHERE t.tenant_id = %(tenant_id)s AND t.movement_id = ANY(%(parent_ids)s::uuid[])
   AND (t.quantity <> 0 OR t.unit_cost IS NOT NULL)
   AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.parent_id = t.movement_id AND l.line_number = t.line_number);
