-- loop_values: the values, at every loop step, of each per-loop tap (a loop key
-- such as phi_tic=3) that diverged somewhere in a comparison of a set, on both
-- sides: what compare.results looks in for a loop shift (the candidate's step k
-- holding the reference's step k-1, or its last step).
-- PostgreSQL: each side's taps are looked up by their run (LATERAL), as SQLite
-- does; its estimate of the diverged looped taps (from tap_result's statistics,
-- 20 times too many on the large benchmark) made it sort every looped tap it holds
-- for a merge join instead (0.68 s -> 0.04 s there).
-- Parameters:
--   set_id   comparison_set.id
WITH looped AS (
  SELECT DISTINCT tr.comparison_id, tr.channel, tr.key_name
  FROM tap_result tr
  WHERE tr.set_id = CAST(:set_id AS INTEGER) AND tr.loop_key <> ''
    AND tr.status = 'diverged'
),
sides AS (
  -- each looped tap once per side, with that side's run id (a join on a CASE of the
  -- two run ids finds no index: PostgreSQL then joined every looped tap it holds)
  SELECT l.comparison_id, 'ref' AS side, c.ref_run_id AS run_id, l.channel, l.key_name
  FROM looped l JOIN comparison c ON c.id = l.comparison_id
  UNION ALL
  SELECT l.comparison_id, 'cand', c.cand_run_id, l.channel, l.key_name
  FROM looped l JOIN comparison c ON c.id = l.comparison_id
)
SELECT s.comparison_id AS comparison_id, s.side AS side, t.channel AS channel,
       t.key_name AS key_name, t.loop_key AS loop_key, t.key_occurrence AS occurrence,
       v.idx AS idx, v.kind AS kind, v.num AS num, v.text AS text
FROM sides s
CROSS JOIN LATERAL (
  SELECT t.channel, t.key_name, t.loop_key, t.key_occurrence, t.run_id, t.key_id
  FROM tap t
  WHERE t.run_id = s.run_id AND t.channel = s.channel AND t.key_name = s.key_name
    AND t.loop_key <> ''
  OFFSET 0
) t
JOIN value v ON v.run_id = t.run_id AND v.key_id = t.key_id
ORDER BY s.comparison_id, s.side, t.channel, t.key_name, t.key_occurrence, t.loop_key,
         v.idx
