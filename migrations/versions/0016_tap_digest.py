"""Tap digests: ``tap.digest``, so the comparison skips the values of a tap pair
that plainly matches.

A tap's digest (``tracedb.ingest.rows.tap_digest``, also in the C accelerator) is a
64-bit integer of its numbers to 44 bits of mantissa and its special values (nan,
inf, -inf), in order; NULL when a component has a label or is a text, or a number
lies outside 1e-150..1e150. Two taps of one length with equal digests hold numbers
within 2**-44 of each other (relatively) and the same special values (a single
differing component always changes the digest), so under any rtol >= 2**-43 with
atol within the band their values plainly match and ``compare_flag`` does not read
them. ``ix_tap_key`` gains the digest, so the tap pairs are read from the index
alone. The digests are ``tap_digest``'s with this revision's 44 bits of a number
(8 dropped; labelled and text taps get 0017's digests, which are as sound): a change
of the digest comes with a migration that computes them again (0018: 41 bits), and
``db check`` reports a digest that is not its values'.

Cost: ADD COLUMN (no rewrite) and the index rebuilt; then one pass over the value
rows, run by run, in Python (C's digest when the accelerator is built), and one
UPDATE per tap: about a minute per 10 million values on SQLite. A tap without
value rows keeps a NULL digest, which compares as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: The low bits of a number that this revision's digest drops (44 bits kept).
DROP_BITS = 8


def upgrade() -> None:
    from tracedb.ingest.rows import digest_dropping
    from tracedb.store.health import run_ranges, value_digests

    op.add_column("tap", sa.Column("digest", sa.BigInteger))
    bind = op.get_bind()
    update = sa.text("UPDATE tap SET digest = :d WHERE run_id = :r AND key_id = :k")
    for low, high in run_ranges(bind):
        params = [{"r": r, "k": k, "d": d}
                  for r, k, d in value_digests(bind, digest_dropping(DROP_BITS), low, high)]
        if params:
            bind.execute(update, params)
    op.drop_index("ix_tap_key", table_name="tap")
    op.create_index("ix_tap_key", "tap", ["run_id", "key_id", "n_components", "digest"])


def downgrade() -> None:
    op.drop_index("ix_tap_key", table_name="tap")
    op.create_index("ix_tap_key", "tap", ["run_id", "key_id", "n_components"])
    # in place (SQLite 3.35+, PostgreSQL), as 0012's downgrade
    op.execute("ALTER TABLE tap DROP COLUMN digest")
