-- runs: every loaded run (one side of one trace capture for one pixel).
-- Parameters (NULL = no filter):
--   :side    'c', 'py', or 'unknown' for runs whose side nothing names
--   :stamp   full stamp or a suffix of it, e.g. 064547Z
--   :slow, :fast   pixel
--   :path    substring of the trace file's path
-- Matching is case-sensitive and literal (%, _ and \ match themselves).
--   :run_id  one run
SELECT r.id                AS id,
       r.side              AS side,
       r.stamp             AS stamp,
       p.slow              AS pixel_slow,
       p.fast              AS pixel_fast,
       sf.path             AS path,
       r.tap_count         AS taps,
       r.segment           AS segment,
       r.first_line        AS first_line,
       r.last_line         AS last_line,
       r.path_stamp        AS path_stamp,
       r.meta_stamp        AS meta_stamp,
       r.pixel_source      AS pixel_source,
       sf.version          AS file_version,
       sf.sha256           AS sha256,
       b.id                AS bundle_id,
       b.path              AS bundle_path,
       b.initiative        AS initiative,
       b.phase             AS phase
FROM run r
JOIN source_file sf ON sf.id = r.source_file_id
JOIN bundle b ON b.id = r.bundle_id
LEFT JOIN pixel p ON p.id = r.pixel_id
WHERE (CAST(:side AS TEXT) IS NULL OR r.side = CAST(:side AS TEXT)
       OR (CAST(:side AS TEXT) = 'unknown' AND r.side IS NULL))
  AND (CAST(:stamp AS TEXT) IS NULL
       OR r.stamp LIKE '%' || REPLACE(REPLACE(REPLACE(CAST(:stamp AS TEXT), '\', '\\'), '%', '\%'), '_', '\_') ESCAPE '\')
  AND (CAST(:slow AS INTEGER) IS NULL OR p.slow = CAST(:slow AS INTEGER))
  AND (CAST(:fast AS INTEGER) IS NULL OR p.fast = CAST(:fast AS INTEGER))
  AND (CAST(:path AS TEXT) IS NULL
       OR sf.path LIKE '%' || REPLACE(REPLACE(REPLACE(CAST(:path AS TEXT), '\', '\\'), '%', '\%'), '_', '\_') || '%' ESCAPE '\')
  AND (CAST(:run_id AS INTEGER) IS NULL OR r.id = CAST(:run_id AS INTEGER))
ORDER BY r.stamp, sf.path, r.segment, r.id
