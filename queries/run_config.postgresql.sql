-- run_config, PostgreSQL's spelling of the list of run ids (see run_config.sql).
-- Parameters:
--   runs     JSON [run id, ...]
SELECT r.id AS run_id, p.slow AS slow, p.fast AS fast,
       r.metadata_json AS metadata_json, r.bundle_id AS bundle_id
FROM run r
LEFT JOIN pixel p ON p.id = r.pixel_id
WHERE r.id IN (SELECT CAST(j AS BIGINT) FROM jsonb_array_elements_text(CAST(:runs AS JSONB)) j)
