"""Tap digests for labelled and text taps, so the comparison skips their values too
when they plainly match.

Up to 0016 a tap with a label or a text component had no digest (NULL), because a
text's hash and a number's token shared one space (a text and a number could share
a digest). From this revision a text and a label are tokens of spaces of their own
(``tracedb.ingest.rows.tap_digest``: the top two bits of a number's token are 00, a
text's 10, a label's 11; a text or label of up to 7 UTF-8 bytes exactly, a longer one
hashed), so two taps with equal digests hold the same labels in the same order, the
same texts and numbers within 2**-44 of each other: under any
rtol >= 2**-43 with atol within the band they plainly match (labels in one order
pair by position, as the status rules pair them by label). The digest of a tap of
plain numbers and special values is unchanged.

Upgrade: the taps without a digest get the one their values give (the taps whose
numbers lie outside 1e-150..1e150, whose text is no valid UTF-8 or whose kind is
none the status rules know keep NULL):
one pass over the value rows, run by run, as 0016. Downgrade: the taps with a
labelled or text component lose their digest again.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


#: The low bits of a number that this revision's digest drops (44 bits kept, as 0016).
DROP_BITS = 8


def upgrade() -> None:
    from tracedb.ingest.rows import digest_dropping
    from tracedb.store.health import run_ranges, value_digests

    digest = digest_dropping(DROP_BITS)

    bind = op.get_bind()
    update = sa.text("UPDATE tap SET digest = :d WHERE run_id = :r AND key_id = :k")
    for low, high in run_ranges(bind):
        missing = {tuple(x) for x in bind.execute(sa.text(
            "SELECT run_id, key_id FROM tap WHERE run_id >= :a AND run_id < :b "
            "AND digest IS NULL"), {"a": low, "b": high})}
        if not missing:
            continue
        params = [{"r": r, "k": k, "d": d} for r, k, d in value_digests(bind, digest, low, high)
                  if d is not None and (r, k) in missing]
        if params:
            bind.execute(update, params)


def downgrade() -> None:
    op.execute("UPDATE tap SET digest = NULL WHERE EXISTS (SELECT 1 FROM value v "
               "WHERE v.run_id = tap.run_id AND v.key_id = tap.key_id "
               "AND (v.label IS NOT NULL OR v.kind = 'text'))")
