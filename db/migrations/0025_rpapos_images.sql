-- Product images in RPApos sync runs (seed 000: "Product image import -> updates product.image_url
-- for rows matched via rpapos_id_map (entity_type = plu)").
--
-- A run started with include_images imports, after every planned entity, the images of the
-- tenant's loaded PLUs (pos_gateway.rpapos.sync): each image goes to object storage, the PLU's
-- product.image_url becomes its key, and the run's catalog.import_job (import_type
-- 'product-image', options.syncRunId = the run) gets one import_row per PLU. The tables, and the
-- sync role's privileges on catalog, are 0021's; the stats go under the synthetic key
-- product_images of per_entity_stats (0020). Only the run's flag is new.

ALTER TABLE rpapos.rpapos_sync_run
    ADD COLUMN include_images boolean NOT NULL DEFAULT false;

-- Runs are inserted by operators (the admin API) and by the scheduler (the sync role); neither
-- changes the flag afterwards.
GRANT INSERT (include_images) ON rpapos.rpapos_sync_run TO pos_gateway_admin, pos_gateway_rpapos;
