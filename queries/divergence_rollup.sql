-- divergence_rollup: across the comparisons (pixels) of a set, each tap key
-- that diverged somewhere: in how many comparisons, where it first appears in
-- reference order, and whether its ratio is the same everywhere. pixels_total
-- counts the comparisons with both runs (a pixel missing a run diverges nowhere).
-- Parameters:
--   set_id   comparison_set.id
--   strict   1 to count print_precision as diverged, else 0
WITH total AS (
  SELECT COUNT(*) AS n FROM comparison WHERE set_id = CAST(:set_id AS INTEGER)
    AND ref_run_id IS NOT NULL AND cand_run_id IS NOT NULL
)
SELECT st.channel AS channel, st.key_name AS tap, st.loop_key AS loop_key,
       st.occurrence AS occurrence, MAX(st.unit) AS unit,
       COUNT(*) AS pixels_diverged, MAX(total.n) AS pixels_total,
       MIN(st.ref_seq) AS first_ref_seq, MIN(st.ref_line) AS first_ref_line,
       MIN(st.max_rel_delta) AS min_rel_delta, MAX(st.max_rel_delta) AS max_rel_delta,
       COUNT(DISTINCT st.ref_value) AS distinct_ref_values,
       COUNT(DISTINCT st.cand_value) AS distinct_cand_values
FROM tap_result st CROSS JOIN total
WHERE st.set_id = CAST(:set_id AS INTEGER)
  AND (st.status = 'diverged'
       OR CAST(:strict AS INTEGER) = 1 AND st.status = 'print_precision')
GROUP BY st.channel, st.key_name, st.loop_key, st.occurrence
ORDER BY MIN(st.ref_seq), st.channel, st.key_name, st.loop_key, st.occurrence
