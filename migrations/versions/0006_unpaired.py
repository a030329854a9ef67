"""Unpaired pixels: a comparison may lack its reference run or its candidate run.

When a pixel has a run on one side only (the other program crashed, or its trace
is empty or was never loaded), ``tracedb diverge``, ``timeline``, ``regress`` and
reports still list it: its ``comparison`` row holds the run there is and NULL for
the missing one (never both: ``ck_comparison_has_a_run``). The views need no
change: with no candidate run every reference tap is ``missing_cand``, with no
reference run every candidate tap ``missing_ref``, and nothing is compared.

PostgreSQL drops the two NOT NULL constraints in place. SQLite cannot, so the
table is made again: its rows are copied aside, the table dropped and created
with the new definition, and the rows put back. ``PRAGMA foreign_keys`` cannot
change inside the revision's transaction; ``defer_foreign_keys`` lets the drop
leave ``tap_result`` and ``tap_flag`` rows pointing at no comparison until the
same rows are back, before the commit checks them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RUN_COLUMNS = ("ref_run_id", "cand_run_id")
HAS_A_RUN = "ck_comparison_has_a_run"
UNPAIRED = "SELECT id FROM comparison WHERE ref_run_id IS NULL OR cand_run_id IS NULL"


def _columns(runs_nullable: bool) -> list:
    """The comparison table of 0003, its run columns nullable or not."""
    out = [
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("set_id", ID, sa.ForeignKey("comparison_set.id"), nullable=False),
        sa.Column("grp", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("ref_run_id", ID, sa.ForeignKey("run.id"), nullable=runs_nullable),
        sa.Column("cand_run_id", ID, sa.ForeignKey("run.id"), nullable=runs_nullable),
        sa.Column("pairing", sa.Text),
    ]
    if runs_nullable:
        out.append(sa.CheckConstraint("ref_run_id IS NOT NULL OR cand_run_id IS NOT NULL",
                                      name=HAS_A_RUN))
    return out


def _remake_on_sqlite(runs_nullable: bool) -> None:
    cols = "id, set_id, grp, ordinal, ref_run_id, cand_run_id, pairing"
    op.execute("PRAGMA defer_foreign_keys = ON")
    # Each comparison row dropped and put back looks up the results that refer to it;
    # tap_result's own index leads with set_id, so for the time of the remake it gets
    # one by comparison (without it every row would scan the whole table).
    op.create_index("ix_tap_result_0006", "tap_result", ["comparison_id"])
    op.execute(f"CREATE TEMP TABLE comparison_copy AS SELECT {cols} FROM comparison")
    op.drop_table("comparison")
    op.create_table("comparison", *_columns(runs_nullable))
    op.execute(f"INSERT INTO comparison ({cols}) SELECT {cols} FROM comparison_copy")
    op.execute("DROP TABLE comparison_copy")
    op.drop_index("ix_tap_result_0006", table_name="tap_result")
    op.create_index("ix_comparison_set", "comparison", ["set_id", "grp", "ordinal"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _remake_on_sqlite(runs_nullable=True)
        return
    for col in RUN_COLUMNS:
        op.alter_column("comparison", col, existing_type=ID, nullable=True)
    op.create_check_constraint(HAS_A_RUN, "comparison",
                               "ref_run_id IS NOT NULL OR cand_run_id IS NOT NULL")


def downgrade() -> None:
    # 0005 has no place for a comparison with one run: those go, with their results
    # (the sets that held them lack those pixels afterwards; compare again).
    for table in ("tap_result", "tap_flag"):
        op.execute(f"DELETE FROM {table} WHERE comparison_id IN ({UNPAIRED})")
    op.execute("DELETE FROM comparison WHERE ref_run_id IS NULL OR cand_run_id IS NULL")
    if op.get_bind().dialect.name == "sqlite":
        _remake_on_sqlite(runs_nullable=False)
        return
    op.drop_constraint(HAS_A_RUN, "comparison", type_="check")
    for col in RUN_COLUMNS:
        op.alter_column("comparison", col, existing_type=ID, nullable=False)
