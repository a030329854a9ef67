"""Ingest: what loads, idempotence, new versions, rollback, bad input (both backends)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from sqlalchemy import text

import tracedb
from tracedb.api import example_tree

from .conftest import C_TRACE, PY_TRACE, write


def count(wh, table):
    with wh.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_example_tree_loads_with_sides_stamps_pixels(url):
    wh = tracedb.connect(url)
    res = wh.ingest([example_tree()])
    s = res.stats
    assert res.ok
    assert (s["trace_files"], s["bundles"], s["runs"], s["pixels"]) == (4, 2, 4, 2)
    assert s["parsed_lines"] + s["quarantined_lines"] == s["trace_lines"] > 0
    runs = wh.runs()
    got = sorted((r.side, r.stamp.strftime("%Y%m%dT%H%M%SZ"), (r.pixel_slow, r.pixel_fast))
                 for r in runs.itertuples())
    assert got == [("c", "20260105T101500Z", (10, 20)), ("c", "20260105T101500Z", (30, 40)),
                   ("py", "20260105T103000Z", (10, 20)), ("py", "20260105T103000Z", (30, 40))]
    py = wh.runs(side="py", pixel=(10, 20)).iloc[0]
    assert py.meta_stamp == pd.Timestamp("2026-01-05 10:31:12", tz="UTC")  # both kept
    assert py.path_stamp == pd.Timestamp("2026-01-05 10:30:00", tz="UTC")
    assert py.pixel_source == "metadata"


def test_bundle_metadata_is_stored(url, tree):
    wh = tracedb.connect(url)
    wh.ingest([tree])
    with wh.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT stamp, initiative, phase, env_json, commands_text, notes_text "
            "FROM bundle ORDER BY stamp")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("20250101T000000Z", "init", "phase_x"), ("20250101T010000Z", "init", "phase_x")]
    assert json.loads(rows[0][3])["git_sha"] == "abc123"
    assert "trace_pixel 1 2" in rows[0][4]
    assert json.loads(rows[1][3])["git_sha"] == "def456"
    assert "# notes" in rows[1][5]
    # the Markdown note's TRACE-looking line is never a trace capture
    assert wh.runs(path="summary.md").empty
    meta = wh.runs(side="py").iloc[0]
    with wh.engine.connect() as conn:
        mj = conn.execute(text("SELECT metadata_json FROM run WHERE id = :i"),
                          {"i": int(meta.id)}).scalar_one()
    assert json.loads(mj)["dtype"] == "torch.float64"


def test_second_ingest_adds_nothing(url, tree):
    wh = tracedb.connect(url)
    first = wh.ingest([tree]).stats
    before = {t: count(wh, t) for t in ("bundle", "source_file", "run", "tap", "value")}
    second = wh.ingest([tree]).stats
    after = {t: count(wh, t) for t in ("bundle", "source_file", "run", "tap", "value")}
    assert first["runs"] == 4 and first["taps"] > 0
    assert before == after
    assert (second["runs"], second["taps"], second["values"], second["bundles"]) == (0, 0, 0, 0)
    assert second["unchanged_files"] == 4


def test_changed_file_is_a_new_version_not_an_overwrite(url, tree):
    wh = tracedb.connect(url)
    wh.ingest([tree])
    f = next(tree.rglob("c_traces/pixel_1_2.log"))
    f.write_text(C_TRACE.replace("1.5e-13", "2.5e-13"), encoding="utf-8")
    res = wh.ingest([tree]).stats
    assert res["new_trace_files"] == 1 and res["runs"] == 1
    runs = wh.runs(path="c_traces/pixel_1_2.log")
    assert sorted(runs.file_version) == [1, 2]
    finals = []
    for rid in runs.id:
        taps = wh.taps(int(rid))
        finals.append(taps[taps.name == "I_pixel_final"].value.iloc[0])
    assert sorted(finals) == ["1.5e-13", "2.5e-13"]


def test_failing_bundle_leaves_warehouse_as_it_was(url, tree, monkeypatch):
    wh = tracedb.connect(url)
    from tracedb.ingest import loader as load

    real = load.Loader.store

    def explode(self, w, batch, bundle_id, prep, *a, **k):
        if any(d.pixel == (3, 4) for d in prep.drafts):
            raise RuntimeError("disk on fire")
        return real(self, w, batch, bundle_id, prep, *a, **k)

    monkeypatch.setattr(load.Loader, "store", explode)
    res = wh.ingest([tree])
    assert not res.ok
    assert res.stats["failed_bundles"] == 2  # both bundles hold a (3, 4) pixel
    errors = [n for n in res.notes if n.level == "error"]
    assert all("warehouse unchanged" in n.message and "disk on fire" in n.message
               for n in errors)
    for table in ("bundle", "source_file", "run", "tap", "value", "source_blob"):
        assert count(wh, table) == 0, table
    monkeypatch.setattr(load.Loader, "store", real)
    assert wh.ingest([tree]).stats["runs"] == 4


def test_one_failing_bundle_does_not_stop_the_others(url, tree, monkeypatch):
    wh = tracedb.connect(url)
    from tracedb.ingest import loader as load

    real = load.Loader.store

    def explode(self, w, batch, bundle_id, prep, *a, **k):
        if "20250101T010000Z" in str(prep.tf.path):
            raise ValueError("bad bundle")
        return real(self, w, batch, bundle_id, prep, *a, **k)

    monkeypatch.setattr(load.Loader, "store", explode)
    res = wh.ingest([tree])
    assert res.stats["failed_bundles"] == 1
    assert set(wh.runs().side) == {"c"}
    assert count(wh, "bundle") == 1


def test_raw_file_is_recoverable(url, tree):
    import zlib

    from tracedb.ingest.files import decompress_blob

    wh = tracedb.connect(url)
    wh.ingest([tree])
    f = next(tree.rglob("py_traces/pixel_1_2.log"))
    with wh.engine.connect() as conn:
        compression, blob, size = conn.execute(text(
            "SELECT b.compression, b.content, b.size FROM source_blob b "
            "JOIN source_file s ON s.sha256 = b.sha256 "
            "WHERE s.path LIKE :p"), {"p": "%py_traces/pixel_1_2.log"}).one()
    assert compression == "zstd" and size == f.stat().st_size
    assert decompress_blob(compression, blob) == f.read_bytes()
    # rows kept by earlier versions say zlib
    assert decompress_blob("zlib", zlib.compress(b"TRACE_C: a 1\n")) == b"TRACE_C: a 1\n"


def test_units_come_from_name_suffix(url, tree):
    wh = tracedb.connect(url)
    wh.ingest([tree])
    rid = int(wh.runs(side="c").id.iloc[0])
    units = dict(zip(wh.taps(rid).name, wh.taps(rid).unit, strict=True))
    assert units["beam_center_m"] == "m"
    assert units["pixel_pos_meters"] == "m"
    assert pd.isna(units["I_pixel_final"])


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_are_named_and_the_rest_loads(url, tmp_path, monkeypatch):
    root = tmp_path / "reports" / "i" / "p" / "20250101T000000Z"
    write(root / "c_traces" / "pixel_1_1.log", C_TRACE)
    write(root / "empty.log", "")
    write(root / "image.bin", b"\x00\x01\x02TRACE_C:x=1\n" * 10)
    write(root / "bad_utf8.log", b"TRACE_C: a 1\nTRACE_C: note caf\xe9 ok\nTRACE_C: b 2\n")
    write(root / "truncated.log", "TRACE_C: a 1\nTRACE_C: b 2.5")
    write(root / "crlf.log",
          "TRACE_C: a 1\r\nTRACE_C: b nan\r\nTRACE_C: c -0\r\nTRACE_C: d inf\r\n")
    write(root / "huge.log", "TRACE_C: ok 1\nTRACE_C: big " + "1 " * 600_000 + "\nTRACE_C: z 3\n")
    unreadable = write(root / "locked.log", "TRACE_C: a 1\n")

    real_open = os.open

    def guarded_open(path, *args, **kwargs):  # root ignores chmod, so refuse explicitly
        if str(path) == str(unreadable):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("os.open", guarded_open)  # how the loader opens files
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "reports", tmp_path / "nope"])
    msgs = [str(n) for n in res.notes]

    def has(fragment, path):
        return any(path in m and fragment in m for m in msgs), msgs

    assert res.missing == [str(tmp_path / "nope")]
    assert not res.ok
    assert has("empty file", "empty.log")[0]
    assert has("binary file skipped", "image.bin")[0]
    assert has("invalid UTF-8", "bad_utf8.log:2")[0]
    assert has("no line end", "truncated.log:2")[0]
    assert has("longer than", "huge.log:2")[0]
    assert has("cannot read: Permission denied", "locked.log")[0]
    s = res.stats
    assert s["parsed_lines"] + s["quarantined_lines"] == s["trace_lines"]
    assert s["quarantined_lines"] == 1  # the 1 MB line, kept with file, line and reason
    q = wh.quarantine()
    assert list(zip(q.path.str.endswith("huge.log"), q.line, strict=True)) == [(True, 2)]
    by_file = {r.path.rsplit("/", 1)[1]: int(r.id) for r in wh.runs().itertuples()}
    assert set(by_file) == {"pixel_1_1.log", "bad_utf8.log", "truncated.log", "crlf.log",
                            "huge.log"}
    crlf = wh.taps(by_file["crlf.log"])
    assert list(crlf.value) == ["1", "nan", "-0", "inf"]
    assert [c[0]["kind"] for c in crlf.components] == ["num", "nan", "num", "inf"]
    trunc = wh.taps(by_file["truncated.log"])
    assert list(trunc.value) == ["1", "2.5"]
    huge = wh.taps(by_file["huge.log"])
    assert list(huge.name) == ["ok", "z"]
    utf = wh.taps(by_file["bad_utf8.log"])
    assert list(utf.name) == ["a", "note", "b"]


def test_nan_inf_negative_zero_survive_the_database(url, tmp_path):
    write(tmp_path / "r" / "c_trace.log", "TRACE_C: v nan inf -inf -0 0 1e-300\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "r"])
    comps = wh.taps(int(wh.runs().id.iloc[0])).components.iloc[0]
    assert [c["kind"] for c in comps] == ["nan", "inf", "-inf", "num", "num", "num"]
    assert [c["text"] for c in comps] == ["nan", "inf", "-inf", "-0", "0", "1e-300"]
    assert comps[5]["num"] == 1e-300


def test_in_file_markers_split_runs(url, tmp_path):
    write(tmp_path / "r" / "c_taps.log",
          "TRACE_C:distance_m=0.5\n"
          "TRACE_C_TAP5: pixel 0 0\nTRACE_C_TAP5: I_pixel_final 0\n"
          "TRACE_C_TAP5: pixel 2048 2048\nTRACE_C_TAP5: I_pixel_final 3e-4\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "r"])
    runs = wh.runs()
    assert sorted(zip(runs.pixel_slow, runs.pixel_fast, strict=True)) == [(0, 0), (2048, 2048)]
    first = runs[(runs.pixel_slow == 0) & (runs.pixel_fast == 0)].iloc[0]
    # geometry printed before the first marker belongs to the first pixel
    assert list(wh.taps(int(first.id)).name) == ["distance_m", "I_pixel_final"]
    assert set(runs.pixel_source) == {"marker"}


def test_repeated_taps_get_occurrence_numbers(url, tmp_path):
    write(tmp_path / "r" / "c_trace.log", "TRACE_C:fdet=0 0 1\nTRACE_C:x=1\nTRACE_C:fdet=0 0 1\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "r"])
    taps = wh.taps(int(wh.runs().id.iloc[0]))
    assert list(zip(taps.name, taps.occurrence, taps.line, strict=True)) == [
        ("fdet", 1, 1), ("x", 1, 2), ("fdet", 2, 3)]


def test_command_is_recorded(url, tree):
    wh = tracedb.connect(url)
    wh.ingest([tree], argv=["tracedb", "ingest", "reports"])
    with wh.engine.connect() as conn:
        row = conn.execute(text("SELECT command, argv, status, stats_json FROM command_log")
                           ).one()
    assert row[0] == "ingest" and json.loads(row[1]) == ["tracedb", "ingest", "reports"]
    assert row[2] == "ok" and json.loads(row[3])["runs"] == 4


@pytest.mark.skipif(os.name != "posix", reason="symlink semantics")
def test_single_file_path_can_be_ingested(url, tree):
    f = next(tree.rglob("py_traces/pixel_3_4.log"))
    wh = tracedb.connect(url)
    res = wh.ingest([f])
    assert res.stats["runs"] == 1
    run = wh.runs().iloc[0]
    assert (run.side, run.stamp, run.pixel_slow, run.pixel_fast) == (
        "py", pd.Timestamp("2025-01-01 01:00", tz="UTC"), 3, 4)
    assert PY_TRACE.count("\n") == int(run.taps)
    # a file named on its own still finds the metadata JSON beside it
    with wh.engine.connect() as conn:
        mj = conn.execute(text("SELECT metadata_json FROM run WHERE id = :i"),
                          {"i": int(run.id)}).scalar_one()
    assert json.loads(mj)["dtype"] == "torch.float64"


def test_worker_processes_load_the_same_rows(sqlite_url, tmp_path, monkeypatch):
    """--workers parses in other processes; the warehouse must not differ."""
    monkeypatch.setattr("tracedb.ingest.loader.PARALLEL_MIN_FILES", 1)
    root = tmp_path / "reports" / "i" / "p" / "20250101T000000Z"
    for i in range(12):
        write(root / "c_traces" / f"pixel_{i}_1.log", C_TRACE.replace("1.5e-13", f"{i}e-13"))
    write(root / "c_traces" / "markers.log",
          "TRACE_C_TAP5: pixel 7 7\nTRACE_C_TAP5: v 1\nTRACE_C_TAP5: pixel 8 8\n"
          "TRACE_C_TAP5: v 2\n")
    serial = tracedb.connect(sqlite_url)
    serial.ingest([tmp_path / "reports"], workers=0)
    other = f"sqlite:///{(tmp_path / 'par.sqlite').as_posix()}"
    par = tracedb.connect(other)
    res = par.ingest([tmp_path / "reports"], workers=2)
    assert res.ok and res.stats["runs"] == 14

    def dump(wh):
        with wh.engine.connect() as conn:
            return [conn.execute(text(q)).all() for q in (
                "SELECT id, run_id, seq, name, key_name, key_occurrence, value_text FROM tap "
                "ORDER BY id",
                "SELECT t.id, v.idx, v.num, v.text, v.kind, v.digits, v.half_ulp FROM value v "
                "JOIN tap t ON t.run_id = v.run_id AND t.key_id = v.key_id ORDER BY t.id, v.idx",
                "SELECT r.id, r.side, p.slow, p.fast, r.tap_count FROM run r "
                "LEFT JOIN pixel p ON p.id = r.pixel_id ORDER BY r.id")]

    assert dump(serial) == dump(par)


def test_postgresql_ingest_leaves_tap_index_scans_reading_no_table_rows(pg_url):
    # the comparison reads the tap pairs its digest lists do not cover from the
    # index on (run, key, length, digest) alone; on pages an ingest just wrote,
    # PostgreSQL fetches every row from the table unless they were vacuumed
    # (autovacuum may be off, or not come round yet)
    wh = tracedb.connect(pg_url)
    assert wh.ingest([example_tree()]).ok
    with wh.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
            "SELECT run_id, key_id, n_components, digest FROM tap WHERE run_id > 0"))
        stats = conn.exec_driver_sql(
            "SELECT relpages, relallvisible, reltuples FROM pg_class "
            "WHERE oid = 'tap'::regclass").one()
    assert "Index Only Scan" in plan and "Heap Fetches: 0" in plan, plan
    assert stats.relallvisible == stats.relpages > 0 and stats.reltuples == count(wh, "tap")


def _stagers():
    """The Python stager, and the C one where it was built."""
    from tracedb.ingest import rows

    try:
        from tracedb.ingest import _cstage
    except ImportError:
        c = pytest.param(None, id="c", marks=pytest.mark.skip(
            reason="C accelerator not built; the Python stager is checked alone"))
    else:
        c = pytest.param(_cstage.Stager, id="c")
    return [pytest.param(rows.PyStager, id="python"), c]


@pytest.mark.parametrize("stager", _stagers())
@pytest.mark.parametrize(("order", "error"), [
    ([0, 0], IndexError), ([1, 2], IndexError), ([-1, 0], IndexError), ([0], ValueError),
    ([0, 1, 1], ValueError)], ids=["twice", "beyond", "negative", "short", "long"])
def test_both_stagers_refuse_an_order_that_is_not_each_tap_once(stager, order, error):
    """A run's key order names each of its taps exactly once: an order that repeats,
    skips or wraps would write a tap's values twice or not at all."""
    from tracedb.store import layout

    taps = [(7, "c", "a", "1 2", 2), (9, "c", "b", "3", 1)]
    static = [("", "a", "", 1, None, "a", 1, 5), ("", "b", "", 1, None, "b", 1, 4)]
    with pytest.raises(error, match="order"):
        stager(layout.STAGE_DDL, *layout.STAGE_SQL).run(3, 3 << layout.TAP_BITS, taps,
                                                        static, order)
