-- unit_hints: for diverged taps of a set whose diverged components all have the
-- same ratio ref/cand, the pair of units of one dimension whose conversion factor
-- is that ratio (from the unit table): the units each side appears to use. A pair
-- that includes the unit named by the tap wins over other pairs.
-- Parameters:
--   set_id   comparison_set.id
UPDATE tap_result
SET hint_ref_unit = COALESCE(
      (SELECT ur.symbol FROM unit ur
        JOIN unit uc ON uc.dimension = ur.dimension AND uc.symbol <> ur.symbol
        WHERE ABS(tap_result.min_ratio / (uc.factor_to_si / ur.factor_to_si) - 1) <= 1e-6
          AND (tap_result.unit IS NULL
               OR ur.dimension = (SELECT tu.dimension FROM unit tu
                                  WHERE tu.symbol = tap_result.unit))
          AND (tap_result.unit = ur.symbol OR tap_result.unit = uc.symbol)
        ORDER BY ur.symbol, uc.symbol LIMIT 1),
      (SELECT ur.symbol FROM unit ur
        JOIN unit uc ON uc.dimension = ur.dimension AND uc.symbol <> ur.symbol
        WHERE ABS(tap_result.min_ratio / (uc.factor_to_si / ur.factor_to_si) - 1) <= 1e-6
          AND (tap_result.unit IS NULL
               OR ur.dimension = (SELECT tu.dimension FROM unit tu
                                  WHERE tu.symbol = tap_result.unit))
        ORDER BY ur.symbol, uc.symbol LIMIT 1)),
    hint_cand_unit = COALESCE(
      (SELECT uc.symbol FROM unit ur
        JOIN unit uc ON uc.dimension = ur.dimension AND uc.symbol <> ur.symbol
        WHERE ABS(tap_result.min_ratio / (uc.factor_to_si / ur.factor_to_si) - 1) <= 1e-6
          AND (tap_result.unit IS NULL
               OR ur.dimension = (SELECT tu.dimension FROM unit tu
                                  WHERE tu.symbol = tap_result.unit))
          AND (tap_result.unit = ur.symbol OR tap_result.unit = uc.symbol)
        ORDER BY ur.symbol, uc.symbol LIMIT 1),
      (SELECT uc.symbol FROM unit ur
        JOIN unit uc ON uc.dimension = ur.dimension AND uc.symbol <> ur.symbol
        WHERE ABS(tap_result.min_ratio / (uc.factor_to_si / ur.factor_to_si) - 1) <= 1e-6
          AND (tap_result.unit IS NULL
               OR ur.dimension = (SELECT tu.dimension FROM unit tu
                                  WHERE tu.symbol = tap_result.unit))
        ORDER BY ur.symbol, uc.symbol LIMIT 1))
WHERE set_id = CAST(:set_id AS INTEGER)
  AND status IN ('diverged', 'accepted')
  AND n_ratio > 0 AND n_ratio = n_diverged
  AND min_ratio * max_ratio > 0
  AND ABS(max_ratio / min_ratio - 1) <= 1e-6
