"""Comparisons that never over- or underflow: the same verdict on both backends for
every finite double, subnormals included.

PostgreSQL refuses a float8 result that overflows or underflows ("value out of
range") where SQLite rounds, so a comparison that met an uninitialised double
(1 against 6.9e-310), identical subnormals (1e-320: rtol * 1e-320 underflows) or
1e-200 against 1e200 (their ratio) aborted the whole request there. The views that
compare values are made again with ``tracedb_status_rules.safe_rules``: IEEE
arithmetic, as before, while every number involved lies within 1e-150..1e150 (or is
0); beyond that band, exact NUMERIC arithmetic on PostgreSQL and overflow-free
doubles on SQLite. A ratio is computed within the band only; a difference beyond
the largest double is NULL. The views keep 0008's pairing (labelled components by
label).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op
from tracedb_status_rules import (
    BY_LABEL,
    IEEE,
    LABELS_DIFFER,
    keyed_views,
    remake_value_views,
    safe_rules,
)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _views(rules) -> None:
    remake_value_views(op.execute, keyed_views(BY_LABEL, LABELS_DIFFER, rules))


def upgrade() -> None:
    _views(safe_rules(op.get_bind().dialect.name))


def downgrade() -> None:
    _views(IEEE)
