-- The rule version in force at a moment, defined once for every query that needs it: the
-- activated version with the latest effective_from not after the moment. SECURITY INVOKER, so
-- row-level security and the caller's grants apply.

CREATE FUNCTION loyalty.rule_in_force(p_tenant_id uuid, p_at timestamptz)
    RETURNS SETOF loyalty.reward_rules
    LANGUAGE sql STABLE
    AS $$
    SELECT * FROM loyalty.reward_rules
     WHERE tenant_id = p_tenant_id AND activated_at IS NOT NULL AND effective_from <= p_at
     ORDER BY effective_from DESC, version DESC
     LIMIT 1
$$;
