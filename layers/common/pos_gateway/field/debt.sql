-- name: customer_debt
-- A live customer's debt from the records themselves (not from customers.debt, which the push
-- keeps and tests compare): balance due of its credit sales minus its abonos, voided ones
-- excluded. One statement, so both sums come from the same snapshot.
SELECT c.id AS customer_id,
       credit.total AS credit_sales,
       paid.total AS abonos,
       credit.total - paid.total AS debt,
       statement_timestamp() AS as_of
  FROM field_sales.customers c
 CROSS JOIN LATERAL (
        SELECT coalesce(sum(s.balance_due), 0)::numeric(19, 4) AS total
          FROM field_sales.sales s
         WHERE s.tenant_id = c.tenant_id AND s.client_id = c.id AND s.sale_type = 'credito'
           AND NOT EXISTS (SELECT 1 FROM field_sales.voids v WHERE v.tenant_id = s.tenant_id AND v.sale_id = s.id)
       ) AS credit
 CROSS JOIN LATERAL (
        SELECT coalesce(sum(a.amount), 0)::numeric(19, 4) AS total
          FROM field_sales.abonos a
         WHERE a.tenant_id = c.tenant_id AND a.client_id = c.id
           AND NOT EXISTS (SELECT 1 FROM field_sales.voids v WHERE v.tenant_id = a.tenant_id AND v.abono_id = a.id)
       ) AS paid
 WHERE c.tenant_id = %(tenant_id)s AND c.id = %(customer_id)s AND c.deleted_at IS NULL;
