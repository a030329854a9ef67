"""Divergence engine: comparison sets, the views that pair and judge taps, results.

A *comparison set* is one request (tolerance + a list of run pairs); each
*comparison* pairs a reference run with a candidate run. Three views hold the
semantics, so any SQL client can ask the same questions as ``tracedb diverge``:

- ``tap_pair``: taps of the two runs paired by (channel, key_name, loop_key,
  key_occurrence), taps on one side only included;
- ``component_delta``: per value component, the deltas, ratio and status;
- ``tap_status``: per paired tap, its worst component (or missing/accepted).

    SELECT key_name, ref_line, cand_line, status FROM tap_status
    WHERE set_id = 1 ORDER BY comparison_id, ref_seq;

``tracedb`` materialises ``tap_status`` of a set into ``tap_result`` once
(queries/compare.sql) and answers every later question from that table.
The view text is the same on SQLite and PostgreSQL (no GREATEST, no FULL JOIN,
no string aggregation); the status rules are written once below and used by
both views.

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
DOUBLE = sa.Float(precision=53)

_BOTH = "rv.kind = 'num' AND cv.kind = 'num'"
_DELTA = "ABS(rv.num - cv.num)"
_MAXABS = "(CASE WHEN ABS(rv.num) >= ABS(cv.num) THEN ABS(rv.num) ELSE ABS(cv.num) END)"
_HALF = "(CASE WHEN rv.half_ulp >= cv.half_ulp THEN rv.half_ulp ELSE cv.half_ulp END)"

ABS_DELTA = f"(CASE WHEN {_BOTH} THEN {_DELTA} END)"
REL_DELTA = f"(CASE WHEN {_BOTH} AND (rv.num <> 0 OR cv.num <> 0) THEN {_DELTA} / {_MAXABS} END)"
RATIO = f"(CASE WHEN {_BOTH} AND cv.num <> 0 THEN rv.num / cv.num END)"
# |a-b| <= atol + rtol*max(|a|,|b|); -0 == 0 numerically; nan, inf, -inf and
# strings compare by kind and text; a component missing on one side (vectors of
# different length) diverges; outside tolerance but within half a unit in the
# last written digit of the less precise side is 'print_precision'.
STATUS = f"""(CASE
  WHEN rv.kind IS NULL OR cv.kind IS NULL THEN 'diverged'
  WHEN rv.kind = 'text' OR cv.kind = 'text' THEN
       CASE WHEN rv.kind = cv.kind AND rv.text = cv.text THEN 'match' ELSE 'diverged' END
  WHEN rv.kind <> 'num' OR cv.kind <> 'num' THEN
       CASE WHEN rv.kind = cv.kind THEN 'match' ELSE 'diverged' END
  WHEN {_DELTA} <= s.atol + s.rtol * {_MAXABS} THEN 'match'
  WHEN {_DELTA} <= {_HALF} THEN 'print_precision'
  ELSE 'diverged' END)"""

_PAIRED = """FROM comparison c
JOIN comparison_set s ON s.id = c.set_id
JOIN tap r ON r.run_id = c.ref_run_id
LEFT JOIN tap k ON k.run_id = c.cand_run_id AND k.channel = r.channel
     AND k.key_name = r.key_name AND k.loop_key = r.loop_key
     AND k.key_occurrence = r.key_occurrence"""

_CAND_ONLY = """FROM comparison c
JOIN tap k ON k.run_id = c.cand_run_id
WHERE NOT EXISTS (SELECT 1 FROM tap r WHERE r.run_id = c.ref_run_id
                  AND r.channel = k.channel AND r.key_name = k.key_name
                  AND r.loop_key = k.loop_key AND r.key_occurrence = k.key_occurrence)"""

_PAIR_COLS = """c.set_id AS set_id, c.id AS comparison_id, r.id AS ref_tap_id, k.id AS cand_tap_id,
       r.channel AS channel, r.key_name AS key_name, r.loop_key AS loop_key,
       r.key_occurrence AS occurrence, r.seq AS ref_seq, k.seq AS cand_seq,
       r.line_no AS ref_line, k.line_no AS cand_line, r.name AS ref_name, k.name AS cand_name,
       COALESCE(r.unit, k.unit) AS unit, r.n_components AS ref_n, k.n_components AS cand_n,
       r.value_text AS ref_value, k.value_text AS cand_value"""

_CAND_ONLY_COLS = """c.set_id, c.id, NULL, k.id, k.channel, k.key_name, k.loop_key,
       k.key_occurrence, NULL, k.seq, NULL, k.line_no, NULL, k.name, k.unit, NULL,
       k.n_components, NULL, k.value_text"""

TAP_PAIR = f"""
CREATE VIEW tap_pair AS
SELECT {_PAIR_COLS}
{_PAIRED}
UNION ALL
SELECT {_CAND_ONLY_COLS}
{_CAND_ONLY}
"""

COMPONENT_DELTA = f"""
CREATE VIEW component_delta AS
SELECT c.set_id AS set_id, c.id AS comparison_id, r.id AS ref_tap_id, k.id AS cand_tap_id,
       r.key_name AS key_name, rv.idx AS idx, rv.label AS ref_label, cv.label AS cand_label,
       rv.text AS ref_text, cv.text AS cand_text, rv.kind AS ref_kind, cv.kind AS cand_kind,
       rv.num AS ref_num, cv.num AS cand_num, rv.half_ulp AS ref_half_ulp,
       cv.half_ulp AS cand_half_ulp, s.rtol AS rtol, s.atol AS atol,
       {ABS_DELTA} AS abs_delta, {REL_DELTA} AS rel_delta, {RATIO} AS ratio,
       {STATUS} AS status
{_PAIRED}
JOIN value rv ON rv.tap_id = r.id
LEFT JOIN value cv ON cv.tap_id = k.id AND cv.idx = rv.idx
WHERE k.id IS NOT NULL
"""

_ACCEPTED_WHERE = """ad.name IN (r.key_name, r.name, k.name)
         AND (ad.channel = '*' OR ad.channel = r.channel)
         AND (ad.loop_key IS NULL OR ad.loop_key = r.loop_key)
         AND (ad.run_id IS NULL OR ad.run_id = c.ref_run_id OR ad.run_id = c.cand_run_id)"""

_N_DIV = f"SUM(CASE WHEN {STATUS} = 'diverged' THEN 1 ELSE 0 END)"
_N_PP = f"SUM(CASE WHEN {STATUS} = 'print_precision' THEN 1 ELSE 0 END)"
_DIVERGED = f"({_N_DIV} > 0 OR r.n_components <> k.n_components)"

TAP_STATUS = f"""
CREATE VIEW tap_status AS
SELECT {_PAIR_COLS},
       {_N_DIV} AS n_diverged, {_N_PP} AS n_print_precision,
       MAX({ABS_DELTA}) AS max_abs_delta, MAX({REL_DELTA}) AS max_rel_delta,
       MIN(CASE WHEN {STATUS} = 'diverged' AND {RATIO} <> 0 THEN {RATIO} END) AS min_ratio,
       MAX(CASE WHEN {STATUS} = 'diverged' AND {RATIO} <> 0 THEN {RATIO} END) AS max_ratio,
       SUM(CASE WHEN {STATUS} = 'diverged' AND {RATIO} <> 0 THEN 1 ELSE 0 END) AS n_ratio,
       CASE
         WHEN k.id IS NULL THEN 'missing_cand'
         WHEN {_DIVERGED} AND EXISTS (SELECT 1 FROM accepted_divergence ad
                                      WHERE {_ACCEPTED_WHERE}) THEN 'accepted'
         WHEN {_DIVERGED} THEN 'diverged'
         WHEN {_N_PP} > 0 THEN 'print_precision'
         ELSE 'match'
       END AS status,
       CASE WHEN k.id IS NOT NULL AND {_DIVERGED}
            THEN (SELECT ad.reason FROM accepted_divergence ad WHERE {_ACCEPTED_WHERE}
                  ORDER BY ad.id LIMIT 1) END AS accepted_reason
{_PAIRED}
LEFT JOIN value rv ON rv.tap_id = r.id AND k.id IS NOT NULL
LEFT JOIN value cv ON cv.tap_id = k.id AND cv.idx = rv.idx
-- in the order the indexes deliver rows (ix_comparison_set, then ix_tap_pairing),
-- so the grouping streams instead of sorting
GROUP BY c.set_id, c.grp, c.ordinal, c.id, r.channel, r.key_name, r.loop_key,
         r.key_occurrence, r.id, k.id
