"""The dependency graph of taps: a diverged tap is a root cause, inherited from a
diverged input (named), or unknown to the graph; graph export/import round-trips."""

from __future__ import annotations

import json

import pytest

import tracedb

from .conftest import CORPUS
from .test_diverge import capture, run_cli

#: A small computation chain (the text form `tracedb graph import` reads).
GRAPH = """\
# planted: geometry -> position -> intensity; a unit slip; a print-only root
position <- origin, step     # position = origin + step
distance <- position         # distance = |position|
intensity <- distance, scale
scale_sq <- scale            # scale^2
shown <- hidden              # hidden is printed as shown
lattice <- -N                # the crystal's size, from the command line
intensity <- r_e
k_frac <- h_frac             # per loop step
F_latt <- k_frac
"""
N_EDGES = 11


def taps(p: int) -> list[tuple[str, str, str]]:
    """(name, C value, PyTorch value) of pixel p's trace, in trace order, with the
    planted truth beside each."""
    return [
        ("origin", f"{1.0 * p}", f"{2.0 * p}"),     # root, genuine (differs per pixel)
        ("step", "0.5", "0.5"),
        ("position", f"{p + 0.5}", f"{2 * p + 0.5}"),  # inherited from origin
        ("distance", f"{p + 0.5}", f"{2 * p + 0.5}"),  # inherited from position
        ("scale", "0.002", "2"),                     # root, unit_factor (x1e-3)
        ("scale_sq", "4e-06", "4"),                  # inherited: the square of its factor
        ("r_e", "2.8179403262e-15", "2.8179403227e-15"),  # root, constant
        ("intensity", f"{7.0 * p}", f"{9.0 * p}"),   # inherited from distance and r_e (not
                                                     # scale: 7/9 is no power of 1e-3)
        ("hidden", f"{3.0 * p}", f"{3.5 * p}"),      # root, genuine, contained
        ("shown", f"{3.0 * p}", f"{3.0 * p}"),
        ("lattice", f"{5.0 * p}", f"{6.0 * p}"),     # root, config: -N 5 vs -N 10
        ("loose", f"{1.0 * p}", f"{5.0 * p}"),       # unknown: in no edge of the graph
        ("convention", "MOSFLM", "XDS"),             # unknown, config: a setting differs
    ]


def phi(p: int) -> list[tuple[str, str]]:
    """Per-phi records: h_frac diverges at step 1 only (genuinely: by pixel); F_latt is
    carried over, the
    candidate's step k holding the reference's step k-1 (step 0 the last one)."""
    h = {0: ("0.1", "0.1"), 1: (f"{0.3 * p}", f"{0.9 * p}"), 2: ("0.5", "0.5")}
    k = {0: ("0.2", "0.2"), 1: ("0.4", "0.8"), 2: ("0.6", "0.6")}
    ref = {0: 1.0 * p, 1: 2.0 * p, 2: 3.0 * p}
    cand = {0: ref[2], 1: ref[0], 2: ref[1]}
    return [(f"{{P}}_PHI phi_tic={i} h_frac={h[i][0]} k_frac={k[i][0]} F_latt={ref[i]}",
             f"{{P}}_PHI phi_tic={i} h_frac={h[i][1]} k_frac={k[i][1]} F_latt={cand[i]}")
            for i in range(3)]


def _campaign(root) -> None:
    pixels = ((1, 1), (2, 2))
    for pixel in pixels:
        p = pixel[0]
        c = [f"{{P}}: {n} {a}" for n, a, _ in taps(p)] + [a for a, _ in phi(p)]
        py = [f"{{P}}: {n} {b}" for n, _, b in taps(p)] + [b for _, b in phi(p)]
        trace = capture(root, "20250101T000000Z", "c", pixel, c)
        (trace.parent.parent / "commands.txt").write_text("".join(
            f"./nanoBragg -default_F 100 -N 5 -oversample 1 -trace_pixel {s} {f} "
            f"-floatfile /tmp/c_{s}_{f}.bin > c_traces/pixel_{s}_{f}.log\n"
            for s, f in pixels))
        trace = capture(root, "20250101T010000Z", "py", pixel, py)
        (trace.parent.parent / "commands.txt").write_text("".join(
            f"python -m nanobrag_torch -default_F 100.0 -N 10 -oversample 1 "
            f"-trace_pixel {s} {f}\n" for s, f in pixels))


