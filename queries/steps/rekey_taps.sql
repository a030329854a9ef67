-- rekey_taps: point each tap at the tap_key row of its (new) pairing key.
-- Parameters: none
UPDATE tap
SET key_id = x.new_id
FROM (SELECT t.id AS tap_id, k.id AS new_id
      FROM tap t
      LEFT JOIN tap_alias ca ON ca.kind = 'channel' AND ca.channel = t.channel
      JOIN tap_key k ON k.channel = COALESCE(ca.canonical, t.channel) AND k.key_name = t.key_name
                    AND k.loop_key = t.loop_key AND k.key_occurrence = t.key_occurrence
      WHERE k.id <> t.key_id) x
WHERE tap.id = x.tap_id
