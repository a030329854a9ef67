-- run_config: what each of a list of runs was asked to do, as recorded: its metadata
-- JSON, its pixel, and its bundle (whose commands.txt bundle_commands reads once per
-- bundle, not once per run); compare.config parses them into options. By run, not
-- by comparison set, so it can be read while a set is being compared.
-- Parameters:
--   runs     JSON [run id, ...]
SELECT r.id AS run_id, p.slow AS slow, p.fast AS fast,
       r.metadata_json AS metadata_json, r.bundle_id AS bundle_id
FROM run r
LEFT JOIN pixel p ON p.id = r.pixel_id
WHERE r.id IN (SELECT CAST(j.value AS INTEGER) FROM json_each(:runs) j)
