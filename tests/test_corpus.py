"""The real nanoBragg corpus (../shared/corpus) loads whole, once, with nothing lost."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import tracedb
from tracedb.parse import is_trace_text

from .conftest import CORPUS

PHASE_C = "reports/2026-01-vectorization-parity/phase_c"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):

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
    assert len(expected) > 150
    assert expected == with_runs
    assert s["trace_files"] == len(expected)


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
