-- taps: the taps of one run in trace order, one row per value component; a tap of
-- a JSON trace has line 0 and its JSON pointer (pointer; NULL for text traces).
-- Parameters: :run_id
SELECT t.id          AS tap_id,
       t.seq         AS seq,
       t.line_no     AS line,
       tp.json_pointer AS pointer,
       t.channel     AS channel,
       t.name        AS name,
       t.loop_key    AS loop_key,
       t.occurrence  AS occurrence,
       t.unit        AS unit,
       t.shape       AS shape,
       v.idx         AS idx,
       v.label       AS label,
       v.text        AS text,
       v.num         AS num,
       v.kind        AS kind
FROM tap t
JOIN value v ON v.run_id = t.run_id AND v.key_id = t.key_id
LEFT JOIN tap_pointer tp ON tp.tap_id = t.id
WHERE t.run_id = CAST(:run_id AS INTEGER)
ORDER BY t.seq, v.idx
