-- Immutable admin audit trail (seed 001).

CREATE TABLE audit.admin_audit_logs (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    actor_user_id      uuid NOT NULL REFERENCES identity.users (id),
    -- The tenant the action touched; NULL for platform-wide actions.
    tenant_id          uuid REFERENCES identity.tenants (id),
    action             text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_entity_id   text,
    target_entity_type text,
    before_state       jsonb,
    after_state        jsonb,
    reason             text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_logs_actor_idx ON audit.admin_audit_logs (actor_user_id, created_at);
CREATE INDEX admin_audit_logs_target_idx
    ON audit.admin_audit_logs (target_entity_type, target_entity_id, created_at);
CREATE INDEX admin_audit_logs_tenant_idx ON audit.admin_audit_logs (tenant_id, created_at);
CREATE INDEX admin_audit_logs_time_idx ON audit.admin_audit_logs (created_at);

CREATE TRIGGER admin_audit_logs_append_only BEFORE UPDATE OR DELETE ON audit.admin_audit_logs
    FOR EACH ROW EXECUTE FUNCTION app.forbid_mutation();
CREATE TRIGGER admin_audit_logs_no_truncate BEFORE TRUNCATE ON audit.admin_audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION app.forbid_mutation();
