"""Divergence engine: comparison sets and the views that pair and judge taps.

A *comparison set* is one request (tolerance + a list of run pairs); each
*comparison* pairs a reference run with a candidate run. The views below turn
every comparison into paired taps, per-component deltas and per-tap statuses,
so any SQL client can ask the same questions as ``tracedb diverge``:

    SELECT key_name, status FROM tap_status WHERE comparison_id = 1 ORDER BY ref_seq;

The view text is the same on SQLite and PostgreSQL (no GREATEST, no FULL JOIN,
no string aggregation).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _maxabs(a: str, b: str) -> str:
    return f"(CASE WHEN ABS({a}) >= ABS({b}) THEN ABS({a}) ELSE ABS({b}) END)"


def _max(a: str, b: str) -> str:
    return f"(CASE WHEN {a} >= {b} THEN {a} ELSE {b} END)"


# A tap's pairing key: channel (side marker already removed at load), name after
# aliases, loop key, and the occurrence of that key in the run's trace.
TAP_KEYED = """
CREATE VIEW tap_keyed AS
SELECT k.tap_id, k.run_id, k.seq, k.line_no, k.channel, k.name, k.key_name, k.loop_key,
       ROW_NUMBER() OVER (PARTITION BY k.run_id, k.channel, k.key_name, k.loop_key
                          ORDER BY k.seq) AS occurrence,
       k.unit, k.shape, k.n_components, k.value_text
FROM (
  SELECT t.id AS tap_id, t.run_id, t.seq, t.line_no, t.channel, t.name, t.loop_key,
         COALESCE((SELECT a.canonical FROM tap_alias a
                   WHERE a.name = t.name AND (a.channel = t.channel OR a.channel = '*')
                   ORDER BY CASE WHEN a.channel = '*' THEN 1 ELSE 0 END, a.id
                   LIMIT 1), t.name) AS key_name,
         t.unit, t.shape, t.n_components, t.value_text
  FROM tap t
) k
"""

_PAIR_ON = ("{b}.channel = {a}.channel AND {b}.key_name = {a}.key_name "
            "AND {b}.loop_key = {a}.loop_key AND {b}.occurrence = {a}.occurrence")

TAP_PAIR = f"""
CREATE VIEW tap_pair AS
SELECT c.id AS comparison_id, c.set_id, r.tap_id AS ref_tap_id, k.tap_id AS cand_tap_id,
       r.channel, r.key_name, r.loop_key, r.occurrence,
       r.seq AS ref_seq, k.seq AS cand_seq, r.line_no AS ref_line, k.line_no AS cand_line,
       r.name AS ref_name, k.name AS cand_name, COALESCE(r.unit, k.unit) AS unit,
       r.n_components AS ref_n, k.n_components AS cand_n,
       r.value_text AS ref_value, k.value_text AS cand_value
FROM comparison c
JOIN tap_keyed r ON r.run_id = c.ref_run_id
LEFT JOIN tap_keyed k ON k.run_id = c.cand_run_id AND {_PAIR_ON.format(a="r", b="k")}
UNION ALL
SELECT c.id, c.set_id, NULL, k.tap_id, k.channel, k.key_name, k.loop_key, k.occurrence,
       NULL, k.seq, NULL, k.line_no, NULL, k.name, k.unit, NULL, k.n_components,
       NULL, k.value_text
FROM comparison c
JOIN tap_keyed k ON k.run_id = c.cand_run_id
WHERE NOT EXISTS (SELECT 1 FROM tap_keyed r
                  WHERE r.run_id = c.ref_run_id AND {_PAIR_ON.format(a="k", b="r")})
