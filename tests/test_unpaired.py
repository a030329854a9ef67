"""Unpaired pixels never vanish (issue 12): a pixel traced on one side only is listed
by diverge, timeline, regress and reports with the run it lacks, on both backends."""

from __future__ import annotations

import csv
import io
import json

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import tracedb
from tracedb.store import engine as db

from .test_diverge import capture, run_cli
from .test_mismatch import stored_flags_and_view

C_STAMP, PY_STAMP, PY_LATER = "20250101T000000Z", "20250101T010000Z", "20250101T020000Z"
A, B, D = (1, 2), (3, 4), (5, 6)  # A on both sides, B C only, D PyTorch only


def _tree(tmp_path):
    """Pixel A traced by both programs (they agree), B by C only (PyTorch crashed), D by
    PyTorch only."""
    capture(tmp_path, C_STAMP, "c", A, ["{P}: a 1", "{P}: b 2"])
    capture(tmp_path, PY_STAMP, "py", A, ["{P}: a 1", "{P}: b 2"])
    capture(tmp_path, C_STAMP, "c", B, ["{P}: a 1", "{P}: b 2", "{P}: c 3"])
    capture(tmp_path, PY_STAMP, "py", D, ["{P}: a 1"])
    return tmp_path / "reports"


def _loaded(url, tmp_path):
    wh = tracedb.connect(url)
    assert wh.ingest([_tree(tmp_path)]).ok
    return wh


def _run_of(wh, pixel):
    return int(wh.runs(pixel=pixel).id.iloc[0])


def _line(out: str, start: str) -> str:
    """The one output line that starts (after table borders) with ``start``."""
    found = [ln for ln in out.splitlines() if ln.lstrip("|│ ").startswith(start)]
    assert len(found) == 1, out
    return found[0]


