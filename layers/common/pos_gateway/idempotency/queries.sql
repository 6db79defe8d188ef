-- name: claim
-- Inside the caller's transaction: lock the key until that transaction ends and read its record
-- (no row when there is none). Nothing is written: the completion writes the record once. A
-- concurrent claim of the same key waits here until the holder commits (then reads its record)
-- or rolls back (then claims it).
SELECT status, expires_at, in_progress_expires_at, payload_hash, response_data
  FROM pos.claim_idempotency_key(%(key)s, %(tenant_id)s);

-- name: put_in_progress
-- Record by record: claim a key with an INPROGRESS record of its own, or by replacing an expired
-- record or an abandoned in-progress one. Returns no row when a live record holds the key. Takes
-- the claim's lock first, so it never claims a key a caller's transaction holds.
WITH locked AS (SELECT count(*) FROM pos.claim_idempotency_key(%(key)s, %(tenant_id)s))
INSERT INTO pos.idempotency_keys AS k (
    key, tenant_id, handler, status, expires_at, in_progress_expires_at, payload_hash, response_data)
SELECT %(key)s::text, %(tenant_id)s::uuid, %(handler)s::text, 'INPROGRESS', %(expires_at)s::timestamptz,
       %(in_progress_expires_at)s::timestamptz, %(payload_hash)s::text, NULL
  FROM locked
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
-- The outcome of the work, served to every replay until the record expires. Inside the caller's
-- transaction this is the key's only write (under the claim's lock).
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

-- name: read_provider_key
-- Crediting's claim: the key's record, read in the crediting transaction. No lock is taken here:
-- that transaction already holds the provider transaction's (or refund's) unique row, which
-- every other delivery of the key waits on, and the crediting role may not take the claim's lock.
SELECT status, expires_at, in_progress_expires_at, payload_hash, response_data
  FROM pos.idempotency_keys
 WHERE key = %(key)s;

-- name: complete_provider_key
-- Crediting's completion: the key's one write, with the outcome as JSON text (response_data,
-- what Powertools replays) and as jsonb (result_snapshot). A record already there (written by an
-- earlier release without an answer, or expired and not yet deleted) is left as it is: the
-- crediting role inserts keys and never updates them.
INSERT INTO pos.idempotency_keys (
    key, tenant_id, handler, status, expires_at, in_progress_expires_at, payload_hash, response_data,
    result_snapshot)
VALUES (
    %(key)s, %(tenant_id)s, %(handler)s, 'COMPLETED', %(expires_at)s, NULL, %(payload_hash)s,
    %(response_data)s::text, %(response_data)s::text::jsonb)
ON CONFLICT (key) DO NOTHING;