"""

# Components of paired taps, matched by index; a component on one side only
# (vectors of different length) appears with the other side NULL.
_COMPONENT_COLS = """p.comparison_id, p.set_id, p.ref_tap_id, p.cand_tap_id, {idx} AS idx,
       rv.label AS ref_label, cv.label AS cand_label, rv.text AS ref_text, cv.text AS cand_text,
       rv.kind AS ref_kind, cv.kind AS cand_kind, rv.num AS ref_num, cv.num AS cand_num,
       rv.half_ulp AS ref_half_ulp, cv.half_ulp AS cand_half_ulp"""

COMPONENT_PAIR = f"""
CREATE VIEW component_pair AS
SELECT {_COMPONENT_COLS.format(idx="rv.idx")}
FROM tap_pair p
JOIN value rv ON rv.tap_id = p.ref_tap_id
LEFT JOIN value cv ON cv.tap_id = p.cand_tap_id AND cv.idx = rv.idx
WHERE p.cand_tap_id IS NOT NULL
UNION ALL
SELECT {_COMPONENT_COLS.format(idx="cv.idx")}
FROM tap_pair p
JOIN value cv ON cv.tap_id = p.cand_tap_id
LEFT JOIN value rv ON rv.tap_id = p.ref_tap_id AND rv.idx = cv.idx
WHERE p.ref_tap_id IS NOT NULL AND rv.tap_id IS NULL
"""

_DELTA = "ABS(d.ref_num - d.cand_num)"
_BOTH = "d.ref_kind = 'num' AND d.cand_kind = 'num'"

# |a-b| <= atol + rtol*max(|a|,|b|); -0 == 0 numerically; nan, inf, -inf and
# strings compare by kind and text; outside tolerance but within half a unit in
# the last written digit of the less precise side is 'print_precision'.
COMPONENT_DELTA = f"""
CREATE VIEW component_delta AS
SELECT d.*, s.rtol, s.atol,
       CASE WHEN {_BOTH} THEN {_DELTA} END AS abs_delta,
       CASE WHEN {_BOTH} AND (d.ref_num <> 0 OR d.cand_num <> 0)
            THEN {_DELTA} / {_maxabs("d.ref_num", "d.cand_num")} END AS rel_delta,
       CASE WHEN {_BOTH} AND d.cand_num <> 0 THEN d.ref_num / d.cand_num END AS ratio,
       CASE
         WHEN d.ref_kind IS NULL OR d.cand_kind IS NULL THEN 'diverged'
         WHEN d.ref_kind = 'text' OR d.cand_kind = 'text' THEN
              CASE WHEN d.ref_kind = d.cand_kind AND d.ref_text = d.cand_text
                   THEN 'match' ELSE 'diverged' END
         WHEN d.ref_kind <> 'num' OR d.cand_kind <> 'num' THEN
              CASE WHEN d.ref_kind = d.cand_kind THEN 'match' ELSE 'diverged' END
         WHEN {_DELTA} <= s.atol + s.rtol * {_maxabs("d.ref_num", "d.cand_num")} THEN 'match'
         WHEN {_DELTA} <= {_max("d.ref_half_ulp", "d.cand_half_ulp")} THEN 'print_precision'
         ELSE 'diverged'
       END AS status
FROM component_pair d
JOIN comparison_set s ON s.id = d.set_id
"""

_ACCEPTED_WHERE = """ad.name IN (p.key_name, p.ref_name, p.cand_name)
         AND (ad.channel = '*' OR ad.channel = p.channel)
         AND (ad.loop_key IS NULL OR ad.loop_key = p.loop_key)
         AND (ad.run_id IS NULL OR ad.run_id IN (SELECT c2.ref_run_id FROM comparison c2
                                                  WHERE c2.id = p.comparison_id
                                                  UNION ALL
                                                  SELECT c3.cand_run_id FROM comparison c3
                                                  WHERE c3.id = p.comparison_id))"""

_DIVERGED = "(a.n_diverged > 0 OR p.ref_n <> p.cand_n)"

TAP_STATUS = f"""
CREATE VIEW tap_status AS
SELECT p.*,
       a.n_diverged, a.n_print_precision, a.max_abs_delta, a.max_rel_delta,
       a.min_ratio, a.max_ratio, a.n_ratio,
       CASE
         WHEN p.ref_tap_id IS NULL THEN 'missing_ref'
         WHEN p.cand_tap_id IS NULL THEN 'missing_cand'
         WHEN {_DIVERGED} AND EXISTS (SELECT 1 FROM accepted_divergence ad
                                      WHERE {_ACCEPTED_WHERE}) THEN 'accepted'
         WHEN {_DIVERGED} THEN 'diverged'
         WHEN a.n_print_precision > 0 THEN 'print_precision'
         ELSE 'match'
       END AS status,
       CASE WHEN p.ref_tap_id IS NOT NULL AND p.cand_tap_id IS NOT NULL AND {_DIVERGED}
            THEN (SELECT ad.reason FROM accepted_divergence ad WHERE {_ACCEPTED_WHERE}
                  ORDER BY ad.id LIMIT 1) END AS accepted_reason
