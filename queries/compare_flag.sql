-- compare_flag: the pairing keys of each comparison of a set that need the full
-- status rules (the mismatch_key view: a component outside atol + rtol*|ref|,
-- a tap missing on one side, a length difference), into tap_flag. Every other
-- tap of the comparison matches. A key flagged twice is stored once.
-- Parameters:
--   set_id   comparison_set.id
INSERT INTO tap_flag (set_id, comparison_id, key_id)
SELECT set_id, comparison_id, key_id
FROM mismatch_key
WHERE set_id = CAST(:set_id AS INTEGER)
ON CONFLICT DO NOTHING
