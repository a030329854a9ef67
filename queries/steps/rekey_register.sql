-- rekey_register: add to tap_key every pairing key (pairing channel, key_name,
-- loop_key, key_occurrence) that taps now have and tap_key lacks. Run by `tracedb alias`
-- and `tracedb db rekey` after rekey_names and rekey_occurrence.
-- Parameters: none
INSERT INTO tap_key (channel, key_name, loop_key, key_occurrence)
SELECT DISTINCT COALESCE(ca.canonical, t.channel), t.key_name, t.loop_key, t.key_occurrence
FROM tap t
LEFT JOIN tap_alias ca ON ca.kind = 'channel' AND ca.channel = t.channel
WHERE NOT EXISTS (SELECT 1 FROM tap_key k
                  WHERE k.channel = COALESCE(ca.canonical, t.channel) AND k.key_name = t.key_name
                    AND k.loop_key = t.loop_key AND k.key_occurrence = t.key_occurrence)
ON CONFLICT DO NOTHING
