-- name: changes
-- One page of changes after (after_xid, after_seq) in (change_xid, change_seq) order across every
-- tracked table. Only rows of transactions older than every running one are served (horizon):
-- a row committed later always lands after the cursor. Each branch is a keyset scan of its
-- (tenant_id, change_xid, change_seq) index cut at limit; seller_id NULL means the whole tenant.
-- The row itself travels as jsonb text (numbers keep their scale; Python parses them as Decimal).
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin
)
SELECT collection, id, change_xid::text AS position_xid, change_seq AS position_seq, deleted, version,
       data::text AS data
  FROM (
    (SELECT 'products' AS collection, p.id, p.change_xid, p.change_seq, p.deleted_at IS NOT NULL AS deleted,
            p.version, CASE WHEN p.deleted_at IS NULL THEN to_jsonb(p) END AS data
       FROM field_sales.products p
      WHERE p.tenant_id = %(tenant_id)s
        AND (p.change_xid, p.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND p.change_xid < (SELECT xmin FROM horizon)
      ORDER BY p.change_xid, p.change_seq
      LIMIT %(limit)s)
    UNION ALL
    (SELECT 'inventory', i.product_id, i.change_xid, i.change_seq, false, NULL::integer, to_jsonb(i)
       FROM field_sales.inventory i
      WHERE i.tenant_id = %(tenant_id)s
        AND (i.change_xid, i.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND i.change_xid < (SELECT xmin FROM horizon)
      ORDER BY i.change_xid, i.change_seq
      LIMIT %(limit)s)
    UNION ALL
    (SELECT 'customers', c.id, c.change_xid, c.change_seq, c.deleted_at IS NOT NULL,
            c.version, CASE WHEN c.deleted_at IS NULL THEN to_jsonb(c) END
       FROM field_sales.customers c
      WHERE c.tenant_id = %(tenant_id)s
        AND (c.change_xid, c.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND c.change_xid < (SELECT xmin FROM horizon)
      ORDER BY c.change_xid, c.change_seq
      LIMIT %(limit)s)
    UNION ALL
    (SELECT 'distribuciones', d.id, d.change_xid, d.change_seq, false, d.version, to_jsonb(d)
       FROM field_sales.distribuciones d
      WHERE d.tenant_id = %(tenant_id)s
        AND (d.change_xid, d.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND d.change_xid < (SELECT xmin FROM horizon)
        AND (%(seller_id)s::uuid IS NULL OR d.vendedor_id = %(seller_id)s::uuid)
      ORDER BY d.change_xid, d.change_seq
      LIMIT %(limit)s)
    UNION ALL
    (SELECT 'sales', s.id, s.change_xid, s.change_seq, false, NULL::integer, to_jsonb(s)
       FROM field_sales.sales s
      WHERE s.tenant_id = %(tenant_id)s
        AND (s.change_xid, s.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND s.change_xid < (SELECT xmin FROM horizon)
        AND (%(seller_id)s::uuid IS NULL OR s.seller_id = %(seller_id)s::uuid)
      ORDER BY s.change_xid, s.change_seq
      LIMIT %(limit)s)
    UNION ALL
    (SELECT 'abonos', a.id, a.change_xid, a.change_seq, false, NULL::integer, to_jsonb(a)
       FROM field_sales.abonos a
      WHERE a.tenant_id = %(tenant_id)s
        AND (a.change_xid, a.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND a.change_xid < (SELECT xmin FROM horizon)
        AND (%(seller_id)s::uuid IS NULL OR a.seller_id = %(seller_id)s::uuid)
      ORDER BY a.change_xid, a.change_seq
      LIMIT %(limit)s)
    UNION ALL
    -- A seller sees the voids they made and the voids of their own sales and abonos (an admin
    -- may void a seller's sale: the seller's device must learn of it). The voided record's
    -- seller is a primary key lookup per void.
    (SELECT 'voids', v.id, v.change_xid, v.change_seq, false, NULL::integer, to_jsonb(v)
       FROM field_sales.voids v
      WHERE v.tenant_id = %(tenant_id)s
        AND (v.change_xid, v.change_seq) > (%(after_xid)s::xid8, %(after_seq)s::bigint)
        AND v.change_xid < (SELECT xmin FROM horizon)
        AND (%(seller_id)s::uuid IS NULL
             OR v.voided_by = %(seller_id)s::uuid
             OR %(seller_id)s::uuid = coalesce(
                    (SELECT s.seller_id FROM field_sales.sales s
                      WHERE s.tenant_id = v.tenant_id AND s.id = v.sale_id),
                    (SELECT a.seller_id FROM field_sales.abonos a
                      WHERE a.tenant_id = v.tenant_id AND a.id = v.abono_id)))
      ORDER BY v.change_xid, v.change_seq
      LIMIT %(limit)s)
  ) AS changes
 ORDER BY changes.change_xid, changes.change_seq
 LIMIT %(limit)s;

-- name: sale_items
-- The lines of the page's sales. Items are append-only and written in their sale's transaction,
-- so a sale served above (committed) already has all of them: this read agrees with the page.
SELECT sale_id, line_no, product_id, product_name, quantity, unit_price, subtotal
  FROM field_sales.sale_items
 WHERE tenant_id = %(tenant_id)s AND sale_id = ANY(%(sale_ids)s::uuid[])
 ORDER BY sale_id, line_no;
