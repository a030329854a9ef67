"""Taps written as JSON (issue 14): a JSON trace pairs with the text trace of the other
side, every leaf is a value or a quarantined item, metadata JSON stays metadata."""

from __future__ import annotations

import csv
import io
import json

import tracedb

from .test_diverge import capture, run_cli

C_STAMP, PY_STAMP = "20250101T000000Z", "20250101T010000Z"


def _write(path, obj_or_text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text,
                                                                                indent=2))
    return path


def _py_dir(tmp_path):
    return tmp_path / "reports" / "ini" / "ph" / PY_STAMP / "py_taps"


def _per_phi_pair(tmp_path):
    """C prints per-phi lines as text; PyTorch writes the same quantities as JSON (phi
    step 1 differs in k_frac)."""
    capture(tmp_path, C_STAMP, "c", (5, 7), [
        "{P}_PHI phi_tic=0 phi_deg=0 k_frac=-0.5 F_latt=1.25",
        "{P}_PHI phi_tic=1 phi_deg=0.01 k_frac=-0.6 F_latt=2.5"])
    _write(_py_dir(tmp_path) / "trace_per_phi.json", {
        "timestamp": "2025-01-01T01:00:00Z", "pixel": {"slow": 5, "fast": 7},
        "device": "cpu", "per_phi_entries": [
            {"phi_tic": 0, "phi_deg": 0.0, "k_frac": -0.5, "F_latt": 1.25},
            {"phi_tic": 1, "phi_deg": 0.01, "k_frac": -0.61, "F_latt": 2.5}]})
    return tmp_path / "reports"


