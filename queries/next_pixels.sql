-- next_pixels: the worst pixels of each image comparison that no run traces yet
-- (no run of any bundle at that pixel), worst first, at most :n per comparison.
-- Parameters:
--   :n       how many per comparison
--   :case    case name, exactly (NULL = every case)
--   :stamp   full stamp or a suffix of it (NULL = every stamp)
SELECT w.comparison_id AS comparison_id,
       ic.case_name    AS "case",
       ic.stamp        AS stamp,
       w.rank          AS rank,
       w.slow          AS slow,
       w.fast          AS fast,
       w.ref_text      AS ref,
       w.cand_text     AS cand,
       w.abs_delta     AS abs_delta,
       w.rel_delta     AS rel_delta,
       w.outside       AS outside
FROM image_worst w
JOIN image_comparison ic ON ic.id = w.comparison_id
WHERE NOT EXISTS (SELECT 1 FROM run r JOIN pixel p ON p.id = r.pixel_id
                  WHERE p.slow = w.slow AND p.fast = w.fast)
  AND (CAST(:case AS TEXT) IS NULL OR ic.case_name = CAST(:case AS TEXT))
  AND (CAST(:stamp AS TEXT) IS NULL
       OR ic.stamp LIKE '%' || REPLACE(REPLACE(REPLACE(CAST(:stamp AS TEXT), '\', '\\'), '%', '\%'), '_', '\_') ESCAPE '\')
  AND (SELECT count(*) FROM image_worst w2
       WHERE w2.comparison_id = w.comparison_id AND w2.rank < w.rank
         AND NOT EXISTS (SELECT 1 FROM run r JOIN pixel p ON p.id = r.pixel_id
                         WHERE p.slow = w2.slow AND p.fast = w2.fast)) < CAST(:n AS INTEGER)
ORDER BY ic.case_name, CASE WHEN ic.stamp IS NULL THEN 1 ELSE 0 END, ic.stamp, w.comparison_id, w.rank
