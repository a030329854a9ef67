-- rekey_occurrence: recompute the occurrence of each tap's pairing key in its run
-- (the k-th tap with that pairing channel, key_name and loop_key, in trace order;
-- the pairing channel is the channel alias's canonical one, else the tap's own).
-- Parameters:
--   name   only runs holding a tap with this name (NULL: every run)
UPDATE tap
SET key_occurrence = (
      SELECT COUNT(*) FROM tap t2
      LEFT JOIN tap_alias a2 ON a2.kind = 'channel' AND a2.channel = t2.channel
      WHERE t2.run_id = tap.run_id
        AND COALESCE(a2.canonical, t2.channel) = COALESCE(
              (SELECT a.canonical FROM tap_alias a
               WHERE a.kind = 'channel' AND a.channel = tap.channel), tap.channel)
        AND t2.key_name = tap.key_name AND t2.loop_key = tap.loop_key
        AND t2.seq <= tap.seq)
WHERE tap.run_id IN (SELECT t3.run_id FROM tap t3
                     WHERE CAST(:name AS TEXT) IS NULL OR t3.name = CAST(:name AS TEXT))
