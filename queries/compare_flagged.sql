-- compare_flagged: tap_status of the flagged taps of a set (tap_flag), the ones
-- that are not a match, into tap_result (comparison_set.detail = 'mismatch').
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
FROM tap_status_flagged
WHERE set_id = CAST(:set_id AS INTEGER) AND status <> 'match'
