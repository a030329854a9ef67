-- image_recorded: the recorded metrics beside image comparisons (the numeric
-- results file of the pair, e.g. <case>_metrics.json), one row per metric.
-- Parameters (NULL = every comparison):
--   :comparison_id   image_comparison.id
SELECT ic.id     AS comparison_id,
       m.seq     AS seq,
       m.name    AS name,
       m.kind    AS kind,
       m.num     AS num,
       m.text    AS text,
       m.unit    AS unit
FROM image_comparison ic
JOIN metric m ON m.file_id = ic.metric_file_id
WHERE CAST(:comparison_id AS INTEGER) IS NULL OR ic.id = CAST(:comparison_id AS INTEGER)
ORDER BY ic.id, m.seq
