-- image_worst: the worst pixels of image comparisons (worst first: a NaN or
-- infinity on one side only, then the largest |cand - ref|), each with the traced
-- runs at that pixel (any bundle).
-- Parameters (NULL = every comparison):
--   :comparison_id   image_comparison.id
SELECT w.comparison_id AS comparison_id,
       ic.case_name    AS "case",
       ic.stamp        AS stamp,
       w.rank          AS rank,
       w.slow          AS slow,
       w.fast          AS fast,
       w.ref           AS ref,
       w.cand          AS cand,
       w.ref_text      AS ref_text,
       w.cand_text     AS cand_text,
       w.abs_delta     AS abs_delta,
       w.rel_delta     AS rel_delta,
       w.outside       AS outside,
       (SELECT count(*) FROM run r JOIN pixel p ON p.id = r.pixel_id
        WHERE p.slow = w.slow AND p.fast = w.fast) AS traced_runs
FROM image_worst w
JOIN image_comparison ic ON ic.id = w.comparison_id
WHERE CAST(:comparison_id AS INTEGER) IS NULL OR w.comparison_id = CAST(:comparison_id AS INTEGER)
ORDER BY w.comparison_id, w.rank
