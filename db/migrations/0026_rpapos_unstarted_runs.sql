-- Runs that never started. An operator's run is created, committed, then its execution started;
-- if the function dies in between, the run stays 'running' with no execution and blocks its
-- connection. Every execution's first task records its ARN on the run (execution_arn), so a
-- running run without one, well past the grace period, never started: the scheduler ends it
-- failed. Across tenants, so a SECURITY DEFINER function returning ids only, like 0024's.

CREATE FUNCTION rpapos.rpapos_unstarted_runs(p_grace_seconds integer, p_limit integer)
    RETURNS TABLE (sync_run_id uuid, tenant_id uuid)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF p_grace_seconds IS NULL OR p_grace_seconds < 60 OR p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'invalid grace % or limit %', p_grace_seconds, p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT r.id, r.tenant_id
      FROM rpapos.rpapos_sync_run r
     WHERE r.status = 'running' AND r.execution_arn IS NULL
       AND r.started_at <= now() - make_interval(secs => p_grace_seconds)
     ORDER BY r.started_at, r.id
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION rpapos.rpapos_unstarted_runs(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rpapos.rpapos_unstarted_runs(integer, integer) TO pos_gateway_rpapos;

CREATE INDEX rpapos_sync_run_unstarted_idx ON rpapos.rpapos_sync_run (started_at)
    WHERE status = 'running' AND execution_arn IS NULL;
