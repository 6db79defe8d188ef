-- The RPApos sync state machine's tasks (role pos_gateway_rpapos), beside the engine's statements.

-- name: run_tenant
-- Executions are started with the run's id; its tenant comes from the run itself (SECURITY
-- DEFINER function of 0024: row-level security hides the run before the tenant is known).
SELECT rpapos.rpapos_sync_run_tenant(%(sync_run_id)s) AS tenant_id;
