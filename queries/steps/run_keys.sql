-- run_keys: a run's pairing key ids in order: the key of each position of its
-- digest list (run.tap_digests; compare.engine).
-- Parameters:
--   run_id   run.id
SELECT key_id FROM tap WHERE run_id = CAST(:run_id AS INTEGER) ORDER BY key_id
