-- factor_gap: what explains the gap of a final value. For each comparison of a
-- set and each factor of a factor model (target = product of factor^exponent),
-- the log10 ratio ref/cand of the target and of each factor^exponent, and the
-- remainder the factors leave unexplained. Magnitudes are used (a sign flip is
-- a divergence of its own); a zero on either side gives NULL.
-- Parameters:
--   set_id   comparison_set.id
--   model    factor_model.model, e.g. nanoBragg
WITH fm AS (
  SELECT target, position, factor, exponent FROM factor_model
  WHERE model = CAST(:model AS TEXT)
),
names AS (
  SELECT DISTINCT target AS key_name FROM fm
  UNION
  SELECT factor FROM fm
),
firsts AS (
  SELECT ts.comparison_id, ts.key_name, MIN(ts.ref_seq) AS ref_seq
  FROM tap_result ts
  WHERE ts.set_id = CAST(:set_id AS INTEGER)
    AND ts.ref_tap_id IS NOT NULL AND ts.cand_tap_id IS NOT NULL
    AND ts.key_name IN (SELECT key_name FROM names)
  GROUP BY ts.comparison_id, ts.key_name
),
vals AS (
  SELECT ts.comparison_id, ts.key_name, rv.num AS ref_num, cv.num AS cand_num,
         ts.ref_value, ts.cand_value, ts.status
  FROM firsts f
  JOIN tap_result ts ON ts.comparison_id = f.comparison_id AND ts.key_name = f.key_name
                    AND ts.ref_seq = f.ref_seq
  JOIN tap rt ON rt.id = ts.ref_tap_id
  JOIN tap ct ON ct.id = ts.cand_tap_id
  JOIN value rv ON rv.run_id = rt.run_id AND rv.key_id = rt.key_id AND rv.idx = 0
  JOIN value cv ON cv.run_id = ct.run_id AND cv.key_id = ct.key_id AND cv.idx = 0
),
rows AS (
  SELECT c.id AS comparison_id, fm.target, fm.position, fm.factor, fm.exponent,
         t.ref_value AS target_ref_value, t.cand_value AS target_cand_value,
         CASE WHEN t.ref_num <> 0 AND t.cand_num <> 0
              THEN LOG10(ABS(t.ref_num) / ABS(t.cand_num)) END AS target_log10_ratio,
         t.ref_num AS target_ref_num, t.cand_num AS target_cand_num,
         f.ref_value AS factor_ref_value, f.cand_value AS factor_cand_value,
         f.ref_num AS factor_ref_num, f.cand_num AS factor_cand_num,
         f.status AS factor_status,
         CASE WHEN f.ref_num <> 0 AND f.cand_num <> 0
              THEN fm.exponent * LOG10(ABS(f.ref_num) / ABS(f.cand_num)) END AS factor_log10
  FROM comparison c
  CROSS JOIN fm
  LEFT JOIN vals t ON t.comparison_id = c.id AND t.key_name = fm.target
  LEFT JOIN vals f ON f.comparison_id = c.id AND f.key_name = fm.factor
  WHERE c.set_id = CAST(:set_id AS INTEGER)
)
SELECT r.*,
       r.target_log10_ratio - SUM(r.factor_log10) OVER (PARTITION BY r.comparison_id)
         AS remainder_log10,
       COUNT(r.factor_log10) OVER (PARTITION BY r.comparison_id) AS factors_found,
       COUNT(*) OVER (PARTITION BY r.comparison_id) AS factors_total
FROM rows r
ORDER BY r.comparison_id, r.position
