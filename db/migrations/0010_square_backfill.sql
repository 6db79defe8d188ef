-- Square backfill (seed 001): the poller lists payments per location since a watermark and stores
-- them as raw events under the webhook dedup key; the token refresher renews OAuth tokens before
-- they expire. Both roles work across tenants only through the SECURITY DEFINER functions below:
-- they hold no privilege on any table.

DO $$
DECLARE
    role_name text;
BEGIN
    -- Roles are cluster-wide: create them once, whichever database migrates first.
    FOREACH role_name IN ARRAY ARRAY['pos_gateway_poller', 'pos_gateway_token_refresher']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', role_name);
        END IF;
    END LOOP;
END
$$;

-- When the poller last took the connection (rotation when there are more than one run takes).
ALTER TABLE pos.pos_connections ADD COLUMN square_polled_at timestamptz;
CREATE INDEX pos_connections_square_poll_idx ON pos.pos_connections (square_polled_at NULLS FIRST)
    WHERE pos_type = 'square' AND status = 'active' AND deleted_at IS NULL;
CREATE INDEX pos_connections_token_expiry_idx ON pos.pos_connections (token_expires_at)
    WHERE pos_type = 'square' AND deleted_at IS NULL AND token_expires_at IS NOT NULL;

-- Progress per location: Square lists payments per location, and one location's progress must not
-- move another's. pos_connections.square_payments_watermark_at is the least of them: every payment
-- created before it has been stored, at every location polled so far.
CREATE TABLE pos.square_location_watermarks (
    connection_id         uuid NOT NULL REFERENCES pos.pos_connections (id),
    tenant_id             uuid NOT NULL REFERENCES identity.tenants (id),
    location_id           text NOT NULL CHECK (length(location_id) BETWEEN 1 AND 255),
    payments_watermark_at timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, location_id)
);
CREATE INDEX square_location_watermarks_tenant_idx ON pos.square_location_watermarks (tenant_id);
CREATE TRIGGER square_location_watermarks_touch BEFORE UPDATE ON pos.square_location_watermarks
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
ALTER TABLE pos.square_location_watermarks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON pos.square_location_watermarks
    USING (tenant_id = app.current_tenant_id())
    WITH CHECK (tenant_id = app.current_tenant_id());
GRANT SELECT ON pos.square_location_watermarks TO pos_gateway_admin;

-- ---------------------------------------------------------------- poller

