-- name: member_contact
-- The member's contact details, if the member may earn in this tenant at all.
SELECT id, email, mobile, status FROM identity.users WHERE id = %(user_id)s AND deleted_at IS NULL;

-- name: unclaimed_transactions
-- Past transactions of the tenant whose customer matches the member and that nobody claimed,
-- oldest first, locked so two claims of one transaction run one after the other.
SELECT id, provider, provider_transaction_id, amount_minor_units, currency, transaction_at, customer_ref
  FROM pos.transactions
 WHERE tenant_id = %(tenant_id)s AND user_id IS NULL
   AND ((%(email)s::text IS NOT NULL AND lower(customer_ref ->> 'email') = lower(%(email)s::text))
     OR (%(mobile)s::text IS NOT NULL AND customer_ref ->> 'mobile' = %(mobile)s::text))
 ORDER BY transaction_at
   FOR UPDATE;

-- name: claim_transaction
UPDATE pos.transactions SET user_id = %(user_id)s WHERE id = %(transaction_id)s AND user_id IS NULL;