def test_a_per_phi_json_pairs_with_the_c_text_trace_of_its_pixel(url, tmp_path):
    wh = tracedb.connect(url)
    res = wh.ingest([_per_phi_pair(tmp_path)])
    assert res.ok, res.notes
    assert (res.stats["json_files"], res.stats["json_values"], res.stats["json_quarantined"]) \
        == (1, 12, 0)  # timestamp, slow, fast, device and 2 entries of 4 leaves
    proc = run_cli(url, "diverge", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    [pair] = json.loads(proc.stdout)
    assert pair["pixel"] == [5, 7] and pair["status"] == "diverged"
    assert pair["first"]["tap"] == "k_frac" and pair["first"]["loop_key"] == "phi_tic=1"
    assert (pair["first"]["ref_line"], pair["first"]["ref_pointer"]) == (2, None)
    assert (pair["first"]["cand_line"], pair["first"]["cand_pointer"]) \
        == (0, "/per_phi_entries/1/k_frac")
    py_run = pair["cand_run"]
    proc = run_cli(url, "taps", str(pair["ref_run"]), "--diff", str(py_run), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = {(r["tap"], r["loop_key"]): r for r in csv.DictReader(io.StringIO(proc.stdout))}
    k1 = rows[("k_frac", "phi_tic=1")]
    assert (k1["ref_value"], k1["cand_value"], k1["status"]) == ("-0.6", "-0.61", "diverged")
    assert k1["ref_line"] == "2" and k1["cand_pointer"] == "/per_phi_entries/1/k_frac"
    f0 = rows[("F_latt", "phi_tic=0")]
    assert (f0["ref_value"], f0["cand_value"], f0["status"]) == ("1.25", "1.25", "match")
    assert rows[("device", "")]["status"] == "missing_ref"  # JSON-only leaves are kept
    table = run_cli(url, "taps", str(pair["ref_run"]), "--diff", str(py_run))
    assert "/per_phi_entries/1/k_frac" in table.stdout  # the table shows where it is
    md = run_cli(url, "diverge", "--format", "md")
    assert "| k_frac | 2//per_phi_entries/1/k_frac |" in md.stdout  # lines (ref/cand)
    out = tmp_path / "report"
    proc = run_cli(url, "report", str(out))
    assert proc.returncode == 0, proc.stderr
    text = "".join(p.read_text() for p in out.rglob("*.md"))
    assert "/ line /per_phi_entries/1/k_frac (" in text  # the pixel's heading


def test_the_ingest_table_counts_json_values(url, tmp_path):
    proc = run_cli(url, "ingest", str(_per_phi_pair(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    # piped, the table is plain: ASCII borders
    counts = dict(line.strip("| ").split("|")[:2] for line in proc.stdout.splitlines()
                  if line.startswith("|") and "json_" in line)
    assert {k.strip(): v.strip() for k, v in counts.items()} == {
        "json_files": "1", "json_values": "12", "json_quarantined": "0"}


def test_a_tap_file_with_subpixels_pairs_through_loop_keys_and_aliases(url, tmp_path):
    # nanoBragg's naming: the tap file hkl_subpixel is the C audit's TRACE_C_TAP5_HKL
    # (a channel alias seeded by migration 0014), hkl_fractional is hkl_frac
    capture(tmp_path, C_STAMP, "c", (2048, 2048), [
        "{P}: omega_pixel 2e-08",
        "{P}_TAP5_HKL: omega_pixel 1e-08",
        "{P}_TAP5_HKL: subpixel=0 0 hkl_frac=0.1 0.2 0.3 F_cell=100",
        "{P}_TAP5_HKL: subpixel=0 1 hkl_frac=0.4 0.5 0.6 F_cell=100"])
    _write(_py_dir(tmp_path) / "pixel_2048_2048_hkl_subpixel.json", {
        "tap_id": "hkl_subpixel", "pixel_coords": [2048, 2048], "values": {
            "omega_pixel": 1e-08, "subpixels": [
                {"subpixel_index": [0, 0], "hkl_fractional": [0.1, 0.2, 0.3], "F_cell": 100.0},
                {"subpixel_index": [0, 1], "hkl_fractional": [0.4, 0.5, 0.7], "F_cell": 100.0,
                 "out_of_bounds": False}]}})
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    summary = wh.diverge()
    assert list(zip(summary.pixel_slow, summary.pixel_fast, strict=True)) == [(2048, 2048)]
    diff = wh.diff(summary.attrs["set_id"])
    got = {(r.channel, r.tap, r.loop_key): (r.ref_value, r.cand_value, r.status)
           for r in diff.itertuples()}
    # the tap file's omega_pixel meets the TAP5_HKL line, not the main channel's
    assert got[("TAP5_HKL", "omega_pixel", "")] == ("1e-08", "1e-08", "match")
    assert got[("", "omega_pixel", "")][::2] == ("2e-08", "missing_cand")
    assert got[("TAP5_HKL", "hkl_frac", "subpixel=0,0")] == ("0.1 0.2 0.3", "0.1 0.2 0.3",
                                                             "match")
    assert got[("TAP5_HKL", "hkl_frac", "subpixel=0,1")] == ("0.4 0.5 0.6", "0.4 0.5 0.7",
                                                             "diverged")
    assert got[("TAP5_HKL", "F_cell", "subpixel=0,1")][2] == "match"
    assert got[("hkl_subpixel", "out_of_bounds", "subpixel=0,1")][1:] == ("false",
                                                                         "missing_ref")
    first = summary.iloc[0]
    assert first["first_tap"] == "hkl_frac"


def test_a_channel_alias_pairs_a_tap_file_with_its_c_channel(url, tmp_path):
    """A tap point nanoBragg's seed does not know: unpaired until `tracedb alias
    --channels` names its C channel; then paired, the keys current for db check."""
    capture(tmp_path, C_STAMP, "c", (3, 4), ["{P}_TAP9: scale 2.5", "{P}_TAP9: count 7"])
    _write(_py_dir(tmp_path) / "pixel_3_4_my_tap.json", {
        "tap_id": "my_tap", "pixel_coords": [3, 4],
        "values": {"scale": 2.5, "count": 8}})
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    before = wh.diverge().iloc[0]
    assert before["status"] == "nothing compared"
    result = run_cli(url, "alias", "my_tap", "TAP9", "--channels", "--note", "tap 9")
    assert result.returncode == 0, result.stderr
    assert "channel my_tap -> channel TAP9" in result.stdout
    summary = wh.diverge()
    diff = wh.diff(summary.attrs["set_id"])
    got = {r.tap: (r.ref_value, r.cand_value, r.status) for r in diff.itertuples()
           if r.channel == "TAP9"}
    assert got == {"scale": ("2.5", "2.5", "match"), "count": ("7", "8", "diverged")}
    check = run_cli(url, "db", "check")
    assert check.returncode == 0, check.stdout
    # a later ingest of another tap file of that tap point pairs at load time
    _write(tmp_path / "reports" / "ini" / "ph" / "20250101T020000Z" / "py_taps"
           / "pixel_3_4_my_tap.json", {"tap_id": "my_tap", "pixel_coords": [3, 4],
                                       "values": {"scale": 2.5, "count": 7}})
    assert wh.ingest([tmp_path / "reports"]).ok
    assert wh.diverge().iloc[0]["status"] == "match"
    assert run_cli(url, "db", "check").returncode == 0


def test_corpus_tap_files_pair_with_the_c_tap_lines(corpus, tmp_path):
    """The PyTorch tap files of phase_e0 against the C audit's TAP5 lines of the same
    pixel; the values below are read from the files."""
    wh = tracedb.connect(f"sqlite:///{tmp_path / 'w.sqlite'}")
    assert wh.ingest([corpus]).stats["errors"] == 0

    def side_by_side(c_path, py_path):
        summary = wh.diverge(ref=f"c path:{c_path}", cand=f"py path:{py_path}")
        assert len(summary) == 1
        diff = wh.diff(summary.attrs["set_id"])
        return summary.iloc[0], {(r.tap, r.loop_key): (r.ref_value, r.cand_value, r.status)
                                 for r in diff.itertuples()}

    # 20251010T121436Z/c_taps/pixel_0_0_hkl.log line 169 (TRACE_C_TAP5_HKL) against
    # 20251010T120355Z/py_taps/pixel_0_0_hkl_subpixel.json, subpixel [0, 0]
    pair, got = side_by_side("121436Z/c_taps/pixel_0_0_hkl",
                             "120355Z/py_taps/pixel_0_0_hkl_subpixel")
    assert (pair["compared"], pair["diverged"]) == (12, 8)
    assert got[("hkl_frac", "subpixel=0,0")] == (
        "-7.90066326185654 39.3563516142271 -39.3563516142271",
        "-7.902478764625841 39.36078210112817 -39.36078210112817", "diverged")
    assert got[("F_cell", "subpixel=0,0")] == ("100", "100.0", "match")
    assert got[("out_of_bounds", "subpixel=0,0")] == ("1", "false", "diverged")
    # C writes the rounded hkl as three scalars, PyTorch as one vector: not paired,
    # each listed as one side's
    assert got[("hkl_rounded", "subpixel=0,0")][1:] == ("-8 39 -39", "missing_ref")
    assert got[("h0", "subpixel=0,0")][::2] == ("-8", "missing_cand")
    # 20251010T112334Z/c_taps/pixel_0_0_tap5.log (TRACE_C_TAP5) against
    # 20251010T110735Z/py_taps/pixel_0_0_intensity_pre_norm.json
    pair, got = side_by_side("112334Z/c_taps/pixel_0_0_tap5",
                             "110735Z/py_taps/pixel_0_0_intensity_pre_norm")
    assert (pair["compared"], pair["diverged"]) == (6, 4)
    assert got[("I_before_scaling", "")] == ("141520.166457388", "35428.86956119085",
                                             "diverged")
    assert got[("steps", "")] == ("4", "4", "match")
    assert got[("omega_pixel", "")] == ("8.86109941671327e-09", "8.861350630422489e-09",
                                        "diverged")
    assert got[("polar", "")] == ("0.961276939690433", "0.9612856578368705", "diverged")
    assert got[("capture_fraction", "")][2] == "match"


def test_nothing_lost_every_leaf_is_a_value_or_quarantined(url, tmp_path):
    _write(_py_dir(tmp_path) / "pixel_1_2_odd.json",
           '{"tap_id": "odd", "pixel_coords": [1, 2], "values": {'
           '"a": 1.5, "a": 2.5, "nothing": null, "vec": [1, null, 3], "": 4,'
           ' "ok": [1, 2], "name": "text", "nested": {"deep": {"x": 1, "y": 2}}}}')
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "reports"])
    assert res.ok, res.notes
    # values: tap_id, 2 pixel, a, ok x2, name, nested x2 = 9; quarantined: the second
    # "a", null, the 3 items of the list holding null, the empty key = 6
    assert (res.stats["json_values"], res.stats["json_quarantined"]) == (9, 6)
    proc = run_cli(url, "quarantine", "--format", "json")
    items = {(q["pointer"], q["reason"].split(" ")[0]) for q in json.loads(proc.stdout)}
    assert items == {("/values/a", "duplicate"), ("/values/nothing", "null:"),
                     ("/values/vec/0", "list"), ("/values/vec/1", "list"),
                     ("/values/vec/2", "list"), ("/values/", "empty")}
    [run] = wh.rows("runs", side=None, stamp=None, slow=1, fast=2, path=None, run_id=None)
    proc = run_cli(url, "taps", str(run["id"]), "--format", "json")
    taps = {t["name"]: t for t in json.loads(proc.stdout)}
    assert taps["a"]["value"] == "1.5" and taps["a"]["pointer"] == "/values/a"
    assert taps["nested.deep"]["value"] == "x:1 y:2"  # short keys: a labelled tap
    assert taps["ok"]["line"] == 0
    check = run_cli(url, "db", "check", "--format", "json")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_metadata_json_stays_metadata(url, tmp_path):
    capture(tmp_path, PY_STAMP, "py", (3, 4), ["{P}: a 1"])
    d = tmp_path / "reports" / "ini" / "ph" / PY_STAMP / "py_traces"
    _write(d / "pixel_3_4_metadata.json", {"pixel_slow": 9, "pixel_fast": 8,
                                           "timestamp_utc": "2025-01-01T01:00:00Z"})
    _write(d / "summary_metrics.json", {"correlation": 0.99, "values": [1, 2]})
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "reports"])
    assert res.ok and res.stats["trace_files"] == 1 and res.stats["json_files"] == 0
    [run] = wh.rows("runs", side=None, stamp=None, slow=None, fast=None, path=None,
                    run_id=None)
    assert (run["pixel_slow"], run["pixel_fast"]) == (9, 8)  # the metadata's pixel, as before


def test_a_malformed_trace_json_is_named_and_its_bundle_loads(url, tmp_path):
    capture(tmp_path, PY_STAMP, "py", (3, 4), ["{P}: a 1"])
    bad = _write(_py_dir(tmp_path) / "pixel_3_4_tap.json", '{"tap_id": "x", "values": {"a": ')
    deep = _write(_py_dir(tmp_path) / "pixel_3_4_deep.json",
                  '{"tap_id": "x", "values": ' + "[" * 100000 + "]" * 100000 + "}")
    proc = run_cli(url, "ingest", str(tmp_path / "reports"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if bad.name in ln or deep.name in ln]
    assert len(lines) == 2 and any("invalid JSON" in ln for ln in lines) \
        and any("nested too deeply" in ln for ln in lines)
    wh = tracedb.connect(url)
    assert len(wh.rows("runs", side=None, stamp=None, slow=3, fast=4, path=None,
                       run_id=None)) == 1  # the text trace of the bundle is loaded


def test_corpus_json_taps(corpus, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    wh = tracedb.connect(url)
    s = wh.ingest([corpus]).stats
    # 68 per-phi files (per_phi_entries, and `traces` in two) and 8 tap files
    # (hkl_subpixel, f_cell_stats, intensity_pre_norm) under phase_e0/*/py_taps
    rows = wh.sql("SELECT sf.path FROM source_file sf WHERE sf.json_values > 0").path
    per_phi = [p for p in rows if "phi" in p.rsplit("/", 1)[-1]]
    taps = [p for p in rows if "/py_taps/" in p]
    assert (len(rows), len(per_phi), len(taps)) == (76, 68, 8)
    assert (s["json_files"], s["json_quarantined"]) == (76, 0)
    assert s["json_values"] == int(wh.sql(
        "SELECT COUNT(*) AS n FROM value v JOIN run r ON r.id = v.run_id "
        "JOIN source_file sf ON sf.id = r.source_file_id WHERE sf.json_values > 0").n[0])
    # the per-phi JSON of 20251008T021659Z pairs with the C per-phi text trace beside it
    ref = wh.sql("SELECT r.id FROM run r JOIN source_file sf ON sf.id = r.source_file_id "
                 "WHERE sf.path LIKE '%20251008T021659Z/c_trace_phi.log'").id[0]
    cand = wh.sql("SELECT r.id FROM run r JOIN source_file sf ON sf.id = r.source_file_id "
                  "WHERE sf.path LIKE '%parity_shim/20251008T021659Z/trace_py_c_parity_per_phi"
                  ".json'").id[0]
    summary = wh.diverge(ref=f"run:{ref}", cand=f"run:{cand}", rtol=1e-6)
    diff = wh.diff(summary.attrs["set_id"])
    paired = diff[diff.status.isin(["match", "diverged", "print_precision"])]
    assert len(paired) == 40  # phi_deg, k_frac, F_latt_b, F_latt at 10 phi steps
    assert set(paired.loop_key) == {f"phi_tic={i}" for i in range(10)}
    # the team's note: phi_deg agrees, k_frac differs by about 3e-5
    assert set(paired[paired.tap == "phi_deg"].status) == {"match"}
    k0 = paired[(paired.tap == "k_frac") & (paired.loop_key == "phi_tic=0")].iloc[0]
    assert (k0.ref_value, k0.cand_value) == ("-0.607255839576692", "-0.607227388110849")
    assert k0.status == "diverged"
