-- compare: materialise tap_status of one comparison set into tap_result, every
-- tap (comparison_set.detail = 'all'); every other divergence query reads
-- tap_result. compare_flag, compare_flag_shapes and compare_flagged do the same
-- for the taps that do not match only (detail = 'mismatch').
-- Parameters:
--   set_id   comparison_set.id
INSERT INTO tap_result ({tap_result_columns})
SELECT {tap_result_columns}
FROM tap_status
WHERE set_id = CAST(:set_id AS INTEGER)
