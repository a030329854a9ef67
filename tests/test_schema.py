"""The schema comes only from migrations; old warehouses are refused until upgraded."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

import tracedb
from tracedb.errors import TracedbError
from tracedb.store import engine as db

from .conftest import REPO


def test_new_warehouse_is_created_at_head(url):
    wh = tracedb.connect(url)
    assert wh.revision() == db.head_revision() == db.HEAD
    names = set(inspect(wh.engine).get_table_names())
    assert {"bundle", "source_file", "source_blob", "run", "pixel", "tap", "value", "unit",
            "unit_suffix", "quarantine", "tap_alias", "accepted_divergence",
            "command_log", "comparison_set", "comparison", "tap_result",
            "factor_model", "tap_key", "tap_flag"} <= names
    indexes = {i["name"]: i["column_names"] for i in inspect(wh.engine).get_indexes("tap")}
    assert indexes["ix_tap_key"] == ["run_id", "key_id", "n_components", "digest"]
    assert "ix_tap_pairing" not in indexes
    # values are stored in pairing order: (run, pairing key, component)
    assert inspect(wh.engine).get_pk_constraint("value")["constrained_columns"] == [
        "run_id", "key_id", "idx"]
    assert {"tap_pair", "component_delta", "tap_status", "tap_status_flagged",
            "mismatch_key"} <= set(inspect(wh.engine).get_view_names())
    with wh.engine.connect() as conn:
        units = dict(conn.execute(text("SELECT symbol, factor_to_si FROM unit")).all())
    assert units["A^-1"] == 1e10 and units["mm"] == 1e-3


def test_the_loader_layout_is_the_migrated_tables(url):
    # store/layout.py names the columns the loader (and the C accelerator) fill by
    # position; the migrations make the tables. The two must agree, column for column.
    from tracedb.ingest.parse import Component
    from tracedb.store import layout

    wh = tracedb.connect(url)
    columns = {t: [c["name"] for c in inspect(wh.engine).get_columns(t)]
               for t in ("tap", "value", "run", "source_file", "source_blob", "quarantine",
                         "tap_key", "tap_result")}
    assert sorted(layout.TAP_COLS) == sorted(columns["tap"])
    assert sorted(layout.VALUE_COLS) == sorted(columns["value"])
    assert sorted(layout.RUN_COLS) == sorted(columns["run"])
    assert sorted(layout.FILE_COLS) == sorted(columns["source_file"])
    assert sorted(layout.BLOB_COLS) == sorted(columns["source_blob"])
    assert sorted(layout.QUARANTINE_COLS) == sorted(columns["quarantine"])
    assert sorted(("id", *layout.PAIRING_KEY_COLS)) == sorted(columns["tap_key"])
    # the comparison copies every result column but the unit hints (and the side they
    # put off) added afterwards
    assert sorted(layout.TAP_RESULT_COLS) == sorted(
        c for c in columns["tap_result"]
        if c not in ("hint_ref_unit", "hint_cand_unit", "suspect", "suspect_basis"))
    # a value row is its key followed by a parsed component's fields, in order
    assert layout.VALUE_COLS == (*layout.VALUE_KEY, *Component._fields)
    assert [name for name, _cols, _skip in layout.WRITE_ORDER] == [
        "source_blob", "source_file", "run", "tap", "value", "quarantine", "tap_pointer"]


def test_older_warehouse_is_refused_until_upgraded(url):
    engine = db.make_engine(url)
    db.upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(TracedbError, match=r"older than this tracedb.*tracedb db upgrade"):
        tracedb.connect(url)
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "runs"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "run `tracedb db upgrade`" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    up = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "db", "upgrade"],
                        capture_output=True, text=True)
    assert up.returncode == 0 and "0001 ->" in up.stdout
    assert tracedb.connect(url).revision() == db.head_revision()


def test_unknown_revision_is_refused(url):
    wh = tracedb.connect(url)
    with wh.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(TracedbError, match="newer tracedb"):
        tracedb.connect(url)


def test_sqlite_settings(sqlite_url):
    wh = tracedb.connect(sqlite_url)
    with wh.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


def test_foreign_keys_are_enforced(url):
    wh = tracedb.connect(url)
    with wh.engine.begin() as conn:
        conn.execute(text("INSERT INTO tap_key (id, channel, key_name, loop_key, "
                          "key_occurrence) VALUES (1, '', 'x', '', 1)"))
    with pytest.raises(IntegrityError, match="(?i)foreign key"), wh.engine.begin() as conn:
        conn.execute(text("INSERT INTO tap (run_id, seq, line_no, channel, name, loop_key, "
                          "occurrence, shape, n_components, value_text, key_name, "
                          "key_occurrence, key_id) "
                          "VALUES (424242, 1, 1, '', 'x', '', 1, 'scalar', 1, '1', 'x', 1, 1)"))


def test_wheel_in_fresh_virtualenv_creates_and_ingests(tmp_path):
    """Build the wheel, install it outside the checkout, create a warehouse and ingest."""
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(dist), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("tracedb-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("tracedb/_migrations/versions/0001") for n in names)
    assert "tracedb/_queries/runs.sql" in names
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)],
                          capture_output=True, text=True)
    assert inst.returncode == 0, inst.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEDB_URL", "PYTHONPATH")}
    run = subprocess.run([str(env_dir / "bin" / "tracedb"), "demo"], cwd=work, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (work / "tracedb.sqlite").is_file()
    where = subprocess.run([str(py), "-c", "import tracedb.store.engine as d; "
                            "print(d.resource_dir('migrations'))"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(env_dir)
    listing = subprocess.run([str(env_dir / "bin" / "tracedb"), "runs", "--format", "csv"],
                             cwd=work, env=env, capture_output=True, text=True)
    assert listing.stdout.count("\n") == 5  # header + four runs
