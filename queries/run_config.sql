-- run_config: what each compared run was asked to do, as recorded: its metadata
-- JSON, its pixel, and its bundle (whose commands.txt bundle_commands reads once per
-- bundle, not once per run), for every comparison of a set (compare.config parses
-- them into options).
-- Parameters:
--   set_id   comparison_set.id
SELECT c.id AS comparison_id, side.role AS role, r.id AS run_id, r.side AS side,
       p.slow AS slow, p.fast AS fast, r.metadata_json AS metadata_json,
       r.bundle_id AS bundle_id, sf.path AS path
FROM comparison c
JOIN (SELECT 'ref' AS role UNION ALL SELECT 'cand') side ON 1 = 1
JOIN run r ON r.id = CASE WHEN side.role = 'ref' THEN c.ref_run_id ELSE c.cand_run_id END
JOIN source_file sf ON sf.id = r.source_file_id
LEFT JOIN pixel p ON p.id = r.pixel_id
WHERE c.set_id = CAST(:set_id AS INTEGER)
ORDER BY c.id, side.role DESC