def _roles(found) -> dict:
    """Per pixel: {(tap, loop_key): (verdict, contained, consequences)} of its roots."""
    return {tuple(r["pixel"]): {(t["tap"], t["loop_key"]): (t["verdict"], t["contained"],
                                                           t["consequences"])
                                for t in r["roots"]}
            for r in found.rows}


EXPECTED_ROOTS = {
    ("origin", ""): ("genuine", False, ["position", "distance", "intensity"]),
    ("scale", ""): ("unit_factor", False, ["scale_sq"]),
    ("r_e", ""): ("constant", False, ["intensity"]),
    ("hidden", ""): ("genuine", True, []),
    ("lattice", ""): ("config", False, []),
    ("h_frac", "phi_tic=1"): ("genuine", False, ["k_frac[phi_tic=1]", "F_latt[phi_tic=1]"]),
    ("F_latt", "phi_tic=0"): ("loop_shift", False, []),
    ("F_latt", "phi_tic=2"): ("loop_shift", False, []),
}


def test_every_planted_cause_gets_its_role_and_verdict(url, tmp_path):
    _campaign(tmp_path)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    assert wh.import_graph(GRAPH, origin="planted") == N_EDGES
    found = wh.divergences()
    assert len(found.rows) == 2
    for pixel, roots in _roles(found).items():
        assert roots == EXPECTED_ROOTS, pixel
    from tracedb.compare.causes import roles

    for r in found.rows:
        placed = {(t["tap"], t["loop_key"]): (t["role"], t["verdict"], t["inherited_from"])
                  for t in roles(wh.db, found.set_id, False)[r["comparison_id"]]}
        assert placed[("position", "")] == ("inherited", "inherited", ["origin"])
        assert placed[("distance", "")] == ("inherited", "inherited", ["position"])
        assert placed[("intensity", "")] == ("inherited", "inherited", ["distance", "r_e"])
        assert placed[("scale_sq", "")] == ("inherited", "inherited", ["scale"])
        assert placed[("k_frac", "phi_tic=1")] == ("inherited", "inherited", ["h_frac"])
        assert placed[("F_latt", "phi_tic=1")] == ("inherited", "inherited", ["k_frac"])
        assert placed[("loose", "")][:2] == ("unknown", "genuine")
        assert placed[("convention", "")][:2] == ("unknown", "config")
        assert len(placed) == 8 + 6 + 2  # roots, inherited, unknown: nothing else diverged
        assert r["config_diff"]["taps"] == [{"tap": "convention", "ref": "MOSFLM",
                                             "cand": "XDS"}]
        # the configurations: -N differs; the same default_F however written
        assert r["config_diff"]["differ"] == [{"option": "n", "ref": "5.0", "cand": "10.0"}]
        lattice = next(t for t in r["roots"] if t["tap"] == "lattice")
        assert "-n differs: 5.0 vs 10.0" in lattice["evidence"]
    first = found.rows[0]
    assert (first["first_tap"], first["first_role"], first["first_verdict"]) == (
        "origin", "root", "genuine")


