-- images: whole-image comparisons (C image = reference, PyTorch image = candidate),
-- figures computed in float64 at ingest, newest stamp last within each case.
-- Parameters (NULL = no filter):
--   :case    case name, exactly (e.g. detpixels-64)
--   :stamp   full stamp or a suffix of it
--   :path    substring of the bundle's path
-- Matching is case-sensitive and literal (%, _ and \ match themselves).
SELECT ic.id                AS id,
       ic.case_name         AS "case",
       ic.stamp             AS stamp,
       b.path               AS bundle_path,
       ic.status            AS status,
       ic.message           AS message,
       rf.path              AS ref_path,
       cf.path              AS cand_path,
       ri.shape             AS ref_shape,
       ci.shape             AS cand_shape,
       ri.dtype             AS ref_dtype,
       ci.dtype             AS cand_dtype,
       ic.slow              AS slow,
       ic.fast              AS fast,
       ic.pixels            AS pixels,
       ic.correlation       AS correlation,
       ic.mse               AS mse,
       ic.rmse              AS rmse,
       ic.max_abs_diff      AS max_abs_diff,
       ic.ref_sum           AS ref_sum,
       ic.cand_sum          AS cand_sum,
       ic.sum_ratio         AS sum_ratio,
       ic.rtol              AS rtol,
       ic.atol              AS atol,
       ic.outside_tolerance AS outside_tolerance,
       ic.ref_nonfinite     AS ref_nonfinite,
       ic.cand_nonfinite    AS cand_nonfinite,
       ic.worst_k           AS worst_k,
       ic.metric_file_id    AS recorded_file_id,
       mf.path              AS recorded_path,
       rf.image_sha256      AS ref_sha256,
       cf.image_sha256      AS cand_sha256
FROM image_comparison ic
JOIN bundle b ON b.id = ic.bundle_id
JOIN image_file rf ON rf.id = ic.ref_file_id
JOIN image_file cf ON cf.id = ic.cand_file_id
JOIN image ri ON ri.sha256 = rf.image_sha256
JOIN image ci ON ci.sha256 = cf.image_sha256
LEFT JOIN metric_file mf ON mf.id = ic.metric_file_id
WHERE (CAST(:case AS TEXT) IS NULL OR ic.case_name = CAST(:case AS TEXT))
  AND (CAST(:stamp AS TEXT) IS NULL
       OR ic.stamp LIKE '%' || REPLACE(REPLACE(REPLACE(CAST(:stamp AS TEXT), '\', '\\'), '%', '\%'), '_', '\_') ESCAPE '\')
  AND (CAST(:path AS TEXT) IS NULL
       OR b.path LIKE '%' || REPLACE(REPLACE(REPLACE(CAST(:path AS TEXT), '\', '\\'), '%', '\%'), '_', '\_') || '%' ESCAPE '\')
ORDER BY ic.case_name, CASE WHEN ic.stamp IS NULL THEN 1 ELSE 0 END, ic.stamp, b.path, ic.id
