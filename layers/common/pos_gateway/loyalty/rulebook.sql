-- name: rule_in_force
-- The tenant's rule version that applied at a moment (a late event is credited by the rules of
-- its time).
SELECT id, version, rule_config FROM loyalty.rule_in_force(%(tenant_id)s, %(at)s);

-- name: deactivate_rules
-- Retire the current version (the new one is inserted in the same transaction).
UPDATE loyalty.reward_rules SET is_active = false WHERE tenant_id = %(tenant_id)s AND is_active;

-- name: insert_active_rule
-- A new version, active from now on for transactions from effective_from.
INSERT INTO loyalty.reward_rules (tenant_id, rule_config, effective_from, created_by, is_active, activated_at)
VALUES (%(tenant_id)s, %(rule_config)s, %(effective_from)s, %(created_by)s, true, now())
RETURNING id, version;
