-- name: route_to_tenant
-- Resolve the merchant's tenant and scope this transaction to it (NULL when not connected).
SELECT nullif(
           set_config('app.tenant_id',
                      coalesce(pos.resolve_merchant_tenant(%(provider)s, %(merchant_account_id)s)::text, ''),
                      true),
           '')::uuid AS tenant_id;

-- name: insert_raw_event
-- Append a verified event; a redelivery (same provider event id) inserts nothing.
INSERT INTO pos.pos_webhook_events_raw (
    tenant_id, provider, event_type, provider_event_id, merchant_account_id,
    raw_payload, raw_body, signature_header, quarantine_reason)
VALUES (
    %(tenant_id)s, %(provider)s, %(event_type)s, %(provider_event_id)s, %(merchant_account_id)s,
    %(raw_body)s::text::jsonb, %(raw_body)s::text, %(signature_header)s,
    CASE WHEN %(tenant_id)s::uuid IS NULL THEN 'unknown_merchant' END)
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id;
