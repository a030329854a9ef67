-- first_components: the components of each comparison's first diverged tap (the
-- divergence query's first: the earliest in the reference's order, print_precision
-- counting when strict), paired as the status rules pair them, with their deltas
-- and status: which component diverged, and by how much.
-- Parameters:
--   set_id   comparison_set.id
--   strict   1: print_precision counts as diverged
WITH firsts AS (
  SELECT comparison_id, MIN(ref_seq) AS ref_seq
  FROM tap_result
  WHERE set_id = CAST(:set_id AS INTEGER)
    AND (status = 'diverged'
         OR (CAST(:strict AS INTEGER) = 1 AND status = 'print_precision'))
  GROUP BY comparison_id
)
SELECT tr.comparison_id AS comparison_id, cd.idx AS idx, cd.ref_label AS label,
       cd.ref_text AS ref_text, cd.cand_text AS cand_text, cd.ref_kind AS ref_kind,
       cd.cand_kind AS cand_kind, cd.ref_num AS ref_num, cd.cand_num AS cand_num,
       cd.abs_delta AS abs_delta, cd.rel_delta AS rel_delta, cd.status AS status
FROM firsts f
JOIN tap_result tr ON tr.comparison_id = f.comparison_id AND tr.ref_seq = f.ref_seq
  AND tr.set_id = CAST(:set_id AS INTEGER)
JOIN component_delta cd ON cd.comparison_id = tr.comparison_id
  AND cd.ref_tap_id = tr.ref_tap_id AND cd.cand_tap_id = tr.cand_tap_id
ORDER BY tr.comparison_id, cd.idx