UNION ALL
SELECT {_CAND_ONLY_COLS},
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'missing_ref', NULL
{_CAND_ONLY}
"""

VIEWS = ["tap_pair", "component_delta", "tap_status"]


def upgrade() -> None:
    op.create_table(
        "comparison_set",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("request_key", sa.String(64), nullable=False),  # same request, same key
        sa.Column("rtol", DOUBLE, nullable=False),
        sa.Column("atol", DOUBLE, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_index("ix_comparison_set_key", "comparison_set", ["request_key"])
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
    # tap_status of one comparison set, materialised by queries/compare.sql and
    # completed by queries/unit_hints.sql.
    op.create_table(
        "tap_result",
        sa.Column("set_id", ID, sa.ForeignKey("comparison_set.id"), nullable=False),
        sa.Column("comparison_id", ID, sa.ForeignKey("comparison.id"), nullable=False),
        sa.Column("ref_tap_id", ID), sa.Column("cand_tap_id", ID),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("key_name", sa.Text, nullable=False),
        sa.Column("loop_key", sa.Text, nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("ref_seq", sa.Integer), sa.Column("cand_seq", sa.Integer),
        sa.Column("ref_line", sa.Integer), sa.Column("cand_line", sa.Integer),
        sa.Column("ref_name", sa.Text), sa.Column("cand_name", sa.Text),
        sa.Column("unit", sa.Text),
        sa.Column("ref_n", sa.Integer), sa.Column("cand_n", sa.Integer),
        sa.Column("ref_value", sa.Text), sa.Column("cand_value", sa.Text),
        sa.Column("n_diverged", sa.Integer), sa.Column("n_print_precision", sa.Integer),
        sa.Column("max_abs_delta", DOUBLE), sa.Column("max_rel_delta", DOUBLE),
        sa.Column("min_ratio", DOUBLE), sa.Column("max_ratio", DOUBLE),
        sa.Column("n_ratio", sa.Integer),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("accepted_reason", sa.Text),
        sa.Column("hint_ref_unit", sa.Text), sa.Column("hint_cand_unit", sa.Text),
    )
    op.create_index("ix_tap_result", "tap_result", ["set_id", "comparison_id", "ref_seq"])
    alias = sa.table("tap_alias", sa.column("channel"), sa.column("name"),
                     sa.column("canonical"), sa.column("note"))
    op.bulk_insert(alias, [dict(
        channel="*", name="I_before_scaling_pre_polar", canonical="I_before_scaling",
        note="PyTorch traces split I_before_scaling around the polarization factor; "
             "the C value is the pre-polarization one")])
    for sql in (TAP_PAIR, COMPONENT_DELTA, TAP_STATUS):
        op.execute(sql)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.execute("DELETE FROM tap_alias WHERE name = 'I_before_scaling_pre_polar'")
    op.drop_table("tap_result")
    op.drop_table("comparison")
    op.drop_table("comparison_set")
