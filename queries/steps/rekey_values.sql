-- rekey_values: move the value rows of taps whose pairing key changed to the new
-- key id, stored negated for now (so that two taps of a run swapping keys never
-- collide); rekey_taps then updates the taps and rekey_values_finish un-negates.
-- Parameters: none
UPDATE value
SET key_id = -x.new_id
FROM (SELECT t.run_id AS run_id, t.key_id AS old_id, k.id AS new_id
      FROM tap t
      LEFT JOIN tap_alias ca ON ca.kind = 'channel' AND ca.channel = t.channel
      JOIN tap_key k ON k.channel = COALESCE(ca.canonical, t.channel) AND k.key_name = t.key_name
                    AND k.loop_key = t.loop_key AND k.key_occurrence = t.key_occurrence
      WHERE k.id <> t.key_id) x
WHERE value.run_id = x.run_id AND value.key_id = x.old_id
