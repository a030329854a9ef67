-- compare_flag: the pairing keys of each comparison of a set that need the full
-- status rules, into tap_flag; every other tap of the comparison matches. The
-- same keys as the mismatch_value_key view: a component outside atol +
-- rtol*|ref|, missing in the candidate, or labelled otherwise than the candidate
-- component at its position (compare_flag_shapes adds mismatch_tap_key: a
-- candidate tap without a reference tap of its key and length). A key flagged
-- twice is stored once.
-- The tap pairs come first. A pair of one length whose digests are equal
-- (tap.digest, migrations 0016 to 0018: its labels, texts, nan/inf and numbers to
-- 41 bits) plainly matches under an rtol of 2^-40 or more with rtol and atol within
-- 1e-150..1e150 (:digests, decided once for the set), so its values are not read;
-- the view's test decides every other pair. The pairs of two runs of one shape
-- whose digests do not settle them come from compare.engine, which compares the
-- runs' digest lists (run.tap_digests, 0019) by position (:pairs); the taps of the
-- other comparisons (:others) are paired from the index on (run, key, length,
-- digest).
-- Parameters:
--   set_id   comparison_set.id
--   digests  1 when the set's tolerance lets equal digests settle a pair
--            (store.layout.digests_settle), else 0
--   pairs    JSON [[comparison id, key id], ...]: tap pairs to test
--   others   JSON [comparison id, ...]: comparisons whose tap pairs are found here
WITH todo AS MATERIALIZED (
  SELECT CAST(json_extract(p.value, '$[0]') AS INTEGER) AS comparison_id,
         CAST(json_extract(p.value, '$[1]') AS INTEGER) AS key_id
  FROM json_each(:pairs) p
  UNION ALL
  SELECT c.id, r.key_id
  FROM json_each(:others) o
  CROSS JOIN comparison c ON c.id = o.value  -- (CROSS: from the list, on SQLite)
  JOIN tap r ON r.run_id = c.ref_run_id
  LEFT JOIN tap k ON k.run_id = c.cand_run_id AND k.key_id = r.key_id
  WHERE c.set_id = CAST(:set_id AS INTEGER)
    AND {digest_settles} IS NOT TRUE
)
INSERT INTO tap_flag (set_id, comparison_id, key_id)
SELECT m.set_id, m.comparison_id, m.key_id
FROM todo t
JOIN mismatch_value_key m ON m.comparison_id = t.comparison_id AND m.key_id = t.key_id
WHERE true
ON CONFLICT DO NOTHING
