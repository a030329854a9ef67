"""Run selectors as a user writes them: every term holds, quotes hold blanks and commas,
and a bad selector is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import tracedb
from tracedb.errors import TracedbError

from .conftest import write

BUNDLE = "reports/ini/ph"


def trace(root, rel, side, value):
    prefix = "TRACE_C" if side == "c" else "TRACE_PY"
    return write(root / BUNDLE / rel, f"{prefix}: v {value}\n{prefix}: w 7\n")


@pytest.fixture
def folders(tmp_path):
    """One C run of pixel 1,1 (v 1) and PyTorch runs of it in folders whose names
    share words, one with a blank and a comma."""
    trace(tmp_path, "20250101T000000Z/c_traces/pixel_1_1.log", "c", 1)
    trace(tmp_path, "20250101T010000Z/alpha/post_fix/pixel_1_1.log", "py", 1)
    trace(tmp_path, "20250101T010000Z/alpha/pre_fix/pixel_1_1.log", "py", 2)
    trace(tmp_path, "20250101T010000Z/beta/post_fix/pixel_1_1.log", "py", 3)
    trace(tmp_path, "20250102T010000Z/my dir, v2/pixel_1_1.log", "py", 4)
    trace(tmp_path, "20250102T010000Z/my dir/pixel_1_1.log", "py", 5)
    return tmp_path / "reports"


def cand_value(wh, cand):
    """The candidate's value of tap v in the comparison ``cand`` selects, and its path."""
    s = wh.diverge(cand=cand)
    assert len(s) == 1
    diff = wh.diff(s.attrs["set_id"])
    return diff[diff.tap == "v"].iloc[0].cand_value, s.iloc[0].cand_path


def test_every_term_must_hold(url, folders):
    wh = tracedb.connect(url)
    wh.ingest([folders])
    value, path = cand_value(wh, "path:alpha path:post_fix")
    assert value == "1" and path.endswith("/alpha/post_fix/pixel_1_1.log")
    assert cand_value(wh, "path:post_fix,path:beta")[0] == "3"
    assert cand_value(wh, "py path:pre_fix @010000Z")[0] == "2"
    # each stamp suffix holds too: @010000Z alone names two stamps
    with pytest.raises(TracedbError, match="matches 2 stamps"):
        wh.diverge(cand="@010000Z")
    assert cand_value(wh, "@010000Z @20250102T010000Z path:v2")[0] == "4"
    with pytest.raises(TracedbError, match=r"matches no run \(every term must hold\)"):
        wh.diverge(cand="path:beta path:pre_fix")
    with pytest.raises(TracedbError, match="names two sides"):
        wh.diverge(cand="py c@20250101T000000Z")


def test_quoted_path_terms_hold_blanks_and_commas(url, folders):
    wh = tracedb.connect(url)
    wh.ingest([folders])
    for cand in ('path:"my dir, v2"', "path:'dir, v2'", 'py "path:my dir, v2"',
                 "path:my' dir, 'v2"):
        value, path = cand_value(wh, cand)
        assert value == "4" and path.endswith("/my dir, v2/pixel_1_1.log"), cand
    # `my dir` is a substring of both folders' paths: one run of the pixel is needed
    with pytest.raises(TracedbError, match="matches 2 runs of pixel 1,1") as err:
        wh.diverge(cand='path:"my dir"')
    assert "/my dir, v2/pixel_1_1.log" in str(err.value)
    assert "/my dir/pixel_1_1.log" in str(err.value)


def tracedb_cli(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    return subprocess.run([sys.executable, "-m", "tracedb", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_quoted_selector_and_one_line_errors(sqlite_url, folders):
    assert tracedb_cli("--db", sqlite_url, "ingest", str(folders)).returncode == 0
    ok = tracedb_cli("--db", sqlite_url, "diverge", "--cand", "py path:'my dir, v2'",
                     "--format", "json")
    assert ok.returncode == 0, ok.stderr
    [row] = json.loads(ok.stdout)
    assert row["cand_path"].endswith("/my dir, v2/pixel_1_1.log")
    assert (row["status"], row["first"]["tap"]) == ("diverged", "v")
    bad = [("c py", "selector 'c py' names two sides (c, py)"),
           ("run:1 run:2", "names two run ids (1, 2)"),
           ('path:"my dir', "a \" quote is not closed"),
           ("path:'", "a ' quote is not closed"),
           ("", "empty run selector"),
           (" , ", "empty run selector"),
           ('path:""', "path: needs a substring"),
           ("path:alpha path:v2", "matches no run (every term must hold)"),
           ("cpp@1", "cannot read selector term 'cpp@1'")]
    runs = [["diverge", "--cand", sel] for sel, _ in bad] + [
        ["diverge", "--ref", "c py"], ["timeline", "--pixel", "1,1", "--cand", "c py"],
        ["regress", "--base", "path:alpha path:v2", "--head", "@20250102T010000Z"],
        ["regress", "--base", "@20250101T010000Z path:alpha/post", "--head", 'path:"my'],
        ["report", "out", "--ref", "run:1 run:2"]]
    messages = [m for _, m in bad] + [
        "names two sides", "names two sides", "matches no run", "quote is not closed",
        "names two run ids"]
    for argv, message in zip(runs, messages, strict=True):
        proc = tracedb_cli("--db", sqlite_url, *argv, cwd=folders.parent)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], (argv, proc.stderr)


def test_regress_needs_one_base_run_per_pixel(url, tmp_path):
    """A bundle holding a pixel's trace twice (a trace file and the script's log, as at
    the corpus's 064547Z): --base by stamp alone is refused with both candidates, and a
    path: term picks one."""
    trace(tmp_path, "20250101T000000Z/c_traces/pixel_1_1.log", "c", 1)
    write(tmp_path / BUNDLE / "20250101T020000Z/py_traces_post_fix/pixel_1_1.log",
          "TRACE_PY: v 9\nTRACE_PY: w 7\n")
    write(tmp_path / BUNDLE / "20250101T020000Z/py_traces/pixel_1_1.log",
          "TRACE_PY: v 9\nTRACE_PY: w 7\n")
    write(tmp_path / BUNDLE / "20250101T030000Z/py_traces_post_fix/pixel_1_1.log",
          "TRACE_PY: v 1\nTRACE_PY: w 8\n")
    wh = tracedb.connect(url)
    wh.ingest([tmp_path / "reports"])
    with pytest.raises(TracedbError, match="--base '@020000Z' matches 2 runs of pixel 1,1") as err:
        wh.regress(base="@020000Z", head="@030000Z")
    assert "/py_traces_post_fix/pixel_1_1.log" in str(err.value)
    assert "/py_traces/pixel_1_1.log" in str(err.value)
    _, changes = wh.regress(base="@020000Z path:py_traces_post_fix", head="@030000Z")
    assert sorted(zip(changes.tap, changes.change, strict=True)) == [
        ("v", "fixed"), ("w", "broke")]


def test_demo_in_a_directory_with_blanks_and_commas(tmp_path):
    proc = tracedb_cli("demo", "--dir", "demo dir, 'one'", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "first divergences" in proc.stdout and "beam_center_m" in proc.stdout
    assert (tmp_path / "demo dir, 'one'" / "report" / "first_divergence.md").is_file()
