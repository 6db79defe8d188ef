-- name: list_audit_logs
-- Newest first, keyset-paginated on (created_at, id), under row-level security: a tenant's
-- context shows that tenant's rows, a platform admin's cross-tenant read every row (tenant-less
-- platform actions included). Time windows are [from, to).
SELECT id, actor_user_id, tenant_id, action, target_entity_type, target_entity_id, before_state,
       after_state, reason, created_at
  FROM audit.admin_audit_logs
 WHERE (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s::uuid)
   AND (%(actor_user_id)s::uuid IS NULL OR actor_user_id = %(actor_user_id)s::uuid)
   AND (%(action)s::text IS NULL OR action = %(action)s::text)
   AND (%(target_type)s::text IS NULL OR target_entity_type = %(target_type)s::text)
   AND (%(target_id)s::text IS NULL OR target_entity_id = %(target_id)s::text)
   AND (%(from_time)s::timestamptz IS NULL OR created_at >= %(from_time)s::timestamptz)
   AND (%(to_time)s::timestamptz IS NULL OR created_at < %(to_time)s::timestamptz)
   AND (%(after_at)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;
