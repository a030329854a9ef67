"""Components of labelled taps pair by label; the side a unit factor puts off.

The views that compare values (``component_delta``, ``tap_status``,
``tap_status_flagged``, ``mismatch_value_key``, and ``mismatch_key`` over it)
pair a reference component with the candidate component of the same label when
both taps label their components: ``X:0.1 Y:0.2`` against ``Y:0.1 X:0.2``
diverges, ``Y:0.2 X:0.1`` matches, and a label present on one side only is a
diverged component (``BY_LABEL`` below). An unlabelled tap pairs by position, as
before. The flag test of mismatch-only comparisons still pairs by position and
also flags a key whose labels differ at a position (``LABELS_DIFFER``), which is
exact and keeps that pass as fast as it was. The rest of the views' text is
0005's (``tracedb_status_rules.keyed_views``).

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
from tracedb_status_rules import keyed_views

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The candidate component (its ``idx``) a reference component ``rv`` of a paired tap
#: pairs with: by label when both taps label their components, else by position. A
#: labelled reference component pairs with the candidate component of the same label
#: and the same rank among the components of that label (``X:1 Y:2`` against ``Y:2
#: X:1`` pairs X with X, ``a:1 a:2`` the first a with the first a). When the candidate
#: tap labels its components but none has that label and rank, the component pairs
#: with nothing (-1) and so diverges. An unlabelled component, or one against a
#: candidate tap without labels, pairs by position. The subqueries run for labelled
#: components only; the last is a scalar, not EXISTS, which PostgreSQL would hash
#: over the whole value table.
BY_LABEL = """(CASE WHEN rv.label IS NULL THEN rv.idx ELSE COALESCE(
         (SELECT MIN(x.idx) FROM value x
          WHERE x.run_id = k.run_id AND x.key_id = k.key_id AND x.label = rv.label
            AND (SELECT COUNT(*) FROM value y WHERE y.run_id = x.run_id
                   AND y.key_id = x.key_id AND y.label = x.label AND y.idx < x.idx)
              = (SELECT COUNT(*) FROM value z WHERE z.run_id = rv.run_id
                   AND z.key_id = rv.key_id AND z.label = rv.label AND z.idx < rv.idx)),
         CASE WHEN (SELECT MAX(x.label) FROM value x
                    WHERE x.run_id = k.run_id AND x.key_id = k.key_id) IS NULL
              THEN rv.idx ELSE -1 END) END)"""

#: The flag test of mismatch-only comparisons pairs components by position and also
#: flags a key with a labelled reference component whose label is not the
#: candidate's at its position. A tap labels all of its components or none (as
#: ingest reads them), so where every labelled reference component meets its label
#: at its position and the lengths agree (mismatch_tap_key checks those), BY_LABEL
#: pairs by position: the test stays exact without its subqueries. The flagged taps
#: get the full rules, which pair by label.
LABELS_DIFFER = "rv.label IS NOT NULL AND (rv.label = cv.label) IS NOT TRUE"

#: The views whose text pairs components, with mismatch_key, which reads one of them;
#: in the order they are made.
VIEWS = ["component_delta", "tap_status", "tap_status_flagged", "mismatch_value_key",
         "mismatch_key"]


def _views(made: dict[str, str]) -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    for view in VIEWS:
        op.execute(made[view])


def upgrade() -> None:
    _views(keyed_views(BY_LABEL, LABELS_DIFFER))
    op.add_column("tap_result", sa.Column("suspect", sa.Text))
    op.add_column("tap_result", sa.Column("suspect_basis", sa.Text))


def downgrade() -> None:
    op.execute("ALTER TABLE tap_result DROP COLUMN suspect_basis")
    op.execute("ALTER TABLE tap_result DROP COLUMN suspect")
    _views(keyed_views())
