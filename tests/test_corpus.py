"""The real nanoBragg corpus (../shared/corpus) loads whole, once, with nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import text

import tracedb
from tracedb.ingest.parse import is_trace_text

from .conftest import CORPUS, pg_schema_url

PHASE_C = "reports/2026-01-vectorization-parity/phase_c"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The corpus in a SQLite warehouse (loaded once for this module)."""

    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at ../shared/corpus/nanoBragg (expected {CORPUS})")
    url = f"sqlite:///{(tmp_path_factory.mktemp('corpus') / 'wh.sqlite').as_posix()}"
    wh = tracedb.connect(url)
    first = wh.ingest([CORPUS])
    return CORPUS, wh, first


def test_whole_corpus_loads_in_one_command(loaded):
    corpus, wh, first = loaded
    s = first.stats
    assert first.ok, [str(n) for n in first.notes if n.level != "note"]
    assert s["parsed_lines"] + s["quarantined_lines"] == s["trace_lines"]
    assert s["quarantined_lines"] < 0.01 * s["trace_lines"]
    # every file with TRACE lines, Markdown and the commands.txt logs aside, yields runs
    expected = set()
    for f in corpus.rglob("*"):
        if not f.is_file() or f.suffix in (".md", ".json") or f.name == "commands.txt":
            continue
        data = f.read_bytes()
        if b"\0" not in data[:8192] and is_trace_text(data.decode("utf-8", "replace")):
            expected.add(f.resolve().as_posix())
    with wh.engine.connect() as conn:
        with_runs = {r[0] for r in conn.execute(text(
            "SELECT DISTINCT sf.abs_path FROM source_file sf JOIN run r "
            "ON r.source_file_id = sf.id"))}
        # ... or, where no TRACE line could be read, every one is in quarantine: the
        # per-phi log whose only TRACE line is a template copied from notes
        quarantined_only = {r[0] for r in conn.execute(text(
            "SELECT abs_path FROM source_file WHERE parsed_lines = 0 "
            "AND quarantined_lines = trace_lines AND trace_lines > 0"))}
    assert len(expected) > 150
    # (JSON traces have runs too: tests/test_jsontaps.py counts them)
    with_runs = {p for p in with_runs if not p.endswith(".json")}
    assert expected == with_runs | quarantined_only
    assert [p.rsplit("/", 3)[-2:] for p in quarantined_only] == [
        ["20251008T032835Z", "trace_per_phi.log"]]
    assert s["trace_files"] == len(expected) + s["json_files"]


def test_second_ingest_adds_nothing(loaded):
    corpus, wh, first = loaded
    again = wh.ingest([corpus]).stats
    assert (again["runs"], again["taps"], again["values"], again["bundles"]) == (0, 0, 0, 0)
    assert again["unchanged_files"] == first.stats["trace_files"]


@pytest.mark.parametrize("pixel", [(2048, 2048), (1792, 2048), (4095, 2048)])
def test_phase_c_runs_found_with_side_stamp_pixel(loaded, pixel):
    _corpus, wh, _ = loaded
    c = wh.runs(side="c", stamp="20251010T053711Z", pixel=pixel,
                path=f"{PHASE_C}/20251010T053711Z/c_traces/")
    py = wh.runs(side="py", stamp="20251010T055346Z", pixel=pixel,
                 path=f"{PHASE_C}/20251010T055346Z/py_traces/")
    assert len(c) == 1 and len(py) == 1
    assert py.iloc[0].meta_stamp is not None  # the metadata's own time is kept too


def test_phase_c_c_run_taps(loaded):
    _corpus, wh, _ = loaded
    rid = int(wh.runs(side="c", pixel=(2048, 2048),
                      path=f"{PHASE_C}/20251010T053711Z/c_traces/").id.iloc[0])
    taps = wh.taps(rid).set_index("name", drop=False)
    bc = taps.loc["beam_center_m"]
    assert int(bc.line) == 10
    assert [(c["label"], c["num"]) for c in bc.components] == [
        ("X", 0.000102425), ("Y", 0.000102425), ("pixel_mm", 0.05)]
    rx = taps.loc["Rx"]
    assert len(rx.components) == 9
    assert [c["text"] for c in rx.components] == ["1", "0", "0", "0", "1", "-0", "0", "0", "1"]
    assert taps.loc["detector_convention"].value == "MOSFLM"


def test_per_phi_records_load_with_phi_tic(loaded):
    _corpus, wh, _ = loaded
    runs = wh.runs(path="phase_l/per_phi/")
    assert len(runs) >= 20
    with wh.engine.connect() as conn:
        keys = conn.execute(text(
            "SELECT DISTINCT t.loop_key FROM tap t JOIN run r ON r.id = t.run_id "
            "JOIN source_file sf ON sf.id = r.source_file_id "
            "WHERE sf.path LIKE '%phase_l/per_phi/%' AND t.channel = 'PHI'")).scalars().all()
    assert {f"phi_tic={i}" for i in range(10)} <= set(keys)
    rid = int(runs[runs.path.str.endswith("scaling_validation/20251008T062232Z/"
                                           "trace_py_scaling_per_phi.log")].id.iloc[0])
    taps = wh.taps(rid)
    row = taps[(taps.name == "k_frac") & (taps.loop_key == "phi_tic=3")].iloc[0]
    assert row.value == "-0.595204463682985"
    assert wh.run(rid)["pixel"] == [685, 1039]  # from the per-phi JSON beside the log