def test_configuration_read_beside_the_comparison_is_the_one_read_after_it(
        url, tmp_path, monkeypatch):
    """diverge reads the runs' recorded options once, on a thread and a connection of
    their own while it compares (compare.requests); what it reports is what the
    finished set gives when read afterwards. When that thread fails the options are
    read after the comparison, and a run gone in between is one clear error."""
    import threading

    from tracedb.compare import config
    from tracedb.errors import TracedbError

    _campaign(tmp_path)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    read_on: list[bool] = []  # per read of the options: on the main thread?
    real = config.run_options_of
    fail_beside = [False]

    def spy(bind, run_ids):
        on_main = threading.current_thread() is threading.main_thread()
        read_on.append(on_main)
        if fail_beside[0] and not on_main:
            raise OSError("the connection beside was refused")
        return real(bind, run_ids)

    monkeypatch.setattr(config, "run_options_of", spy)
    found = wh.divergences()
    assert read_on == [False]  # once, beside the comparison
    assert len(found.rows) == 2
    after = config.set_differences(wh.db, found.set_id)
    for r in found.rows:
        beside = {k: r["config_diff"][k] for k in ("differ", "only_ref", "only_cand")}
        assert beside == after[r["comparison_id"]]
        assert beside["differ"] == [{"option": "n", "ref": "5.0", "cand": "10.0"}]

    read_on.clear()
    fail_beside[0] = True
    again = wh.divergences()
    assert read_on == [False, True]  # the thread failed; read again after comparing
    assert [r["config_diff"]["differ"] for r in again.rows] == \
        [r["config_diff"]["differ"] for r in found.rows]

    r = found.rows[0]
    gone = 1 + max(x for row in found.rows for x in (row["ref_run"], row["cand_run"]))
    with pytest.raises(TracedbError, match=f"run {gone} was removed while it was compared"):
        config.differences(wh.db.engine, {r["comparison_id"]: (r["ref_run"], gone)})


def test_graph_export_then_import_reproduces_the_roles(url, sqlite_url, tmp_path):
    _campaign(tmp_path)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    wh.import_graph(GRAPH)
    wh.set_inputs("loose", ["origin"], basis="planted later")
    before = _roles(wh.divergences())
    wh.close()
    exported = tmp_path / "graph.txt"
    proc = run_cli(url, "graph", "export", str(exported))
    assert proc.returncode == 0, proc.stderr
    assert "loose <- origin  # planted later" in exported.read_text()
    fresh = sqlite_url.replace(".sqlite", "_fresh.sqlite")
    assert tracedb.connect(fresh).ingest([tmp_path / "reports"]).ok
    proc = run_cli(fresh, "graph", "import", str(exported))
    assert proc.returncode == 0 and f"{N_EDGES + 1} edge(s)" in proc.stdout, proc.stderr
    proc = run_cli(fresh, "diverge", "--format", "json")
    after = {tuple(o["pixel"]): {(t["tap"], t["loop_key"]): (t["verdict"], t["contained"],
                                                             t["consequences"])
                                 for t in o["roots"]} for o in json.loads(proc.stdout)}
    assert after == before
    assert ("loose", "") not in after[(1, 1)]  # inherited now, from origin
    assert after[(1, 1)][("origin", "")][2] == ["position", "distance", "intensity", "loose"]


def test_a_malformed_graph_file_is_one_line_naming_it(sqlite_url, tmp_path):
    bad = tmp_path / "g.txt"
    bad.write_text("position <- origin\nno arrow here\n")
    proc = run_cli(sqlite_url, "graph", "import", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad.as_posix()}:2" in proc.stderr and proc.stderr.count("\n") == 1
    proc = run_cli(sqlite_url, "graph", "set", "a b", "c")
    assert proc.returncode == 2 and "not a tap name" in proc.stderr


