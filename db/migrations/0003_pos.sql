-- POS connections, raw webhook events, transactions and idempotency keys (seed 001, pos context).

CREATE TABLE pos.pos_connections (
    id                           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id                    uuid NOT NULL REFERENCES identity.tenants (id),
    pos_type                     text NOT NULL CHECK (pos_type IN ('square', 'clover')),
    -- AES-256-GCM envelopes (see pos_gateway.crypto); never plaintext.
    access_token_enc             text NOT NULL,
    refresh_token_enc            text NOT NULL DEFAULT '',
    merchant_account_id          text NOT NULL CHECK (length(merchant_account_id) > 0),
    status                       text NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('active', 'disconnected', 'token_expired', 'error')),
    token_expires_at             timestamptz,
    last_synced_at               timestamptz,
    last_error                   text,
    square_payments_watermark_at timestamptz,
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    deleted_at                   timestamptz
);
-- A provider's merchant account belongs to exactly one tenant: webhooks are routed by it.
CREATE UNIQUE INDEX pos_connections_merchant_key
    ON pos.pos_connections (pos_type, merchant_account_id) WHERE deleted_at IS NULL;
CREATE INDEX pos_connections_tenant_idx ON pos.pos_connections (tenant_id);
CREATE TRIGGER pos_connections_touch BEFORE UPDATE ON pos.pos_connections
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

CREATE TABLE pos.pos_webhook_events_raw (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL only while quarantined: a verified event whose merchant is not connected.
    tenant_id           uuid REFERENCES identity.tenants (id),
    provider            text NOT NULL CHECK (provider IN ('square', 'clover')),
    event_type          text NOT NULL,
    provider_event_id   text NOT NULL CHECK (length(provider_event_id) > 0),
    merchant_account_id text NOT NULL,
    raw_payload         jsonb NOT NULL,
    -- The exact bytes received, so the signature can be verified again on replay.
    raw_body            text NOT NULL,
    signature_header    text,
    quarantine_reason   text CHECK (quarantine_reason IN ('unknown_merchant')),
    processed           boolean NOT NULL DEFAULT false,
    processed_at        timestamptz,
    processing_outcome  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pos_webhook_events_raw_provider_event_key UNIQUE (provider, provider_event_id),
    CONSTRAINT pos_webhook_events_raw_tenant_or_quarantine
        CHECK ((tenant_id IS NULL) = (quarantine_reason IS NOT NULL)),
    CONSTRAINT pos_webhook_events_raw_processed_at
        CHECK (processed = (processed_at IS NOT NULL))
);
-- The sweeper's queue: events of known tenants not processed yet.
CREATE INDEX pos_webhook_events_raw_unprocessed_idx
    ON pos.pos_webhook_events_raw (created_at) WHERE processed = false AND tenant_id IS NOT NULL;
CREATE INDEX pos_webhook_events_raw_quarantine_idx
    ON pos.pos_webhook_events_raw (created_at) WHERE tenant_id IS NULL;
CREATE INDEX pos_webhook_events_raw_tenant_idx ON pos.pos_webhook_events_raw (tenant_id, created_at);

-- Raw events are append-only except for their processing marker.
CREATE FUNCTION pos.guard_raw_event_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF (NEW.id, NEW.tenant_id, NEW.provider, NEW.event_type, NEW.provider_event_id,
        NEW.merchant_account_id, NEW.raw_payload, NEW.raw_body, NEW.signature_header,
        NEW.quarantine_reason, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.provider, OLD.event_type, OLD.provider_event_id,
        OLD.merchant_account_id, OLD.raw_payload, OLD.raw_body, OLD.signature_header,
        OLD.quarantine_reason, OLD.created_at) THEN
        RAISE EXCEPTION 'pos.pos_webhook_events_raw is append-only: only the processing marker may change'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.processed AND NOT NEW.processed THEN
        RAISE EXCEPTION 'a processed raw event cannot be marked unprocessed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER pos_webhook_events_raw_guard BEFORE UPDATE ON pos.pos_webhook_events_raw
    FOR EACH ROW EXECUTE FUNCTION pos.guard_raw_event_update();
CREATE TRIGGER pos_webhook_events_raw_no_delete BEFORE DELETE ON pos.pos_webhook_events_raw
    FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER pos_webhook_events_raw_no_truncate BEFORE TRUNCATE ON pos.pos_webhook_events_raw
    FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation();

CREATE TABLE pos.transactions (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id               uuid NOT NULL REFERENCES identity.tenants (id),
    user_id                 uuid REFERENCES identity.users (id),
    provider                text NOT NULL CHECK (provider IN ('square', 'clover')),
    provider_transaction_id text NOT NULL CHECK (length(provider_transaction_id) > 0),
    amount_minor_units      bigint NOT NULL CHECK (amount_minor_units >= 0),
    currency                text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    customer_ref            jsonb,
    line_items              jsonb,
    transaction_at          timestamptz NOT NULL,
    raw_event_id            uuid REFERENCES pos.pos_webhook_events_raw (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_provider_txn_key UNIQUE (tenant_id, provider, provider_transaction_id)
);
CREATE INDEX transactions_tenant_time_idx ON pos.transactions (tenant_id, transaction_at DESC);
CREATE INDEX transactions_user_time_idx ON pos.transactions (user_id, transaction_at DESC)
    WHERE user_id IS NOT NULL;
CREATE INDEX transactions_raw_event_idx ON pos.transactions (raw_event_id);
CREATE TRIGGER transactions_touch BEFORE UPDATE ON pos.transactions
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();

CREATE TABLE pos.idempotency_keys (
    key             text PRIMARY KEY CHECK (length(key) > 0),
    tenant_id       uuid REFERENCES identity.tenants (id),
    handler         text NOT NULL,
    result_snapshot jsonb,
    expires_at      timestamptz NOT NULL DEFAULT now() + interval '30 days',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_tenant_idx ON pos.idempotency_keys (tenant_id);
CREATE INDEX idempotency_keys_expires_idx ON pos.idempotency_keys (expires_at);

-- Webhook routing: the ingest role may learn which tenant owns a merchant account and
-- nothing else about connections (it cannot read pos_connections).
CREATE FUNCTION pos.resolve_merchant_tenant(p_provider text, p_merchant_account_id text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT tenant_id FROM pos.pos_connections
     WHERE pos_type = p_provider AND merchant_account_id = p_merchant_account_id AND deleted_at IS NULL
$$;
REVOKE ALL ON FUNCTION pos.resolve_merchant_tenant(text, text) FROM PUBLIC;
