-- rekey_names: recompute each tap's pairing name from the name aliases of
-- tap_alias (kind 'name'; one of the tap's own channel wins over a '*' one; among
-- equals the oldest). Run by
-- `tracedb alias` and `tracedb db rekey`, followed by rekey_occurrence.
-- Parameters:
--   name   only taps with this name (NULL: every tap)
UPDATE tap
SET key_name = COALESCE(
      (SELECT a.canonical FROM tap_alias a
       WHERE a.kind = 'name' AND a.name = tap.name AND a.channel = tap.channel ORDER BY a.id LIMIT 1),
      (SELECT a.canonical FROM tap_alias a
       WHERE a.kind = 'name' AND a.name = tap.name AND a.channel = '*' ORDER BY a.id LIMIT 1),
      tap.name)
WHERE CAST(:name AS TEXT) IS NULL OR tap.name = CAST(:name AS TEXT)
