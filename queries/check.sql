-- check: the warehouse's own consistency checks, one row each; problems = 0 is
-- healthy. `tracedb db check` adds the database engine's own integrity check.
-- Parameters: none
SELECT 'taps without their run' AS check_name, COUNT(*) AS problems
FROM tap t LEFT JOIN run r ON r.id = t.run_id WHERE r.id IS NULL
UNION ALL
SELECT 'taps whose unit is not in the unit table', COUNT(*)
FROM tap t LEFT JOIN unit u ON u.symbol = t.unit WHERE t.unit IS NOT NULL AND u.symbol IS NULL
UNION ALL
SELECT 'values without their tap', COUNT(*)
FROM value v LEFT JOIN tap t ON t.run_id = v.run_id AND t.key_id = v.key_id
WHERE t.id IS NULL
UNION ALL
SELECT 'runs without their source file', COUNT(*)
FROM run r LEFT JOIN source_file sf ON sf.id = r.source_file_id WHERE sf.id IS NULL
UNION ALL
SELECT 'source files without their raw content', COUNT(*)
FROM source_file sf LEFT JOIN source_blob b ON b.sha256 = sf.sha256 WHERE b.sha256 IS NULL
UNION ALL
SELECT 'source files loaded twice (same path and content)', COUNT(*)
FROM (SELECT abs_path, sha256 FROM source_file GROUP BY abs_path, sha256
      HAVING COUNT(*) > 1) d
UNION ALL
SELECT 'runs whose tap count differs from their taps', COUNT(*)
FROM run r
LEFT JOIN (SELECT run_id, COUNT(*) AS n FROM tap GROUP BY run_id) t ON t.run_id = r.id
WHERE r.tap_count <> COALESCE(t.n, 0)
UNION ALL
SELECT 'taps whose component count differs from their values', COUNT(*)
FROM tap t
LEFT JOIN (SELECT run_id, key_id, COUNT(*) AS n FROM value GROUP BY run_id, key_id) v
       ON v.run_id = t.run_id AND v.key_id = t.key_id
WHERE t.n_components <> COALESCE(v.n, 0)
UNION ALL
SELECT 'files whose parsed + quarantined lines differ from their TRACE lines', COUNT(*)
FROM source_file WHERE parsed_lines + quarantined_lines <> trace_lines
UNION ALL
SELECT 'files whose quarantined lines are not all kept', COUNT(*)
FROM source_file sf
LEFT JOIN (SELECT source_file_id, COUNT(*) AS n FROM quarantine GROUP BY source_file_id) q
       ON q.source_file_id = sf.id
WHERE sf.quarantined_lines + sf.json_quarantined <> COALESCE(q.n, 0)
UNION ALL
SELECT 'JSON files whose values differ from their value rows', COUNT(*)
FROM source_file sf
LEFT JOIN (SELECT r.source_file_id, COUNT(*) AS n FROM value v
           JOIN run r ON r.id = v.run_id GROUP BY r.source_file_id) v
       ON v.source_file_id = sf.id
WHERE sf.json_values > 0 AND sf.json_values <> COALESCE(v.n, 0)
UNION ALL
SELECT 'JSON quarantined items without their pointer', COUNT(*)
FROM quarantine q JOIN source_file sf ON sf.id = q.source_file_id
WHERE sf.json_quarantined > 0 AND q.json_pointer IS NULL
UNION ALL
SELECT 'JSON pointers without their tap', COUNT(*)
FROM tap_pointer tp LEFT JOIN tap t ON t.id = tp.tap_id WHERE t.id IS NULL
UNION ALL
SELECT 'runs with a pairing key on two taps', COUNT(*)
FROM (SELECT run_id, key_id FROM tap GROUP BY run_id, key_id HAVING COUNT(*) > 1) d
UNION ALL
SELECT 'taps whose key id names another pairing key (run tracedb db rekey)', COUNT(*)
FROM tap t LEFT JOIN tap_key k ON k.id = t.key_id
LEFT JOIN tap_alias ca ON ca.kind = 'channel' AND ca.channel = t.channel
WHERE k.id IS NULL OR k.channel <> COALESCE(ca.canonical, t.channel) OR k.key_name <> t.key_name
   OR k.loop_key <> t.loop_key OR k.key_occurrence <> t.key_occurrence
UNION ALL
SELECT 'taps whose pairing key is stale (run tracedb db rekey)', COUNT(*)
FROM tap t
WHERE t.key_name <> COALESCE(
        (SELECT a.canonical FROM tap_alias a
         WHERE a.kind = 'name' AND a.name = t.name AND a.channel = t.channel ORDER BY a.id LIMIT 1),
        (SELECT a.canonical FROM tap_alias a
         WHERE a.kind = 'name' AND a.name = t.name AND a.channel = '*' ORDER BY a.id LIMIT 1),
        t.name)
UNION ALL
SELECT 'image files without their image', COUNT(*)
FROM image_file f LEFT JOIN image i ON i.sha256 = f.image_sha256 WHERE i.sha256 IS NULL
UNION ALL
SELECT 'images no image file refers to', COUNT(*)
FROM image i WHERE NOT EXISTS (SELECT 1 FROM image_file f WHERE f.image_sha256 = i.sha256)
UNION ALL
SELECT 'image and metric files without their bundle', COUNT(*)
FROM (SELECT bundle_id FROM image_file UNION ALL SELECT bundle_id FROM metric_file
      UNION ALL SELECT bundle_id FROM image_comparison) x
LEFT JOIN bundle b ON b.id = x.bundle_id WHERE b.id IS NULL
UNION ALL
SELECT 'image comparisons whose image file or image is missing', COUNT(*)
FROM image_comparison ic
LEFT JOIN image_file rf ON rf.id = ic.ref_file_id
LEFT JOIN image_file cf ON cf.id = ic.cand_file_id
LEFT JOIN image ri ON ri.sha256 = rf.image_sha256
LEFT JOIN image ci ON ci.sha256 = cf.image_sha256
WHERE ri.sha256 IS NULL OR ci.sha256 IS NULL
UNION ALL
SELECT 'image comparisons whose recorded metrics file is missing', COUNT(*)
FROM image_comparison ic LEFT JOIN metric_file mf ON mf.id = ic.metric_file_id
WHERE ic.metric_file_id IS NOT NULL AND mf.id IS NULL
UNION ALL
SELECT 'worst pixels without their image comparison', COUNT(*)
FROM image_worst w LEFT JOIN image_comparison ic ON ic.id = w.comparison_id
WHERE ic.id IS NULL
UNION ALL
SELECT 'worst pixels outside their image comparison''s bounds', COUNT(*)
FROM image_worst w JOIN image_comparison ic ON ic.id = w.comparison_id
WHERE w.slow < 0 OR w.fast < 0 OR ic.slow IS NULL OR ic.fast IS NULL
   OR w.slow >= ic.slow OR w.fast >= ic.fast OR w.rank < 1 OR w.rank > ic.worst_k
UNION ALL
SELECT 'metrics without their metrics file', COUNT(*)
FROM metric m LEFT JOIN metric_file mf ON mf.id = m.file_id WHERE mf.id IS NULL
