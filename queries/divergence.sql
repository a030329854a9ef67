-- divergence: one row per comparison of a comparison set: counts by status and
-- the first divergence (first tap, in the reference trace's order, whose status
-- is 'diverged'; 'accepted' taps never count). Every reference tap is paired or
-- missing in the candidate, so compared = reference taps - missing_cand and the
-- matches are the compared taps with no other status (tap_result of a
-- 'mismatch' set holds only those). A comparison whose reference or candidate
-- run is missing (ref_run or cand_run NULL: the pixel was traced on one side
-- only) compares nothing; every tap of the run there is is missing on the other side.
-- A first tap from a JSON trace has line 0 and its JSON pointer (first_*_pointer).
-- Parameters:
--   set_id   comparison_set.id (tracedb diverge creates it)
--   strict   1 to count print_precision as diverged, else 0
WITH counts AS (
  -- straight from tap_result along its index (set_id, comparison_id, ref_seq), not
  -- from a CTE of its rows read twice (copied whole, values and all, and indexed
  -- again); a strict that is NULL counts as 0, as everywhere
  SELECT comparison_id,
         SUM(CASE WHEN status = 'diverged' OR (CAST(:strict AS INTEGER) = 1
                                               AND status = 'print_precision')
                  THEN 1 ELSE 0 END) AS diverged,
         SUM(CASE WHEN status = 'print_precision' AND CAST(:strict AS INTEGER) = 1 THEN 0
                  WHEN status = 'print_precision' THEN 1 ELSE 0 END) AS print_precision,
         SUM(CASE WHEN status = 'accepted' THEN 1 ELSE 0 END) AS accepted,
         SUM(CASE WHEN status = 'missing_ref' THEN 1 ELSE 0 END) AS missing_ref,
         SUM(CASE WHEN status = 'missing_cand' THEN 1 ELSE 0 END) AS missing_cand,
         MIN(CASE WHEN status = 'diverged' OR (CAST(:strict AS INTEGER) = 1
                                               AND status = 'print_precision')
                  THEN ref_seq END) AS first_seq
  FROM tap_result
  WHERE set_id = CAST(:set_id AS INTEGER)
  GROUP BY comparison_id
)
SELECT c.id AS comparison_id, c.grp AS grp, c.ordinal AS ordinal, c.pairing AS pairing,
       c.ref_run_id AS ref_run, c.cand_run_id AS cand_run,
       rr.side AS ref_side, cr.side AS cand_side,
       rr.stamp AS ref_stamp, cr.stamp AS cand_stamp,
       rf.path AS ref_path, cf.path AS cand_path,
       rp.slow AS ref_slow, rp.fast AS ref_fast, cp.slow AS cand_slow, cp.fast AS cand_fast,
       s.rtol AS rtol, s.atol AS atol,
       COALESCE(rr.tap_count, 0) - COALESCE(n.missing_cand, 0) AS compared,
       COALESCE(rr.tap_count, 0) - COALESCE(n.missing_cand, 0) - COALESCE(n.diverged, 0)
         - COALESCE(n.print_precision, 0) - COALESCE(n.accepted, 0) AS matched,
       COALESCE(n.diverged, 0) AS diverged, COALESCE(n.print_precision, 0) AS print_precision,
       COALESCE(n.accepted, 0) AS accepted,
       COALESCE(n.missing_ref, 0) AS missing_ref, COALESCE(n.missing_cand, 0) AS missing_cand,
       f.channel AS first_channel, f.key_name AS first_tap, f.loop_key AS first_loop_key,
       f.occurrence AS first_occurrence,
       f.ref_line AS first_ref_line, f.cand_line AS first_cand_line,
       frp.json_pointer AS first_ref_pointer, fcp.json_pointer AS first_cand_pointer,
       f.ref_value AS first_ref_value, f.cand_value AS first_cand_value,
       f.max_abs_delta AS first_abs_delta, f.max_rel_delta AS first_rel_delta,
       CASE WHEN f.n_ratio > 0 AND ABS(f.max_ratio - f.min_ratio) <= 1e-6 * ABS(f.min_ratio)
            THEN f.min_ratio END AS first_ratio,
       f.unit AS first_unit,
       f.hint_ref_unit AS first_hint_ref_unit, f.hint_cand_unit AS first_hint_cand_unit,
       f.suspect AS first_suspect, f.suspect_basis AS first_suspect_basis
FROM comparison c
JOIN comparison_set s ON s.id = c.set_id
LEFT JOIN run rr ON rr.id = c.ref_run_id
LEFT JOIN run cr ON cr.id = c.cand_run_id
LEFT JOIN source_file rf ON rf.id = rr.source_file_id
LEFT JOIN source_file cf ON cf.id = cr.source_file_id
LEFT JOIN pixel rp ON rp.id = rr.pixel_id
LEFT JOIN pixel cp ON cp.id = cr.pixel_id
LEFT JOIN counts n ON n.comparison_id = c.id
LEFT JOIN tap_result f ON f.set_id = c.set_id AND f.comparison_id = c.id
  AND f.ref_seq = n.first_seq
LEFT JOIN tap_pointer frp ON frp.tap_id = f.ref_tap_id
LEFT JOIN tap_pointer fcp ON fcp.tap_id = f.cand_tap_id
WHERE c.set_id = CAST(:set_id AS INTEGER)
ORDER BY c.grp, c.ordinal, c.id