SEED = "reports/2026-01-vectorization-parity/phase_c"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
def test_the_seed_case_names_its_independent_causes(sqlite_url):
    """phase_c: C vs PyTorch of three pixels. The causes a physicist names: C prints the
    beam centre x1e-3 (no consequence follows: Fbeam and Sbeam differ by half a pixel,
    not 1e3), Fbeam/Sbeam half a pixel apart at every pixel (the MOSFLM convention),
    r_e a different constant, fluence x1e9 at every pixel (a default), F_cell 108.21
    vs 100 (where it diverges) and F_latt's factors with hkl matching; the scattering
    vector is printed x1e10 (m^-1 vs A^-1) and everything computed from it matches
    (contained). The rest is inherited."""
    wh = tracedb.connect(sqlite_url)
    assert wh.ingest([CORPUS / SEED]).ok
    found = wh.divergences(ref="c@20251010T053711Z", cand="py@20251010T055346Z")
    from tracedb.compare.causes import roles

    placed = roles(wh.db, found.set_id, False)
    assert len(found.rows) == 3
    for r in found.rows:
        roots = {t["tap"]: t for t in r["roots"]}
        causes = {"beam_center_m", "Fbeam_m", "Sbeam_m", "scattering_vec_A_inv", "F_latt_a",
                  "F_latt_b", "F_latt_c", "r_e_meters", "fluence_photons_per_m2"}
        assert set(roots) - {"F_cell"} == causes, r["pixel"]
        assert roots["scattering_vec_A_inv"]["contained"]
        assert roots["beam_center_m"]["consequences"] == []
        assert roots["r_e_meters"]["consequences"][0] == "r_e_sqr"
        inherited = {t["tap"]: t["inherited_from"] for t in placed[r["comparison_id"]]
                     if t["role"] == "inherited"}
        assert inherited["r_e_sqr"] == ["r_e_meters"]
        assert inherited["F_latt"] == ["F_latt_a", "F_latt_b", "F_latt_c"]
        assert "I_before_scaling" in inherited and "I_pixel_final" in inherited
        assert inherited["floatimage_accumulated"] == ["I_pixel_final"]
        assert r["diverged"] == len(roots) + len(inherited)  # every diverged tap placed
        assert r["first_tap"] == "beam_center_m" and r["first_role"] == "root"
        verdicts = {t: roots[t]["verdict"] for t in roots}
        # a unit slip on C's side; the scattering vector printed in m^-1 by C
        assert verdicts["beam_center_m"] == "unit_factor"
        assert roots["beam_center_m"]["suspect_side"] == "c"
        assert verdicts["scattering_vec_A_inv"] == "unit_factor"
        # the same difference at every pixel: a definition (constant, default, convention)
        for tap in ("r_e_meters", "fluence_photons_per_m2", "Fbeam_m", "Sbeam_m"):
            assert verdicts[tap] == "constant", tap
        # F_latt's factors differ by pixel; F_cell at two pixels of three, while both
        # runs were given -default_F 100: no recorded option explains them
        for tap in ("F_latt_a", "F_latt_b", "F_latt_c", "F_cell"):
            assert verdicts.get(tap, "genuine") == "genuine", tap
        # both sides' recorded configurations agree on every option both record
        assert r["config_diff"]["differ"] == []
        assert set(r["config_diff"]["only_cand"]) == {"dtype", "device"}


def test_constant_counts_every_comparison_whose_reference_traced_the_tap(url, tmp_path):
    """'constant' (the same difference wherever it was traced) counts the comparisons
    whose reference run traced the tap, whatever else those runs traced: one that
    traced it with a match is counted, one that never traced it is not."""
    def trace(p, ref, cand, more=()):
        for stamp, side, value in (("20250101T000000Z", "c", ref),
                                   ("20250101T010000Z", "py", cand)):
            lines = ([f"{{P}}: my_constant {value}"] if value else []) + \
                [f"{{P}}: {name} 1" for name in more]
            capture(tmp_path, stamp, side, (p, p), lines)

    trace(1, "2.5", "2.75")
    trace(2, "2.5", "2.75")
    trace(3, "2.5", "2.5", more=["extra"])  # traced and matched; another shape
    trace(4, None, None, more=["other"])    # never traced; another shape
    trace(5, "2.5", "2.5")                  # traced and matched; the shape of 1 and 2
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    from tracedb.compare.causes import roles

    def verdicts(pixels):
        found = wh.divergences(pixels=[(p, p) for p in pixels])
        placed = roles(wh.db, found.set_id, False)
        return {tuple(r["pixel"]): [(t["tap"], t["verdict"], t["evidence"])
                                    for t in placed.get(r["comparison_id"], [])]
                for r in found.rows}

    constant = ("my_constant", "constant",
                "the same value on each side in all 2 comparisons that traced it")
    assert verdicts([1, 2, 4]) == {(1, 1): [constant], (2, 2): [constant], (4, 4): []}
    for third in (3, 5):
        got = verdicts([1, 2, third])
        assert [v[:2] for v in got[(1, 1)]] == [("my_constant", "genuine")], third
        assert [v[:2] for v in got[(2, 2)]] == [("my_constant", "genuine")], third
        assert got[(third, third)] == [], third
