-- Outbox sweeper (seed 001): raw events stuck unprocessed are enqueued again; an event swept
-- too often is parked for operators, with the last error crediting recorded on it.

DO $$
BEGIN
    -- Roles are cluster-wide: create it once, whichever database migrates first.
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pos_gateway_sweeper') THEN
        CREATE ROLE pos_gateway_sweeper LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- More of the processing marker: how often the sweeper re-enqueued the event, when it gave up
-- (parked), and why crediting last failed (short text, written by crediting after a rollback).
ALTER TABLE pos.pos_webhook_events_raw
    ADD COLUMN sweep_count   integer NOT NULL DEFAULT 0 CHECK (sweep_count >= 0),
    ADD COLUMN last_swept_at timestamptz,
    ADD COLUMN parked_at     timestamptz,
    ADD COLUMN last_error    text CHECK (char_length(last_error) <= 1000);

-- The sweeper's queue no longer holds parked events; operators find those through their own index.
DROP INDEX pos.pos_webhook_events_raw_unprocessed_idx;
CREATE INDEX pos_webhook_events_raw_unprocessed_idx
    ON pos.pos_webhook_events_raw (created_at)
    WHERE processed = false AND tenant_id IS NOT NULL AND parked_at IS NULL;
CREATE INDEX pos_webhook_events_raw_parked_idx
    ON pos.pos_webhook_events_raw (parked_at)
    WHERE processed = false AND parked_at IS NOT NULL;

-- Raw events are append-only except for their processing marker. The marker is now named
-- column by column: any other column, including one added later, is immutable.
CREATE OR REPLACE FUNCTION pos.guard_raw_event_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    marker CONSTANT text[] := ARRAY[
        'processed', 'processed_at', 'processing_outcome', 'updated_at',
        'sweep_count', 'last_swept_at', 'parked_at', 'last_error'];
BEGIN
    IF to_jsonb(NEW) - marker IS DISTINCT FROM to_jsonb(OLD) - marker THEN
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

-- Claim a batch of events of known tenants, unprocessed and not parked, untouched for the grace
-- period (since arrival and since their last sweep), across tenants. Rows another sweeper or a
-- crediting worker holds are skipped. Each claim counts a sweep; an event already swept
-- p_max_sweeps times is parked instead (keeping its last error, or saying it never got one).
-- Returns every claimed row; `parked` says which ones must not be enqueued.
CREATE FUNCTION pos.claim_stuck_raw_events(p_grace_seconds integer, p_max_sweeps integer, p_limit integer)
    RETURNS TABLE (id uuid, tenant_id uuid, provider text, parked boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_grace_seconds IS NULL OR p_grace_seconds < 0 OR p_max_sweeps IS NULL OR p_max_sweeps < 0
       OR p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'invalid sweep: grace %, max sweeps %, limit %', p_grace_seconds, p_max_sweeps, p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH stuck AS (
        SELECT r.id
          FROM pos.pos_webhook_events_raw r
         WHERE r.processed = false AND r.tenant_id IS NOT NULL AND r.parked_at IS NULL
           AND r.created_at < now() - make_interval(secs => p_grace_seconds)
           AND (r.last_swept_at IS NULL OR r.last_swept_at < now() - make_interval(secs => p_grace_seconds))
         ORDER BY r.created_at
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    )
    UPDATE pos.pos_webhook_events_raw r
       SET sweep_count   = CASE WHEN r.sweep_count >= p_max_sweeps THEN r.sweep_count ELSE r.sweep_count + 1 END,
           last_swept_at = CASE WHEN r.sweep_count >= p_max_sweeps THEN r.last_swept_at ELSE now() END,
           parked_at     = CASE WHEN r.sweep_count >= p_max_sweeps THEN now() END,
           last_error    = CASE WHEN r.sweep_count >= p_max_sweeps
                                THEN coalesce(r.last_error, 'not processed after ' || r.sweep_count || ' sweeps')
                                ELSE r.last_error END
      FROM stuck
     WHERE r.id = stuck.id
    RETURNING r.id, r.tenant_id, r.provider, r.parked_at IS NOT NULL;
END
$$;
REVOKE ALL ON FUNCTION pos.claim_stuck_raw_events(integer, integer, integer) FROM PUBLIC;

-- Sweeper: the claim function and nothing else (USAGE on pos only to reach the function).
GRANT USAGE ON SCHEMA pos TO pos_gateway_sweeper;
GRANT EXECUTE ON FUNCTION pos.claim_stuck_raw_events(integer, integer, integer) TO pos_gateway_sweeper;

-- Crediting records why an event failed, in its own transaction after the rollback.
GRANT UPDATE (last_error) ON pos.pos_webhook_events_raw TO pos_gateway_crediting;
