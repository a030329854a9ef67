"""No bundle lost to one bad file (issue 13), as a user sees it on both backends.

Bad metadata and pixel numbers the schema cannot hold are named in one line and the
run loads without them; a run past the old tap-id limit loads; a file past a limit is
named and the rest of its bundle loads; numbers that reach integer columns load. A
walk names the links, loops and FIFOs it meets (and never waits on a FIFO), and named
queries take typed parameters and match paths literally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

import tracedb

from .conftest import C_TRACE, PY_TRACE, write

STAMP = "20250101T000000Z"
C_TAPS = sum(1 for ln in C_TRACE.splitlines() if ln.startswith("TRACE_C"))
PY_TAPS = sum(1 for ln in PY_TRACE.splitlines() if ln.startswith("TRACE_PY"))
HUGE = "99999999999999999999"  # above 2**63 as well as above what the pixel columns hold


def cli(url, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    return subprocess.run([sys.executable, "-m", "tracedb", "--db", url, *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def named_once(proc, *fragments) -> str:
    """The one line of stderr that holds every fragment (and no traceback anywhere)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    hits = [ln for ln in proc.stderr.splitlines() if all(f in ln for f in fragments)]
    assert len(hits) == 1, (fragments, proc.stderr)
    return hits[0]


def runs_by_path(url) -> dict[str, list[tuple]]:
    """Every loaded run as `tracedb runs` lists it: path -> [(side, pixel, taps)]."""
    proc = cli(url, "runs", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out: dict[str, list[tuple]] = {}
    for r in sorted(json.loads(proc.stdout), key=lambda r: (r["path"], r["segment"])):
        out.setdefault(r["path"], []).append((r["side"], r["pixel"], r["taps"]))
    return out


def good_bundle(bundle):
    write(bundle / "c_traces" / "pixel_1_2.log", C_TRACE)
    write(bundle / "py_traces" / "pixel_1_2.log", PY_TRACE)


# --------------------------------------------------------------------------- bad files

NESTED = "[" * 100_000 + "]" * 100_000
LONG_NUMBER = "1" * 5000  # json.loads refuses integers of more than 4300 digits

#: case -> (files beside the good traces, under c_traces/; where the note points and
#: what it says; the runs of the bad file: name -> [(side, pixel, taps)])
CASES = {
    "nested_metadata": (
        {"pixel_3_4.log": "TRACE_C: a 1\n", "pixel_3_4_metadata.json": NESTED},
        ("pixel_3_4_metadata.json: ", "JSON nested too deeply to read; ignored"),
        {"pixel_3_4.log": [("c", [3, 4], 1)]}),
    "long_number_in_metadata": (
        {"pixel_3_4.log": "TRACE_C: a 1\n",
         "pixel_3_4_metadata.json": '{"pixel_slow": 9, "pixel_fast": 9, "x": '
                                    + LONG_NUMBER + "}"},
        ("pixel_3_4_metadata.json: ", "number too long to read; ignored"),
        {"pixel_3_4.log": [("c", [3, 4], 1)]}),  # the file name's pixel, not 9,9
    "metadata_pixel_above_2_63": (
        {"trace.log": "TRACE_C: a 1\n",
         "trace_metadata.json": json.dumps({"pixel_slow": 2**64, "pixel_fast": 4})},
        ("trace_metadata.json: ", "pixel (18446744073709551616, 4) unusable "
                                  "(18446744073709551616 is outside 0..2147483647)"),
        {"trace.log": [("c", None, 1)]}),
    "metadata_pixel_bool": (
        {"pixel_5_6.log": "TRACE_C: a 1\n",
         "pixel_5_6_metadata.json": '{"pixel_slow": 3, "pixel_fast": true}'},
        ("pixel_5_6_metadata.json: ", "pixel (3, true) unusable (true is a bool)"),
        {"pixel_5_6.log": [("c", [5, 6], 1)]}),  # the file name's pixel instead
    "metadata_pixel_negative_and_string": (
        {"trace.log": "TRACE_C: a 1\n",
         "trace_metadata.json": '{"pixel": {"slow": -1, "fast": "4"}}'},
        ("trace_metadata.json: ", 'pixel (-1, "4") unusable (-1 is outside '
                                  '0..2147483647; "4" is not an integer)'),
        {"trace.log": [("c", None, 1)]}),
    "metadata_pixel_float": (
        {"trace.log": "TRACE_C: a 1\n", "trace_metadata.json": '{"pixel": [2.0, 3]}'},
        ("trace_metadata.json: ", "pixel (2.0, 3) unusable (2.0 is not an integer)"),
        {"trace.log": [("c", None, 1)]}),
    "file_name_pixel": (
        {f"pixel_{HUGE}_4.log": "TRACE_C: a 1\n"},
        (f"pixel_{HUGE}_4.log: ", f"pixel ({HUGE}, 4) unusable"),
        {f"pixel_{HUGE}_4.log": [("c", None, 1)]}),
    "marker_pixel": (  # the marker still starts a run: its taps are not pixel 0,0's
        {"markers.log": "TRACE_C_TAP5: pixel 0 0\nTRACE_C_TAP5: v 1\n"
                        f"TRACE_C_TAP5: pixel {HUGE} 4\nTRACE_C_TAP5: v 2\n"},
        ("markers.log:3: ", f"pixel ({HUGE}, 4) unusable"),
        {"markers.log": [("c", [0, 0], 1), ("c", None, 1)]}),
    "marker_line_pixel": (
        {"sentence.log": "=== Pixel (12345678901234567890123, 5) TRACE START ===\n"
                         "TRACE_C: v 1\n"},
        ("sentence.log:1: ", "pixel (12345678901234567890..., 5) unusable"),
        {"sentence.log": [("c", None, 1)]}),
    "record_pixel": (
        {"record.log": f"TRACE_C_PHI: pixel=({HUGE},4) phi_tic=0 k=1\n"},
        ("record.log:1: ", f"pixel ({HUGE}, 4) unusable"),
        {"record.log": [("c", None, 1)]}),
    "marker_of_5000_digits": (
        {"digits.log": "TRACE_C: pixel " + "7" * 5000 + " 4\nTRACE_C: v 1\n"},
        ("digits.log:1: ", "pixel (77777777777777777777..., 4) unusable"),
        {"digits.log": [("c", None, 1)]}),
}

#: Numbers that reach integer columns or int() but are no error: they load as written.
NUMBERS = (f"TRACE_PY_SOURCE {HUGE}: wavelength_angstroms 0.9768\n"
           f"TRACE_PY_TRICUBIC: [{HUGE},0,1]=147.1\n"
           f"TRACE_PY_PHI phi_tic={HUGE} k_frac=-0.59\n"
           "TRACE_PY: zero_exp 0e" + "1" * 5000 + "\n"
           "TRACE_PY: tiny 1e-" + "1" * 5000 + "\n"
           "TRACE_PY: pixel \u00b2 3\n")


def bad_tree(tmp_path):
    root = tmp_path / "reports"
    for case, (files, _note, _runs) in CASES.items():
        bundle = root / case / STAMP
        good_bundle(bundle)
        for name, content in files.items():
            write(bundle / "c_traces" / name, content)
    good_bundle(root / "numbers" / STAMP)
    write(root / "numbers" / STAMP / "py_traces" / "numbers.log", NUMBERS)
    return root


def test_one_bad_file_costs_neither_its_bundle_nor_the_good_traces(url, tmp_path):
    bad_tree(tmp_path)
    proc = cli(url, "ingest", "reports", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # warnings only: every trace file loaded
    runs = runs_by_path(url)
    for case, (_files, (where, message), bad_runs) in CASES.items():
        folder = f"reports/{case}/{STAMP}"
        assert runs[f"{folder}/c_traces/pixel_1_2.log"] == [("c", [1, 2], C_TAPS)], case
        assert runs[f"{folder}/py_traces/pixel_1_2.log"] == [("py", [1, 2], PY_TAPS)], case
        for name, expected in bad_runs.items():
            assert runs[f"{folder}/c_traces/{name}"] == expected, case
        line = named_once(proc, f"{folder}/c_traces/{where}", message)
        assert line.startswith("tracedb: warning: "), line
    numbers = f"reports/numbers/{STAMP}/py_traces/numbers.log"
    assert runs[numbers] == [("py", None, 6)]
    assert numbers not in proc.stderr


def test_numbers_that_reach_integer_columns_load_as_written(url, tmp_path):
    bad_tree(tmp_path)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports" / "numbers"]).ok
    run = next(r for r in wh.run_rows() if r["path"].endswith("numbers.log"))
    taps = [(t["name"], t["loop_key"], t["text"][:12], t["num"], t["kind"])
            for t in wh.rows("taps", run_id=run["id"])]
    assert taps == [("wavelength_angstroms", HUGE, "0.9768", 0.9768, "num"),
                    ("tricubic", f"[{HUGE},0,1]", "147.1", 147.1, "num"),
                    ("k_frac", f"phi_tic={HUGE}", "-0.59", -0.59, "num"),
                    ("zero_exp", "", "0e1111111111", 0.0, "num"),
                    ("tiny", "", "1e-111111111", 0.0, "num"),
                    ("pixel", "", "\u00b2 3", None, "text")]


def dump(url) -> list[list[tuple]]:
    """What a load stored, without ids or times."""
    wh = tracedb.connect(url)
    queries = (
        "SELECT sf.path, r.segment, r.side, p.slow, p.fast, r.pixel_source, r.tap_count, "
        "r.first_line, r.last_line, r.stamp, r.meta_stamp, r.metadata_json, r.shape_sig "
        "FROM run r JOIN source_file sf ON sf.id = r.source_file_id "
        "LEFT JOIN pixel p ON p.id = r.pixel_id ORDER BY sf.path, r.segment",
        "SELECT sf.path, r.segment, t.seq, t.line_no, t.channel, t.name, t.loop_key, "
        "t.occurrence, t.unit, t.shape, t.value_text, t.key_name, t.key_occurrence, v.idx, "
        "v.label, v.num, v.text, v.kind, v.digits, v.half_ulp FROM tap t "
        "JOIN run r ON r.id = t.run_id JOIN source_file sf ON sf.id = r.source_file_id "
        "JOIN value v ON v.run_id = t.run_id AND v.key_id = t.key_id "
        "ORDER BY sf.path, r.segment, t.seq, v.idx",
        "SELECT sf.path, sf.metadata_path, sf.line_count, sf.trace_lines, sf.parsed_lines, "
        "sf.quarantined_lines, sf.encoding FROM source_file sf ORDER BY sf.path",
        "SELECT sf.path, q.line_no, q.reason, q.text FROM quarantine q "
        "JOIN source_file sf ON sf.id = q.source_file_id ORDER BY sf.path, q.line_no",
    )
    with wh.engine.connect() as conn:
        return [[tuple(r) for r in conn.execute(text(q))] for q in queries]


def test_both_backends_store_the_same_rows(sqlite_url, pg_url, tmp_path, monkeypatch):
    bad_tree(tmp_path)
    monkeypatch.chdir(tmp_path)  # the same relative paths in both warehouses
    for url in (sqlite_url, pg_url):
        res = tracedb.connect(url).ingest(["reports"])
        assert res.ok and res.stats["failed_bundles"] == 0
    lite, pg = dump(sqlite_url), dump(pg_url)
    assert len(lite[0]) == 3 + sum(2 + sum(map(len, bad.values()))  # every run loaded
                                   for _files, _note, bad in CASES.values())
    assert lite == pg


@pytest.mark.parametrize("limit, content, message", [
    ("MAX_TAPS", "".join(f"TRACE_C: t{i} {i}\n" for i in range(7)),
     "a run of 7 taps, more than the 6 a run may hold; file not loaded"),
    ("MAX_LINES", "TRACE_C: a 1\n" + "\n" * 5 + "TRACE_C: b 2\n",
     "7 lines, more than the 6 a file may hold; file not loaded"),
])
def test_a_file_past_a_limit_is_named_and_the_rest_of_its_bundle_loads(
        url, tmp_path, monkeypatch, limit, content, message):
    """The limits are 2**31 - 1 (what the integer columns hold), too large to write in
    a test: here they are made small (the good traces stay within them)."""
    assert max(C_TRACE.count("\n"), PY_TRACE.count("\n")) <= 6
    monkeypatch.setattr(f"tracedb.ingest.files.{limit}", 6)
    bundle = tmp_path / "reports" / "i" / "p" / STAMP
    good_bundle(bundle)
    write(bundle / "c_traces" / "long.log", content)
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "reports"])
    assert not res.ok  # `tracedb ingest` exits with 2
    errors = [str(n) for n in res.notes if n.level == "error"]
    assert errors == [f"{tmp_path / 'reports'}/i/p/{STAMP}/c_traces/long.log: {message}"]
    assert res.stats["failed_bundles"] == 0 and res.stats["runs"] == 2
    assert sorted((r["side"], r["taps"]) for r in wh.run_rows()) == [("c", C_TAPS),
                                                                   ("py", PY_TAPS)]