-- Take up to p_limit active Square connections, least recently polled first, with their sealed
-- access token (the poller decrypts it; the key never reaches the database).
CREATE FUNCTION pos.square_poll_claim_connections(p_limit integer)
    RETURNS TABLE (connection_id uuid, tenant_id uuid, merchant_account_id text, access_token_enc text,
                   payments_watermark_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'invalid poll limit %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT c.id
          FROM pos.pos_connections c
         WHERE c.pos_type = 'square' AND c.status = 'active' AND c.deleted_at IS NULL
         ORDER BY c.square_polled_at NULLS FIRST, c.id
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE pos.pos_connections c
       SET square_polled_at = now()
      FROM due
     WHERE c.id = due.id
    RETURNING c.id, c.tenant_id, c.merchant_account_id, c.access_token_enc, c.square_payments_watermark_at;
END
$$;
REVOKE ALL ON FUNCTION pos.square_poll_claim_connections(integer) FROM PUBLIC;

CREATE FUNCTION pos.square_poll_location_watermarks(p_connection_id uuid)
    RETURNS TABLE (location_id text, payments_watermark_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT w.location_id, w.payments_watermark_at
      FROM pos.square_location_watermarks w
     WHERE w.connection_id = p_connection_id
$$;
REVOKE ALL ON FUNCTION pos.square_poll_location_watermarks(uuid) FROM PUBLIC;

-- Store one page of polled payments, in one transaction: the raw events (synthesized Square
-- envelopes, deduplicated on (provider, provider_event_id) exactly as webhooks are) and then the
-- location's watermark, which only moves forward. Returns the ids of the events inserted now.
-- p_events: [{"event_id": "...", "event_type": "payment.updated", "body": "<JSON text>"}, ...]
CREATE FUNCTION pos.square_poll_store_page(
    p_connection_id uuid, p_location_id text, p_events jsonb, p_watermark_at timestamptz)
    RETURNS TABLE (raw_event_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    v_tenant_id   uuid;
    v_merchant_id text;
BEGIN
    IF jsonb_typeof(p_events) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'p_events must be a JSON array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The tenant and merchant come from the connection, never from the caller.
    SELECT c.tenant_id, c.merchant_account_id INTO v_tenant_id, v_merchant_id
      FROM pos.pos_connections c
     WHERE c.id = p_connection_id AND c.pos_type = 'square' AND c.status = 'active' AND c.deleted_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Square connection % is not active', p_connection_id USING ERRCODE = 'no_data_found';
    END IF;

    RETURN QUERY
    INSERT INTO pos.pos_webhook_events_raw AS r (
        tenant_id, provider, event_type, provider_event_id, merchant_account_id, raw_payload, raw_body)
    SELECT v_tenant_id, 'square', e.value ->> 'event_type', e.value ->> 'event_id', v_merchant_id,
           (e.value ->> 'body')::jsonb, e.value ->> 'body'
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e (value, n)
     ORDER BY e.n
    ON CONFLICT (provider, provider_event_id) DO NOTHING
    RETURNING r.id;

    IF p_watermark_at IS NOT NULL THEN
        INSERT INTO pos.square_location_watermarks AS w (connection_id, tenant_id, location_id, payments_watermark_at)
        VALUES (p_connection_id, v_tenant_id, p_location_id, p_watermark_at)
        ON CONFLICT ON CONSTRAINT square_location_watermarks_pkey DO UPDATE
           SET payments_watermark_at = greatest(w.payments_watermark_at, EXCLUDED.payments_watermark_at);
        UPDATE pos.pos_connections c
           SET square_payments_watermark_at = (SELECT min(w.payments_watermark_at)
                                                 FROM pos.square_location_watermarks w
                                                WHERE w.connection_id = p_connection_id)
         WHERE c.id = p_connection_id;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION pos.square_poll_store_page(uuid, text, jsonb, timestamptz) FROM PUBLIC;

-- The outcome of polling one connection: success clears the last error; a failure records it and,
-- for a rejected token (p_status 'token_expired') or unusable credentials ('error'), takes the
-- connection out of polling until an operator or the token refresher restores it.
CREATE FUNCTION pos.square_poll_record_outcome(p_connection_id uuid, p_status text, p_error text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_status IS NOT NULL AND p_status NOT IN ('token_expired', 'error') THEN
        RAISE EXCEPTION 'invalid poll outcome status %', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pos.pos_connections c
       SET status         = coalesce(p_status, c.status),
           last_error     = left(p_error, 1000),
           last_synced_at = CASE WHEN p_error IS NULL THEN now() ELSE c.last_synced_at END
     WHERE c.id = p_connection_id AND c.pos_type = 'square' AND c.status = 'active' AND c.deleted_at IS NULL;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION pos.square_poll_record_outcome(uuid, text, text) FROM PUBLIC;

-- ---------------------------------------------------------------- token refresher

-- Square connections with a refresh token whose access token expires before p_expiring_before,
-- soonest first. token_expired ones are included: a refresh that works puts them back in service.
CREATE FUNCTION pos.square_tokens_due(p_expiring_before timestamptz, p_limit integer)
    RETURNS TABLE (connection_id uuid, tenant_id uuid, access_token_enc text, refresh_token_enc text,
                   token_expires_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_expiring_before IS NULL OR p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 5000 THEN
        RAISE EXCEPTION 'invalid refresh selection: before %, limit %', p_expiring_before, p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT c.id, c.tenant_id, c.access_token_enc, c.refresh_token_enc, c.token_expires_at
      FROM pos.pos_connections c
     WHERE c.pos_type = 'square' AND c.deleted_at IS NULL AND c.status IN ('active', 'token_expired')
       AND c.token_expires_at IS NOT NULL AND c.token_expires_at <= p_expiring_before
       AND c.refresh_token_enc <> ''
     ORDER BY c.token_expires_at, c.id
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION pos.square_tokens_due(timestamptz, integer) FROM PUBLIC;

-- Replace both sealed tokens, only if the access token is still the one the refresher read (an
-- operator reconnecting the merchant meanwhile wins). Returns whether the row was updated.
CREATE FUNCTION pos.square_store_refreshed_tokens(
    p_connection_id uuid, p_previous_access_token_enc text, p_access_token_enc text,
    p_refresh_token_enc text, p_token_expires_at timestamptz)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF coalesce(p_access_token_enc, '') = '' OR coalesce(p_refresh_token_enc, '') = ''
       OR p_token_expires_at IS NULL THEN
        RAISE EXCEPTION 'refreshed tokens and their expiry are required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pos.pos_connections c
       SET access_token_enc  = p_access_token_enc,
           refresh_token_enc = p_refresh_token_enc,
           token_expires_at  = p_token_expires_at,
           status            = 'active',
           last_error        = NULL
     WHERE c.id = p_connection_id AND c.pos_type = 'square' AND c.deleted_at IS NULL
       AND c.status IN ('active', 'token_expired') AND c.access_token_enc = p_previous_access_token_enc;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION pos.square_store_refreshed_tokens(uuid, text, text, text, timestamptz) FROM PUBLIC;

-- A failed refresh: the error is kept; p_status 'token_expired' (Square refused, or the token has
-- run out) or 'error' (credentials that do not decrypt) takes the connection out of service, NULL
-- leaves the status (a transient failure retried on the next run).
CREATE FUNCTION pos.square_record_refresh_failure(p_connection_id uuid, p_status text, p_error text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_status IS NOT NULL AND p_status NOT IN ('token_expired', 'error') THEN
        RAISE EXCEPTION 'invalid refresh failure status %', p_status USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pos.pos_connections c
       SET status     = coalesce(p_status, c.status),
           last_error = left(coalesce(p_error, 'token refresh failed'), 1000)
     WHERE c.id = p_connection_id AND c.pos_type = 'square' AND c.deleted_at IS NULL
       AND c.status IN ('active', 'token_expired');
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION pos.square_record_refresh_failure(uuid, text, text) FROM PUBLIC;

-- ---------------------------------------------------------------- grants: the functions, nothing else

GRANT USAGE ON SCHEMA pos TO pos_gateway_poller, pos_gateway_token_refresher;
GRANT EXECUTE ON FUNCTION
    pos.square_poll_claim_connections(integer),
    pos.square_poll_location_watermarks(uuid),
    pos.square_poll_store_page(uuid, text, jsonb, timestamptz),
    pos.square_poll_record_outcome(uuid, text, text)
    TO pos_gateway_poller;
GRANT EXECUTE ON FUNCTION
    pos.square_tokens_due(timestamptz, integer),
    pos.square_store_refreshed_tokens(uuid, text, text, text, timestamptz),
    pos.square_record_refresh_failure(uuid, text, text)
    TO pos_gateway_token_refresher;
