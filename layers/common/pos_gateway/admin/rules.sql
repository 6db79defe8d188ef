-- Reward rule versions of the request's tenant: every query runs under row-level security, so
-- another tenant's versions are simply not there.

-- name: list_rule_versions
-- Newest version first. The cursor names the last row of the previous page by (created_at, id);
-- the page continues below that row's version (a cursor naming no row gives an empty page).
SELECT id, version, is_active, activated_at, effective_from, rule_config, created_by, created_at
  FROM loyalty.reward_rules
 WHERE (%(after_id)s::uuid IS NULL
        OR version < (SELECT prior.version FROM loyalty.reward_rules prior
                       WHERE prior.id = %(after_id)s::uuid AND prior.created_at = %(after_at)s::timestamptz))
 ORDER BY version DESC
 LIMIT %(limit)s;

-- name: insert_rule_version
-- A new version, inactive and never activated; the trigger numbers it.
INSERT INTO loyalty.reward_rules (tenant_id, rule_config, effective_from, created_by, is_active, activated_at)
VALUES (%(tenant_id)s, %(rule_config)s, coalesce(%(effective_from)s::timestamptz, now()), %(created_by)s,
        false, NULL)
RETURNING id, version, is_active, activated_at, effective_from, rule_config, created_by, created_at;

-- name: lock_rule_versions
-- Every version of the tenant, locked in version order: activations of one tenant run one after
-- the other, and each sees the state the previous one committed. "scheduled": not in force yet;
-- "applied": some reward event was credited by it.
SELECT r.id, r.version, r.is_active, r.activated_at, r.effective_from,
       r.effective_from > now() AS scheduled,
       EXISTS (SELECT 1 FROM loyalty.reward_events e WHERE e.rule_version_id = r.id) AS applied
  FROM loyalty.reward_rules r
 WHERE r.tenant_id = %(tenant_id)s
 ORDER BY r.version
   FOR UPDATE OF r;

-- name: unschedule_rule_versions
-- Activated versions that never took effect go back to never-activated drafts.
UPDATE loyalty.reward_rules SET is_active = false, activated_at = NULL
 WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: retire_active_rule_version
UPDATE loyalty.reward_rules SET is_active = false
 WHERE tenant_id = %(tenant_id)s AND is_active;

-- name: activate_rule_version
-- A version activated before keeps its first activation time.
UPDATE loyalty.reward_rules SET is_active = true, activated_at = coalesce(activated_at, now())
 WHERE tenant_id = %(tenant_id)s AND id = %(id)s
RETURNING id, version, is_active, activated_at, effective_from, rule_config, created_by, created_at;
