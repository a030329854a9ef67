"""The line shapes of issue 12 as a user meets them: what `tracedb ingest` counts,
which runs it makes, what `tracedb taps` shows and what `diverge` says (both backends)."""

from __future__ import annotations

import json

from .conftest import write
from .test_cli import tracedb


def ingest(tree, url) -> dict:
    proc = tracedb("ingest", str(tree), "--format", "json", db=url)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def runs(url, *args) -> list[dict]:
    proc = tracedb("runs", "--format", "json", *args, db=url)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def taps(url, run_id) -> list[dict]:
    proc = tracedb("taps", str(run_id), "--format", "json", db=url)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def diverge(url, *args) -> list[dict]:
    proc = tracedb("diverge", "--format", "json", *args, db=url)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


F_LATT = """\
TRACE_SIM_F_LATT: pixel=(1792,2048) Na=5.0 Nb=5.0 Nc=5.0
  h_mean=-6.576005289140565e+08 k_mean=5.128313254643336e+10 l_mean=-9.996711997359876e+07
  F_latt_mean=9.101399884157525e+00
  intensity_sum_phi_mos=4.444446299773561e+09
"""


def test_continuation_lines_are_stored_and_counted(url, tmp_path):
    write(tmp_path / "r" / "20251010T073708Z" / "py_traces" / "simulator_f_latt.log", F_LATT)
    stats = ingest(tmp_path / "r", url)
    assert (stats["trace_lines"], stats["continuation_lines"]) == (4, 3)
    assert stats["parsed_lines"] + stats["quarantined_lines"] == stats["trace_lines"]
    (run,) = runs(url)
    assert (run["side"], run["pixel"], run["taps"]) == ("py", [1792, 2048], 8)
    shown = {t["name"]: (t["line"], t["value"]) for t in taps(url, run["id"])}
    assert shown["k_mean"] == (2, "5.128313254643336e+10")
    assert shown["intensity_sum_phi_mos"] == (4, "4.444446299773561e+09")
    proc = tracedb("db", "check", db=url)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_pixel_sections_of_one_file_are_two_runs(url, tmp_path):
    write(tmp_path / "r" / "c_sections.log",
          "TRACE_C: === PIXEL (262, 368) TRACE START ===\nTRACE_C: I_pixel_final 1.5\n"
          "TRACE_C: === PIXEL (262, 368) TRACE END ===\n"
          "Target Pixel: (slow=512, fast=512)\nTRACE_C: I_pixel_final 2.5\n"
          "=== PIXEL (7, 9) TRACE START ===\nTRACE_C: I_pixel_final 3.5\n")
    ingest(tmp_path / "r", url)
    found = sorted((tuple(r["pixel"]), r["taps"]) for r in runs(url))
    # never one run whose second pixel becomes occurrence 2
    assert found == [((7, 9), 1), ((262, 368), 1), ((512, 512), 1)]


def test_side_by_side_lines_are_one_run_per_side_and_compare(url, tmp_path):
    write(tmp_path / "r" / "20260105T103000Z" / "pixel_10_20_side_by_side.tsv",
          "TRACE_C: F_cell 100\tTRACE_PY: F_cell = 1.000000000000000e+02\n"
          "TRACE_C: omega_pixel_sr 4.2e-07\tTRACE_PY: omega_pixel_sr 4.3e-07\n")
    ingest(tmp_path / "r", url)
    assert sorted((r["side"], tuple(r["pixel"]), r["taps"]) for r in runs(url)) == [
        ("c", (10, 20), 2), ("py", (10, 20), 2)]
    (row,) = diverge(url)
    assert (row["compared"], row["diverged"], row["first"]["tap"]) == (2, 1, "omega_pixel_sr")


def test_a_run_whose_side_nothing_names_is_listed_unknown_and_compares_by_run_id(url, tmp_path):
    write(tmp_path / "r" / "a" / "simulator_f_latt.log", F_LATT)  # TRACE_SIM_*: no side
    write(tmp_path / "r" / "b" / "simulator_f_latt.log",
          F_LATT.replace("F_latt_mean=9.101399884157525e+00", "F_latt_mean=9.2"))
    ingest(tmp_path / "r", url)
    listed = runs(url, "--side", "unknown")
    assert [r["side"] for r in listed] == [None, None]
    table = tracedb("runs", db=url)
    assert "unknown" in table.stdout
    a, b = sorted(listed, key=lambda r: r["path"])
    out = diverge(url, "--ref", f"run:{a['id']}", "--cand", f"run:{b['id']}")
    (row,) = out
    assert (row["compared"], row["diverged"], row["first"]["tap"]) == (8, 1, "F_latt_mean")


def test_unit_words_become_the_taps_unit(url, tmp_path):
    write(tmp_path / "r" / "c_trace.log", "TRACE_C: distance 0.1 m\n"
                                          "TRACE:   lambda0 = 0.9768 Angstroms\n")
    ingest(tmp_path / "r", url)
    (run,) = runs(url)
    shown = [(t["name"], t["unit"], t["value"]) for t in taps(url, run["id"])]
    assert shown == [("distance", "m", "0.1"), ("lambda0", "A", "0.9768")]
