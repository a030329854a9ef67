"""Analysis needs no write access: diverge, timeline, regress, taps --diff and report
read a read-only SQLite file, a PostgreSQL role with only SELECT, and a warehouse an
ingest is writing, and write nothing unless --save; ``db prune`` removes saved
comparisons by age."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import tracedb
from tracedb.api import example_tree

from .test_diverge import run_cli

#: Every analysing command, as a user types it (the report's directory is added).
ANALYSES = (
    ("diverge", "--format", "json"),
    ("diverge", "--pixel", "30,40", "--strict"),
    ("timeline", "--pixel", "10,20", "--format", "json"),
    ("regress", "--base", "py", "--head", "py", "--format", "json"),
    ("taps", "1", "--diff", "3", "--format", "json"),
)


def _saved_sets(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM comparison_set")).scalar_one()
    engine.dispose()
    return n


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def loaded(tmp_path):
    """The example tree in a SQLite warehouse made read-only (chmod a-w), and the
    outputs of every analysis on a writable copy of it."""
    db = tmp_path / "w.sqlite"
    url = f"sqlite:///{db.as_posix()}"
    with tracedb.connect(url) as wh:
        assert wh.ingest([example_tree()]).ok
    expected = {}
    writable = tmp_path / "copy.sqlite"
    writable.write_bytes(db.read_bytes())
    for args in ANALYSES:
        proc = run_cli(f"sqlite:///{writable.as_posix()}", *args, "--save")
        assert proc.returncode == 0, proc.stderr
        expected[args] = proc.stdout
    db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    yield db, expected
    db.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.parametrize("mode", ["chmod", "mode=ro"])
def test_analysis_reads_a_read_only_sqlite_file(loaded, tmp_path, mode):
    db, expected = loaded
    url = f"sqlite:///{db.as_posix()}" if mode == "chmod" \
        else f"sqlite:///file:{db.as_posix()}?mode=ro&uri=true"
    before = _digest(db)
    for args in ANALYSES:
        proc = run_cli(url, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout == expected[args], args  # the same answer as a saved one
    out = tmp_path / f"report_{mode.replace('=', '_')}"
    proc = run_cli(url, "report", str(out))
    assert proc.returncode == 0, proc.stderr
    first = (out / "first_divergence.md").read_text()
    assert "beam_center_m" in first and "pixel" in first.lower()
    assert _digest(db) == before  # not one byte written (root may write a 0444 file)
    assert _saved_sets(f"sqlite:///{db.as_posix()}") == 0


def test_saving_needs_write_access_and_says_so(loaded):
    db, _ = loaded
    proc = run_cli(f"sqlite:///file:{db.as_posix()}?mode=ro&uri=true", "diverge", "--save")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "readonly" in proc.stderr.replace("-", "")
    assert "Traceback" not in proc.stderr


def test_diverge_answers_while_an_ingest_holds_the_write_lock(sqlite_url, tmp_path):
    with tracedb.connect(sqlite_url) as wh:
        assert wh.ingest([example_tree()]).ok
        alone = wh.diverge()
    # an ingest in the middle of a bundle: the write lock taken, rows not committed
    holder = sqlite3.connect(make_url(sqlite_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE being_loaded (x)")
    holder.execute("INSERT INTO being_loaded VALUES (1)")
    try:
        proc = run_cli(sqlite_url, "diverge", "--format", "json")
        with tracedb.connect(sqlite_url) as wh:
            during = wh.diverge()
            timeline, _ = wh.timeline((10, 20))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 0, proc.stderr
    assert [o["first"]["tap"] for o in json.loads(proc.stdout)] == alone.first_tap.tolist()
    assert during.first_tap.tolist() == alone.first_tap.tolist()
    assert len(timeline) == 1


def test_a_session_reads_its_own_results_as_sql(url):
    wh = tracedb.connect(url)
    assert wh.ingest([example_tree()]).ok
    found = wh.diverge()
    set_id = found.attrs["set_id"]
    assert set_id < 0  # the session's own
    n = wh.sql(f"SELECT count(*) AS n FROM tap_result WHERE set_id = {set_id}").n[0]
    assert n == found.diverged.sum() + found.print_precision.sum()
    assert wh.query("divergence", set_id=set_id, strict=0).first_tap.tolist() == \
        found.first_tap.tolist()
    second = wh.diverge(strict=True)
    assert second.attrs["set_id"] == set_id - 1
    diff = wh.diff(set_id)  # completing a session's set stays in the session
    assert len(diff) > n and set(diff.status) >= {"match", "diverged"}
    assert _saved_sets(url) == 0
    saved = wh.diverge(save=True)
    assert saved.attrs["set_id"] > 0 and _saved_sets(url) == 1
    assert wh.query("divergence", set_id=saved.attrs["set_id"], strict=0).first_tap.tolist() \
        == found.first_tap.tolist()
    wh.close()
    with tracedb.connect(url) as again:  # the session's own sets went with it
        assert again.sql("SELECT count(*) AS n FROM comparison_set").n[0] == 1


def test_closing_a_postgresql_session_drops_its_temporary_objects_first(pg_url):
    """close() drops the session's temporary tables and views itself: left to the
    server after the client has gone, their clean-up raced a DROP of the schema right
    after close() (a deadlock on the views' rules)."""
    from sqlalchemy import text

    wh = tracedb.connect(pg_url)
    assert wh.ingest([example_tree()]).ok
    assert len(wh.diverge()) > 0
    scratch = wh.db.reads()
    count = text("SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()")
    assert scratch.execute(count).scalar() > 0  # the session's result tables and views
    wh.db.store.release_scratch(scratch)
    assert scratch.execute(count).scalar() == 0
    wh.close()


def test_prune_removes_saved_comparisons_by_age(url):
    wh = tracedb.connect(url)
    assert wh.ingest([example_tree()]).ok
    old = wh.diverge(save=True).attrs["set_id"]
    new = wh.diff_runs(1, 3, save=True)
    assert len(new) > 0
    with wh.write() as conn, conn.begin():
        conn.execute(text("UPDATE comparison_set SET created_at = '2020-01-01T00:00:00Z' "
                          "WHERE id = :i"), {"i": old})
    wh.close()
    proc = run_cli(url, "db", "prune", "--older-than", "30d")
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 saved comparison set" in proc.stdout
    engine = create_engine(url)
    with engine.connect() as conn:
        left = conn.execute(text("SELECT id FROM comparison_set")).scalars().all()
        orphans = conn.execute(text(
            "SELECT (SELECT count(*) FROM comparison WHERE set_id = :i) "
            "+ (SELECT count(*) FROM tap_result WHERE set_id = :i) "
            "+ (SELECT count(*) FROM tap_flag WHERE set_id = :i)"), {"i": old}).scalar_one()
    engine.dispose()
    assert len(left) == 1 and old not in left and orphans == 0
    proc = run_cli(url, "db", "prune", "--older-than", "soon")
    assert proc.returncode == 2 and "30d" in proc.stderr and "Traceback" not in proc.stderr


def test_analysis_through_a_postgresql_role_with_only_select(pg_url, tmp_path):
    with tracedb.connect(pg_url) as wh:
        assert wh.ingest([example_tree()]).ok
        expected = wh.diverge()
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    role = f"tdb_ro_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
    ro_url = make_url(pg_url).set(username=role).render_as_string(hide_password=False)
    try:
        for args in ANALYSES:
            proc = run_cli(ro_url, *args)
            assert proc.returncode == 0, (args, proc.stderr)
        proc = run_cli(ro_url, "diverge", "--format", "json")
        assert [o["first"]["tap"] for o in json.loads(proc.stdout)] == \
            expected.first_tap.tolist()
        proc = run_cli(ro_url, "report", str(tmp_path / "report"))
        assert proc.returncode == 0, proc.stderr
        assert "beam_center_m" in (tmp_path / "report" / "first_divergence.md").read_text()
        proc = run_cli(ro_url, "diverge", "--save")
        assert proc.returncode == 2 and "permission denied" in proc.stderr
        assert proc.stderr.count("\n") == 1
        with tracedb.connect(ro_url) as wh:  # the API too, and its SQL sees the results
            found = wh.diverge()
            sid = found.attrs["set_id"]
            assert wh.sql(f"SELECT count(*) AS n FROM comparison WHERE set_id = {sid}").n[0] \
                == len(found)
        assert _saved_sets(pg_url) == 0
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_read_only_directory_and_file_still_answer(loaded, tmp_path):
    """A warehouse copied to read-only media: no -wal or -shm can be made beside it
    (for root, who may write anyway, the check is that nothing was)."""
    db, expected = loaded
    media = tmp_path / "media"
    media.mkdir()
    copy = media / "w.sqlite"
    copy.write_bytes(db.read_bytes())
    copy.chmod(0o444)
    media.chmod(0o555)
    try:
        proc = run_cli(f"sqlite:///file:{copy.as_posix()}?mode=ro&uri=true",
                       "diverge", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected[ANALYSES[0]]
    finally:
        media.chmod(0o755)


def test_read_only_media_is_opened_immutable(loaded, tmp_path, monkeypatch):
    """What a user without write access to the file and its directory gets (as root,
    who may write anyway, simulated): the file opened immutable, the same answer."""
    from tracedb.store import sqlite as store

    db, expected = loaded
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if m == os.W_OK else real(p, m))
    opened = store.read_only_media(make_url(f"sqlite:///{db.as_posix()}"))
    assert opened.query == {"uri": "true", "immutable": "1"}
    wh = tracedb.connect(f"sqlite:///{db.as_posix()}")
    assert wh.engine.url.query.get("immutable") == "1"
    assert wh.display_url == f"sqlite:///{db.as_posix()}"
    first = json.loads(expected[ANALYSES[0]])
    assert wh.diverge().first_tap.tolist() == [o["first"]["tap"] for o in first]
    wh.close()
    (tmp_path / "w.sqlite-shm").write_bytes(b"")  # a -shm beside it: read as usual
    assert store.read_only_media(make_url(f"sqlite:///{db.as_posix()}")).query == {}
