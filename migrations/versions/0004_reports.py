"""Reports: the factor model that explains a final-value gap; where commands ran.

``factor_model`` holds, per model, the target tap and the factors it is the
product of, each with an exponent: the default ``nanoBragg`` model is

    I_pixel_final = r_e_sqr * fluence_photons_per_m2 * F_cell^2 * F_latt^2
                    * polar * omega_pixel * capture_fraction / steps

Users edit it with ``tracedb factor-model set NAME "target = a * b^2 / c"`` or
any SQL client.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NANOBRAGG = [("r_e_sqr", 1), ("fluence_photons_per_m2", 1), ("F_cell", 2), ("F_latt", 2),
             ("polar", 1), ("omega_pixel", 1), ("capture_fraction", 1), ("steps", -1)]


def upgrade() -> None:
    op.create_table(
        "factor_model",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("factor", sa.Text, nullable=False),
        sa.Column("exponent", sa.Float(precision=53), nullable=False),
        sa.UniqueConstraint("model", "factor", name="uq_factor_model"),
    )
    fm = sa.table("factor_model", sa.column("model"), sa.column("target"),
                  sa.column("position"), sa.column("factor"), sa.column("exponent"))
    op.bulk_insert(fm, [dict(model="nanoBragg", target="I_pixel_final", position=i,
                             factor=f, exponent=float(e))
                        for i, (f, e) in enumerate(NANOBRAGG, start=1)])
    with op.batch_alter_table("command_log") as batch:
        batch.add_column(sa.Column("cwd", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("command_log") as batch:
        batch.drop_column("cwd")
    op.drop_table("factor_model")
