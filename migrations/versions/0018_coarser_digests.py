"""Tap digests of numbers to 41 bits of mantissa (44 up to 0017), so fewer tap pairs
that plainly match have two digests and get their values read.

A number's token is its sign, exponent and top 41 bits of mantissa
(``tracedb.ingest.rows.DIGEST_DROP_BITS`` = 11). Two numbers of one token lie within
2**-41 of each other, so equal digests still mean a plain match, now under any rtol
>= 2**-40 (9.1e-13; the default 1e-12 is) with rtol and atol within 1e-150..1e150
(``store.layout.DIGEST_RTOL``); below it the comparison reads every pair's values,
as it did below 2**-43. Coarser tokens put fewer matching pairs on two sides of a
token's edge: C prints 15 significant digits, PyTorch 16, and on ``benchmarks.run``'s
large campaign the tap pairs whose values the comparison reads fall from 84,360 to
about 31,000 (22,929 of them differ).

Upgrade: every tap's digest computed again from its value rows with 41 bits (one
pass over the value rows, run by run, as 0016; only a digest that changes is
written). Downgrade: the same with 0016's 44 bits. A tap without value rows, or with
a NULL digest, keeps its digest (neither has a number to round).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

#: The low bits of a number that this revision's digest drops (41 bits kept) ...
DROP_BITS = 11
#: ... and 0016's and 0017's (44 bits kept).
DROP_BITS_BEFORE = 8


def _restamp(drop: int) -> None:
    from alembic import op

    from tracedb.ingest.rows import digest_dropping
    from tracedb.store.health import restamp_digests

    restamp_digests(op.get_bind(), digest_dropping(drop))


def upgrade() -> None:
    _restamp(DROP_BITS)


def downgrade() -> None:
    _restamp(DROP_BITS_BEFORE)