def test_a_run_past_the_old_tap_id_limit_loads(url, tmp_path):
    """Tap ids were run id << 20 + order, so a run of 2**20 taps or more took its whole
    bundle down. The warehouse here already knows the run's pairing keys (as after a
    run of the same shape was loaded once): registering a million new keys is another
    cost (a minute and more on PostgreSQL), not the limit under test."""
    n = (1 << 20) + 24
    bundle = tmp_path / "reports" / "i" / "p" / STAMP
    with open(write(bundle / "c_traces" / "pixel_5_6.log", ""), "w") as fh:
        fh.writelines(f"TRACE_C: v {i}\n" for i in range(n))
    good_bundle(bundle)  # the next runs: their tap ids sit right above the long run's
    wh = tracedb.connect(url)
    with wh.engine.begin() as conn:
        conn.execute(text(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :n) "
            "INSERT INTO tap_key (channel, key_name, loop_key, key_occurrence) "
            "SELECT '', 'v', '', i FROM k"), {"n": n})
    proc = cli(url, "ingest", "reports", cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    runs = runs_by_path(url)
    assert runs[f"reports/i/p/{STAMP}/c_traces/pixel_5_6.log"] == [("c", [5, 6], n)]
    assert runs[f"reports/i/p/{STAMP}/c_traces/pixel_1_2.log"] == [("c", [1, 2], C_TAPS)]
    assert runs[f"reports/i/p/{STAMP}/py_traces/pixel_1_2.log"] == [("py", [1, 2], PY_TAPS)]
    (long_run,) = [r["id"] for r in wh.run_rows(pixel=(5, 6))]
    cols, rows = wh.sql_rows(
        "SELECT count(*), count(DISTINCT id), min(seq), max(seq), max(line_no), "
        f"max(CASE WHEN seq = {n} THEN value_text END) FROM tap WHERE run_id = {long_run}")
    assert list(rows[0]) == [n, n, 1, n, n, str(n - 1)]
    cols, rows = wh.sql_rows("SELECT count(*), count(DISTINCT id) FROM tap")
    assert rows[0][0] == rows[0][1] == n + C_TAPS + PY_TAPS


# --------------------------------------------------------------------------- walking

@pytest.mark.skipif(os.name != "posix", reason="symbolic links and FIFOs")
@pytest.mark.parametrize("follow", [True, False])
def test_links_loops_and_fifos_in_a_tree_are_named(url, tmp_path, follow):
    bundle = tmp_path / "reports" / "i" / "p" / STAMP
    good_bundle(bundle)
    traces = bundle / "c_traces"
    write(tmp_path / "elsewhere" / "20250102T000000Z" / "c_traces" / "pixel_9_9.log",
          C_TRACE)
    write(tmp_path / "loose" / "pixel_8_8.log", C_TRACE)
    (traces / "gone.log").symlink_to(traces / "missing.log")
    (traces / "loop.log").symlink_to(traces / "loop.log")
    (traces / "up").symlink_to(bundle, target_is_directory=True)
    (traces / "alias.log").symlink_to(traces / "pixel_1_2.log")
    (traces / "pixel_8_8.log").symlink_to(tmp_path / "loose" / "pixel_8_8.log")
    (bundle.parent / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    os.mkfifo(traces / "pipe.log")
    proc = cli(url, "ingest", "reports", *([] if follow else ["--no-follow-links"]),
               cwd=tmp_path)  # a FIFO opened for reading would block: the timeout fails
    assert proc.returncode == 0, proc.stderr
    at = f"reports/i/p/{STAMP}/c_traces"
    named_once(proc, f"warning: {at}/gone.log: dangling symbolic link (to ")
    named_once(proc, f"warning: {at}/loop.log: symbolic link loop; skipped")
    named_once(proc, f"{at}/pipe.log: a FIFO (named pipe), not a file or folder; skipped")
    named_once(proc, f"{at}/up: symbolic link to ", "a folder above it (a loop)")
    named_once(proc, f"{at}/alias.log: symbolic link to ", "walks anyway; not followed")
    runs = runs_by_path(url)
    loose = f"{at}/pixel_8_8.log"
    linked = "reports/i/p/linked/20250102T000000Z/c_traces/pixel_9_9.log"
    assert runs.pop(f"{at}/pixel_1_2.log") == [("c", [1, 2], C_TAPS)]
    assert runs.pop(f"reports/i/p/{STAMP}/py_traces/pixel_1_2.log") == [("py", [1, 2],
                                                                         PY_TAPS)]
    if follow:
        assert runs == {loose: [("c", [8, 8], C_TAPS)], linked: [("c", [9, 9], C_TAPS)]}
        assert "out of the tree" not in proc.stderr
    else:
        assert runs == {}
        for where in (loose, "reports/i/p/linked"):
            named_once(proc, f"{where}: symbolic link out of the tree (to ",
                       "not followed (--follow-links follows it)")


@pytest.mark.skipif(os.name != "posix", reason="symbolic links and FIFOs")
def test_a_named_path_that_is_no_file_or_folder_says_what_it_is(url, tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    os.mkfifo(tmp_path / "pipe")
    for name, what in (("gone", f"dangling symbolic link (to {tmp_path / 'missing'})"),
                       ("loop", "symbolic link loop; nothing to load"),
                       ("pipe", "a FIFO (named pipe), not a file or folder; nothing read")):
        proc = cli(url, "ingest", name, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        named_once(proc, f"tracedb: error: {name}: {what}")


# --------------------------------------------------------------------------- queries

def test_query_parameters_are_typed_and_paths_literal(url, tmp_path):
    bundle = tmp_path / "reports" / "i" / "p" / STAMP
    good_bundle(bundle)
    write(bundle / "100%_done" / "pixel_3_4.log", C_TRACE)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    for query, value in (("runs", "abc"), ("runs", HUGE), ("runs", "1.5"), ("taps", "abc")):
        proc = cli(url, "query", query, "--param", f"run_id={value}")
        assert proc.returncode == 2, proc.stderr
        named_once(proc, f"tracedb: error: query '{query}': parameter run_id takes an "
                         f"integer from -2147483648 to 2147483647, not '{value}'")
    (first,) = [r["id"] for r in wh.run_rows(path="c_traces")]
    proc = cli(url, "query", "runs", "--param", f"run_id={first}", "--format", "json")
    assert [r["id"] for r in json.loads(proc.stdout)] == [first]

    def paths(records):
        return sorted(r["path"].split(f"{STAMP}/")[1] for r in records)

    def cli_paths(*args):
        proc = cli(url, *args, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        return paths(json.loads(proc.stdout))

    for text_, expected in (("c_traces", ["c_traces/pixel_1_2.log"]),
                            ("c%traces", []), ("c_trace_", []), ("100__done", []),
                            ("100%_done", ["100%_done/pixel_3_4.log"]),
                            ("1_2", ["c_traces/pixel_1_2.log", "py_traces/pixel_1_2.log"])):
        assert paths(wh.rows("runs", path=text_)) == expected, text_  # `tracedb query`
        assert paths(wh.run_rows(path=text_)) == expected, text_  # `tracedb runs`
        if text_ in ("c%traces", "1_2"):  # and as typed on the command line
            assert cli_paths("query", "runs", "--param", f"path={text_}") == expected
            assert cli_paths("runs", "--path", text_) == expected
