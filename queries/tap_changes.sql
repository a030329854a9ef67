-- tap_changes: within each group of a comparison set (e.g. one pixel), compare
-- each comparison with the previous one (by ordinal): taps that diverged before
-- and no longer do are 'fixed'; taps that did not diverge before and now do are
-- 'broke'. Used by `tracedb timeline` (a reference against successive stamps)
-- and `tracedb regress` (base, then head).
-- Parameters:
--   set_id   comparison_set.id
--   strict   1 to count print_precision as diverged, else 0
WITH st AS (
  SELECT ts.comparison_id, ts.channel, ts.key_name, ts.loop_key, ts.occurrence,
         ts.ref_seq, ts.ref_line, ts.cand_line, ts.ref_value, ts.cand_value,
         c.grp, c.ordinal,
         CASE WHEN CAST(:strict AS INTEGER) = 1 AND ts.status = 'print_precision'
              THEN 'diverged' ELSE ts.status END AS status
  FROM tap_result ts
  JOIN comparison c ON c.id = ts.comparison_id
  WHERE ts.set_id = CAST(:set_id AS INTEGER)
)
SELECT cur.comparison_id AS comparison_id, prev.comparison_id AS previous_comparison_id,
       cur.grp AS grp, cur.ordinal AS ordinal,
       cur.channel AS channel, cur.key_name AS tap, cur.loop_key AS loop_key,
       cur.occurrence AS occurrence, cur.ref_seq AS ref_seq,
       prev.status AS before_status, cur.status AS after_status,
       CASE WHEN prev.status = 'diverged' THEN 'fixed' ELSE 'broke' END AS change,
       prev.cand_value AS before_value, cur.cand_value AS after_value,
       cur.ref_value AS ref_value
FROM st cur
JOIN st prev ON prev.grp = cur.grp AND prev.ordinal = cur.ordinal - 1
            AND prev.channel = cur.channel AND prev.key_name = cur.key_name
            AND prev.loop_key = cur.loop_key AND prev.occurrence = cur.occurrence
WHERE (prev.status = 'diverged' AND cur.status IN ('match', 'print_precision'))
   OR (prev.status IN ('match', 'print_precision') AND cur.status = 'diverged')
ORDER BY cur.grp, cur.ordinal, cur.ref_seq
