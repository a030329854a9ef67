-- tap_diff: every tap of every comparison in a set, side by side, in the
-- reference trace's order (taps found only in the candidate come last, in the
-- candidate's order), with status, deltas, ratio, unit hint and the side a unit
-- factor puts off (suspect: 'ref', 'cand' or NULL; suspect_basis: the tap that decided).
-- A tap of a JSON trace has line 0 and its JSON pointer (ref_pointer, cand_pointer).
-- Parameters:
--   set_id   comparison_set.id
--   strict   1 to count print_precision as diverged, else 0
SELECT ts.comparison_id AS comparison_id,
       ts.channel AS channel, ts.key_name AS tap, ts.loop_key AS loop_key,
       ts.occurrence AS occurrence, ts.unit AS unit,
       ts.ref_name AS ref_name, ts.cand_name AS cand_name,
       ts.ref_seq AS ref_seq, ts.cand_seq AS cand_seq,
       ts.ref_line AS ref_line, ts.cand_line AS cand_line,
       rp.json_pointer AS ref_pointer, cp.json_pointer AS cand_pointer,
       ts.ref_value AS ref_value, ts.cand_value AS cand_value,
       ts.ref_n AS ref_n, ts.cand_n AS cand_n,
       CASE WHEN CAST(:strict AS INTEGER) = 1 AND ts.status = 'print_precision'
            THEN 'diverged' ELSE ts.status END AS status,
       ts.accepted_reason AS accepted_reason,
       ts.max_abs_delta AS abs_delta, ts.max_rel_delta AS rel_delta,
       CASE WHEN ts.n_ratio > 0 AND ABS(ts.max_ratio - ts.min_ratio) <= 1e-6 * ABS(ts.min_ratio)
            THEN ts.min_ratio END AS ratio,
       ts.hint_ref_unit AS hint_ref_unit, ts.hint_cand_unit AS hint_cand_unit,
       ts.suspect AS suspect, ts.suspect_basis AS suspect_basis
FROM tap_result ts
LEFT JOIN tap_pointer rp ON rp.tap_id = ts.ref_tap_id
LEFT JOIN tap_pointer cp ON cp.tap_id = ts.cand_tap_id
WHERE ts.set_id = CAST(:set_id AS INTEGER)
ORDER BY ts.comparison_id,
         CASE WHEN ts.ref_seq IS NULL THEN 1 ELSE 0 END, ts.ref_seq, ts.cand_seq
