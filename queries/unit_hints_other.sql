-- unit_hints_other: the second step of unit_hints: for diverged taps with a common
-- ratio and no hint yet, any pair of units of the tap's dimension (of any
-- dimension when the tap names no unit) whose conversion factor is that ratio.
-- Parameters:
--   set_id   comparison_set.id
WITH pairs AS MATERIALIZED (
  SELECT ur.symbol AS ref_unit, uc.symbol AS cand_unit, ur.dimension AS dimension,
         uc.factor_to_si / ur.factor_to_si AS factor
  FROM unit ur
  JOIN unit uc ON uc.dimension = ur.dimension AND uc.symbol <> ur.symbol
)
UPDATE tap_result
SET (hint_ref_unit, hint_cand_unit) = (
      SELECT p.ref_unit, p.cand_unit FROM pairs p
      WHERE ABS(tap_result.min_ratio / p.factor - 1) <= 1e-6
        AND (tap_result.unit IS NULL
             OR p.dimension = (SELECT tu.dimension FROM unit tu
                               WHERE tu.symbol = tap_result.unit))
      ORDER BY p.ref_unit, p.cand_unit
      LIMIT 1)
WHERE set_id = CAST(:set_id AS INTEGER)
  AND status IN ('diverged', 'accepted')
  AND n_ratio > 0 AND n_ratio = n_diverged
  AND min_ratio * max_ratio > 0
  AND ABS(max_ratio / min_ratio - 1) <= 1e-6
  AND hint_ref_unit IS NULL
