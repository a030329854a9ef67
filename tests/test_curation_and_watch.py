"""Curation in files (alias/accept list and remove, `curation export|import` as TOML)
and the ingest options for pipelines: --fail-on-quarantine, --watch."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

import tracedb
from tests.conftest import C_TRACE, PY_TRACE, write
from tests.test_cli import assert_one_line_error
from tests.test_cli import tracedb as run_cli
from tracedb import schemas

# --------------------------------------------------------------------------- curation


def test_alias_and_accept_list_and_remove_on_the_command_line(url, tree):
    assert run_cli("ingest", str(tree), db=url).returncode == 0
    assert run_cli("alias", "omega", "omega_pixel", "--note", "short name", db=url
                   ).returncode == 0
    listed = json.loads(run_cli("alias", "list", "--format", "json", db=url).stdout)
    schemas.validate("alias_list", listed)
    assert {"kind": "name", "name": "omega", "canonical": "omega_pixel", "channel": "*",
            "note": "short name"} in listed
    assert any(a["name"] == "I_before_scaling_pre_polar" for a in listed)  # seeded

    added = run_cli("accept", "Rx", "--reason", "C prints -0", db=url)
    assert added.returncode == 0 and "accepted divergence" in added.stdout
    [acc] = accepted = json.loads(run_cli("accept", "list", "--format", "json", db=url).stdout)
    schemas.validate("accept_list", accepted)
    assert (acc["tap"], acc["reason"], acc["channel"]) == ("Rx", "C prints -0", "*")

    assert run_cli("accept", "remove", str(acc["id"]), db=url).returncode == 0
    assert json.loads(run_cli("accept", "list", "--format", "json", db=url).stdout) == []
    assert run_cli("alias", "remove", "omega", db=url).returncode == 0
    names = {a["name"] for a in
             json.loads(run_cli("alias", "list", "--format", "json", db=url).stdout)}
    assert "omega" not in names and "I_before_scaling_pre_polar" in names
    assert_one_line_error(run_cli("alias", "remove", "omega", db=url), "no alias 'omega'")
    # a channel alias (seeded: the tap file hkl_subpixel is TRACE_C_TAP5_HKL)
    assert {"kind": "channel", "name": "*", "canonical": "TAP5_HKL",
            "channel": "hkl_subpixel"}.items() <= next(
        a for a in listed if a["kind"] == "channel" and a["channel"] == "hkl_subpixel"
    ).items()
    assert run_cli("alias", "remove", "hkl_subpixel", "--channels", db=url).returncode == 0
    assert not any(a["channel"] == "hkl_subpixel" and a["kind"] == "channel" for a in
                   json.loads(run_cli("alias", "list", "--format", "json", db=url).stdout))
    assert_one_line_error(run_cli("accept", "remove", "999", db=url),
                          "no accepted divergence 999")


def test_removing_an_alias_unpairs_its_taps(url, tmp_path):
    root = tmp_path / "reports" / "i" / "p"
    write(root / "20250101T000000Z" / "c_traces" / "pixel_1_2.log",
          "TRACE_C: omega_pixel 2\nTRACE_C: F 1\n")
    write(root / "20250101T010000Z" / "py_traces" / "pixel_1_2.log",
          "TRACE_PY: omega 2\nTRACE_PY: F 1\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    wh.add_alias("omega", "omega_pixel")
    assert wh.diverge().iloc[0].compared == 2
    wh.remove_alias("omega")
    again = wh.diverge().iloc[0]
    assert (again.compared, again.missing_cand, again.missing_ref) == (1, 1, 1)
    wh.close()


def test_curation_file_round_trips_between_warehouses(url, tree, tmp_path):
    src = tracedb.connect(url)
    src.ingest([tree])
    run_id = int(src.runs(side="py").id.iloc[0])
    src.add_alias("omega", "omega_pixel", channel="PHI", note="short name")
    src.accept("Rx", "C prints -0", loop_key="phi_tic=3", run_id=run_id)
    src.accept("r_e_meters", "CODATA 2006 on purpose")
    src.set_factor_model("mine", "I_pixel_final = fluence_photons_per_m2 * F_latt^2 / steps")
    src.set_inputs("omega_pixel", ["R_distance_meters", "close_distance_meters"],
                   basis="solid angle", graph="team")
    text = src.export_curation()
    path = tmp_path / "curation.toml"
    path.write_text(text)
    assert "[[aliases]]" in text and "[[graphs.team]]" in text and 'kind = "channel"' in text
    assert 'mine = "I_pixel_final = fluence_photons_per_m2 * F_latt^2 / steps"' in text

    # a second warehouse that loaded another tree first: the same runs have other ids
    other = tmp_path / "other.sqlite"
    decoy = tmp_path / "decoy" / "reports" / "d" / "20240101T000000Z"
    for side in ("c", "py"):
        write(decoy / f"{side}_traces" / "pixel_7_7.log", f"TRACE_{side.upper()}: F 1\n")
    for root in (decoy.parent.parent.parent, tree):
        proc = run_cli("ingest", str(root), db=f"sqlite:///{other.as_posix()}")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("curation", "import", str(path), db=f"sqlite:///{other.as_posix()}")
    assert proc.returncode == 0, proc.stderr
    assert "2 accepted" in proc.stdout and "aliases" in proc.stdout
    dst = tracedb.connect(f"sqlite:///{other.as_posix()}")
    assert dst.export_curation() == text  # the same curation, byte for byte
    assert ("omega", "omega_pixel", "PHI", "short name") in [
        (a["name"], a["canonical"], a["channel"], a["note"]) for a in dst.alias_rows()]
    accepted = {a["tap"]: a for a in dst.accepted_rows()}
    # the accepted divergence is on the run of the same file, not on the same run id
    [src_run] = src.run_rows(run_id=run_id)
    path, stamp = src_run["path"], src_run["stamp"]
    [dst_run] = [r for r in dst.run_rows(side="py") if r["path"] == path]
    assert dst_run["id"] != run_id and dst_run["stamp"] == stamp
    assert accepted["Rx"]["loop_key"] == "phi_tic=3"
    assert accepted["Rx"]["run_id"] == dst_run["id"]
    assert accepted["r_e_meters"]["run_id"] is None
    assert {(f, e) for _m, _t, _p, f, e in
            dst.factor_model("mine").itertuples(index=False)} == {
        ("fluence_photons_per_m2", 1.0), ("F_latt", 2.0), ("steps", -1.0)}
    assert [(e["target"], e["source"]) for e in dst.graph_rows("team")] == [
        ("omega_pixel", "R_distance_meters"), ("omega_pixel", "close_distance_meters")]
    assert len(dst.graph_rows("nanoBragg")) == len(src.graph_rows("nanoBragg"))
    src.close()
    dst.close()


def test_curation_import_replaces_only_the_sections_present(url, tmp_path):
    wh = tracedb.connect(url)
    wh.accept("kept", "not in the file")
    path = tmp_path / "aliases.toml"
    path.write_text('[[aliases]]\nname = "omega"\ncanonical = "omega_pixel"\n')
    assert run_cli("curation", "import", str(path), db=url).returncode == 0
    assert [a["name"] for a in wh.alias_rows()] == ["omega"]  # seeded ones replaced
    assert [a["tap"] for a in wh.accepted_rows()] == ["kept"]
    assert len(wh.graph_rows("nanoBragg")) > 20
    wh.close()


@pytest.mark.parametrize("content, said", [
    ("[[aliases]]\nname = 'x'\n", "aliases[0]: needs canonical"),
    ("aliases = 3\n", "aliases must be a list"),
    ("[factor_models]\nm = 'I = a * (b'\n", "factor_models.m"),
    ("[[graphs.g]]\ntarget = 'a b'\nsources = ['c']\n", "is not a tap name"),
    ("[[accepted]]\ntap = 'x'\nreason = 'y'\nrun = 99999\n", "run must be dict"),
    ("[[accepted]]\ntap = 'x'\nreason = 'y'\n[accepted.run]\nfile_sha256 = '" + "0" * 64
     + "'\nsegment = 0\npath = 'reports/a/pixel_1_2.log'\n",
     "accepted[0]: run reports/a/pixel_1_2.log (segment 0): this warehouse has not loaded"),
    ("[[accepted]]\ntap = 'x'\nreason = 'y'\n[accepted.run]\nfile_sha256 = 'ab'\n"
     "segment = 99999999999999999999\n", "segment 99999999999999999999 is out of range"),
    ("[[accepted]]\ntap = 'x'\nreason = 'y'\n[accepted.run]\nfile_sha256 = 'ab'\n"
     "segment = 9999999999\n", "segment 9999999999 is out of range"),
    ("[[aliases]]\nkind = 'channel'\nname = 'foo'\nchannel = 'a'\ncanonical = 'b'\n",
     "aliases[0]: a channel alias pairs every tap of channel 'a'"),
    ("[[aliases]]\nkind = 'channel'\nname = '*'\ncanonical = 'b'\n",
     "aliases[0]: a channel alias names two channels"),
    ("[[aliases]]\nname = 'a'\ncanonical = 'b'\n[[aliases]]\nname = 'a'\ncanonical = 'c'\n",
     "aliases[1] repeats aliases[0]"),
    ("colour = 'red'\n", "unknown section(s) colour"),
    ("[[aliases]\n", "not TOML"),
])
def test_a_bad_curation_file_is_one_line_and_changes_nothing(sqlite_url, tmp_path, content,
                                                              said):
    wh = tracedb.connect(sqlite_url)
    before = wh.export_curation()
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert_one_line_error(run_cli("curation", "import", str(path), db=sqlite_url),
                          str(path), said)
    assert wh.export_curation() == before
    wh.close()


# --------------------------------------------------------------------------- ingest options


def test_fail_on_quarantine(sqlite_url, tmp_path):
    root = tmp_path / "reports"
    write(root / "i" / "p" / "20250101T000000Z" / "c_traces" / "pixel_1_2.log",
          C_TRACE + "TRACE_C_PHI phi_tic=<idx> k=<val>\n")
    proc = run_cli("ingest", str(root), "--fail-on-quarantine", "--format", "json",
                   db=sqlite_url)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["quarantined_lines"] == 1
    assert "1 line(s) or item(s) quarantined" in proc.stderr
    assert "Traceback" not in proc.stderr
    # what loaded stays loaded; nothing new quarantined on a second run: exit 0
    assert len(json.loads(run_cli("runs", "--format", "json", db=sqlite_url).stdout)) == 1
    assert run_cli("ingest", str(root), "--fail-on-quarantine", db=sqlite_url
                   ).returncode == 0


def test_without_quarantine_fail_on_quarantine_passes(sqlite_url, tree):
    assert run_cli("ingest", str(tree), "--fail-on-quarantine", db=sqlite_url
                   ).returncode == 0


def _bundle(root, stamp: str, side: str, text: str) -> None:
    write(root / "init" / "phase" / stamp / f"{side}_traces" / "pixel_1_2.log", text)


def test_watch_loads_bundles_as_they_are_written_whole(url, tmp_path):
    root = tmp_path / "reports"
    root.mkdir()
    _bundle(root, "20250101T000000Z", "c", C_TRACE)  # there before the watch starts
    wh = tracedb.connect(url)
    stop = threading.Event()
    results = []

    def load(roots):
        results.append(wh.ingest(roots))

    thread = threading.Thread(target=wh.watch, args=([root], load),
                              kwargs={"debounce": 1.0, "stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not results and time.monotonic() < deadline:
            time.sleep(0.05)
        assert results[0].stats["runs"] == 1
        # a PyTorch trace written in two parts, well within the debounce
        path = root / "init" / "phase" / "20250101T010000Z" / "py_traces" / "pixel_1_2.log"
        path.parent.mkdir(parents=True)
        half = len(PY_TRACE) // 2
        with open(path, "w") as f:
            f.write(PY_TRACE[:half])
            f.flush()
            time.sleep(0.2)
            f.write(PY_TRACE[half:])
        while len(wh.runs(side="py")) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    py = wh.runs(side="py")
    assert len(py) == 1 and int(py.taps.iloc[0]) == PY_TRACE.count("TRACE_PY")
    assert sum(r.stats["runs"] for r in results) == 2  # each run loaded once
    wh.close()


def test_watch_on_the_command_line_ends_on_ctrl_c(tmp_path):
    root = tmp_path / "reports"
    root.mkdir()
    db = f"sqlite:///{(root / 'wh.sqlite').as_posix()}"  # inside the watched tree
    proc = subprocess.Popen([sys.executable, "-m", "tracedb", "--db", db, "ingest", "--watch",
                             str(root), "--debounce", "0.5", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = ""
    try:
        deadline = time.monotonic() + 60
        while not first.endswith("\n}\n"):  # the first load's counts: the tree is empty
            first += proc.stdout.readline()
        _bundle(root, "20250101T000000Z", "c", C_TRACE)
        while time.monotonic() < deadline:
            runs = run_cli("runs", "--format", "json", db=db)
            if runs.returncode == 0 and json.loads(runs.stdout):
                break
            time.sleep(0.3)
        time.sleep(1.5)  # three debounces: the warehouse's own writes start no load
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped watching after 2 load(s)" in err
    out = first + out
    loads, at = [], 0
    while at < len(out):  # one JSON object per load
        obj, at = json.JSONDecoder().raw_decode(out, at)
        loads.append(obj)
        at += len(out[at:]) - len(out[at:].lstrip())
    assert [s["runs"] for s in loads] == [0, 1]


def test_watch_refuses_a_missing_directory(sqlite_url, tmp_path):
    assert_one_line_error(run_cli("ingest", "--watch", str(tmp_path / "nope"), db=sqlite_url),
                          "not a directory")
