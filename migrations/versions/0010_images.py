"""Whole-image parity and recorded metrics: images, their comparisons, worst pixels,
and the numeric results files of a bundle.

- ``image``: each image once, addressed by the sha256 of its file (compressed file
  bytes; format, dtype, shape, how many of its pixels are NaN or infinite).
- ``image_file``: where an image was found (bundle, path, side, case).
- ``metric_file`` and ``metric``: a numeric results file (``*_metrics.json``,
  ``summary.json``, ``metrics.json``) as loaded, its raw text, and one row per leaf
  (name, JSON pointer, number or text, unit from the name).
- ``image_comparison``: a C image (reference) against a PyTorch image (candidate):
  status, shape, the float64 figures, the tolerance its ``outside_tolerance`` count
  was computed with, and the recorded metrics file beside the pair.
- ``image_worst``: the worst pixels of a comparison (slow, fast, values, deltas),
  indexed by pixel so SQL joins them with ``pixel`` and the runs traced there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REF = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "image",
        sa.Column("sha256", sa.String(64), primary_key=True),  # of the file's bytes
        sa.Column("format", sa.Text, nullable=False),  # npy, bin (raw float32)
        sa.Column("dtype", sa.Text, nullable=False),  # numpy's name: float32
        sa.Column("shape", sa.Text, nullable=False),  # JSON list, slow first
        sa.Column("size", sa.BigInteger, nullable=False),  # file bytes
        sa.Column("nonfinite", sa.BigInteger, nullable=False),  # NaN or inf pixels
        sa.Column("compression", sa.Text, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),  # the file, compressed
    )
    op.create_table(
        "image_file",
        _id(),
        sa.Column("bundle_id", REF, sa.ForeignKey("bundle.id"), nullable=False),
        sa.Column("image_sha256", sa.String(64), sa.ForeignKey("image.sha256"),
                  nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("abs_path", sa.Text, nullable=False),
        sa.Column("side", sa.Text),  # c, py
        sa.Column("case_name", sa.Text, nullable=False),
        sa.Column("command_id", REF, sa.ForeignKey("command_log.id")),
        sa.Column("loaded_at", sa.Text, nullable=False),
        sa.UniqueConstraint("abs_path", "image_sha256", name="uq_image_file_content"),
    )
    op.create_table(
        "metric_file",
        _id(),
        sa.Column("bundle_id", REF, sa.ForeignKey("bundle.id"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("abs_path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("case_name", sa.Text),  # <case>_metrics.json
        sa.Column("stamp", sa.Text),  # its "timestamp", as YYYYMMDDTHHMMSSZ
        sa.Column("content", sa.Text, nullable=False),  # the file as read
        sa.Column("problem", sa.Text),  # why it holds no metrics (not JSON, ...)
        sa.Column("command_id", REF, sa.ForeignKey("command_log.id")),
        sa.Column("loaded_at", sa.Text, nullable=False),
        sa.UniqueConstraint("abs_path", "sha256", name="uq_metric_file_content"),
    )
    op.create_table(
        "metric",
        sa.Column("file_id", REF, sa.ForeignKey("metric_file.id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),  # order in the file
        sa.Column("name", sa.Text, nullable=False),  # keys joined by '.', list items [i]
        sa.Column("pointer", sa.Text, nullable=False),  # JSON pointer: /spec_mode/max_delta_k
        sa.Column("kind", sa.Text, nullable=False),  # number, bool, text, null, list
        sa.Column("num", sa.Float),  # number (bool as 0/1)
        sa.Column("text", sa.Text),  # the value as written (JSON)
        sa.Column("unit", sa.Text),  # from the name's suffix (unit_suffix)
    )
    op.create_index("ix_metric_name", "metric", ["name"])
    op.create_table(
        "image_comparison",
        _id(),
        sa.Column("bundle_id", REF, sa.ForeignKey("bundle.id"), nullable=False),
        sa.Column("case_name", sa.Text, nullable=False),
        sa.Column("stamp", sa.Text),
        sa.Column("ref_file_id", REF, sa.ForeignKey("image_file.id"), nullable=False),
        sa.Column("cand_file_id", REF, sa.ForeignKey("image_file.id"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),  # match, diverged, shape_mismatch
        sa.Column("message", sa.Text),
        sa.Column("slow", sa.Integer),
        sa.Column("fast", sa.Integer),
        sa.Column("pixels", sa.BigInteger),
        sa.Column("correlation", sa.Float),
        sa.Column("mse", sa.Float),
        sa.Column("rmse", sa.Float),
        sa.Column("max_abs_diff", sa.Float),
        sa.Column("ref_sum", sa.Float),
        sa.Column("cand_sum", sa.Float),
        sa.Column("sum_ratio", sa.Float),  # cand_sum / ref_sum
        sa.Column("rtol", sa.Float, nullable=False),
        sa.Column("atol", sa.Float, nullable=False),
        sa.Column("outside_tolerance", sa.BigInteger),
        sa.Column("ref_nonfinite", sa.BigInteger),
        sa.Column("cand_nonfinite", sa.BigInteger),
        sa.Column("worst_k", sa.Integer, nullable=False),
        sa.Column("metric_file_id", REF, sa.ForeignKey("metric_file.id")),  # recorded
        sa.Column("command_id", REF, sa.ForeignKey("command_log.id")),
        sa.Column("computed_at", sa.Text, nullable=False),
        sa.UniqueConstraint("ref_file_id", "cand_file_id", name="uq_image_comparison_pair"),
    )
    op.create_index("ix_image_comparison_case", "image_comparison", ["case_name", "stamp"])
    op.create_table(
        "image_worst",
        sa.Column("comparison_id", REF, sa.ForeignKey("image_comparison.id"),
                  primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True),  # 1 = worst
        sa.Column("slow", sa.Integer, nullable=False),
        sa.Column("fast", sa.Integer, nullable=False),
        sa.Column("ref", sa.Float),  # NULL for NaN (see ref_text)
        sa.Column("cand", sa.Float),
        sa.Column("ref_text", sa.Text, nullable=False),  # repr of the float32 value
        sa.Column("cand_text", sa.Text, nullable=False),
        sa.Column("abs_delta", sa.Float),  # NULL when a special value differs
        sa.Column("rel_delta", sa.Float),
        sa.Column("outside", sa.Integer, nullable=False),  # 1: outside the tolerance
    )
    op.create_index("ix_image_worst_pixel", "image_worst", ["slow", "fast"])


def downgrade() -> None:
    op.drop_table("image_worst")
    op.drop_table("image_comparison")
    op.drop_table("metric")
    op.drop_table("metric_file")
    op.drop_table("image_file")
    op.drop_table("image")
