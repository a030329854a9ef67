-- provenance: every source file behind the runs of a comparison set, with its
-- checksum, stamp, side, pixel, the bundle's env metadata and the command that
-- loaded it.
-- Parameters:
--   set_id   comparison_set.id
SELECT DISTINCT r.id AS run_id, sf.path AS path, sf.sha256 AS sha256, sf.version AS version,
       r.stamp AS stamp, r.path_stamp AS path_stamp, r.meta_stamp AS meta_stamp,
       r.side AS side, p.slow AS slow, p.fast AS fast,
       b.path AS bundle_path, b.env_json AS env_json, b.env_files AS env_files,
       sf.command_id AS command_id, sf.loaded_at AS loaded_at,
       CASE WHEN r.id IN (SELECT ref_run_id FROM comparison
                          WHERE set_id = CAST(:set_id AS INTEGER))
            THEN 'ref' ELSE 'cand' END AS role
FROM comparison c
JOIN run r ON r.id = c.ref_run_id OR r.id = c.cand_run_id
JOIN source_file sf ON sf.id = r.source_file_id
JOIN bundle b ON b.id = r.bundle_id
LEFT JOIN pixel p ON p.id = r.pixel_id
WHERE c.set_id = CAST(:set_id AS INTEGER)
ORDER BY sf.path, r.id
