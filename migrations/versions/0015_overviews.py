"""Two views a person browsing the warehouse (``tracedb browse``, any SQL client) can
filter and facet without joins: ``run_overview`` (a run with its pixel written
``SLOW,FAST``, its trace file and bundle) and ``result_overview`` (a saved tap
result with the pixel and the two runs of its comparison).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-10
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_PIXEL = "CAST({p}.slow AS TEXT) || ',' || CAST({p}.fast AS TEXT)"
_RUN = "{r}.side || '@' || COALESCE({r}.stamp, '')"

RUN_OVERVIEW = f"""
SELECT r.id AS run_id, r.side AS side, r.stamp AS stamp, {_PIXEL.format(p='p')} AS pixel,
       p.slow AS pixel_slow, p.fast AS pixel_fast, sf.path AS path,
       sf.version AS file_version, r.first_line AS first_line, r.last_line AS last_line,
       r.tap_count AS taps, b.initiative AS initiative, b.phase AS phase,
       b.path AS bundle_path, r.source_file_id AS source_file_id, r.bundle_id AS bundle_id
FROM run r
JOIN source_file sf ON sf.id = r.source_file_id
JOIN bundle b ON b.id = r.bundle_id
LEFT JOIN pixel p ON p.id = r.pixel_id
"""

RESULT_OVERVIEW = f"""
SELECT tr.set_id AS set_id, tr.comparison_id AS comparison_id,
       COALESCE({_PIXEL.format(p='rp')}, {_PIXEL.format(p='cp')}) AS pixel,
       {_RUN.format(r='rr')} AS ref, {_RUN.format(r='cr')} AS cand,
       tr.channel AS channel, tr.key_name AS tap, tr.loop_key AS loop_key,
       tr.occurrence AS occurrence, tr.ref_seq AS ref_seq, tr.ref_line AS ref_line,
       tr.cand_line AS cand_line, tr.ref_value AS ref_value, tr.cand_value AS cand_value,
       tr.status AS status, tr.max_abs_delta AS max_abs_delta,
       tr.max_rel_delta AS max_rel_delta, tr.min_ratio AS min_ratio,
       tr.max_ratio AS max_ratio, tr.accepted_reason AS accepted_reason,
       tr.suspect AS suspect, c.ref_run_id AS ref_run_id, c.cand_run_id AS cand_run_id
FROM tap_result tr
JOIN comparison c ON c.id = tr.comparison_id
LEFT JOIN run rr ON rr.id = c.ref_run_id
LEFT JOIN pixel rp ON rp.id = rr.pixel_id
LEFT JOIN run cr ON cr.id = c.cand_run_id
LEFT JOIN pixel cp ON cp.id = cr.pixel_id
"""


def upgrade() -> None:
    op.execute(f"CREATE VIEW run_overview AS {RUN_OVERVIEW}")
    op.execute(f"CREATE VIEW result_overview AS {RESULT_OVERVIEW}")


def downgrade() -> None:
    op.execute("DROP VIEW result_overview")
    op.execute("DROP VIEW run_overview")
