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
(queries/steps/compare.sql) and answers every later question from that table.
The status rules are written once, in ``migrations/tracedb_status_rules.py``,
for these views and for 0005, which re-keys them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from tracedb_status_rules import views_by_name

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOUBLE = sa.Float(precision=53)

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
    # tap_status of one comparison set, materialised by queries/steps/compare.sql and
    # completed by queries/steps/unit_hints.sql.
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
    for sql in views_by_name():
        op.execute(sql)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.execute("DELETE FROM tap_alias WHERE name = 'I_before_scaling_pre_polar'")
    op.drop_table("tap_result")
    op.drop_table("comparison")
    op.drop_table("comparison_set")
