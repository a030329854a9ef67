"""Seed units and the tap-name suffixes that imply them.

Units are data: users can add rows (``tracedb sql`` is read-only; use any SQL
client, or a later migration) and re-ingest. Symbols are ASCII (A, not the
Angstrom sign).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import math

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNITS = [
    ("m", "length", 1.0, "metre"),
    ("mm", "length", 1e-3, "millimetre"),
    ("A", "length", 1e-10, "Angstrom"),
    ("m^-1", "inverse length", 1.0, "per metre"),
    ("A^-1", "inverse length", 1e10, "per Angstrom"),
    ("sr", "solid angle", 1.0, "steradian"),
    ("rad", "angle", 1.0, "radian"),
    ("deg", "angle", math.pi / 180.0, "degree"),
    ("photons/m^2", "fluence", 1.0, "photons per square metre"),
]

SUFFIXES = [
    ("_m", "m"),
    ("_meters", "m"),
    ("_metres", "m"),
    ("_mm", "mm"),
    ("_A", "A"),
    ("_angstrom", "A"),
    ("_angstroms", "A"),
    ("_A_inv", "A^-1"),
    ("_m_inv", "m^-1"),
    ("_sr", "sr"),
    ("_rad", "rad"),
    ("_deg", "deg"),
    ("_photons_per_m2", "photons/m^2"),
]


def upgrade() -> None:
    unit = sa.table("unit", sa.column("symbol"), sa.column("dimension"),
                    sa.column("factor_to_si"), sa.column("description"))
    suffix = sa.table("unit_suffix", sa.column("suffix"), sa.column("unit"))
    op.bulk_insert(unit, [dict(symbol=s, dimension=d, factor_to_si=f, description=t)
                          for s, d, f, t in UNITS])
    op.bulk_insert(suffix, [dict(suffix=s, unit=u) for s, u in SUFFIXES])


def downgrade() -> None:
    op.execute("DELETE FROM unit_suffix")
    op.execute("DELETE FROM unit")
