-- bundle_commands: the commands.txt of every bundle whose runs a comparison set
-- compares (one row per bundle; run_config names each run's bundle).
-- Parameters:
--   set_id   comparison_set.id
SELECT b.id AS bundle_id, b.commands_text AS commands_text
FROM bundle b
WHERE b.id IN (SELECT r.bundle_id
               FROM comparison c JOIN run r ON r.id = c.ref_run_id
               WHERE c.set_id = CAST(:set_id AS INTEGER)
               UNION
               SELECT r.bundle_id
               FROM comparison c JOIN run r ON r.id = c.cand_run_id
               WHERE c.set_id = CAST(:set_id AS INTEGER))
