-- The RPApos scheduler (EventBridge rate(5 minutes)) finds the connections due for an
-- incremental run across tenants. Row-level security hides every row without a tenant context,
-- so the listing is a SECURITY DEFINER function that returns ids only: the scheduler then opens
-- each tenant's own transaction (app.tenant_id set) to create the run, under the policies.
--
-- Due: an active, live connection with a sync interval, no run running or paused, and neither its
-- last successful sync nor its latest run (whatever became of it) started within the interval.
-- Counting the latest run's start keeps a failing connection (say, a changed password) from being
-- retried on every tick: it is tried again one interval later. The partial unique index
-- rpapos_sync_run_one_active_per_connection stays the last guard against a second active run.

CREATE FUNCTION rpapos.rpapos_scheduler_due_connections(p_limit integer)
    RETURNS TABLE (connection_id uuid, tenant_id uuid)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'invalid scheduler limit %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT c.id, c.tenant_id
      FROM rpapos.rpapos_connection c
      LEFT JOIN LATERAL (
          SELECT max(r.started_at) AS started_at
            FROM rpapos.rpapos_sync_run r
           WHERE r.tenant_id = c.tenant_id AND r.connection_id = c.id
      ) latest ON true
     WHERE c.status = 'active'
       AND c.deleted_at IS NULL
       AND c.sync_interval_minutes IS NOT NULL
       AND NOT EXISTS (
           SELECT 1
             FROM rpapos.rpapos_sync_run a
            WHERE a.connection_id = c.id AND a.status IN ('running', 'paused'))
       AND coalesce(greatest(c.last_synced_at, latest.started_at), '-infinity'::timestamptz)
           <= now() - make_interval(mins => c.sync_interval_minutes)
     -- Longest waiting first, so a capped tick never starves the same connections.
     ORDER BY greatest(c.last_synced_at, latest.started_at) NULLS FIRST, c.id
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION rpapos.rpapos_scheduler_due_connections(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rpapos.rpapos_scheduler_due_connections(integer) TO pos_gateway_rpapos;

-- The tenant of a sync run, for the state machine's first task: executions are started with the
-- run's id (their name), and every later task works inside that tenant's context.
CREATE FUNCTION rpapos.rpapos_sync_run_tenant(p_sync_run_id uuid)
    RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT r.tenant_id FROM rpapos.rpapos_sync_run r WHERE r.id = p_sync_run_id
$$;
REVOKE ALL ON FUNCTION rpapos.rpapos_sync_run_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rpapos.rpapos_sync_run_tenant(uuid) TO pos_gateway_rpapos;
