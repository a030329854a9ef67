"""The command line as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tracedb.api import example_tree


def tracedb(*args, cwd=None, env=None, db=None):
    full_env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    full_env.update(env or {})
    argv = [sys.executable, "-m", "tracedb"] + (["--db", db] if db else []) + list(args)
    return subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert any(all(f in ln for f in fragments) for ln in lines), proc.stderr


def test_ingest_json_and_listing_formats(url, tmp_path):
    proc = tracedb("ingest", str(example_tree()), "--format", "json", db=url)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    for key in ("files", "trace_files", "bundles", "runs", "pixels", "taps", "values",
                "trace_lines", "parsed_lines", "quarantined_lines", "skipped_files",
                "seconds"):
        assert key in stats
    assert stats["parsed_lines"] + stats["quarantined_lines"] == stats["trace_lines"]
    assert stats["runs"] == 4

    runs = json.loads(tracedb("runs", "--format", "json", db=url).stdout)
    assert len(runs) == 4
    for r in runs:
        assert {"id", "side", "stamp", "pixel", "path", "taps"} <= set(r)
        assert r["pixel"] in ([10, 20], [30, 40]) and r["taps"] > 0
    only = json.loads(tracedb("runs", "--side", "py", "--pixel", "30,40", "--stamp",
                              "103000Z", "--format", "json", db=url).stdout)
    assert [(r["side"], r["pixel"]) for r in only] == [("py", [30, 40])]

    table = tracedb("runs", "--path", "c_traces", db=url)
    assert table.returncode == 0 and "20260105T101500Z" in table.stdout
    assert "103000Z" not in table.stdout

    rows = list(csv.DictReader(io.StringIO(tracedb("taps", str(runs[0]["id"]), "--format",
                                                   "csv", db=url).stdout)))
    assert rows[0]["name"] == "detector_convention" and rows[0]["value"] == "MOSFLM"
    beam = next(r for r in rows if r["name"] == "beam_center_m")
    assert beam["unit"] == "m" and beam["value"].startswith("X:")


def test_second_ingest_says_nothing_new(sqlite_url):
    tracedb("ingest", str(example_tree()), db=sqlite_url)
    again = tracedb("ingest", str(example_tree()), db=sqlite_url)
    assert again.returncode == 0
    assert "nothing new: 4 trace file(s) already loaded" in again.stdout


def test_db_url_from_environment(tmp_path):
    db = f"sqlite:///{(tmp_path / 'env.sqlite').as_posix()}"
    proc = tracedb("ingest", str(example_tree()), env={"TRACEDB_URL": db})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "env.sqlite").is_file()


def test_default_warehouse_is_in_current_directory(tmp_path):
    proc = tracedb("ingest", str(example_tree()), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tracedb.sqlite").is_file()


@pytest.mark.parametrize("args, fragments", [
    (["ingest", "no/such/dir"], ["path not found: no/such/dir"]),
    (["taps", "999"], ["no run with id 999"]),
    (["runs", "--side", "fortran"], ["side must be 'c', 'py' or 'unknown'"]),
])
def test_user_errors_are_one_line(sqlite_url, args, fragments):
    assert tracedb("db", "upgrade", db=sqlite_url).returncode == 0  # an empty warehouse
    assert_one_line_error(tracedb(*args, db=sqlite_url), *fragments)


def test_bad_pixel_option(sqlite_url):
    tracedb("db", "upgrade", db=sqlite_url)
    proc = tracedb("runs", "--pixel", "12", db=sqlite_url)
    assert proc.returncode == 2 and "SLOW,FAST" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("db, fragment", [
    ("notaurl", "not a database URL"),
    ("sqlite:////no/such/dir/x.sqlite", "does not exist"),
    ("mysql+nosuchdriver://x/y", "no driver"),
])
def test_bad_database_urls(db, fragment):
    assert_one_line_error(tracedb("runs", db=db), fragment)


def test_missing_path_still_loads_the_rest(sqlite_url):
    proc = tracedb("ingest", "nope", str(example_tree()), "--format", "json", db=sqlite_url)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["runs"] == 4
    assert "path not found: nope" in proc.stderr


def test_help_and_version():
    assert tracedb("--help").returncode == 0
    proc = tracedb("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("tracedb ")
    assert "(loader: C accelerator)" in proc.stdout or "(loader: pure Python; " in proc.stdout


def test_demo_writes_tree_and_ingests(tmp_path):
    proc = tracedb("demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tracedb-example" / "reports").is_dir()
    assert "runs loaded from the example tree" in proc.stdout
    assert "20260105T101500Z" in proc.stdout
    assert "first divergences" in proc.stdout and "beam_center_m" in proc.stdout
    assert "report written to tracedb-example/report/" in proc.stdout
    report = tmp_path / "tracedb-example" / "report"
    assert "Check the PyTorch code's unit conversion where `beam_center_m`" in (
        report / "first_divergence.md").read_text()
    assert "`fluence_photons_per_m2` (100% of the gap)" in (report / "summary.md").read_text()
    again = tracedb("demo", cwd=tmp_path)
    assert again.returncode == 0 and "nothing new" in again.stdout


@pytest.mark.parametrize("driver", ["sqlite3", "psycopg"])
def test_a_drivers_own_error_is_one_line_too(driver, monkeypatch, capsys):
    # the bulk writers (comparisons and ingest rows by COPY or executemany) use the
    # driver's cursor, whose errors SQLAlchemy never wraps
    import sqlite3

    import tracedb.cli as cli

    if driver == "sqlite3":
        error = sqlite3.OperationalError("database or disk is full")
    else:
        psycopg = pytest.importorskip("psycopg")
        error = psycopg.errors.DiskFull("could not extend file: No space left on device")

    def fail(**_kwargs):
        raise error

    monkeypatch.setattr(cli, "app", fail)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("tracedb: error: database: ") and str(error).splitlines()[0] in err


def test_a_command_sets_the_collector_back_when_it_ends(monkeypatch, capsys):
    # main() raises the garbage collector's thresholds and freezes the start-up objects
    # while a command runs; a process that calls it (tests, a notebook) gets its own
    # settings back, whether the command ends normally or by an error
    import gc

    import tracedb.cli as cli

    seen = []

    def command(**_kwargs):
        seen.append((gc.get_threshold(), gc.get_freeze_count() > 0))
        raise SystemExit(0) if len(seen) == 1 else cli.TracedbError("no such run")

    monkeypatch.setattr(cli, "app", command)
    before = gc.get_threshold()
    for _ in range(2):
        with pytest.raises(SystemExit):
            cli.main()
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert seen == [(cli.GC_THRESHOLDS, True)] * 2
    assert "no such run" in capsys.readouterr().err
