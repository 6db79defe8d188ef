-- name: route_merchant
-- Scope what follows to the merchant's tenant (NULL when the merchant is not connected: the
-- next inserts are quarantined) and say which tenant that is.
SELECT nullif(
           set_config('app.tenant_id',
                      coalesce(pos.resolve_merchant_tenant('clover', %(merchant_account_id)s)::text, ''),
                      true),
           '')::uuid AS tenant_id;

-- name: insert_update
-- Append one update of the merchant routed last; a redelivery (same merchant, object, type and
-- ts) inserts nothing. raw_payload is the update, raw_body the whole delivery as received.
INSERT INTO pos.pos_webhook_events_raw (
    tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header, quarantine_reason)
VALUES (
    app.current_tenant_id(), 'clover', %(event_type)s, %(provider_event_id)s, %(merchant_account_id)s,
    %(raw_payload)s, %(raw_body)s, NULL,
    CASE WHEN app.current_tenant_id() IS NULL THEN 'unknown_merchant' END)
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id;

-- name: insert_verification_code
-- Keep a verification code for the operator (a repeated POST of one code adds nothing).
INSERT INTO pos.provider_verification_codes (provider, verification_code)
VALUES ('clover', %(verification_code)s)
ON CONFLICT (provider, verification_code) DO NOTHING;
