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
on run, key, length, digest), written 5,000 runs at a time: 6.0 s for 57,600 runs
and 4.6 million taps on SQLite. A NULL list (a run this revision did not reach) only
makes the comparison look its taps up as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import struct

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

#: Runs whose lists one UPDATE writes.
BATCH = 5000


def _packed(digests: list) -> bytes:
    """This revision's list: 8 bytes a tap, big-endian and signed, 0 for none."""
    return struct.pack(f">{len(digests)}q", *[0 if d is None else d for d in digests])


def upgrade() -> None:
    op.add_column("run", sa.Column("tap_digests", sa.LargeBinary))
    bind = op.get_bind()
    update = sa.text("UPDATE run SET tap_digests = :d WHERE id = :id")
    pending: list[dict] = []
    run_id, digests = None, []
    taps = bind.execute(sa.text("SELECT run_id, digest FROM tap ORDER BY run_id, key_id"),
                        execution_options={"stream_results": True})
    for rid, digest in taps:
        if rid != run_id:
            if run_id is not None:
                pending.append({"id": run_id, "d": _packed(digests)})
            run_id, digests = rid, []
            if len(pending) >= BATCH:
                bind.execute(update, pending)
                pending = []
        digests.append(digest)
    if run_id is not None:
        pending.append({"id": run_id, "d": _packed(digests)})
    if pending:
        bind.execute(update, pending)
    # a run without taps: the empty list
    bind.execute(sa.text("UPDATE run SET tap_digests = :d WHERE tap_digests IS NULL"),
                 {"d": b""})


def downgrade() -> None:
    # in place (SQLite 3.35+, PostgreSQL), as 0016's downgrade
    op.execute("ALTER TABLE run DROP COLUMN tap_digests")
