-- compare_flag_shapes: the second half of compare_flag: the candidate taps without a
-- reference tap of their key and length (mismatch_tap_key), into tap_flag. They
-- depend only on the two runs' shapes (run.shape_sig: their keys and lengths), so
-- they are worked out once per pair of shapes and shared by every comparison of
-- that pair (a missing run, NULL in the comparison, has the empty shape ''). A key
-- flagged twice is stored once.
-- Parameters:
--   set_id   comparison_set.id
WITH firsts AS (
  -- the first comparison of each pair of run shapes
  SELECT COALESCE(rr.shape_sig, '') AS ref_shape, COALESCE(cr.shape_sig, '') AS cand_shape,
         MIN(c.id) AS first_id
  FROM comparison c
  LEFT JOIN run rr ON rr.id = c.ref_run_id
  LEFT JOIN run cr ON cr.id = c.cand_run_id
  WHERE c.set_id = CAST(:set_id AS INTEGER)
  GROUP BY COALESCE(rr.shape_sig, ''), COALESCE(cr.shape_sig, '')
),
shared AS MATERIALIZED (
  -- its candidate taps without a reference tap of the same key and length
  SELECT f.ref_shape, f.cand_shape, t.key_id
  FROM firsts f
  JOIN mismatch_tap_key t ON t.comparison_id = f.first_id
)
INSERT INTO tap_flag (set_id, comparison_id, key_id)
SELECT c.set_id, c.id, sh.key_id
FROM comparison c
LEFT JOIN run rr ON rr.id = c.ref_run_id
LEFT JOIN run cr ON cr.id = c.cand_run_id
JOIN shared sh ON sh.ref_shape = COALESCE(rr.shape_sig, '')
              AND sh.cand_shape = COALESCE(cr.shape_sig, '')
WHERE c.set_id = CAST(:set_id AS INTEGER)
ON CONFLICT DO NOTHING
