-- name: find_sale
SELECT id, client_id, seller_id, distribucion_id, sale_type, total_amount, amount_paid, balance_due,
       currency, stock_decremented, distribucion_kilos
  FROM field_sales.sales
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s;

-- name: sellable_products
-- The products a sale may name: the tenant's, active and not deleted.
SELECT id, unit
  FROM field_sales.products
 WHERE tenant_id = %(tenant_id)s AND id = ANY(%(product_ids)s::uuid[]) AND is_active AND deleted_at IS NULL;

-- name: lock_stock
-- The products' stock, locked in product id order (every push locks in this order: no deadlock).
SELECT product_id, quantity
  FROM field_sales.inventory
 WHERE tenant_id = %(tenant_id)s AND product_id = ANY(%(product_ids)s::uuid[])
 ORDER BY product_id
   FOR UPDATE;

-- name: move_stock
-- Stock moves by each product's delta (a sale takes, its void gives back); a product without an
-- inventory row gets one (only reached when selling without stock is allowed).
INSERT INTO field_sales.inventory (tenant_id, product_id, quantity)
SELECT %(tenant_id)s, moved.product_id, moved.delta
  FROM unnest(%(product_ids)s::uuid[], %(deltas)s::numeric[]) AS moved (product_id, delta)
 ORDER BY moved.product_id
    ON CONFLICT (tenant_id, product_id) DO UPDATE SET quantity = field_sales.inventory.quantity + EXCLUDED.quantity;

-- name: insert_sale
INSERT INTO field_sales.sales (id, tenant_id, client_id, seller_id, distribucion_id, sale_type, total_amount,
                               amount_paid, balance_due, tara, net_weight, currency, sale_date, device_id,
                               stock_decremented, distribucion_kilos)
VALUES (%(id)s, %(tenant_id)s, %(client_id)s, %(seller_id)s, %(distribucion_id)s, %(sale_type)s,
        %(total_amount)s, %(amount_paid)s, %(balance_due)s, %(tara)s, %(net_weight)s, %(currency)s,
        %(sale_date)s, %(device_id)s, %(stock_decremented)s, %(distribucion_kilos)s)
RETURNING id;

-- name: insert_sale_items
-- The lines as sent, numbered 1..n: the product's name and unit price are the sale's snapshot.
INSERT INTO field_sales.sale_items (tenant_id, sale_id, line_no, product_id, product_name, quantity,
                                    unit_price, subtotal)
SELECT %(tenant_id)s, %(sale_id)s, line.line_no, line.product_id, line.product_name, line.quantity,
       line.unit_price, line.subtotal
  FROM unnest(%(product_ids)s::uuid[], %(product_names)s::text[], %(quantities)s::numeric[],
              %(unit_prices)s::numeric[], %(subtotals)s::numeric[])
       WITH ORDINALITY AS line (product_id, product_name, quantity, unit_price, subtotal, line_no);

-- name: sold_quantities
-- What a sale took from stock, per product in product id order (its void gives it back).
SELECT product_id, sum(quantity) AS quantity
  FROM field_sales.sale_items
 WHERE tenant_id = %(tenant_id)s AND sale_id = %(sale_id)s
 GROUP BY product_id
 ORDER BY product_id;

-- name: loyalty_event
-- The raw loyalty event of a sale, if it was fed to crediting.
SELECT id
  FROM pos.pos_webhook_events_raw
 WHERE provider = 'field' AND provider_event_id = %(provider_event_id)s;

-- name: append_loyalty_event
-- A field sale (or its void) for the crediting pipeline, in the push's transaction; the same
-- event again inserts nothing.
INSERT INTO pos.pos_webhook_events_raw (tenant_id, provider, event_type, provider_event_id,
                                        merchant_account_id, raw_payload, raw_body)
VALUES (%(tenant_id)s, 'field', %(event_type)s, %(provider_event_id)s, %(merchant_account_id)s,
        %(raw_body)s::text::jsonb, %(raw_body)s::text)
    ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id;
