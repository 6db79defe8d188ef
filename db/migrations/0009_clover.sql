-- Clover (seed 001): webhook verification codes for the operator, and what crediting needs to
-- fetch a payment with the merchant's token and to report a token Clover refused.

-- Clover proves ownership of the webhook URL with a one-time POST {"verificationCode": ...};
-- the operator pastes the code into Clover's dashboard. Append-only; platform-wide (no tenant).
CREATE TABLE pos.provider_verification_codes (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider          text NOT NULL CHECK (provider IN ('clover')),
    verification_code text NOT NULL CHECK (verification_code ~ '^[A-Za-z0-9-]{8,128}$'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- A repeated POST of one code is one row.
    CONSTRAINT provider_verification_codes_code_key UNIQUE (provider, verification_code)
);
CREATE INDEX provider_verification_codes_time_idx ON pos.provider_verification_codes (created_at);
CREATE TRIGGER provider_verification_codes_append_only BEFORE UPDATE OR DELETE ON pos.provider_verification_codes
    FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER provider_verification_codes_no_truncate BEFORE TRUNCATE ON pos.provider_verification_codes
    FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation();

-- Ingest appends codes (the conflict check reads provider and code); admins read them.
GRANT INSERT (provider, verification_code) ON pos.provider_verification_codes TO pos_gateway_ingest;
GRANT SELECT (id, provider, verification_code) ON pos.provider_verification_codes TO pos_gateway_ingest;
GRANT SELECT ON pos.provider_verification_codes TO pos_gateway_admin;

-- Crediting reads the merchant's connection (its token envelope) within its tenant. 0006 granted
-- SELECT on the whole table; these are the columns the Clover branch relies on, named so that
-- narrowing the table grant later keeps them.
GRANT SELECT (id, tenant_id, pos_type, merchant_account_id, access_token_enc, status, deleted_at)
    ON pos.pos_connections TO pos_gateway_crediting;
-- A token Clover answers 401 for: crediting marks the connection, in its own transaction.
GRANT UPDATE (status, last_error) ON pos.pos_connections TO pos_gateway_crediting;
