-- compare_flag, PostgreSQL's plan: the same rows as compare_flag.sql (which
-- SQLite runs), with the value test written per comparison (LATERAL). Over the
-- mismatch_value_key view PostgreSQL hash-joins the whole value table, one
-- campaign's candidate values at once (about 3x slower at 10 M values); per
-- comparison it joins two runs' few hundred values, found through the primary key.
-- The value test is mismatch_value_key's (tracedb_status_rules.safe_rules, 0009):
-- beyond 1e-150..1e150 only equal numbers plainly match, so nothing over- or
-- underflows, which PostgreSQL would refuse.
-- Parameters:
--   set_id   comparison_set.id
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
    AND (((CASE WHEN (rv.num = 0 OR ABS(rv.num) BETWEEN 1e-150 AND 1e150)
                    AND (cv.num = 0 OR ABS(cv.num) BETWEEN 1e-150 AND 1e150)
                    AND (s.rtol = 0 OR ABS(s.rtol) BETWEEN 1e-150 AND 1e150)
                    AND (s.atol = 0 OR ABS(s.atol) BETWEEN 1e-150 AND 1e150)
                   THEN ABS(rv.num - cv.num) <= s.atol + s.rtol * ABS(rv.num)
                   ELSE rv.num = cv.num END) IS NOT TRUE
          AND (rv.kind = cv.kind AND rv.kind <> 'num'
               AND (rv.kind <> 'text' OR rv.text = cv.text)) IS NOT TRUE)
         -- a label that differs at its position: the full rules pair by label
         OR (rv.label IS NOT NULL AND (rv.label = cv.label) IS NOT TRUE))
) x
WHERE c.set_id = CAST(:set_id AS INTEGER)
ON CONFLICT DO NOTHING
