"""Continuation lines: ``source_file.continuation_lines``.

A TRACE record may go on over indented lines (``TRACE_SIM_F_LATT: pixel=(1792,2048)
Na=5.0`` then ``  h_mean=... k_mean=...``). Those lines belong to the record: their
taps are stored, or the line is quarantined, and ``trace_lines`` counts them, so
``parsed_lines + quarantined_lines = trace_lines`` still holds. This column says how
many of a file's trace lines are such continuation lines (0 for files loaded before:
``source_file.parser`` says which parser read a file, and parsers up to v2 did not
read continuation lines).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN on both backends (no table copy: other tables refer to this one)
    op.add_column("source_file", sa.Column("continuation_lines", sa.Integer, nullable=False,
                                           server_default="0"))


def downgrade() -> None:
    op.execute("ALTER TABLE source_file DROP COLUMN continuation_lines")
