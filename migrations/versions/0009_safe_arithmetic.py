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
from tracedb_status_rules import BY_LABEL, IEEE, LABELS_DIFFER, keyed_views, safe_rules

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The views that compute with values, with mismatch_key, which reads one of them; in
#: the order they are made (as 0008 makes them).
VIEWS = ["component_delta", "tap_status", "tap_status_flagged", "mismatch_value_key",
         "mismatch_key"]


def _views(rules) -> None:
    made = keyed_views(BY_LABEL, LABELS_DIFFER, rules)
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW {view}")
    for view in VIEWS:
        op.execute(made[view])


def upgrade() -> None:
    _views(safe_rules(op.get_bind().dialect.name))


def downgrade() -> None:
    _views(IEEE)
