"""Warehouse tables: bundles, source files, runs, pixels, taps, values, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# INTEGER PRIMARY KEY on SQLite (rowid alias), BIGINT identity elsewhere.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REF = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "command_log",
        _id(),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("finished_at", sa.Text),
        sa.Column("command", sa.Text, nullable=False),  # verb, e.g. "ingest"
        sa.Column("argv", sa.Text, nullable=False),  # JSON list, replayable
        sa.Column("tracedb_version", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # running, ok, error
        sa.Column("stats_json", sa.Text),
    )
    op.create_table(
        "bundle",
        _id(),
        sa.Column("directory", sa.Text, nullable=False, unique=True),  # resolved path
        sa.Column("path", sa.Text, nullable=False),  # as the user named it
        sa.Column("initiative", sa.Text),
        sa.Column("phase", sa.Text),
        sa.Column("stamp", sa.Text),
        sa.Column("env_json", sa.Text),
        sa.Column("env_files", sa.Text),
        sa.Column("commands_text", sa.Text),
        sa.Column("notes_text", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_index("ix_bundle_stamp", "bundle", ["stamp"])
    op.create_table(
        "source_blob",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("compression", sa.Text, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "source_file",
        _id(),
        sa.Column("bundle_id", REF, sa.ForeignKey("bundle.id"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("abs_path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("source_blob.sha256"),
                  nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("line_count", sa.Integer, nullable=False),
        sa.Column("trace_lines", sa.Integer, nullable=False),
        sa.Column("parsed_lines", sa.Integer, nullable=False),
        sa.Column("quarantined_lines", sa.Integer, nullable=False),
        sa.Column("parser", sa.Text, nullable=False),  # how it was parsed
        sa.Column("encoding", sa.Text, nullable=False),
        sa.Column("metadata_path", sa.Text),
        sa.Column("command_id", REF, sa.ForeignKey("command_log.id")),
        sa.Column("loaded_at", sa.Text, nullable=False),
        sa.UniqueConstraint("abs_path", "sha256", name="uq_source_file_content"),
    )
    op.create_index("ix_source_file_bundle", "source_file", ["bundle_id"])
    op.create_index("ix_source_file_sha", "source_file", ["sha256"])
    op.create_table(
        "pixel",
        _id(),
        sa.Column("slow", sa.Integer, nullable=False),
        sa.Column("fast", sa.Integer, nullable=False),
        sa.UniqueConstraint("slow", "fast", name="uq_pixel"),
    )
    op.create_table(
        "run",
        _id(),
        sa.Column("source_file_id", REF, sa.ForeignKey("source_file.id"), nullable=False),
        sa.Column("bundle_id", REF, sa.ForeignKey("bundle.id"), nullable=False),
        sa.Column("segment", sa.Integer, nullable=False),  # nth run of the file
        sa.Column("side", sa.Text),  # c, py, or NULL when nothing says
        sa.Column("pixel_id", REF, sa.ForeignKey("pixel.id")),
        sa.Column("pixel_source", sa.Text),  # marker, metadata, filename
        sa.Column("stamp", sa.Text),  # path stamp, else metadata stamp
        sa.Column("path_stamp", sa.Text),
        sa.Column("meta_stamp", sa.Text),
        sa.Column("meta_time", sa.Text),  # the metadata's time as written
        sa.Column("metadata_json", sa.Text),
        sa.Column("tap_count", sa.Integer, nullable=False),
        sa.Column("first_line", sa.Integer),
        sa.Column("last_line", sa.Integer),
        sa.CheckConstraint("side IN ('c', 'py')", name="ck_run_side"),
    )
    op.create_index("ix_run_pixel_side_stamp", "run", ["pixel_id", "side", "stamp"])
    op.create_index("ix_run_stamp", "run", ["stamp"])
    op.create_index("ix_run_source_file", "run", ["source_file_id"])
    op.create_table(
        "unit",
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("dimension", sa.Text, nullable=False),
        sa.Column("factor_to_si", sa.Float(precision=53), nullable=False),
        sa.Column("description", sa.Text),
    )
    op.create_table(
        "unit_suffix",
        sa.Column("suffix", sa.Text, primary_key=True),
        sa.Column("unit", sa.Text, sa.ForeignKey("unit.symbol"), nullable=False),
    )
    op.create_table(
        "tap",
        _id(),
        sa.Column("run_id", REF, sa.ForeignKey("run.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),  # order in the trace, from 1
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("loop_key", sa.Text, nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False),  # kth time, from 1
        sa.Column("unit", sa.Text, sa.ForeignKey("unit.symbol")),
        sa.Column("shape", sa.Text, nullable=False),
        sa.Column("n_components", sa.Integer, nullable=False),
        sa.Column("value_text", sa.Text, nullable=False),  # the value as written
        # The pairing key: the name after aliases (tap_alias) and the occurrence of
        # that key in the run. Set at load; `tracedb alias` and `tracedb db rekey`
        # recompute them when aliases change.
        sa.Column("key_name", sa.Text, nullable=False),
        sa.Column("key_occurrence", sa.Integer, nullable=False),
    )
    # Tap ids are (run id << TAP_BITS) + order in the run (store/layout.py; 20 bits
    # when this migration was written, 31 since), so the primary key already
    # orders taps by run and trace order; this index pairs taps across runs.
    op.create_index("ix_tap_pairing", "tap",
                    ["run_id", "channel", "key_name", "loop_key", "key_occurrence"])
    op.create_table(
        "value",
        sa.Column("tap_id", REF, sa.ForeignKey("tap.id"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("label", sa.Text),
        sa.Column("num", sa.Float(precision=53)),  # NULL for text, nan, inf
        sa.Column("text", sa.Text, nullable=False),  # as written in the file
        sa.Column("kind", sa.Text, nullable=False),  # num, nan, inf, -inf, text
        sa.Column("digits", sa.Integer),
        sa.Column("half_ulp", sa.Float(precision=53)),
        sqlite_with_rowid=False,  # the (tap_id, idx) key is the table: no second B-tree
    )
    op.create_table(
        "quarantine",
        _id(),
        sa.Column("source_file_id", REF, sa.ForeignKey("source_file.id"), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_quarantine_file", "quarantine", ["source_file_id"])
    op.create_table(
        "tap_alias",
        _id(),
        sa.Column("channel", sa.Text, nullable=False, server_default="*"),  # * = any
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("canonical", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("channel", "name", name="uq_tap_alias"),
    )
    op.create_table(
        "accepted_divergence",
        _id(),
        sa.Column("channel", sa.Text, nullable=False, server_default="*"),  # * = any
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("loop_key", sa.Text),  # NULL: every loop index
        sa.Column("run_id", REF, sa.ForeignKey("run.id")),  # NULL: every run
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("accepted_divergence", "tap_alias", "quarantine", "value", "tap",
                  "unit_suffix", "unit", "run", "pixel", "source_file", "source_blob",
                  "bundle", "command_log"):
        op.drop_table(table)
