-- Admin operations (seed 003): replaying raw webhook events, and releasing quarantined ones.
--
-- A raw event is append-only but for its processing marker. Releasing a quarantined event (its
-- merchant was unknown on arrival and is connected now) is the one exception: its tenant goes
-- from NULL to the tenant the merchant resolves to, once, and the row says when (released_at).
-- The admin API's replay runs without a tenant context (a platform admin's request), where
-- row-level security hides every tenant's rows: the bookkeeping is a SECURITY DEFINER function
-- that only the admin role may call.

ALTER TABLE pos.pos_webhook_events_raw ADD COLUMN released_at timestamptz;
-- Every existing row has released_at NULL: NOT VALID spares a scan of the table under its lock
-- and still holds every row written from now on.
ALTER TABLE pos.pos_webhook_events_raw
    ADD CONSTRAINT pos_webhook_events_raw_released_has_tenant
    CHECK (released_at IS NULL OR (tenant_id IS NOT NULL AND quarantine_reason IS NULL)) NOT VALID;

-- Raw events are append-only except for their processing marker, and for the release of a
-- quarantined event: tenant NULL -> the merchant's tenant now, quarantine_reason -> NULL,
-- released_at -> now() (set here, whatever the statement said). Nothing else, never back,
-- never twice, never a processed event.
CREATE OR REPLACE FUNCTION pos.guard_raw_event_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    marker CONSTANT text[] := ARRAY[
        'processed', 'processed_at', 'processing_outcome', 'updated_at',
        'sweep_count', 'last_swept_at', 'parked_at', 'last_error'];
    release CONSTANT text[] := ARRAY['tenant_id', 'quarantine_reason', 'released_at'];
BEGIN
    IF to_jsonb(NEW) - marker IS DISTINCT FROM to_jsonb(OLD) - marker THEN
        IF to_jsonb(NEW) - marker - release IS DISTINCT FROM to_jsonb(OLD) - marker - release
           OR OLD.tenant_id IS NOT NULL OR OLD.released_at IS NOT NULL OR OLD.processed
           OR NEW.tenant_id IS NULL OR NEW.quarantine_reason IS NOT NULL
           OR NEW.tenant_id IS DISTINCT FROM pos.resolve_merchant_tenant(OLD.provider, OLD.merchant_account_id)
        THEN
            RAISE EXCEPTION 'pos.pos_webhook_events_raw is append-only: only the processing marker may change'
                USING ERRCODE = 'restrict_violation';
        END IF;
        NEW.released_at := now();
    END IF;
    IF OLD.processed AND NOT NEW.processed THEN
        RAISE EXCEPTION 'a processed raw event cannot be marked unprocessed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Replay the named raw events, across tenants, in the caller's transaction (the admin API writes
-- its audit row in the same one). One row per distinct id, in the order given:
--   queued            unprocessed (parked or not): unparked, sweep count reset, last_swept_at now
--                     (the sweeper re-sends it after its grace period if the caller's send fails);
--   released          quarantined, and its merchant now resolves to a tenant: routed there and
--                     queued as above;
--   still_quarantined quarantined, its merchant still unknown: unchanged;
--   already_processed nothing to do: unchanged;
--   not_found         no such event.
-- tenant_id and provider say where the caller sends the CreditRequest (queued, released).
-- Only without a tenant context: a tenant-scoped transaction is never a platform admin's.
CREATE FUNCTION pos.replay_raw_events(p_event_ids uuid[])
    RETURNS TABLE (event_id uuid, outcome text, tenant_id uuid, provider text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
#variable_conflict use_column
DECLARE
    wanted uuid;
    raw record;
    owner_tenant uuid;
BEGIN
    IF p_event_ids IS NULL OR cardinality(p_event_ids) NOT BETWEEN 1 AND 100
       OR array_position(p_event_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'invalid replay: 1 to 100 event ids, none NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF app.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'a replay runs without a tenant context'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Every named row locked up front in id order: concurrent replays never deadlock, and a
    -- crediting worker holding an event is waited for (its event then reads as processed).
    PERFORM 1 FROM pos.pos_webhook_events_raw r WHERE r.id = ANY (p_event_ids) ORDER BY r.id FOR UPDATE;
    FOR wanted IN SELECT w.id FROM unnest(p_event_ids) WITH ORDINALITY AS w(id, n)
                   GROUP BY w.id ORDER BY min(w.n)
    LOOP
        SELECT r.id, r.tenant_id, r.provider, r.merchant_account_id, r.processed
          INTO raw
          FROM pos.pos_webhook_events_raw r WHERE r.id = wanted;
        event_id := wanted;
        tenant_id := NULL;
        provider := NULL;
        IF NOT FOUND THEN
            outcome := 'not_found';
        ELSIF raw.processed THEN
            outcome := 'already_processed';
            tenant_id := raw.tenant_id;
            provider := raw.provider;
        ELSIF raw.tenant_id IS NULL THEN
            owner_tenant := pos.resolve_merchant_tenant(raw.provider, raw.merchant_account_id);
            provider := raw.provider;
            IF owner_tenant IS NULL THEN
                outcome := 'still_quarantined';
            ELSE
                UPDATE pos.pos_webhook_events_raw r
                   SET tenant_id = owner_tenant, quarantine_reason = NULL, released_at = now(),
                       parked_at = NULL, sweep_count = 0, last_swept_at = now()
                 WHERE r.id = wanted;
                outcome := 'released';
                tenant_id := owner_tenant;
            END IF;
        ELSE
            UPDATE pos.pos_webhook_events_raw r
               SET parked_at = NULL, sweep_count = 0, last_swept_at = now()
             WHERE r.id = wanted;
            outcome := 'queued';
            tenant_id := raw.tenant_id;
            provider := raw.provider;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION pos.replay_raw_events(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pos.replay_raw_events(uuid[]) TO pos_gateway_admin;
