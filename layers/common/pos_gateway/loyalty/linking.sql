-- name: member_contact
-- The member's contact details, if the member may earn in this tenant at all.
SELECT id, email, mobile, status FROM identity.users WHERE id = %(user_id)s AND deleted_at IS NULL;

-- name: unclaimed_transactions
-- Past transactions of the tenant whose customer matches the member and that nobody claimed,
-- oldest first, locked so two claims of one transaction run one after the other (in one order:
-- two members matching one sale, by email and by mobile, never deadlock on it).
SELECT id, provider, provider_transaction_id, amount_minor_units, currency, transaction_at, customer_ref
  FROM pos.transactions
 WHERE tenant_id = %(tenant_id)s AND user_id IS NULL
   AND ((%(email)s::text IS NOT NULL AND lower(customer_ref ->> 'email') = lower(%(email)s::text))
     OR (%(mobile)s::text IS NOT NULL AND customer_ref ->> 'mobile' = %(mobile)s::text))
 ORDER BY transaction_at, id
   FOR UPDATE;

-- name: claim_transaction
UPDATE pos.transactions SET user_id = %(user_id)s WHERE id = %(transaction_id)s AND user_id IS NULL;

-- name: link_candidates
-- (tenant, member) pairs with unclaimed sales matching an active member, across tenants, in
-- (tenant_id, user_id) order after the given pair (the linker's SECURITY DEFINER function).
SELECT tenant_id, user_id
  FROM pos.customer_link_candidates(%(after_tenant_id)s::uuid, %(after_user_id)s::uuid, %(limit)s::integer);