# --------------------------------------------------------------------------- divergence


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def phase_c(request, tmp_path_factory):
    """phase_c and phase_d of the vectorization-parity initiative, on each backend."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at ../shared/corpus/nanoBragg (expected {CORPUS})")
    tree = CORPUS / "reports" / "2026-01-vectorization-parity"
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path_factory.mktemp('pc') / 'wh.sqlite').as_posix()}"
        wh = tracedb.connect(url)
        wh.ingest([tree / "phase_c", tree / "phase_d"])
        yield wh
        return
    with pg_schema_url() as url:
        wh = tracedb.connect(url)
        wh.ingest([tree / "phase_c", tree / "phase_d"])
        yield wh
        wh.close()


def test_phase_c_first_divergence_is_beam_center_at_line_10(phase_c):
    df = phase_c.diverge(ref="c@20251010T053711Z", cand="py@20251010T055346Z")
    assert sorted(zip(df.pixel_slow, df.pixel_fast, strict=True)) == [
        (1792, 2048), (2048, 2048), (4095, 2048)]
    for r in df.itertuples():
        assert (r.first_tap, r.first_ref_line, r.first_cand_line) == ("beam_center_m", 10, 10)
        assert r.first_ratio == pytest.approx(1e-3, rel=1e-9)
        # PyTorch's 0.102425 agrees with Fbeam_m on both sides: C is off by 1e-3
        assert r.first_suspect_side == "c"
        assert r.first_unit_hint == ("C is off by x1e-3 (m <-> mm; PyTorch's value agrees "
                                     "with Fbeam_m on both sides)")
        assert r.first_ref_value == "X:0.000102425 Y:0.000102425 pixel_mm:0.05"
    diff = phase_c.diff(df.attrs["set_id"])
    for cid in df.comparison_id:
        taps = diff[diff.comparison_id == cid].set_index("tap")
        sv = taps.loc["scattering_vec_A_inv"]
        assert sv.status == "diverged"
        assert sv.ratio == pytest.approx(1e10, rel=1e-6)
        # no tap of A^-1 agrees with either side's value: undecided
        assert sv.unit_hint == "one side is off by x1e10 (m^-1 <-> A^-1)"
        assert pd.isna(sv.suspect_side)
        assert taps.loc["Rx"].status == "match"  # -0 vs 0
        assert taps.loc["angles_rad"].status == "match"  # 0 vs 0.000000000000000e+00
        assert (taps.loc["Rx"].ref_value, taps.loc["Rx"].cand_value) == (
            "[1 0 0; 0 1 -0; 0 0 1]", "[1 0 0; 0 1 0; 0 0 1]")


def test_phase_c_names_c_as_the_side_off_in_json_and_report(phase_c, tmp_path):
    """C prints beam_center_m X:0.000102425, PyTorch 0.102425, and both print Fbeam_m
    of about 0.1024 (metres): the C side is off, and the next step says so."""
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", phase_c.url, "diverge",
                           "--ref", "c@20251010T053711Z", "--cand", "py@20251010T055346Z",
                           "--format", "json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert sorted(tuple(o["pixel"]) for o in out) == [(1792, 2048), (2048, 2048), (4095, 2048)]
    for o in out:
        assert o["first"]["tap"] == "beam_center_m"
        assert o["first"]["suspect_side"] == "c"
    phase_c.report(tmp_path / "rep", ref="c@20251010T053711Z", cand="py@20251010T055346Z")
    md = (tmp_path / "rep" / "first_divergence.md").read_text(encoding="utf-8")
    steps = [ln for ln in md.splitlines() if ln.startswith("**Next step:**")]
    assert len(steps) == 3
    for step in steps:
        assert "C is off by x1e-3 (m <-> mm; PyTorch's value agrees with Fbeam_m" in step
        assert "Check the C code's unit conversion where `beam_center_m` is computed" in step
    # every diverged tap with a unit factor says which side is off, or that none can tell
    assert md.count("| one side is off by x1e10 (m^-1 <-> A^-1) | undecided |") == 3


def test_phase_c_d_timeline_shows_the_fixes(phase_c):
    summaries, changes = phase_c.timeline((1792, 2048), ref="c@20251010T053711Z")
    stamps = [t.strftime("%Y%m%dT%H%M%SZ") for t in summaries.cand_stamp]
    assert stamps == sorted(stamps)
    assert stamps[0] == "20251010T055346Z" and "20251010T064644Z" in stamps
    paths = list(summaries.cand_path)
    assert any("/phase_c/" in p for p in paths) and any("/phase_d/" in p for p in paths)
    fixed = {(s, t) for s, t, c in zip(
        [summaries.set_index("ordinal").cand_stamp[o].strftime("%Y%m%dT%H%M%SZ")
         for o in changes.ordinal],
        changes.tap, changes.change, strict=True) if c == "fixed"}
    assert ("20251010T064547Z", "scattering_vec_A_inv") in fixed
    assert ("20251010T064644Z", "fluence_photons_per_m2") in fixed
