"""Each run's tap digests in key order, ``run.tap_digests``, so the comparison pairs
the taps of two runs of one shape by position instead of one index look-up per tap
pair.

``tap_digests`` (``tracedb.store.layout.digest_list``) holds 8 bytes per tap, its
digest in key id order (big-endian, signed; 0 for a tap without one). Two runs of
one shape (``shape_sig``) hold the same keys in the same order, so
``tracedb.compare.engine`` finds the taps whose digests differ by comparing the two
lists, and only those, with the pairs of runs of two shapes, go to
``queries/steps/compare_flag.sql``. Ingest writes it with the shape signature;
``tracedb db rekey`` refreshes both and ``tracedb db check`` reports a list that is
not its taps'.

Cost: ADD COLUMN (no rewrite), then one pass over the taps in key order (the index
on run, key, length, digest) and one UPDATE per run. A NULL list (a run this
revision did not reach) only makes the comparison look its taps up as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from tracedb.store.health import run_shapes

    op.add_column("run", sa.Column("tap_digests", sa.LargeBinary))
    bind = op.get_bind()
    lists = [{"id": run_id, "d": digests} for run_id, _sig, digests in run_shapes(bind)]
    update = sa.text("UPDATE run SET tap_digests = :d WHERE id = :id")
    for i in range(0, len(lists), 5000):
        bind.execute(update, lists[i:i + 5000])


def downgrade() -> None:
    # in place (SQLite 3.35+, PostgreSQL), as 0016's downgrade
    op.execute("ALTER TABLE run DROP COLUMN tap_digests")
