"""Components of labelled taps pair by label; the side a unit factor puts off.

The views that compare values (``component_delta``, ``tap_status``,
``tap_status_flagged``, ``mismatch_value_key``, and ``mismatch_key`` over it)
pair a reference component with the candidate component of the same label when
both taps label their components: ``X:0.1 Y:0.2`` against ``Y:0.1 X:0.2``
diverges, ``Y:0.2 X:0.1`` matches, and a label present on one side only is a
diverged component (``BY_LABEL`` in ``tracedb_status_rules``, which 0009 shares).
An unlabelled tap pairs by position, as before. The flag test of mismatch-only
comparisons still pairs by position and also flags a key whose labels differ at a
position (``LABELS_DIFFER``), which is exact and keeps that pass as fast as it was.
The rest of the views' text is 0005's (``tracedb_status_rules.keyed_views``).

``tap_result.suspect`` ('ref', 'cand' or NULL) and ``tap_result.suspect_basis``:
for a tap with a unit hint, the side whose value is off, decided from the data
by ``queries/steps/unit_suspects.sql`` (the other side's value agrees with a tap
of the same unit or name stem on both sides, named in ``suspect_basis``); NULL
when the data cannot decide.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from tracedb_status_rules import BY_LABEL, LABELS_DIFFER, keyed_views, remake_value_views

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

def upgrade() -> None:
    remake_value_views(op.execute, keyed_views(BY_LABEL, LABELS_DIFFER))
    op.add_column("tap_result", sa.Column("suspect", sa.Text))
    op.add_column("tap_result", sa.Column("suspect_basis", sa.Text))


def downgrade() -> None:
    op.execute("ALTER TABLE tap_result DROP COLUMN suspect_basis")
    op.execute("ALTER TABLE tap_result DROP COLUMN suspect")
    remake_value_views(op.execute, keyed_views())