def test_diverge_lists_a_pixel_traced_on_one_side_in_every_format(url, tmp_path):
    wh = _loaded(url, tmp_path)
    b_run, d_run = _run_of(wh, B), _run_of(wh, D)
    proc = run_cli(url, "diverge", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    got = {tuple(o["pixel"]): o for o in json.loads(proc.stdout)}
    assert sorted(got) == [A, B, D]
    assert got[A]["status"] == "match" and got[A]["compared"] == 2
    b = got[B]
    assert (b["status"], b["ref_run"], b["cand_run"], b["compared"]) == (
        "missing_cand", b_run, None, 0)
    assert (b["cand_side"], b["cand_stamp"], b["cand_path"], b["first"]) == (
        None, None, None, None)
    assert (b["ref_side"], b["ref_stamp"], b["missing_cand"]) == ("c", C_STAMP, 3)
    d = got[D]
    assert (d["status"], d["ref_run"], d["cand_run"], d["compared"]) == (
        "missing_ref", None, d_run, 0)
    assert (d["cand_side"], d["missing_ref"], d["matched"]) == ("py", 1, 0)

    table = run_cli(url, "diverge").stdout
    assert "NO CAND RUN" in _line(table, "3,4") and "NO REF RUN" in _line(table, "5,6")
    md = run_cli(url, "diverge", "--format", "md").stdout
    assert _line(md, "3,4").startswith(f"| 3,4 | run {b_run} c@{C_STAMP} | none | 0 |")
    assert "| no cand run |" in _line(md, "3,4")
    assert _line(md, "5,6").startswith(f"| 5,6 | none | run {d_run} py@{PY_STAMP} | 0 |")
    assert "| no ref run |" in _line(md, "5,6")
    rows = {f'{r["pixel_slow"]},{r["pixel_fast"]}': r for r in csv.DictReader(io.StringIO(
        run_cli(url, "diverge", "--format", "csv").stdout))}
    assert (rows["3,4"]["status"], rows["3,4"]["cand_run"], rows["3,4"]["compared"]) == (
        "missing_cand", "", "0")
    assert (rows["5,6"]["status"], rows["5,6"]["ref_run"]) == ("missing_ref", "")


def test_a_missing_run_fails_the_ci_exit_code(url, tmp_path):
    _loaded(url, tmp_path)
    assert run_cli(url, "diverge", "--fail-on-divergence", "--pixel", "1,2").returncode == 0
    for pixel in ("3,4", "5,6"):  # each unpaired pixel alone fails
        proc = run_cli(url, "diverge", "--fail-on-divergence", "--pixel", pixel)
        assert proc.returncode == 1, proc.stdout + proc.stderr
    both = run_cli(url, "diverge", "--fail-on-divergence", "--ref", f"c@{C_STAMP}",
                   "--cand", f"py@{PY_STAMP}", "--format", "json")
    assert both.returncode == 1
    assert [o["status"] for o in json.loads(both.stdout)] == ["match", "missing_cand",
                                                               "missing_ref"]


def test_api_frames_and_records_hold_unpaired_pixels(url, tmp_path):
    wh = _loaded(url, tmp_path)
    found = wh.divergences()
    assert not found  # a missing run is never a pass
    assert [(tuple(r["pixel"]), r["status"]) for r in found.rows] == [
        (A, "match"), (B, "missing_cand"), (D, "missing_ref")]
    df = wh.diverge()
    df = df.set_index([df.pixel_slow, df.pixel_fast])
    assert df.status[B] == "missing_cand" and df.compared[B] == 0
    assert df.cand_run.isna()[B] and not df.ref_run.isna()[B]
    assert df.ref_run.isna()[D] and df.missing_ref[D] == 1
    # every tap of the run there is is missing on the other side, in either detail
    full = wh.diverge(detail="all").set_index("status")
    assert (full.missing_cand["missing_cand"], full.missing_ref["missing_ref"]) == (3, 1)
    set_id = df.attrs["set_id"]
    # the flags equal the plain view for unpaired pairs
    stored, view = stored_flags_and_view(wh, set_id)
    assert stored == view and len(stored) == 4
    diff = wh.diff(set_id)
    b_cmp = int(df.comparison_id[B])
    assert list(diff[diff.comparison_id == b_cmp].status) == ["missing_cand"] * 3


def test_timeline_shows_a_missing_run(url, tmp_path):
    wh = _loaded(url, tmp_path)
    capture(tmp_path, PY_LATER, "py", D, ["{P}: a 2"])
    wh.ingest([tmp_path / "reports"])
    only_c = json.loads(run_cli(url, "timeline", "--pixel", "3,4", "--format", "json").stdout)
    assert [(t["status"], t["ref_run"], t["cand_run"], t["compared"])
            for t in only_c] == [("missing_cand", _run_of(wh, B), None, 0)]
    only_py = json.loads(run_cli(url, "timeline", "--pixel", "5,6", "--format", "json").stdout)
    assert [(t["status"], t["ref_run"], t["cand_stamp"]) for t in only_py] == [
        ("missing_ref", None, PY_STAMP), ("missing_ref", None, PY_LATER)]
    table = run_cli(url, "timeline", "--pixel", "3,4")
    assert table.returncode == 0 and "NO CAND RUN" in table.stdout
    summaries, changes = wh.timeline(D)
    assert list(summaries.status) == ["missing_ref", "missing_ref"] and len(changes) == 0


def test_regress_shows_missing_base_and_head_runs(url, tmp_path):
    wh = _loaded(url, tmp_path)
    capture(tmp_path, PY_LATER, "py", A, ["{P}: a 1", "{P}: b 3"])
    wh.ingest([tmp_path / "reports"])
    proc = run_cli(url, "regress", "--base", f"@{PY_STAMP}", "--head", f"@{PY_LATER}",
                   "--ref", f"c@{C_STAMP}", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    got = {tuple(o["pixel"]): o for o in json.loads(proc.stdout)}
    assert sorted(got) == [A, B, D]
    assert (got[A]["base_status"], got[A]["head_status"], got[A]["regressions"]) == (
        "match", "diverged", ["b"])
    b = got[B]  # C only: neither the base nor the head traced it
    assert (b["ref_run"], b["base_run"], b["head_run"]) == (_run_of(wh, B), None, None)
    assert (b["base_status"], b["head_status"], b["fixes"]) == ("missing_cand",
                                                                 "missing_cand", [])
    d = got[D]  # PyTorch at base only, no C run
    assert (d["ref_run"], d["head_run"], d["base_status"], d["head_status"]) == (
        None, None, "missing_ref", "missing_ref")
    assert d["base_stamp"] == PY_STAMP
    table = run_cli(url, "regress", "--base", f"@{PY_STAMP}", "--head", f"@{PY_LATER}")
    assert table.returncode == 0 and "missing_ref" in _line(table.stdout, "5,6")


def test_report_shows_which_run_is_missing(url, tmp_path):
    _loaded(url, tmp_path)
    out = tmp_path / "out"
    proc = run_cli(url, "report", str(out))
    assert proc.returncode == 0, proc.stderr
    first = (out / "first_divergence.md").read_text()
    b_sec = first.split("## Pixel (3, 4): missing candidate run (missing_cand)")[1]
    assert "there is no candidate run" in b_sec.split("##")[0]
    assert "This is not a match." in b_sec.split("##")[0]
    assert "## Pixel (5, 6): missing reference run (missing_ref)" in first
    assert "| (3, 4) | run " in first and "| none: no run of this pixel |" in first
    summary = (out / "summary.md").read_text()
    assert "Missing runs (2 pixel(s)" in summary
    assert "- (3, 4): missing candidate run (missing_cand)." in summary
    assert "- (5, 6): missing reference run (missing_ref)." in summary
    assert "## Diverged taps across 1 pixel(s)" in summary
    diff = (out / "diff_pixel_3_4.txt").read_text()
    assert "candidate: none: no run of this pixel" in diff
    assert "status: missing_cand; 0 compared" in diff and diff.count("missing_cand") >= 4
    env = json.loads((out / "env" / "trace_env.json").read_text())
    assert sorted(s["pixel"] for s in env["sources"]) == [[1, 2], [1, 2], [3, 4], [5, 6]]


def test_downgrade_drops_unpaired_pairs_and_upgrade_keeps_results(url, tmp_path):
    # 0006 makes the comparison's run columns nullable; on SQLite it makes the table
    # again under the results that refer to it (foreign keys on)
    wh = _loaded(url, tmp_path)
    found = wh.divergences(detail="all", save=True)
    unpaired = [r["comparison_id"] for r in found.rows if r["status"] != "match"]
    assert len(unpaired) == 2

    def counts():
        with wh.engine.connect() as conn:
            return conn.execute(text(
                "SELECT (SELECT count(*) FROM comparison), (SELECT count(*) FROM tap_result), "
                "(SELECT count(*) FROM tap_result WHERE comparison_id IN (:b, :d))"),
                {"b": unpaired[0], "d": unpaired[1]}).one()

    n_cmp, n_res, n_unpaired = counts()
    assert n_unpaired == 4  # B's three C taps, D's one PyTorch tap
    with wh.engine.begin() as conn:
        command.downgrade(db._alembic_config(conn), "0005")
    assert wh.revision() == "0005"
    assert tuple(counts()) == (n_cmp - 2, n_res - 4, 0)
    db.upgrade(wh.engine)
    assert wh.revision() == db.HEAD
    assert tuple(counts()) == (n_cmp - 2, n_res - 4, 0)  # recorded results are kept
    wh.close()
    wh = tracedb.connect(url)
    assert wh.check().problems.sum() == 0
    assert [r["status"] for r in wh.divergences().rows] == ["match", "missing_cand",
                                                           "missing_ref"]
    with pytest.raises(IntegrityError), wh.engine.begin() as conn:  # never both missing
        conn.execute(text("INSERT INTO comparison (set_id, grp, ordinal, ref_run_id, "
                          "cand_run_id) SELECT MIN(id), 0, 1, NULL, NULL FROM comparison_set"))
