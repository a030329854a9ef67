-- compare_flag: the pairing keys of each comparison of a set that need the full
-- status rules, into tap_flag; every other tap of the comparison matches. The
-- same keys as the mismatch_key view: this step stores mismatch_value_key (a
-- component outside atol + rtol*|ref|, missing in the candidate, or labelled
-- otherwise than the candidate component at its position), and
-- compare_flag_shapes mismatch_tap_key (a candidate tap without a reference tap
-- of its key and length). A key flagged twice is stored once.
-- Parameters:
--   set_id   comparison_set.id
INSERT INTO tap_flag (set_id, comparison_id, key_id)
SELECT set_id, comparison_id, key_id
FROM mismatch_value_key
WHERE set_id = CAST(:set_id AS INTEGER)
ON CONFLICT DO NOTHING
