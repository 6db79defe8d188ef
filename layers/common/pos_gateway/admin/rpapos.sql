-- RPApos connections of the request's tenant (row-level security: another tenant's connection is
-- simply not found). Answers never select a sealed column; only the device registration reads
-- them (lock_connection), to open the credentials it sends to RPApos.

-- name: get_connection
SELECT id, subdomain, usuario, timezone, currency_code, status, sync_interval_minutes,
       tipo_gestion_map, sat_usuario, estacion_trabajo, localizacion_id, conexion_db,
       conexion_mainframe,
       true AS has_password,
       api_key_encrypted <> '' AS has_api_key,
       sat_password_encrypted IS NOT NULL AS has_sat_password,
       soap_token_encrypted IS NOT NULL AS has_soap_token,
       last_synced_at, last_full_sync_at, last_error, created_by, created_at, updated_at, deleted_at
  FROM rpapos.rpapos_connection
 WHERE id = %(connection_id)s;

-- name: list_connections
-- Newest first, keyset-paginated on (created_at, id); soft-deleted ones only when asked for.
SELECT id, subdomain, usuario, timezone, currency_code, status, sync_interval_minutes,
       tipo_gestion_map, sat_usuario, estacion_trabajo, localizacion_id, conexion_db,
       conexion_mainframe,
       true AS has_password,
       api_key_encrypted <> '' AS has_api_key,
       sat_password_encrypted IS NOT NULL AS has_sat_password,
       soap_token_encrypted IS NOT NULL AS has_soap_token,
       last_synced_at, last_full_sync_at, last_error, created_by, created_at, updated_at, deleted_at
  FROM rpapos.rpapos_connection
 WHERE (%(include_deleted)s::boolean OR deleted_at IS NULL)
   AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: lock_connection
-- The row as it is before a change, sealed credentials included (never answered).
SELECT id, subdomain, usuario, timezone, currency_code, status, sync_interval_minutes,
       tipo_gestion_map, sat_usuario, estacion_trabajo, localizacion_id, conexion_db,
       conexion_mainframe, password_encrypted, api_key_encrypted, sat_password_encrypted,
       soap_token_encrypted, deleted_at
  FROM rpapos.rpapos_connection
 WHERE id = %(connection_id)s
   FOR UPDATE;

-- name: connection_credentials
-- What Cuenta_Validar_1 needs (a read: it may run on the replica).
SELECT id, subdomain, usuario, sat_usuario, password_encrypted, sat_password_encrypted, deleted_at
  FROM rpapos.rpapos_connection
 WHERE id = %(connection_id)s;

-- name: lock_connection_by_subdomain
SELECT id, deleted_at
  FROM rpapos.rpapos_connection
 WHERE subdomain = %(subdomain)s
   FOR UPDATE;

-- name: insert_connection
INSERT INTO rpapos.rpapos_connection (id, tenant_id, subdomain, usuario, password_encrypted,
                                      api_key_encrypted, timezone, currency_code, status,
                                      sync_interval_minutes, tipo_gestion_map, sat_usuario,
                                      sat_password_encrypted, estacion_trabajo, created_by)
VALUES (%(id)s, %(tenant_id)s, %(subdomain)s, %(usuario)s, %(password_encrypted)s,
        %(api_key_encrypted)s, %(timezone)s, %(currency_code)s, 'active',
        %(sync_interval_minutes)s, %(tipo_gestion_map)s, %(sat_usuario)s,
        %(sat_password_encrypted)s, %(estacion_trabajo)s, %(created_by)s);

-- name: revive_connection
-- A soft-deleted connection of the same subdomain comes back with the new settings (its id map and
-- runs stay attached); the device must be registered again.
UPDATE rpapos.rpapos_connection
   SET usuario = %(usuario)s, password_encrypted = %(password_encrypted)s,
       api_key_encrypted = %(api_key_encrypted)s, timezone = %(timezone)s,
       currency_code = %(currency_code)s, status = 'active',
       sync_interval_minutes = %(sync_interval_minutes)s, tipo_gestion_map = %(tipo_gestion_map)s,
       sat_usuario = %(sat_usuario)s, sat_password_encrypted = %(sat_password_encrypted)s,
       estacion_trabajo = %(estacion_trabajo)s, soap_token_encrypted = NULL,
       localizacion_id = NULL, conexion_db = NULL, conexion_mainframe = NULL, last_error = NULL,
       deleted_at = NULL
 WHERE id = %(id)s AND deleted_at IS NOT NULL;

-- name: update_connection
-- Each column changes only when its set_ flag is true (a NULL value clears a nullable column).
-- A change of credentials puts a connection that a sync marked in error back in service.
UPDATE rpapos.rpapos_connection
   SET usuario = CASE WHEN %(set_usuario)s::boolean THEN %(usuario)s::text ELSE usuario END,
       password_encrypted = CASE WHEN %(set_password)s::boolean
                                 THEN %(password_encrypted)s::text ELSE password_encrypted END,
       api_key_encrypted = CASE WHEN %(set_api_key)s::boolean
                                THEN %(api_key_encrypted)s::text ELSE api_key_encrypted END,
       timezone = CASE WHEN %(set_timezone)s::boolean THEN %(timezone)s::text ELSE timezone END,
       currency_code = CASE WHEN %(set_currency_code)s::boolean
                            THEN %(currency_code)s::text ELSE currency_code END,
       sync_interval_minutes = CASE WHEN %(set_sync_interval_minutes)s::boolean
                                    THEN %(sync_interval_minutes)s::integer
                                    ELSE sync_interval_minutes END,
       tipo_gestion_map = CASE WHEN %(set_tipo_gestion_map)s::boolean
                               THEN %(tipo_gestion_map)s::jsonb ELSE tipo_gestion_map END,
       sat_usuario = CASE WHEN %(set_sat_usuario)s::boolean THEN %(sat_usuario)s::text ELSE sat_usuario END,
       sat_password_encrypted = CASE WHEN %(set_sat_password)s::boolean
                                     THEN %(sat_password_encrypted)s::text
                                     ELSE sat_password_encrypted END,
       estacion_trabajo = CASE WHEN %(set_estacion_trabajo)s::boolean
                               THEN %(estacion_trabajo)s::smallint ELSE estacion_trabajo END,
       status = CASE WHEN %(credentials_changed)s::boolean AND status = 'error' THEN 'active' ELSE status END,
       last_error = CASE WHEN %(credentials_changed)s::boolean THEN NULL ELSE last_error END
 WHERE id = %(connection_id)s AND deleted_at IS NULL;

-- name: delete_connection
-- Soft delete: the device token, API key and SAT password are wiped (nothing may use them any
-- more); the password stays sealed (the column is NOT NULL) until the subdomain is connected again.
UPDATE rpapos.rpapos_connection
   SET status = 'disconnected', deleted_at = now(), soap_token_encrypted = NULL,
       api_key_encrypted = '', sat_password_encrypted = NULL
 WHERE id = %(connection_id)s AND deleted_at IS NULL;

-- name: active_run
SELECT id, status
  FROM rpapos.rpapos_sync_run
 WHERE connection_id = %(connection_id)s AND status IN ('running', 'paused')
 LIMIT 1;

-- name: store_device
UPDATE rpapos.rpapos_connection
   SET soap_token_encrypted = %(soap_token_encrypted)s, localizacion_id = %(localizacion_id)s,
       conexion_db = %(conexion_db)s, conexion_mainframe = %(conexion_mainframe)s
 WHERE id = %(connection_id)s AND deleted_at IS NULL;
