-- name: put_in_progress
-- Claim a key: a new record, or one replacing an expired record or an abandoned in-progress one.
-- Returns no row when a live record holds the key. Inside a transaction, a concurrent claim of
-- the same key waits here until the holder commits (then gets no row) or rolls back (then wins).
INSERT INTO pos.idempotency_keys AS k (
    key, tenant_id, handler, status, expires_at, in_progress_expires_at, payload_hash, response_data)
VALUES (
    %(key)s, %(tenant_id)s, %(handler)s, 'INPROGRESS', %(expires_at)s, %(in_progress_expires_at)s,
    %(payload_hash)s, NULL)
ON CONFLICT (key) DO UPDATE
   SET handler = excluded.handler,
       status = 'INPROGRESS',
       expires_at = excluded.expires_at,
       in_progress_expires_at = excluded.in_progress_expires_at,
       payload_hash = excluded.payload_hash,
       response_data = NULL,
       created_at = now()
 WHERE k.expires_at <= %(now)s
    OR (k.status = 'INPROGRESS' AND k.in_progress_expires_at < %(now)s)
RETURNING k.key;

-- name: get_record
SELECT key, status, expires_at, in_progress_expires_at, payload_hash, response_data
  FROM pos.idempotency_keys
 WHERE key = %(key)s;

-- name: complete_record
-- The outcome of the work, served to every replay until the record expires.
INSERT INTO pos.idempotency_keys AS k (
    key, tenant_id, handler, status, expires_at, in_progress_expires_at, payload_hash, response_data)
VALUES (
    %(key)s, %(tenant_id)s, %(handler)s, 'COMPLETED', %(expires_at)s, NULL, %(payload_hash)s,
    %(response_data)s)
ON CONFLICT (key) DO UPDATE
   SET status = 'COMPLETED',
       expires_at = excluded.expires_at,
       in_progress_expires_at = NULL,
       payload_hash = excluded.payload_hash,
       response_data = excluded.response_data;

-- name: delete_record
DELETE FROM pos.idempotency_keys WHERE key = %(key)s;

-- name: delete_expired
-- One batch of expired keys, across tenants (see the SECURITY DEFINER function).
SELECT pos.delete_expired_idempotency_keys(%(limit)s) AS deleted;
