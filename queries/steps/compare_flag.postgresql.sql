-- compare_flag, PostgreSQL's plan: the same rows as compare_flag.sql (which
-- SQLite runs). The tap pairs are compare.engine's list (:pairs, from the digest
-- lists of two runs of one shape) and, per other comparison (:others, LATERAL),
-- the two runs' few hundred taps joined from the index on (run, key, length,
-- digest), less the pairs whose digests settle them (see compare_flag.sql: equal
-- digests plainly match under an rtol of 2^-40 or more, rtol and atol within
-- 1e-150..1e150: :digests). Each pair's values are then read through the primary
-- key (over the mismatch_value_key view PostgreSQL hash-joins the whole value
-- table, one campaign's candidate values at once).
-- The value test is mismatch_value_key's (tracedb_status_rules.safe_rules, 0009):
-- beyond 1e-150..1e150 only equal numbers plainly match, so nothing over- or
-- underflows, which PostgreSQL would refuse.
-- Parameters:
--   set_id   comparison_set.id
--   digests  1 when the set's tolerance lets equal digests settle a pair
--            (store.layout.digests_settle), else 0
--   pairs    JSON [[comparison id, key id], ...]: tap pairs to test (compare.engine,
--            from the digest lists of two runs of one shape, run.tap_digests)
--   others   JSON [comparison id, ...]: comparisons whose tap pairs are found here
INSERT INTO tap_flag (set_id, comparison_id, key_id)
SELECT c.set_id, c.id, t.key_id
FROM (
  SELECT CAST(p ->> 0 AS BIGINT) AS comparison_id, CAST(p ->> 1 AS BIGINT) AS key_id
  FROM jsonb_array_elements(CAST(:pairs AS JSONB)) p
  UNION ALL
  SELECT c.id, t.key_id
  FROM comparison c
  CROSS JOIN LATERAL (
    -- this comparison's tap pairs whose digests do not settle it
    SELECT r.key_id
    FROM tap r
    LEFT JOIN tap k ON k.run_id = c.cand_run_id AND k.key_id = r.key_id
    WHERE r.run_id = c.ref_run_id
      AND {digest_settles} IS NOT TRUE
  ) t
  WHERE c.set_id = CAST(:set_id AS INTEGER)
    AND c.id IN (SELECT CAST(o AS BIGINT)
                 FROM jsonb_array_elements_text(CAST(:others AS JSONB)) o)
) t
JOIN comparison c ON c.id = t.comparison_id
JOIN comparison_set s ON s.id = c.set_id
WHERE c.set_id = CAST(:set_id AS INTEGER)
  AND EXISTS (
  -- mismatch_value_key of that tap pair: its values, found through the primary key
  SELECT 1
  FROM value rv
  LEFT JOIN value cv ON cv.run_id = c.cand_run_id AND cv.key_id = t.key_id
                    AND cv.idx = rv.idx
  WHERE rv.run_id = c.ref_run_id AND rv.key_id = t.key_id
    AND (((CASE WHEN (rv.num = 0 OR ABS(rv.num) BETWEEN 1e-150 AND 1e150)
                    AND (cv.num = 0 OR ABS(cv.num) BETWEEN 1e-150 AND 1e150)
                    AND (s.rtol = 0 OR ABS(s.rtol) BETWEEN 1e-150 AND 1e150)
                    AND (s.atol = 0 OR ABS(s.atol) BETWEEN 1e-150 AND 1e150)
                   THEN ABS(rv.num - cv.num) <= s.atol + s.rtol * ABS(rv.num)
                   ELSE rv.num = cv.num END) IS NOT TRUE
          AND (rv.kind = cv.kind AND rv.kind <> 'num'
               AND (rv.kind <> 'text' OR rv.text = cv.text)) IS NOT TRUE)
         -- a label that differs at its position: the full rules pair by label
         OR (rv.label IS NOT NULL AND (rv.label = cv.label) IS NOT TRUE)))
ON CONFLICT DO NOTHING
