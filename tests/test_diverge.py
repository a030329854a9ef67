"""Comparison semantics (PRODUCT.md, issue 3), computed by the SQL views, both backends."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import tracedb
from tracedb.errors import TracedbError

from .conftest import write


def capture(root, stamp, side, pixel, lines, name=None):
    """Write one trace file in a stamped bundle; side 'c' or 'py'."""
    sub = "c_traces" if side == "c" else "py_traces"
    fname = name or f"pixel_{pixel[0]}_{pixel[1]}.log"
    prefix = "TRACE_C" if side == "c" else "TRACE_PY"
    body = "".join(ln.replace("{P}", prefix) + "\n" for ln in lines)
    return write(root / "reports" / "ini" / "ph" / stamp / sub / fname, body)


def compare(url, tmp_path, c_lines, py_lines, **kw):
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), c_lines)
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), py_lines)
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    summary = wh.diverge(**kw)
    assert len(summary) == 1
    diff = wh.diff(summary.attrs["set_id"], strict=kw.get("strict", False))
    status = {(r.tap, r.loop_key, int(r.occurrence)): r.status for r in diff.itertuples()}
    return wh, summary.iloc[0], diff, status


def st(status, tap, loop_key="", occ=1):
    return status[(tap, loop_key, occ)]


def test_special_values_strings_and_lengths(url, tmp_path):
    _, s, _, status = compare(url, tmp_path, [
        "{P}: a nan", "{P}: b inf -inf", "{P}: c -0 0", "{P}: d MOSFLM", "{P}: e 1 2 3",
        "{P}: f 1.5", "{P}: g MOSFLM", "{P}: h nan",
    ], [
        "{P}: a nan", "{P}: b inf -inf", "{P}: c 0 -0.000000000000000e+00", "{P}: d MOSFLM",
        "{P}: e 1 2", "{P}: f CUSTOM", "{P}: g mosflm", "{P}: h 1",
    ])
    assert st(status, "a") == "match"  # nan == nan
    assert st(status, "b") == "match"  # inf == inf, -inf == -inf
    assert st(status, "c") == "match"  # -0 == 0
    assert st(status, "d") == "match"
    assert st(status, "e") == "diverged"  # vectors of different length
    assert st(status, "f") == "diverged"  # a number against a string
    assert st(status, "g") == "diverged"  # strings compare exactly
    assert st(status, "h") == "diverged"  # nan against a number
    assert (s.compared, s.diverged, s.first_tap) == (8, 4, "e")


def test_name_equals_value_with_blanks_matches_the_plain_number(url, tmp_path):
    # PyTorch printing `F_cell = 1.0e+02` against C's `F_cell 100` is a match, not a
    # number against the string "= 1.0e+02"
    _, s, diff, status = compare(url, tmp_path, ["{P}: F_cell 100", "{P}: k 2"],
                                 ["{P}: F_cell = 1.000000000000000e+02", "{P}: k = 3"])
    assert st(status, "F_cell") == "match"
    assert st(status, "k") == "diverged"
    assert (s.compared, s.diverged, s.first_tap) == (2, 1, "k")
    assert diff.set_index("tap").cand_value["F_cell"] == "1.000000000000000e+02"


def test_tolerance_is_relative_and_absolute_and_settable(url, tmp_path):
    c = ["{P}: x 1.000000000000000e+00", "{P}: tiny 1.000000000000000e-20"]
    py = ["{P}: x 1.000000000100000e+00", "{P}: tiny 3.000000000000000e-20"]
    wh, s, _, status = compare(url, tmp_path, c, py)
    assert st(status, "x") == "diverged" and st(status, "tiny") == "diverged"
    assert s.rtol == 1e-12 and s.atol == 0
    loose = wh.diverge(rtol=1e-9).iloc[0]
    assert (loose.diverged, loose.first_tap) == (1, "tiny")
    both = wh.diverge(rtol=1e-9, atol=1e-19).iloc[0]
    assert (both.diverged, both.status) == (0, "match")
    assert both.rtol == 1e-9 and both.atol == 1e-19
    with pytest.raises(TracedbError, match=">= 0"):
        wh.diverge(rtol=-1)


def test_print_precision_is_its_own_status_and_strict_counts_it(url, tmp_path):
    c = ["{P}: fdet 0.999982 -0.005998", "{P}: step -1", "{P}: pix 0.05", "{P}: zero 0",
         "{P}: real 0.999982"]
    py = ["{P}: fdet 0.999982004873912 -0.00599800002923425",
          "{P}: step -1.000000000000000e+00", "{P}: pix 5.000000300000000e-02",
          "{P}: zero 1.000000000000000e-17", "{P}: real 0.999990000000000"]
    wh, s, _, status = compare(url, tmp_path, c, py)
    assert st(status, "fdet") == "print_precision"  # within half a unit of the 6th digit
    assert st(status, "step") == "match"
    assert st(status, "pix") == "print_precision"  # %g "0.05" means 0.0500000
    assert st(status, "zero") == "diverged"  # an exact 0 carries no precision
    assert st(status, "real") == "diverged"  # beyond the printed precision
    assert (s.print_precision, s.diverged, s.first_tap) == (2, 2, "zero")
    strict = wh.diverge(strict=True).iloc[0]
    assert (strict.print_precision, strict.diverged, strict.first_tap) == (0, 4, "fdet")
    # the named query with strict left NULL (`tracedb query divergence -p strict=`)
    # counts as not strict: every print_precision tap counted, none lost from the sums
    set_id = wh.diverge().attrs["set_id"]
    (row,) = wh.rows("divergence", set_id=set_id, strict=None)
    assert (row["print_precision"], row["diverged"], row["matched"], row["first_tap"]) == (
        2, 2, s.matched, "zero")


def test_first_divergence_follows_reference_order_not_alphabet(url, tmp_path):
    c = ["{P}: zeta 1", "{P}: alpha 1", "{P}: mid 2"]
    py = ["{P}: alpha 2", "{P}: mid 3", "{P}: zeta 5"]
    _, s, _, _ = compare(url, tmp_path, c, py)
    assert (s.first_tap, s.first_ref_line, s.first_cand_line) == ("zeta", 1, 3)
    assert (s.first_ref_value, s.first_cand_value) == ("1", "5")
    assert s.first_abs_delta == 4 and s.first_rel_delta == pytest.approx(0.8)
    assert s.first_ratio == pytest.approx(0.2)


# A lone tap has no sibling of its unit: the data cannot say which side is off.
@pytest.mark.parametrize("tap, ref, cand, hint", [
    ("beam_center_m", "X:0.000102425 Y:0.000102425 pixel_mm:0.05",
     "X:1.024250000000000e-01 Y:1.024250000000000e-01 pixel_mm:0.05",
     "one side is off by x1e3 (m <-> mm)"),
    ("scattering_vec_A_inv", "-6576005.28913838 512831325.464334",
     "-6.576005289138376e-04 5.128313254643340e-02",
     "one side is off by x1e10 (m^-1 <-> A^-1)"),
    ("angle_rad", "0.5", "28.64788975654116", "one side is off by x57.2958 (rad <-> deg)"),
    # 1e-7 with no unit in the name: any pair of one dimension, mm vs A
    ("wavelength", "9.768e-08", "0.9768", "one side is off by x1e7 (mm <-> A)"),
])
def test_unit_hints(url, tmp_path, tap, ref, cand, hint):
    _, s, diff, _ = compare(url, tmp_path, [f"{{P}}: {tap} {ref}"], [f"{{P}}: {tap} {cand}"])
    assert s.first_tap == tap
    assert s.first_unit_hint == hint
    assert pd.isna(s.first_suspect_side)


def test_no_unit_hint_when_ratios_differ_or_are_not_unit_factors(url, tmp_path):
    c = ["{P}: v_m 1 2", "{P}: w_m 3"]
    py = ["{P}: v_m 1000 4000", "{P}: w_m 7"]
    _, _, diff, _ = compare(url, tmp_path, c, py)
    hints = dict(zip(diff.tap, diff.unit_hint, strict=True))
    assert pd.isna(hints["v_m"]) and pd.isna(hints["w_m"])
    ratios = dict(zip(diff.tap, diff.ratio, strict=True))
    assert pd.isna(ratios["v_m"])  # no common ratio
    assert ratios["w_m"] == pytest.approx(3 / 7)


def test_missing_taps_and_repeated_taps(url, tmp_path):
    c = ["{P}: fdet 0 0 1", "{P}: only_c 1", "{P}: x 1", "{P}: fdet 0 0 1"]
    py = ["{P}: fdet 0 0 1", "{P}: x 1", "{P}: only_py 2"]
    _, s, diff, status = compare(url, tmp_path, c, py)
    assert st(status, "fdet", "", 1) == "match"
    assert st(status, "fdet", "", 2) == "missing_cand"  # the second print has no partner
    assert st(status, "only_c") == "missing_cand"
    assert st(status, "only_py") == "missing_ref"
    assert (s.compared, s.missing_cand, s.missing_ref, s.diverged) == (2, 2, 1, 0)
    assert s.status == "match"
    assert list(diff.tap)[-1] == "only_py"  # candidate-only taps come last


def test_aliases_pair_differently_named_taps(url, tmp_path):
    c = ["{P}: I_before_scaling 5", "{P}: omega_pixel 2", "{P}: F 1"]
    py = ["{P}: I_before_scaling_pre_polar 5", "{P}: omega 2", "{P}: F 1"]
    wh, s, _, status = compare(url, tmp_path, c, py)
    assert st(status, "I_before_scaling") == "match"  # seeded alias
    assert st(status, "omega_pixel") == "missing_cand"
    wh.add_alias("omega", "omega_pixel", note="PyTorch short name")
    again = wh.diverge().iloc[0]
    assert (again.compared, again.missing_ref, again.missing_cand) == (3, 0, 0)


def test_accepted_divergences_are_apart_and_not_first(url, tmp_path):
    c = ["{P}: known_bug 1", "{P}: real 1", "{P}: later 1"]
    py = ["{P}: known_bug 2", "{P}: real 3", "{P}: later 4"]
    wh, s, _, _ = compare(url, tmp_path, c, py)
    assert s.first_tap == "known_bug"
    wh.accept("known_bug", "C keeps the documented off-by-one on purpose")
    s2 = wh.diverge().iloc[0]
    assert (s2.first_tap, s2.accepted, s2.diverged) == ("real", 1, 2)
    d = wh.diff(wh.diverge().attrs["set_id"])
    row = d[d.tap == "known_bug"].iloc[0]
    assert row.status == "accepted" and "off-by-one" in row.accepted_reason
    other = int(wh.runs(side="py").id.iloc[0])
    with pytest.raises(TracedbError, match="no run with id"):
        wh.accept("real", "x", run_id=other + 1000)
    with pytest.raises(TracedbError, match="needs a reason"):
        wh.accept("real", "  ")


def test_accepted_scope_by_run(url, tmp_path):
    c = ["{P}: a 1"]
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), c)
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: a 2"])
    capture(tmp_path, "20250101T020000Z", "py", (1, 1), ["{P}: a 2"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    old = int(wh.runs(stamp="010000Z").id.iloc[0])
    wh.accept("a", "accepted for the old capture only", run_id=old)
    assert wh.diverge(cand="@010000Z").iloc[0].accepted == 1
    assert wh.diverge(cand="@020000Z").iloc[0].diverged == 1


def test_per_phi_records_pair_by_loop_index(url, tmp_path):
    c = ["TRACE_C_PHI phi_tic=0 k_frac=-0.589 F_latt=1.35",
         "TRACE_C_PHI phi_tic=1 k_frac=-0.587 F_latt=1.05"]
    py = ["TRACE_PY_PHI phi_tic=1 k_frac=-0.587 F_latt=1.06",
          "TRACE_PY_PHI phi_tic=0 k_frac=-0.589 F_latt=1.35"]
    _, s, _, status = compare(url, tmp_path, c, py)
    assert st(status, "F_latt", "phi_tic=0") == "match"
    assert st(status, "F_latt", "phi_tic=1") == "diverged"
    assert (s.first_channel, s.first_tap, s.first_loop_key) == ("PHI", "F_latt", "phi_tic=1")
    assert (s.first_ref_line, s.first_cand_line) == (2, 1)


def test_nothing_compared_is_never_a_match(url, tmp_path):
    _, s, _, _ = compare(url, tmp_path, ["{P}: a 1"], ["{P}: b 1"])
    assert s.status == "nothing compared"
    assert (s.compared, s.missing_cand, s.missing_ref) == (0, 1, 1)
    assert pd.isna(s.first_tap)


def test_default_pairing_is_newest_c_against_newest_py_per_pixel(url, tmp_path):
    for stamp, val in (("20250101T000000Z", 1), ("20250102T000000Z", 2)):
        capture(tmp_path, stamp, "c", (5, 6), [f"{{P}}: v {val}"])
        capture(tmp_path, stamp.replace("T00", "T01"), "py", (5, 6), [f"{{P}}: v {val}"])
    capture(tmp_path, "20250102T000000Z", "c", (7, 8), ["{P}: v 1"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    s = wh.diverge()
    assert list(zip(s.pixel_slow, s.pixel_fast, strict=True)) == [(5, 6), (7, 8)]
    row = s.iloc[0]
    assert (row.ref_stamp, row.cand_stamp, row.status) == (
        pd.Timestamp("2025-01-02 00:00", tz="UTC"), pd.Timestamp("2025-01-02 01:00", tz="UTC"),
        "match")
    assert s.iloc[1].status == "missing_cand"  # pixel (7, 8) has no PyTorch run
    mixed = wh.diverge(ref="c@20250101T000000Z").iloc[0]
    assert (mixed.ref_stamp, mixed.diverged) == (pd.Timestamp("2025-01-01", tz="UTC"), 1)


def test_selector_errors_list_candidates(url, tmp_path):
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), ["{P}: v 1"])
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: v 1"])
    capture(tmp_path, "20250102T010000Z", "py", (1, 1), ["{P}: v 2"])
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    with pytest.raises(TracedbError, match="matches no run"):
        wh.diverge(cand="@19990101T000000Z")
    with pytest.raises(TracedbError, match=r"matches 2 stamps: 20250101T010000Z, 20250102T010000Z"):
        wh.diverge(cand="@010000Z")
    with pytest.raises(TracedbError, match=r"matches 2 runs of pixel 1,1.*run:\d+ py@20250101"):
        wh.diverge(cand="py")
    with pytest.raises(TracedbError, match="cannot read selector"):
        wh.diverge(cand="fortran@1")
    py = wh.runs(stamp="20250102T010000Z")
    ok = wh.diverge(cand=f"run:{int(py.id.iloc[0])}").iloc[0]
    assert ok.diverged == 1
    assert wh.diverge(cand="py path:20250101T010000Z").iloc[0].diverged == 0


def test_two_single_runs_pair_without_a_pixel(url, tmp_path):
    write(tmp_path / "r" / "a" / "c_run.log", "TRACE_C: v 1\n")
    write(tmp_path / "r" / "b" / "py_run.log", "TRACE_PY: v 1.5\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "r"])
    runs = wh.runs()
    assert runs.pixel_slow.isna().all() and runs.pixel_fast.isna().all()
    s = wh.diverge(ref="path:c_run", cand="path:py_run").iloc[0]
    assert (pd.isna(s.pixel_slow), pd.isna(s.pixel_fast), s.first_tap) == (True, True, "v")
    with pytest.raises(TracedbError, match="no run of a known pixel"):
        wh.diverge()


def _timeline_tree(tmp_path):
    capture(tmp_path, "20250101T000000Z", "c", (2, 3), ["{P}: a 1", "{P}: b 1", "{P}: c 1"])
    capture(tmp_path, "20250101T010000Z", "py", (2, 3), ["{P}: a 9", "{P}: b 9", "{P}: c 1"])
    capture(tmp_path, "20250101T020000Z", "py", (2, 3), ["{P}: a 1", "{P}: b 9", "{P}: c 1"])
    capture(tmp_path, "20250101T030000Z", "py", (2, 3), ["{P}: a 1", "{P}: b 1", "{P}: c 9"])


def test_timeline_shows_fixes_and_new_divergences_in_stamp_order(url, tmp_path):
    _timeline_tree(tmp_path)
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    summaries, changes = wh.timeline((2, 3), ref="c@20250101T000000Z")
    assert list(summaries.cand_stamp) == [pd.Timestamp(f"2025-01-01 0{h}:00", tz="UTC")
                                          for h in (1, 2, 3)]
    assert list(summaries.first_tap) == ["a", "b", "c"]
    got = sorted((int(o), t, c) for o, t, c in zip(changes.ordinal, changes.tap,
                                                    changes.change, strict=True))
    assert got == [(2, "a", "fixed"), (3, "b", "fixed"), (3, "c", "broke")]


def test_regress_lists_regressions_and_fixes(url, tmp_path):
    _timeline_tree(tmp_path)
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    _, changes = wh.regress(base="@020000Z", head="@030000Z")
    assert sorted(zip(changes.tap, changes.change, strict=True)) == [
        ("b", "fixed"), ("c", "broke")]


# --------------------------------------------------------------------------- sql and query


# (what tracedb sql refuses: tests/test_sql_safety.py)


def test_sql_reads(url, tmp_path):
    wh = tracedb.connect(url)
    wh.ingest([tracedb.api.example_tree()])
    df = wh.sql("SELECT side, count(*) AS runs FROM run GROUP BY side ORDER BY side")
    assert list(df.side) == ["c", "py"] and list(df.runs) == [2, 2]


def test_named_queries(url, tmp_path):
    wh = tracedb.connect(url)
    wh.ingest([tracedb.api.example_tree()])
    runs = wh.query("runs", side="c", stamp=None, slow=None, fast=None, path=None, run_id=None)
    assert len(runs) == 2
    with pytest.raises(TracedbError, match="no named query 'nope'; available:.*divergence"):
        wh.query("nope")
    with pytest.raises(TracedbError, match="has no parameter"):
        wh.query("runs", colour="red")


# --------------------------------------------------------------------------- CLI


def run_cli(url, *args):
    return subprocess.run([sys.executable, "-m", "tracedb", "--db", url, *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_diverge_json_and_fail_on_divergence(url, tmp_path):
    wh = tracedb.connect(url)
    wh.ingest([tracedb.api.example_tree()])
    proc = run_cli(url, "diverge", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [o["pixel"] for o in out] == [[10, 20], [30, 40]]
    for o in out:
        for k in ("pixel", "ref_run", "cand_run", "ref_stamp", "cand_stamp", "ref_path",
                  "cand_path", "compared", "diverged", "print_precision", "missing_ref",
                  "missing_cand", "first"):
            assert k in o
        f = o["first"]
        assert set(f) >= {"tap", "ref_line", "cand_line", "ref_value", "cand_value",
                          "abs_delta", "rel_delta", "ratio", "unit_hint"}
        assert (f["tap"], f["ref_line"], f["cand_line"]) == ("beam_center_m", 5, 3)
        assert f["ratio"] == pytest.approx(1e-3)
        # the example plants "mm printed as m on the PyTorch side"; C's beam centre
        # agrees with its pix0_vector_meters on both sides
        assert f["suspect_side"] == "py"
        assert f["unit_hint"] == ("PyTorch is off by x1e3 (m <-> mm; C's value agrees with "
                                  "pix0_vector_meters on both sides)")
    assert run_cli(url, "diverge", "--fail-on-divergence").returncode == 1
    md = run_cli(url, "diverge", "--format", "md")
    assert md.returncode == 0 and "rtol=1e-12" in md.stdout and "| 10,20 |" in md.stdout
    csvp = run_cli(url, "diverge", "--format", "csv", "--pixel", "30,40")
    assert csvp.stdout.count("\n") == 2 and "beam_center_m" in csvp.stdout


def test_cli_nothing_compared_fails(url, tmp_path):
    capture(tmp_path, "20250101T000000Z", "c", (1, 1), ["{P}: a 1"])
    capture(tmp_path, "20250101T010000Z", "py", (1, 1), ["{P}: b 1"])
    tracedb.connect(url).ingest([tmp_path / "reports"])
    proc = run_cli(url, "diverge", "--fail-on-divergence")
    assert proc.returncode == 1
    assert "NOTHING COMPARED" in proc.stdout
    js = json.loads(run_cli(url, "diverge", "--format", "json").stdout)
    assert js[0]["status"] == "nothing compared" and js[0]["first"] is None


def test_cli_selector_error_is_one_line(url, tmp_path):
    tracedb.connect(url).ingest([tracedb.api.example_tree()])
    proc = run_cli(url, "diverge", "--cand", "@999Z")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "matches no run" in proc.stderr


def test_cli_taps_diff_query_sql_timeline(url, tmp_path):
    _timeline_tree(tmp_path)
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    c = int(wh.runs(side="c").id.iloc[0])
    p = int(wh.runs(stamp="010000Z").id.iloc[0])
    diff = json.loads(run_cli(url, "taps", str(c), "--diff", str(p), "--format", "json").stdout)
    assert [(d["tap"], d["status"]) for d in diff] == [
        ("a", "diverged"), ("b", "diverged"), ("c", "match")]
    tl = json.loads(run_cli(url, "timeline", "--pixel", "2,3", "--format", "json").stdout)
    assert [t["fixed"] for t in tl] == [[], ["a"], ["b"]]
    assert [t["newly_diverged"] for t in tl] == [[], [], ["c"]]
    reg = json.loads(run_cli(url, "regress", "--base", "@020000Z", "--head", "@030000Z",
                             "--format", "json").stdout)
    assert reg[0]["regressions"] == ["c"] and reg[0]["fixes"] == ["b"]
    q = run_cli(url, "query", "runs", "--param", "side=py", "--param", "stamp=", "--format",
                "json")
    assert len(json.loads(q.stdout)) == 3
    names = run_cli(url, "query").stdout.split()
    assert {"runs", "divergence", "tap_diff", "tap_changes"} <= set(names)
    s = run_cli(url, "sql", "SELECT count(*) AS n FROM run", "--format", "json")
    assert json.loads(s.stdout) == [{"n": 4}]
    bad = run_cli(url, "sql", "DELETE FROM run")
    assert bad.returncode == 2 and "read-only" in bad.stderr


def test_command_line_summary_equals_the_api_dataframe(url, tmp_path):
    # `tracedb diverge` renders records (no pandas); the API returns a DataFrame of the
    # same records. Same comparison, same rows, including versions, stamps and a
    # missing side.
    from benchmarks.generate import write_campaign
    from tracedb.compare.results import divergence_record

    def plain(v):  # the frame's value as the record holds it
        if isinstance(v, pd.Timestamp):
            return v.strftime("%Y%m%dT%H%M%SZ")
        if hasattr(v, "item"):
            v = v.item()
        return None if v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v) else v

    def record(row: dict) -> dict:
        r = {k: plain(v) for k, v in row.items()}
        slow, fast = r.pop("pixel_slow"), r.pop("pixel_fast")
        return {**r, "pixel": None if slow is None else [slow, fast]}

    write_campaign(tmp_path / "camp", pixels=12, stamps=2, seed=4)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "camp"]).ok
    internal = ["comparison_id", "grp", "ordinal"]
    for kw in ({}, {"strict": True}, {"rtol": 1e-3}, {"pixels": [(100, 205)]}):
        df = wh.diverge(**kw)
        found = wh.divergences(**kw)
        # the pixel as two columns where the records have one, internal ids last
        cols = list(found.rows.columns)
        cols[cols.index("pixel"):cols.index("pixel") + 1] = ["pixel_slow", "pixel_fast"]
        assert list(df.columns) == [c for c in cols if c not in internal] + internal
        from_df = [divergence_record(record(r), found.strict) for r in df.to_dict("records")]
        assert from_df == [divergence_record(r, found.strict) for r in found.rows]
        assert df.attrs.keys() == found.attrs.keys()
    assert len(wh.divergences().rows) == 12
