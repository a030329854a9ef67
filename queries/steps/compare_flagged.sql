-- compare_flagged: tap_status of the flagged taps of a set (tap_flag), the ones
-- that are not a match, into tap_result (comparison_set.detail = 'mismatch').
-- Parameters:
--   set_id   comparison_set.id
INSERT INTO tap_result ({tap_result_columns})
SELECT {tap_result_columns}
FROM tap_status_flagged
WHERE set_id = CAST(:set_id AS INTEGER) AND status <> 'match'
