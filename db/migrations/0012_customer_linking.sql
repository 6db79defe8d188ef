-- Customer linking: a member who joins later claims their past anonymous transactions.

-- Unclaimed transactions are found by the customer's email or mobile.
CREATE INDEX transactions_unclaimed_email_idx
    ON pos.transactions (tenant_id, lower(customer_ref ->> 'email')) WHERE user_id IS NULL;
CREATE INDEX transactions_unclaimed_mobile_idx
    ON pos.transactions (tenant_id, (customer_ref ->> 'mobile')) WHERE user_id IS NULL;

-- Claiming sets user_id once (the query only touches rows where it is NULL).
GRANT UPDATE (user_id) ON pos.transactions TO pos_gateway_crediting;
