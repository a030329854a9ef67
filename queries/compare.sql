-- compare: materialise tap_status of one comparison set into tap_result, every
-- tap (comparison_set.detail = 'all'); every other divergence query reads
-- tap_result. compare_flag + compare_flagged do the same for the taps that do
-- not match only (detail = 'mismatch').
-- Parameters:
--   set_id   comparison_set.id
INSERT INTO tap_result (set_id, comparison_id, ref_tap_id, cand_tap_id, channel, key_name,
                        loop_key, occurrence, ref_seq, cand_seq, ref_line, cand_line,
                        ref_name, cand_name, unit, ref_n, cand_n, ref_value, cand_value,
                        n_diverged, n_print_precision, max_abs_delta, max_rel_delta,
                        min_ratio, max_ratio, n_ratio, status, accepted_reason)
SELECT set_id, comparison_id, ref_tap_id, cand_tap_id, channel, key_name,
       loop_key, occurrence, ref_seq, cand_seq, ref_line, cand_line,
       ref_name, cand_name, unit, ref_n, cand_n, ref_value, cand_value,
       n_diverged, n_print_precision, max_abs_delta, max_rel_delta,
       min_ratio, max_ratio, n_ratio, status, accepted_reason
FROM tap_status
WHERE set_id = CAST(:set_id AS INTEGER)
