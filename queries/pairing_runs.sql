-- pairing_runs: what choosing runs to compare needs of every run (the lean
-- sibling of `runs`): side, stamp, pixel, trace file path and its version.
-- Parameters: none
SELECT r.id AS id, r.side AS side, r.stamp AS stamp, p.slow AS pixel_slow,
       p.fast AS pixel_fast, sf.path AS path, sf.version AS file_version
FROM run r
JOIN source_file sf ON sf.id = r.source_file_id
LEFT JOIN pixel p ON p.id = r.pixel_id
ORDER BY r.id
