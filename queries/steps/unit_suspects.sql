-- unit_suspects: for each tap of a set with a unit hint (unit_hints.sql: every
-- diverged component has one ratio ref/cand, a conversion factor of the tap's
-- dimension), which side is off, from the data. The tap's name gives its unit
-- (beam_center_m: metres); its siblings are the other taps of the same pair with
-- a unit of that dimension and either the same unit or the same name stem
-- (beam_center_mm; a stem is the name without the longest suffix that gives its
-- unit), present on both sides, their numbers converted to the tap's unit. A
-- side's value of the tap agrees with a sibling when one of the tap's diverged
-- components has, within 1%, the magnitude of a number of the sibling on the
-- reference side and of one on the candidate side (a value off by the factor is
-- off by 2.5x at least). When one side's value agrees with a sibling and the
-- other side's with none, the other side is the suspect (tap_result.suspect 'ref'
-- or 'cand') and the first such sibling in the reference trace's order is the
-- basis (suspect_basis); otherwise the data does not decide and both stay NULL.
-- Written per hinted row (correlated), so that each row's work is a few index
-- probes into its own two runs, whatever the planner thinks of fresh rows.
-- Parameters:
--   set_id   comparison_set.id
UPDATE tap_result
SET (suspect, suspect_basis) = (
  SELECT CASE WHEN w.ref_seq IS NOT NULL AND w.cand_seq IS NULL THEN 'cand'
              WHEN w.cand_seq IS NOT NULL AND w.ref_seq IS NULL THEN 'ref' END,
         (SELECT b.key_name FROM tap b
          WHERE b.run_id = w.ref_run_id
            AND b.seq = CASE WHEN w.cand_seq IS NULL THEN w.ref_seq
                             WHEN w.ref_seq IS NULL THEN w.cand_seq END)
  FROM (
    -- per side, the first sibling (by reference trace order) its value agrees with
    SELECT MIN(c.ref_run_id) AS ref_run_id,
           MIN(CASE WHEN ABS(ABS(td.ref_num) - (CASE WHEN ABS(sr.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sr.num) END) * su.factor_to_si / tu.factor_to_si)
                         <= 0.01 * (CASE WHEN ABS(sr.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sr.num) END) * su.factor_to_si / tu.factor_to_si
                     AND EXISTS (
                       SELECT 1 FROM value sc
                       WHERE sc.run_id = c.cand_run_id AND sc.key_id = st.key_id
                         AND sc.kind = 'num'
                         AND ABS(ABS(td.ref_num) - (CASE WHEN ABS(sc.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sc.num) END) * su.factor_to_si / tu.factor_to_si)
                             <= 0.01 * (CASE WHEN ABS(sc.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sc.num) END) * su.factor_to_si / tu.factor_to_si)
                    THEN st.seq END) AS ref_seq,
           MIN(CASE WHEN ABS(ABS(td.cand_num) - (CASE WHEN ABS(sr.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sr.num) END) * su.factor_to_si / tu.factor_to_si)
                         <= 0.01 * (CASE WHEN ABS(sr.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sr.num) END) * su.factor_to_si / tu.factor_to_si
                     AND EXISTS (
                       SELECT 1 FROM value sc
                       WHERE sc.run_id = c.cand_run_id AND sc.key_id = st.key_id
                         AND sc.kind = 'num'
                         AND ABS(ABS(td.cand_num) - (CASE WHEN ABS(sc.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sc.num) END) * su.factor_to_si / tu.factor_to_si)
                             <= 0.01 * (CASE WHEN ABS(sc.num) BETWEEN 1e-150 AND 1e150 THEN ABS(sc.num) END) * su.factor_to_si / tu.factor_to_si)
                    THEN st.seq END) AS cand_seq
    FROM comparison c
    JOIN unit tu ON tu.symbol = tap_result.unit
    -- the tap's name stem, worked out once (none when its unit came from the other
    -- side's name)
    LEFT JOIN (
      SELECT substr(tap_result.ref_name, 1, length(tap_result.ref_name) - length(a.suffix))
               AS stem
      FROM unit_suffix a
      WHERE a.unit = tap_result.unit AND length(tap_result.ref_name) > length(a.suffix)
        AND substr(tap_result.ref_name, length(tap_result.ref_name) - length(a.suffix) + 1)
            = a.suffix
      ORDER BY length(a.suffix) DESC
      LIMIT 1) ts ON 1 = 1
    -- the tap's diverged components (those with its ratio)
    JOIN component_delta td ON td.comparison_id = c.id AND td.ref_tap_id = tap_result.ref_tap_id
    -- its siblings in the reference run, present in the candidate run, and their numbers
    JOIN tap st ON st.run_id = c.ref_run_id
    JOIN unit su ON su.symbol = st.unit AND su.dimension = tu.dimension
    JOIN tap sk ON sk.run_id = c.cand_run_id AND sk.key_id = st.key_id
    JOIN value sr ON sr.run_id = st.run_id AND sr.key_id = st.key_id
    WHERE c.id = tap_result.comparison_id
      AND td.ref_kind = 'num' AND td.cand_kind = 'num'
      AND ABS(td.ratio - tap_result.min_ratio) <= 1e-6 * ABS(tap_result.min_ratio)
      AND st.id <> tap_result.ref_tap_id
      AND sr.kind = 'num'
      AND (su.symbol = tu.symbol
           OR EXISTS (SELECT 1 FROM unit_suffix b
                      WHERE b.unit = su.symbol AND st.name = ts.stem || b.suffix))
  ) w)
WHERE set_id = CAST(:set_id AS INTEGER) AND hint_ref_unit IS NOT NULL AND unit IS NOT NULL
