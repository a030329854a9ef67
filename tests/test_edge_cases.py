"""Edge cases found in review: tolerances, concurrent identical requests, NUL bytes,
sub-tree re-ingests, re-captured files, LIKE semantics, index-only records."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import tracedb
from tracedb.compare.select import candidates_text
from tracedb.errors import TracedbError
from tracedb.ingest.parse import parse_line

from .conftest import C_TRACE, PY_TRACE, write


def two_sides(tmp_path, c=C_TRACE, py=PY_TRACE):
    root = tmp_path / "reports" / "ini" / "ph"
    write(root / "20250101T000000Z" / "c_traces" / "pixel_1_2.log", c)
    write(root / "20250101T010000Z" / "py_traces" / "pixel_1_2.log", py)
    return tmp_path / "reports"


@pytest.mark.parametrize("rtol, atol", [(float("nan"), 0.0), (1e-12, float("inf")),
                                        (-1.0, 0.0)])
def test_non_finite_or_negative_tolerance_is_refused(url, tmp_path, rtol, atol):
    wh = tracedb.connect(url)
    wh.ingest([two_sides(tmp_path)])
    with pytest.raises(TracedbError, match="finite numbers >= 0"):
        wh.diverge(rtol=rtol, atol=atol)


def test_identical_request_does_not_remove_a_fresh_result(url, tmp_path):
    wh = tracedb.connect(url)
    wh.ingest([two_sides(tmp_path)])
    from tracedb.compare import engine, results
    from tracedb.store.engine import utcnow

    pairs = wh.pair_runs()
    first = engine.create(wh.db, pairs, 1e-12, 0.0, "diverge", utcnow())
    second = engine.create(wh.db, pairs, 1e-12, 0.0, "diverge", utcnow())
    assert first != second
    assert len(results.summaries(wh.db, first, False)) == 1  # still readable by it


def test_trace_file_with_a_nul_byte_is_loaded_and_the_line_named(url, tmp_path):
    root = tmp_path / "r" / "20250101T000000Z"
    write(root / "c_trace.log", b"TRACE_C: a 1\nTRACE_C: note x\x00y\nTRACE_C: d 4\n")
    write(root / "real.bin", b"\x00\x01\x02\x03 binary")
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "r"])
    msgs = [str(n) for n in res.notes]
    assert any("c_trace.log:2" in m and "NUL" in m for m in msgs), msgs
    assert any("real.bin" in m and "binary file skipped" in m for m in msgs), msgs
    taps = wh.taps(int(wh.runs().id.iloc[0]))
    assert list(taps.name) == ["a", "note", "d"]


def test_reingesting_a_sub_folder_adds_nothing_and_versions_across_roots(url, tmp_path):
    root = tmp_path / "reports" / "init" / "phase"  # no stamps: bundles from folders
    write(root / "c_traces" / "pixel_1_2.log", C_TRACE)
    write(root / "py_traces" / "pixel_1_2.log", PY_TRACE)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).stats["runs"] == 2
    again = wh.ingest([root / "c_traces"])
    assert again.ok, [str(n) for n in again.notes]
    assert (again.stats["runs"], again.stats["unchanged_files"]) == (0, 1)
    f = root / "c_traces" / "pixel_1_2.log"
    f.write_text(C_TRACE.replace("1.5e-13", "2.5e-13"), encoding="utf-8")
    changed = wh.ingest([f])
    assert changed.ok and changed.stats["runs"] == 1
    with wh.engine.connect() as conn:
        rows = conn.execute(text("SELECT version, bundle_id FROM source_file "
                                 "WHERE path LIKE '%c_traces/pixel_1_2.log' ORDER BY version")
                            ).all()
    assert [r[0] for r in rows] == [1, 2] and rows[0][1] == rows[1][1]


def test_recaptured_file_selects_its_newest_version(url, tmp_path):
    reports = two_sides(tmp_path)
    wh = tracedb.connect(url)
    wh.ingest([reports])
    old = int(wh.runs(side="py").id.iloc[0])
    f = next(reports.rglob("py_traces/pixel_1_2.log"))
    f.write_text(PY_TRACE.replace("1.500000000000000e-13", "1.600000000000000e-13"),
                 encoding="utf-8")
    wh.ingest([reports])
    s = wh.diverge(ref="c@20250101T000000Z", cand="py@20250101T010000Z").iloc[0]
    back = wh.diverge(ref="c@20250101T000000Z", cand=f"run:{old}").iloc[0]
    assert s.cand_run != old and back.cand_run == old
    assert s.diverged == back.diverged + 1  # the re-captured I_pixel_final differs
    assert wh.diverge().iloc[0].cand_run == s.cand_run  # default pairing: newest too


def test_path_and_stamp_filters_are_literal_and_case_sensitive(url, tmp_path):
    wh = tracedb.connect(url)
    wh.ingest([two_sides(tmp_path)])
    assert len(wh.runs(path="c_traces")) == 1
    assert wh.runs(path="C_TRACES").empty  # same on SQLite and PostgreSQL
    assert wh.runs(path="c%traces").empty and wh.runs(path="c_trace_").empty
    assert len(wh.runs(stamp="010000Z")) == 1 and wh.runs(stamp="010000z").empty


def test_index_only_record_is_an_event_not_lost():
    line = parse_line("TRACE_C: mos_tic=0 phi_tic=1", 3)
    assert line.quarantine is None
    assert [(t.name, t.loop_key, t.shape) for t in line.taps] == [
        ("index", "mos_tic=0;phi_tic=1", "event")]


def test_sql_accepts_a_semicolon_inside_a_string(url):
    wh = tracedb.connect(url)
    assert wh.sql("SELECT ';' AS s").s.iloc[0] == ";"
    with pytest.raises(TracedbError, match="one statement"):
        wh.sql("SELECT 1; SELECT 2")


def test_write_steps_are_not_named_queries(sqlite_url):
    wh = tracedb.connect(sqlite_url)
    from tracedb.api import query_names
    from tracedb.store.queries import step_names

    steps = set(step_names())
    assert {"compare", "compare_flag", "compare_flag_shapes", "compare_flagged", "unit_hints",
            "unit_suspects", "rekey_names", "rekey_occurrence", "rekey_register", "rekey_values",
            "rekey_taps", "rekey_values_finish", "digest_lists", "run_keys"} == steps
    assert not steps & set(query_names())
    assert {"runs", "divergence", "tap_diff", "check"} <= set(query_names())
    # tracedb's own inner queries are not listed, and still run by name
    assert "pairing_runs" not in query_names()
    assert wh.rows("pairing_runs") == []
    for step in sorted(steps):  # some start with WITH: still refused
        with pytest.raises(TracedbError, match="tracedb's own write steps"):
            wh.query(step, set_id=1)
    # an engine's variant of a step (compare_flag.postgresql.sql) is no name of its own
    assert not any("." in name for name in query_names())
    with pytest.raises(TracedbError, match="no named query 'compare_flag.postgresql'"):
        wh.query("compare_flag.postgresql", set_id=1)


def test_candidate_list_shows_a_dash_for_a_missing_stamp():
    runs = [{"id": 9, "side": "c", "stamp": None, "pixel": (1, 2), "path": "x/c.log",
             "file_version": 1}]
    assert candidates_text(runs) == "run:9 c@- pixel 1,2 x/c.log"


def test_a_named_query_cannot_write_whatever_it_says(url, tmp_path, monkeypatch):
    # queries/ holds the user's questions; one that writes is refused by the engine
    # (a read-only transaction, PRAGMA query_only), as one line, and changes nothing
    import shutil

    from tracedb.store import engine, queries

    folder = tmp_path / "queries"
    shutil.copytree(engine.resource_dir("queries"), folder)
    (folder / "sneaky.sql").write_text("-- looks like a query\nDELETE FROM unit\n")
    monkeypatch.setattr(queries, "resource_dir", lambda name: folder)
    queries.sql_text.cache_clear()
    wh = tracedb.connect(url)
    before = wh.sql("SELECT count(*) AS n FROM unit").n.iloc[0]
    try:
        with pytest.raises(TracedbError, match="query 'sneaky' is read-only"):
            wh.rows("sneaky")  # a query asked for by name is held to a plain read
        with pytest.raises(TracedbError, match="query 'sneaky' is read-only"):
            queries.fetch(wh.engine, "sneaky")  # tracedb's own: the transaction refuses
    finally:
        queries.sql_text.cache_clear()
    assert wh.sql("SELECT count(*) AS n FROM unit").n.iloc[0] == before > 0
    wh.accept("x", "writes still work afterwards")


def test_sql_keeps_columns_that_share_a_name(url):
    df = tracedb.connect(url).sql("SELECT 1 AS id, 2 AS id")
    assert list(df.columns) == ["id", "id"] and df.iloc[0].tolist() == [1, 2]
