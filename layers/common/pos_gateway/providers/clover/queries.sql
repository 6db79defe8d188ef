-- name: clover_connection
-- The merchant's Clover connection in the current tenant: its id (the token's associated
-- data), status and sealed access token.
SELECT id, status, access_token_enc
  FROM pos.pos_connections
 WHERE pos_type = 'clover' AND merchant_account_id = %(merchant_account_id)s AND deleted_at IS NULL;

-- name: mark_token_expired
-- Clover refused the connection's token; a disconnected connection stays disconnected.
UPDATE pos.pos_connections
   SET status = 'token_expired', last_error = %(last_error)s
 WHERE id = %(connection_id)s AND deleted_at IS NULL AND status <> 'disconnected'
RETURNING id;
