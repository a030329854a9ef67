"""Taps written as JSON: where each tap is in its file, and what each file held.

A JSON trace has no line numbers: its taps keep ``tap.line_no`` 0 and their RFC 6901
JSON pointer (``/per_phi_entries/3/k_frac``) in ``tap_pointer`` (one row per JSON
tap, keyed by tap id); a quarantined JSON item keeps its pointer in
``quarantine.json_pointer`` (line 0). ``source_file.json_values`` and
``json_quarantined`` count a JSON trace's leaves as loaded and as quarantined, so
``db check`` can hold the stored rows to them. One alias is seeded: the PyTorch tap
files write ``hkl_fractional`` for what the text traces call ``hkl_frac``.

Cost: two columns added to source_file and one to quarantine (ALTER TABLE ADD
COLUMN: no table rewrite on either backend) and one empty table.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

REF = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tap_pointer",
        sa.Column("tap_id", REF, primary_key=True, autoincrement=False),
        sa.Column("json_pointer", sa.Text, nullable=False),
    )
    op.add_column("quarantine", sa.Column("json_pointer", sa.Text))
    op.add_column("source_file", sa.Column("json_values", sa.Integer, nullable=False,
                                           server_default="0"))
    op.add_column("source_file", sa.Column("json_quarantined", sa.Integer, nullable=False,
                                           server_default="0"))
    alias = sa.table("tap_alias", sa.column("channel"), sa.column("name"),
                     sa.column("canonical"), sa.column("note"))
    op.execute(alias.delete().where(alias.c.channel == "*")
               .where(alias.c.name == "hkl_fractional"))
    op.bulk_insert(alias, [dict(
        channel="*", name="hkl_fractional", canonical="hkl_frac",
        note="the PyTorch tap JSON (hkl_subpixel) writes hkl_fractional for the "
             "fractional Miller indices the text traces call hkl_frac")])


def downgrade() -> None:
    op.execute("DELETE FROM tap_alias WHERE channel = '*' AND name = 'hkl_fractional'")
    # in place (SQLite 3.35+, PostgreSQL): a batch copy of source_file would drop a
    # table the runs' foreign keys refer to
    for table, column in (("source_file", "json_quarantined"), ("source_file", "json_values"),
                          ("quarantine", "json_pointer")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table("tap_pointer")
