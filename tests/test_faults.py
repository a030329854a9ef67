"""Safe under faults and load: concurrent writers, SIGKILL mid-ingest, and first
divergences checked against planted truth on a generated campaign (both backends)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

import tracedb
from benchmarks.generate import write_campaign

from .conftest import REPO


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign")
    write_campaign(out, pixels=120, stamps=3, seed=7)
    return out


def start_ingest(url, tree):
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    return subprocess.Popen([sys.executable, "-m", "tracedb", "--db", url, "ingest",
                             str(tree), "--format", "json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(url):
    """What a warehouse holds, independent of ids and load order."""
    wh = tracedb.connect(url)
    with wh.engine.connect() as conn:
        files = sorted(tuple(r) for r in conn.execute(text(
            "SELECT abs_path, sha256, version, trace_lines, parsed_lines FROM source_file")))
        runs = sorted(tuple(r) for r in conn.execute(text(
            "SELECT sf.abs_path, r.segment, r.side, r.stamp, p.slow, p.fast, r.tap_count "
            "FROM run r JOIN source_file sf ON sf.id = r.source_file_id "
            "LEFT JOIN pixel p ON p.id = r.pixel_id")))
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("bundle", "source_file", "run", "pixel", "tap", "value",
                            "source_blob")}
        values = conn.execute(text(
            "SELECT count(*), sum(v.idx), sum(length(v.text)) FROM value v")).one()
    wh.close()
    return files, runs, counts, tuple(values)


def assert_healthy(url):
    wh = tracedb.connect(url)
    checks = wh.check()
    wh.close()
    bad = checks[checks.problems > 0]
    assert bad.empty, bad.to_dict("records")


@pytest.fixture(scope="module")
def reference(campaign, tmp_path_factory):
    url = f"sqlite:///{(tmp_path_factory.mktemp('ref') / 'ref.sqlite').as_posix()}"
    res = tracedb.connect(url).ingest([campaign])
    assert res.ok
    return snapshot(url)


@pytest.mark.parametrize("writers", [2, 3])
def test_concurrent_sqlite_writers_equal_a_sequential_ingest(campaign, reference, tmp_path,
                                                             writers):
    url = f"sqlite:///{(tmp_path / 'shared.sqlite').as_posix()}"
    assert not (tmp_path / "shared.sqlite").exists()  # they start on no warehouse at all
    procs = [start_ingest(url, campaign) for _ in range(writers)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        json.loads(out)
    assert snapshot(url) == reference
    assert_healthy(url)


def _open_new_warehouse(url, barrier, errors):
    barrier.wait()  # every process opens the file in the same instant
    try:
        tracedb.connect(url).close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(str(exc))


def test_processes_that_open_one_new_sqlite_warehouse_together_all_succeed(tmp_path):
    # switching a new, empty file to WAL answers "database is locked" at once, without
    # the busy timeout, while another process is making the same file; unhandled, one
    # start in twenty of three processes failed. 60 rounds of three.
    import multiprocessing
    import sqlite3

    from tracedb.store.engine import HEAD

    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for n in range(60):
        url = f"sqlite:///{(tmp_path / f'new{n}.sqlite').as_posix()}"
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_open_new_warehouse, args=(url, barrier, errors))
                 for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0]
        assert errors.empty(), errors.get()
        con = sqlite3.connect(tmp_path / f"new{n}.sqlite")  # made once, at head, in WAL
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        con.close()


def test_four_postgresql_writers_equal_a_sequential_ingest(campaign, reference, pg_url):
    # an empty schema: the four make the warehouse's tables once, together
    procs = [start_ingest(pg_url, campaign) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    files, runs, counts, values = snapshot(pg_url)
    ref_files, ref_runs, ref_counts, ref_values = reference
    assert files == ref_files and runs == ref_runs and counts == ref_counts
    assert values == ref_values
    assert_healthy(pg_url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_at_random_moments_then_resume(campaign, reference, tmp_path, request,
                                               backend):
    if backend == "sqlite":
        url = f"sqlite:///{(tmp_path / 'killed.sqlite').as_posix()}"
    else:
        url = request.getfixturevalue("pg_url")
    tracedb.connect(url).close()
    # kill a real process repeatedly, at different moments of its ingest
    killed_mid_ingest = 0
    for delay in (0.4, 0.9, 1.3, 1.8, 2.4, 3.0):
        proc = start_ingest(url, campaign)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_ingest += 1
        proc.communicate(timeout=600)
        assert_healthy(url)  # integrity, orphans, counts after every kill
        if backend == "sqlite":
            import sqlite3

            con = sqlite3.connect(url.removeprefix("sqlite:///"))
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.close()
    assert killed_mid_ingest >= 2, "every ingest finished before it could be killed"
    proc = start_ingest(url, campaign)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert snapshot(url)[:3] == reference[:3]
    assert snapshot(url)[3] == reference[3]
    assert_healthy(url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_first_divergence_of_every_pixel_matches_the_planted_truth(campaign, tmp_path,
                                                                   request, backend):
    if backend == "sqlite":
        url = f"sqlite:///{(tmp_path / 'truth.sqlite').as_posix()}"
    else:
        url = request.getfixturevalue("pg_url")
    truth = json.loads((campaign / "truth.json").read_text())
    wh = tracedb.connect(url)
    assert wh.ingest([campaign]).ok
    checked = 0
    for py_stamp, expected in sorted(truth.items()):
        c_stamp = py_stamp.replace("T110000Z", "T100000Z")
        df = wh.diverge(ref=f"c@{c_stamp}", cand=f"py@{py_stamp}")
        assert len(df) == len(expected)
        for r in df.itertuples():
            got = None
            if isinstance(r.first_tap, str):
                got = r.first_tap if not r.first_channel else f"{r.first_channel}:{r.first_tap}"
                if r.first_loop_key:
                    got += f"[{r.first_loop_key}]"
                if int(r.first_occurrence) > 1:
                    got += f"#{int(r.first_occurrence)}"
            pixel = f"{r.pixel_slow},{r.pixel_fast}"
            assert got == expected[pixel], (py_stamp, pixel)
            assert r.status == ("match" if got is None else "diverged")
            checked += 1
    assert checked == 360
    assert sum(v is not None for e in truth.values() for v in e.values()) > 200


def test_db_check_finds_rows_that_unchecked_foreign_keys_could_leave(url):
    # staged bundles load taps and values without per-row foreign-key checks (SQLite:
    # foreign_keys off; PostgreSQL: session_replication_role where allowed), so the
    # project's own check must find what those checks would have refused
    from tracedb.api import example_tree

    wh = tracedb.connect(url)
    assert wh.ingest([example_tree()]).ok
    assert wh.check().problems.sum() == 0
    orphans = ["UPDATE tap SET unit = 'furlong' WHERE id = (SELECT MIN(id) FROM tap)",
               "UPDATE tap SET run_id = 999999 WHERE id = (SELECT MAX(id) FROM tap)",
               "INSERT INTO value (run_id, key_id, idx, text, kind) "
               "VALUES (999998, 1, 0, 'x', 'text')"]
    if url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))  # foreign keys off
        with con:
            for sql in orphans:
                con.execute(sql)
        con.close()
    else:
        with wh.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for sql in orphans:
                conn.exec_driver_sql(sql)
    checks = wh.check().set_index("check_name").problems
    wh.close()
    assert checks["taps whose unit is not in the unit table"] == 1
    assert checks["taps without their run"] == 1
    assert checks["values without their tap"] >= 1


def test_a_comparison_does_not_wait_for_another_ones_statistics(pg_url):
    # each comparison ANALYZEs its new rows inside its transaction, and that lock lasts
    # to the end of it; another comparison must go on (with older statistics)
    import threading

    from tracedb.api import example_tree

    wh = tracedb.connect(pg_url)
    assert wh.ingest([example_tree()]).ok
    expected = wh.diverge(save=True)
    holder = wh.engine.connect()
    tx = holder.begin()
    holder.exec_driver_sql("ANALYZE comparison")  # held until tx ends
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("df", wh.diverge(save=True)))
    worker.start()
    worker.join(120)
    finished = not worker.is_alive()
    tx.rollback()
    holder.close()
    worker.join()
    wh.close()
    assert finished, "diverge waited for another transaction's ANALYZE lock"
    got = result["df"]
    assert got["first_tap"].tolist() == expected["first_tap"].tolist()
