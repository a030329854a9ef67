-- bundle_commands: the commands.txt of each of a list of bundles (run_config names
-- each run's bundle).
-- Parameters:
--   bundles  JSON [bundle id, ...]
SELECT b.id AS bundle_id, b.commands_text AS commands_text
FROM bundle b
WHERE b.id IN (SELECT CAST(j.value AS INTEGER) FROM json_each(:bundles) j)
