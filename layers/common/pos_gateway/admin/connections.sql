-- POS connections of the request's tenant: every query runs under row-level security, so another
-- tenant's connection is simply not found. The sealed tokens are never selected for an answer.

-- name: get_connection
SELECT id, pos_type, merchant_account_id, status,
       (status = 'token_expired' OR coalesce(token_expires_at <= now(), false)) AS token_expired,
       token_expires_at,
       greatest(last_synced_at, square_polled_at) AS last_synced_at,
       last_error, created_at, updated_at, deleted_at AS disconnected_at
  FROM pos.pos_connections
 WHERE id = %(connection_id)s;

-- name: list_connections
-- Newest first, keyset-paginated on (created_at, id).
SELECT id, pos_type, merchant_account_id, status,
       (status = 'token_expired' OR coalesce(token_expires_at <= now(), false)) AS token_expired,
       token_expires_at,
       greatest(last_synced_at, square_polled_at) AS last_synced_at,
       last_error, created_at, updated_at, deleted_at AS disconnected_at
  FROM pos.pos_connections
 WHERE (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: insert_connection
INSERT INTO pos.pos_connections (id, tenant_id, pos_type, merchant_account_id, access_token_enc,
                                 refresh_token_enc, status, token_expires_at)
VALUES (%(id)s, %(tenant_id)s, %(pos_type)s, %(merchant_account_id)s, %(access_token_enc)s,
        %(refresh_token_enc)s, 'active', %(token_expires_at)s);

-- name: lock_connection
SELECT id, pos_type, merchant_account_id, status, token_expires_at, deleted_at
  FROM pos.pos_connections
 WHERE id = %(connection_id)s
   FOR UPDATE;

-- name: replace_credentials
UPDATE pos.pos_connections
   SET access_token_enc = %(access_token_enc)s, refresh_token_enc = %(refresh_token_enc)s,
       token_expires_at = %(token_expires_at)s, status = 'active', last_error = NULL
 WHERE id = %(connection_id)s AND deleted_at IS NULL;

-- name: disconnect
-- The sealed tokens are wiped: a disconnected row is never used again (reconnecting the merchant
-- creates a new row, whose id the new envelopes are bound to).
UPDATE pos.pos_connections
   SET status = 'disconnected', deleted_at = now(), access_token_enc = '', refresh_token_enc = ''
 WHERE id = %(connection_id)s AND deleted_at IS NULL;
