-- load_commands: the recorded tracedb commands that loaded the runs of a
-- comparison set, oldest first.
-- Parameters:
--   set_id   comparison_set.id
SELECT cl.id AS id, cl.started_at AS started_at, cl.command AS command, cl.argv AS argv,
       cl.cwd AS cwd, cl.tracedb_version AS tracedb_version, cl.status AS status
FROM command_log cl
WHERE cl.id IN (
  SELECT sf.command_id FROM comparison c
  JOIN run r ON r.id = c.ref_run_id OR r.id = c.cand_run_id
  JOIN source_file sf ON sf.id = r.source_file_id
  WHERE c.set_id = CAST(:set_id AS INTEGER))
ORDER BY cl.id