FROM tap_pair p
LEFT JOIN (
  SELECT comparison_id, ref_tap_id, cand_tap_id,
         SUM(CASE WHEN status = 'diverged' THEN 1 ELSE 0 END) AS n_diverged,
         SUM(CASE WHEN status = 'print_precision' THEN 1 ELSE 0 END) AS n_print_precision,
         MAX(abs_delta) AS max_abs_delta, MAX(rel_delta) AS max_rel_delta,
         MIN(CASE WHEN status = 'diverged' AND ratio <> 0 THEN ratio END) AS min_ratio,
         MAX(CASE WHEN status = 'diverged' AND ratio <> 0 THEN ratio END) AS max_ratio,
         SUM(CASE WHEN status = 'diverged' AND ratio <> 0 THEN 1 ELSE 0 END) AS n_ratio
  FROM component_delta
  GROUP BY comparison_id, ref_tap_id, cand_tap_id
) a ON a.comparison_id = p.comparison_id AND a.ref_tap_id = p.ref_tap_id
   AND a.cand_tap_id = p.cand_tap_id
"""

# When every diverged component has the same ratio ref/cand and that ratio is a
# conversion factor between two units of one dimension, the units each side
# appears to use. Pairs that include the unit named by the tap rank first.
TAP_UNIT_HINT = """
CREATE VIEW tap_unit_hint AS
SELECT comparison_id, ref_tap_id, cand_tap_id, ref_unit, cand_unit, factor, dimension
FROM (
  SELECT ts.comparison_id, ts.ref_tap_id, ts.cand_tap_id, ur.symbol AS ref_unit,
         uc.symbol AS cand_unit, uc.factor_to_si / ur.factor_to_si AS factor,
         ur.dimension AS dimension,
         ROW_NUMBER() OVER (
           PARTITION BY ts.comparison_id, ts.ref_tap_id
           ORDER BY CASE WHEN ts.unit = ur.symbol OR ts.unit = uc.symbol THEN 0 ELSE 1 END,
                    ur.symbol, uc.symbol) AS pick
  FROM tap_status ts
  JOIN unit ur ON 1 = 1
  JOIN unit uc ON uc.dimension = ur.dimension AND uc.symbol <> ur.symbol
  LEFT JOIN unit tu ON tu.symbol = ts.unit
  WHERE ts.status IN ('diverged', 'accepted')
    AND ts.n_ratio > 0 AND ts.n_ratio = ts.n_diverged
    AND ts.min_ratio * ts.max_ratio > 0
    AND ABS(ts.max_ratio / ts.min_ratio - 1) <= 1e-6
    AND ABS(ts.min_ratio / (uc.factor_to_si / ur.factor_to_si) - 1) <= 1e-6
    AND (tu.symbol IS NULL OR tu.dimension = ur.dimension)
) x
WHERE pick = 1
"""

VIEWS = ["tap_keyed", "tap_pair", "component_pair", "component_delta", "tap_status",
         "tap_unit_hint"]


def upgrade() -> None:
    op.create_table(
        "comparison_set",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("request_key", sa.String(64), nullable=False, unique=True),
        sa.Column("rtol", sa.Float(precision=53), nullable=False),
        sa.Column("atol", sa.Float(precision=53), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "comparison",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("set_id", ID, sa.ForeignKey("comparison_set.id"), nullable=False),
        sa.Column("grp", sa.Integer, nullable=False),  # e.g. one group per pixel
        sa.Column("ordinal", sa.Integer, nullable=False),  # order within the group
        sa.Column("ref_run_id", ID, sa.ForeignKey("run.id"), nullable=False),
        sa.Column("cand_run_id", ID, sa.ForeignKey("run.id"), nullable=False),
        sa.Column("pairing", sa.Text),  # how the runs were paired
    )
    op.create_index("ix_comparison_set", "comparison", ["set_id", "grp", "ordinal"])
    alias = sa.table("tap_alias", sa.column("channel"), sa.column("name"),
                     sa.column("canonical"), sa.column("note"))
    op.bulk_insert(alias, [dict(
        channel="*", name="I_before_scaling_pre_polar", canonical="I_before_scaling",
        note="PyTorch traces split I_before_scaling around the polarization factor; "
             "the C value is the pre-polarization one")])
    for sql in (TAP_KEYED, TAP_PAIR, COMPONENT_PAIR, COMPONENT_DELTA, TAP_STATUS,
                TAP_UNIT_HINT):
        op.execute(sql)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.execute("DELETE FROM tap_alias WHERE name = 'I_before_scaling_pre_polar'")
    op.drop_table("comparison")
    op.drop_table("comparison_set")
