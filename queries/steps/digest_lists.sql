-- digest_lists: each comparison of a set with its reference run and, where its two
-- runs have one shape (run.shape_sig: their keys and lengths) and the set's
-- tolerance lets digests settle a pair, that shape and the two runs' digest lists
-- (run.tap_digests, layout.digest_list; else NULL): compare.engine pairs the taps
-- of such runs by position in their lists (compare_flag's :pairs) and hands the
-- other comparisons to compare_flag (:others). Read inside the comparison's
-- transaction (a session's comparisons are its own).
-- Parameters:
--   set_id   comparison_set.id
--   digests  1 when the set's tolerance lets equal digests settle a pair, else 0
SELECT c.id AS comparison_id, c.ref_run_id AS ref_run_id, rr.shape_sig AS shape,
       CASE WHEN cr.id IS NOT NULL THEN rr.tap_digests END AS ref_digests,
       cr.tap_digests AS cand_digests
FROM comparison c
LEFT JOIN run rr ON rr.id = c.ref_run_id
LEFT JOIN run cr ON cr.id = c.cand_run_id AND cr.shape_sig = rr.shape_sig
                AND CAST(:digests AS INTEGER) = 1
WHERE c.set_id = CAST(:set_id AS INTEGER)
