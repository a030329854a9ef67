-- compare_flag, PostgreSQL's plan: the same rows as compare_flag.sql (which
-- SQLite runs), with the value test written per comparison (LATERAL). Over the
-- mismatch_value_key view PostgreSQL hash-joins the whole value table, one
-- campaign's candidate values at once (about 3x slower at 10 M values); per
-- comparison it joins two runs' few hundred values, found through the primary key.
-- compare_flag: the pairing keys of each comparison of a set that need the full
-- status rules, into tap_flag; every other tap of the comparison matches. The
-- same keys as the mismatch_key view: mismatch_value_key (a component outside
-- atol + rtol*|ref|, or missing in the candidate) and mismatch_tap_key (a
-- candidate tap without a reference tap of its key and length). The second
-- depends only on the two runs' shapes (run.shape_sig: their keys and lengths),
-- so it is worked out once per pair of shapes and shared. A key flagged twice is
-- stored once.
-- Parameters:
--   set_id   comparison_set.id
WITH firsts AS (
  -- the first comparison of each pair of run shapes
  SELECT rr.shape_sig AS ref_shape, cr.shape_sig AS cand_shape, MIN(c.id) AS first_id
  FROM comparison c
  JOIN run rr ON rr.id = c.ref_run_id
  JOIN run cr ON cr.id = c.cand_run_id
  WHERE c.set_id = CAST(:set_id AS INTEGER)
  GROUP BY rr.shape_sig, cr.shape_sig
),
shared AS MATERIALIZED (
  -- its candidate taps without a reference tap of the same key and length
  SELECT f.ref_shape, f.cand_shape, t.key_id
  FROM firsts f
  JOIN mismatch_tap_key t ON t.comparison_id = f.first_id
)
INSERT INTO tap_flag (set_id, comparison_id, key_id)
SELECT c.set_id, c.id, x.key_id
FROM comparison c
JOIN comparison_set s ON s.id = c.set_id
CROSS JOIN LATERAL (
  -- mismatch_value_key of this one comparison: two runs' values, a small join
  SELECT rv.key_id
  FROM value rv
  LEFT JOIN value cv ON cv.run_id = c.cand_run_id AND cv.key_id = rv.key_id
                    AND cv.idx = rv.idx
  WHERE rv.run_id = c.ref_run_id
    AND (ABS(rv.num - cv.num) <= s.atol + s.rtol * ABS(rv.num)) IS NOT TRUE
    AND (rv.kind = cv.kind AND rv.kind <> 'num'
         AND (rv.kind <> 'text' OR rv.text = cv.text)) IS NOT TRUE
) x
WHERE c.set_id = CAST(:set_id AS INTEGER)
UNION ALL
SELECT c.set_id, c.id, sh.key_id
FROM comparison c
JOIN run rr ON rr.id = c.ref_run_id
JOIN run cr ON cr.id = c.cand_run_id
JOIN shared sh ON sh.ref_shape = rr.shape_sig AND sh.cand_shape = cr.shape_sig
WHERE c.set_id = CAST(:set_id AS INTEGER)
ON CONFLICT DO NOTHING
