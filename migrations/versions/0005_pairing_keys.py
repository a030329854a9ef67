"""Pairing keys as integers; value rows stored in pairing order; mismatch-only comparisons.

A pairing key (channel, key_name, loop_key, key_occurrence) gets an integer id
in ``tap_key``; ``tap.key_id`` names it and value rows are keyed by
(run_id, key_id, idx). The values of one run are therefore stored in pairing
order, and comparing two runs is one ordered pass over the reference run's
values with a keyed look-up of each candidate value: no per-tap look-ups.

Comparisons come in two details (``comparison_set.detail``):

- ``all``: ``tap_status`` of every tap is materialised into ``tap_result``
  (as before);
- ``mismatch``: only taps that do not plainly match. ``mismatch_key`` finds, per
  comparison, the keys with a component outside ``|ref - cand| <= atol +
  rtol * |ref|`` (a condition that implies 'match'), a missing tap or a length
  difference; ``compare_flag.sql`` and ``compare_flag_shapes.sql`` (in
  ``queries/steps/``) store them in ``tap_flag``;
  ``tap_status_flagged`` is ``tap_status`` for exactly those keys (the same
  status rules, from 0003). A tap of the comparison that is absent from
  ``tap_result`` matched.

The status rules are those of 0003, from ``migrations/tracedb_status_rules.py``
(one definition for both), as are these views' texts (0008 shares them).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from tracedb_status_rules import keyed_views, views_by_name

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REF = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DOUBLE = sa.Float(precision=53)


# The view texts live in tracedb_status_rules.py (0008 makes them again, with the
# components of labelled taps paired by label): here components pair by position.
KEYED_VIEWS = keyed_views()

VIEWS = ["tap_pair", "component_delta", "tap_status", "tap_status_flagged",
         "mismatch_value_key", "mismatch_tap_key", "mismatch_key"]
OLD_VIEWS = ["tap_status", "component_delta", "tap_pair"]

VALUE_COLS = ["label", "num", "text", "kind", "digits", "half_ulp"]


def _value_columns() -> list[sa.Column]:
    return [sa.Column("label", sa.Text), sa.Column("num", DOUBLE),
            sa.Column("text", sa.Text, nullable=False), sa.Column("kind", sa.Text, nullable=False),
            sa.Column("digits", sa.Integer), sa.Column("half_ulp", DOUBLE)]


def upgrade() -> None:
    for view in OLD_VIEWS:
        op.execute(f"DROP VIEW {view}")
    op.create_table(
        "tap_key",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("key_name", sa.Text, nullable=False),
        sa.Column("loop_key", sa.Text, nullable=False),
        sa.Column("key_occurrence", sa.Integer, nullable=False),
        sa.UniqueConstraint("channel", "key_name", "loop_key", "key_occurrence",
                            name="uq_tap_key"),
    )
    op.execute("INSERT INTO tap_key (channel, key_name, loop_key, key_occurrence) "
               "SELECT DISTINCT channel, key_name, loop_key, key_occurrence FROM tap")
    op.add_column("tap", sa.Column("key_id", REF))
    op.execute("UPDATE tap SET key_id = (SELECT k.id FROM tap_key k WHERE "
               "k.channel = tap.channel AND k.key_name = tap.key_name AND "
               "k.loop_key = tap.loop_key AND k.key_occurrence = tap.key_occurrence)")
    # values keyed by (run, pairing key, component): a run's values in pairing order
    op.create_table(
        "value_by_key",
        sa.Column("run_id", REF, sa.ForeignKey("run.id"), primary_key=True),
        sa.Column("key_id", REF, primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        *_value_columns(),
        sqlite_with_rowid=False,
    )
    cols = ", ".join(VALUE_COLS)
    op.execute(f"INSERT INTO value_by_key (run_id, key_id, idx, {cols}) "
               f"SELECT t.run_id, t.key_id, v.idx, {', '.join('v.' + c for c in VALUE_COLS)} "
               "FROM value v JOIN tap t ON t.id = v.tap_id")
    op.drop_table("value")
    op.rename_table("value_by_key", "value")
    op.drop_index("ix_tap_pairing", table_name="tap")
    # No foreign key to tap_key: on PostgreSQL its per-row check costs a seventh of
    # an ingest; the loader registers every key first and `tracedb db check` reports
    # a tap whose key id names no key.
    with op.batch_alter_table("tap") as batch:
        batch.alter_column("key_id", existing_type=REF, nullable=False)
    # pairs taps across runs and, with n_components, judges lengths from the index
    op.create_index("ix_tap_key", "tap", ["run_id", "key_id", "n_components"])
    with op.batch_alter_table("comparison_set") as batch:
        batch.add_column(sa.Column("detail", sa.Text, nullable=False, server_default="all"))
    op.create_table(
        "tap_flag",
        sa.Column("comparison_id", ID, sa.ForeignKey("comparison.id"), primary_key=True),
        sa.Column("key_id", REF, primary_key=True),
        sa.Column("set_id", ID, sa.ForeignKey("comparison_set.id"), nullable=False),
        sqlite_with_rowid=False,
    )
    # a run's shape (see tracedb.store.layout.shape_signature): comparisons of runs with
    # the same shapes have the same missing taps and length differences
    op.add_column("run", sa.Column("shape_sig", sa.String(64)))
    bind = op.get_bind()
    shapes: dict[int, list[tuple[int, int]]] = {
        run_id: [] for (run_id,) in bind.execute(sa.text("SELECT id FROM run"))}
    for run_id, key_id, n in bind.execute(sa.text(
            "SELECT run_id, key_id, n_components FROM tap")):
        shapes[run_id].append((key_id, n))
    if shapes:
        bind.execute(sa.text("UPDATE run SET shape_sig = :sig WHERE id = :id"),
                     [{"id": rid, "sig": _shape(keys)} for rid, keys in shapes.items()])
    for view in VIEWS:
        op.execute(KEYED_VIEWS[view])


def _shape(keys: list[tuple[int, int]]) -> str:
    """The shape signature of tracedb.store.layout.shape_signature, frozen with this revision."""
    import hashlib

    text = "\n".join(f"{k}:{n}" for k, n in sorted(keys))
    return hashlib.sha256(text.encode()).hexdigest()


def _value_by_tap(name: str) -> None:
    op.create_table(name, sa.Column("tap_id", REF, sa.ForeignKey("tap.id"), primary_key=True),
                    sa.Column("idx", sa.Integer, primary_key=True),
                    *_value_columns(), sqlite_with_rowid=False)


def downgrade() -> None:
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    op.drop_table("tap_flag")
    op.execute("ALTER TABLE comparison_set DROP COLUMN detail")
    op.execute("ALTER TABLE run DROP COLUMN shape_sig")
    op.drop_index("ix_tap_key", table_name="tap")
    # back to rows keyed by tap id
    cols = ", ".join(VALUE_COLS)
    _value_by_tap("value_by_tap")
    op.execute(f"INSERT INTO value_by_tap (tap_id, idx, {cols}) "
               f"SELECT t.id, v.idx, {', '.join('v.' + c for c in VALUE_COLS)} "
               "FROM value v JOIN tap t ON t.run_id = v.run_id AND t.key_id = v.key_id")
    op.drop_table("value")
    op.rename_table("value_by_tap", "value")
    op.execute("ALTER TABLE tap DROP COLUMN key_id")
    op.drop_table("tap_key")
    op.create_index("ix_tap_pairing", "tap",
                    ["run_id", "channel", "key_name", "loop_key", "key_occurrence"])
    for sql in views_by_name():
        op.execute(sql)
