-- bundle_commands, PostgreSQL's spelling of the list of bundle ids (see
-- bundle_commands.sql).
-- Parameters:
--   bundles  JSON [bundle id, ...]
SELECT b.id AS bundle_id, b.commands_text AS commands_text
FROM bundle b
WHERE b.id IN (SELECT CAST(j AS BIGINT)
               FROM jsonb_array_elements_text(CAST(:bundles AS JSONB)) j)
