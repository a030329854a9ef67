-- tap_roles: the diverged taps of a comparison set (print_precision ones too when
-- strict) with their place in a dependency graph (tap_edge): one row per diverged
-- tap and each of its declared inputs that diverged in the same comparison (NULL
-- input when none did). An input at the same loop step, or a static input (no loop
-- key), counts for a per-loop tap. in_graph: the tap is in an edge of the graph.
-- ratio: the tap's ref/cand when every diverged component has that one ratio;
-- input_factor: the input's ratio when it has a unit hint (a unit factor), which
-- compare.causes.roles uses to tell a unit slip that propagates from one that
-- stays where it was printed. traced_consequences counts the taps the graph
-- computes from this one that the comparison's reference run traced,
-- diverged_consequences those of them that diverged. unit_factor: the tap has a
-- unit hint (suspect: the side it puts off, 'ref' or 'cand'); n_traced: the set's
-- comparisons whose reference run traced the tap (key_id: its pairing key, by which
-- compare.causes counts those where it diverged with the same values on each side);
-- ref_kind: the kind of its first reference component ('text' for a setting such as
-- a convention written as a word).
-- Parameters:
--   set_id   comparison_set.id
--   strict   1: print_precision counts as diverged
--   graph    tap_edge.graph (the default graph is 'nanoBragg')
WITH diverged AS MATERIALIZED (
  SELECT tr.comparison_id, tr.key_name, tr.loop_key, tr.occurrence, tr.channel,
         tr.ref_seq, tr.cand_seq, tr.ref_line, tr.cand_line, tr.hint_ref_unit,
         tr.status, tr.ref_value, tr.cand_value, tr.suspect, rt.key_id, c.ref_run_id,
         (SELECT v.kind FROM value v WHERE v.run_id = rt.run_id AND v.key_id = rt.key_id
          AND v.idx = 0) AS ref_kind,
         CASE WHEN tr.n_ratio > 0 AND tr.n_ratio = tr.n_diverged
                   AND ABS(tr.max_ratio - tr.min_ratio) <= 1e-6 * ABS(tr.min_ratio)
              THEN tr.min_ratio END AS ratio
  FROM tap_result tr
  JOIN comparison c ON c.id = tr.comparison_id
  JOIN tap rt ON rt.id = tr.ref_tap_id
  WHERE tr.set_id = CAST(:set_id AS INTEGER)
    AND (tr.status = 'diverged'
         OR (CAST(:strict AS INTEGER) = 1 AND tr.status = 'print_precision'))
),
edge AS MATERIALIZED (
  SELECT target, source FROM tap_edge WHERE graph = CAST(:graph AS TEXT)
),
named AS (
  SELECT target AS name FROM edge UNION SELECT source FROM edge
),
ref_shapes AS (
  -- the set's reference runs by shape (run.shape_sig: their keys and lengths), with
  -- how many comparisons each shape's runs are the reference of: runs of one shape
  -- trace the same keys, so one run of each answers for all (a run without a
  -- shape answers for itself; grouped by the column, whose statistics PostgreSQL
  -- has, it probes a few runs' taps instead of hashing every tap)
  SELECT MIN(rr.id) AS run_id, count(*) AS n
  FROM comparison c
  JOIN run rr ON rr.id = c.ref_run_id
  WHERE c.set_id = CAST(:set_id AS INTEGER) AND rr.shape_sig IS NOT NULL
  GROUP BY rr.shape_sig
  UNION ALL
  SELECT rr.id, count(*)
  FROM comparison c
  JOIN run rr ON rr.id = c.ref_run_id
  WHERE c.set_id = CAST(:set_id AS INTEGER) AND rr.shape_sig IS NULL
  GROUP BY rr.id
),
traced AS (
  SELECT k.key_id, CAST(sum(s.n) AS BIGINT) AS n_traced
  FROM (SELECT DISTINCT key_id FROM diverged) k
  JOIN ref_shapes s ON 1 = 1
  JOIN tap t ON t.run_id = s.run_id AND t.key_id = k.key_id
  GROUP BY k.key_id
),
target_key AS MATERIALIZED (
  -- each edge with the pairing keys of its target, found once
  SELECT e.source, e.target, tk.id AS key_id
  FROM edge e
  JOIN tap_key tk ON tk.key_name = e.target
),
traced_consequence AS (
  SELECT d.comparison_id, d.key_id, count(DISTINCT e.target) AS n
  FROM diverged d
  JOIN target_key e ON e.source = d.key_name
  WHERE EXISTS (SELECT 1 FROM tap t WHERE t.run_id = d.ref_run_id AND t.key_id = e.key_id)
  GROUP BY d.comparison_id, d.key_id
),
diverged_consequence AS (
  SELECT d.comparison_id, d.key_id, count(DISTINCT i.key_name) AS n
  FROM diverged d
  JOIN edge e ON e.source = d.key_name
  JOIN diverged i ON i.comparison_id = d.comparison_id AND i.key_name = e.target
  GROUP BY d.comparison_id, d.key_id
),
inputs AS (
  SELECT DISTINCT d.comparison_id, d.key_id, i.key_name AS input,
         CASE WHEN i.hint_ref_unit IS NOT NULL THEN i.ratio END AS input_factor
  FROM diverged d
  JOIN edge e ON e.target = d.key_name
  JOIN diverged i ON i.comparison_id = d.comparison_id AND i.key_name = e.source
    AND (i.loop_key = d.loop_key OR i.loop_key = '')
)
SELECT d.comparison_id AS comparison_id, d.key_name AS tap, d.channel AS channel,
       d.loop_key AS loop_key, d.occurrence AS occurrence, d.ref_seq AS ref_seq,
       d.cand_seq AS cand_seq, d.ref_line AS ref_line, d.cand_line AS cand_line,
       d.key_name IN (SELECT name FROM named) AS in_graph, d.ratio AS ratio,
       d.status AS status, d.hint_ref_unit IS NOT NULL AS unit_factor, d.suspect AS suspect,
       d.ref_kind AS ref_kind, d.ref_value AS ref_value, d.cand_value AS cand_value,
       inp.input AS input, inp.input_factor AS input_factor,
       COALESCE(tc.n, 0) AS traced_consequences,
       COALESCE(dc.n, 0) AS diverged_consequences,
       tr.n_traced AS n_traced, d.key_id AS key_id
FROM diverged d
JOIN traced tr ON tr.key_id = d.key_id
LEFT JOIN traced_consequence tc ON tc.comparison_id = d.comparison_id AND tc.key_id = d.key_id
LEFT JOIN diverged_consequence dc ON dc.comparison_id = d.comparison_id
  AND dc.key_id = d.key_id
LEFT JOIN inputs inp ON inp.comparison_id = d.comparison_id AND inp.key_id = d.key_id
ORDER BY d.comparison_id, d.ref_seq, d.cand_seq, inp.input
