-- metric_timeline: one named metric of the numeric results files (*_metrics.json,
-- metrics.json, summary.json) stamp after stamp; the newest version of each file.
-- Parameters:
--   :name    the metric's name: its keys joined by '.', list items as [i]
--            (sum_ratio, c_parity_mode.max_delta_k, roi[0])
--   :case    the case of <case>_metrics.json (NULL = every file)
-- A file's stamp is its bundle's, else the file's own "timestamp".
SELECT COALESCE(b.stamp, mf.stamp) AS stamp,
       mf.case_name                AS "case",
       m.name                      AS name,
       m.num                       AS value,
       m.text                      AS text,
       m.kind                      AS kind,
       m.unit                      AS unit,
       mf.path                     AS path,
       b.path                      AS bundle_path
FROM metric m
JOIN metric_file mf ON mf.id = m.file_id
JOIN bundle b ON b.id = mf.bundle_id
WHERE m.name = CAST(:name AS TEXT)
  AND (CAST(:case AS TEXT) IS NULL OR mf.case_name = CAST(:case AS TEXT))
  AND mf.id = (SELECT max(m2.id) FROM metric_file m2 WHERE m2.abs_path = mf.abs_path)
ORDER BY CASE WHEN COALESCE(b.stamp, mf.stamp) IS NULL THEN 1 ELSE 0 END, COALESCE(b.stamp, mf.stamp), mf.path
