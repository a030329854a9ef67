-- unit_hints: for diverged taps of a set whose diverged components all have the
-- same ratio ref/cand, the pair of units of one dimension whose conversion factor
-- is that ratio (from the unit table): the units each side appears to use. A pair
-- that includes the unit named by the tap comes first; otherwise any pair of the
-- tap's dimension (of any dimension when the tap names no unit). Among equals the
-- first by symbols wins.
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
      SELECT ref_unit, cand_unit FROM (
        SELECT p.ref_unit, p.cand_unit,
               CASE WHEN tap_result.unit IN (p.ref_unit, p.cand_unit) THEN 0 ELSE 1 END
                 AS pair_rank
        FROM pairs p
        WHERE ABS(tap_result.min_ratio - p.factor) <= 1e-6 * p.factor
          AND (tap_result.unit IS NULL
               OR tap_result.unit IN (p.ref_unit, p.cand_unit)
               OR p.dimension = (SELECT tu.dimension FROM unit tu
                                 WHERE tu.symbol = tap_result.unit))) candidates
      ORDER BY pair_rank, ref_unit, cand_unit
      LIMIT 1)
WHERE set_id = CAST(:set_id AS INTEGER)
  AND status IN ('diverged', 'accepted')
  AND n_ratio > 0 AND n_ratio = n_diverged
  AND (min_ratio > 0) = (max_ratio > 0)
  AND ABS(max_ratio - min_ratio) <= 1e-6 * ABS(min_ratio)
