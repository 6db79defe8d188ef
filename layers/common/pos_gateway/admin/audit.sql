-- name: insert_audit_log
INSERT INTO audit.admin_audit_logs (actor_user_id, tenant_id, action, target_entity_type, target_entity_id,
                                    before_state, after_state, reason)
VALUES (%(actor_user_id)s, %(tenant_id)s, %(action)s, %(target_entity_type)s, %(target_entity_id)s,
        %(before_state)s, %(after_state)s, %(reason)s)
RETURNING id;
