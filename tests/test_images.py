"""Whole-image parity and recorded metrics (both backends): image pairs found by name,
figures recomputed in float64, recorded metrics checked, worst pixels, next pixels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

import tracedb

from .conftest import C_TRACE, CORPUS, write

CORPUS_CASES = ("2025-10-06-AT-PARALLEL-001", "2025-09-29-AT-PARALLEL-002",
                "2025-09-29-AT-PARALLEL-004", "2025-09-29-AT-PARALLEL-006")


def count(wh, table):
    with wh.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def save_npy(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)
    return path


def rng_image(shape, seed=1):
    return np.random.default_rng(seed).uniform(0.5, 100.0, shape).astype(np.float32)


def by_case(wh, **kw):
    return {r["case"]: r for r in wh.image_rows(worst=None, **kw)}


# --------------------------------------------------------------------------- corpus

def test_corpus_figures_agree_with_the_recorded_metrics(url):
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at ../shared/corpus/nanoBragg (expected {CORPUS})")
    dirs = [CORPUS / "reports" / d for d in CORPUS_CASES]
    expected = {p.name[:-len("_c.npy")]: json.loads(
        p.with_name(p.name.replace("_c.npy", "_metrics.json")).read_text())
        for d in dirs for p in sorted(d.glob("*_c.npy"))}
    assert len(expected) == 11
    wh = tracedb.connect(url)
    res = wh.ingest(dirs)
    assert res.ok
    assert res.stats["image_comparisons"] == len(expected)
    got = by_case(wh)
    assert set(got) == set(expected)
    pairs = {"correlation": "correlation", "mse": "mse", "rmse": "rmse",
             "max_abs_diff": "max_abs_diff", "ref_sum": "c_sum", "cand_sum": "py_sum",
             "sum_ratio": "sum_ratio"}
    for case, rec in expected.items():
        row = got[case]
        assert row["shape"] == list(np.load(row["ref_path"]).shape)
        assert row["ref_path"].endswith(f"{case}_c.npy")
        assert row["cand_path"].endswith(f"{case}_py.npy")
        for ours, theirs in pairs.items():
            assert row[ours] == pytest.approx(rec[theirs], rel=1e-5), (case, ours)
        # the recorded file was found beside the pair and agrees
        assert row["recorded"]["c_sum"] == rec["c_sum"]
        assert row["recorded_agreement"] in ("same", "float32"), (case, row["recorded_check"])
        assert row["stamp"] is not None  # the recorded timestamp
        assert row["status"] == "diverged" and len(row["worst"]) == 50
    # the same figures from numpy directly, for one case (C is the reference)
    a = np.load(dirs[1] / "pixel-0.4mm_c.npy").astype(np.float64)
    b = np.load(dirs[1] / "pixel-0.4mm_py.npy").astype(np.float64)
    row = got["pixel-0.4mm"]
    assert row["correlation"] == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1],
                                               rel=1e-12)
    assert row["sum_ratio"] == pytest.approx(b.sum() / a.sum(), rel=1e-12)
    d = np.abs(b - a)
    assert row["outside_tolerance"] == int((d > 1e-12 * np.maximum(abs(a), abs(b))).sum())
    s, f = np.unravel_index(np.argmax(d), d.shape)
    assert (row["worst"][0]["slow"], row["worst"][0]["fast"]) == (s, f)
    # re-ingest loads nothing twice
    again = wh.ingest(dirs).stats
    assert (again["image_files"], again["images"], again["image_comparisons"],
            again["metric_files"], again["evidence_bundles"]) == (0, 0, 0, 0, 0)
    assert again["unchanged_evidence_files"] == 33  # 22 images, 11 metrics files
    assert count(wh, "image_comparison") == 11 and count(wh, "image") == 22


# --------------------------------------------------------------------------- planted

def test_planted_bad_pixels_are_exactly_the_worst(url, tmp_path):
    ref = rng_image((40, 56))
    cand = ref.copy()
    planted = {(3, 7): 50.0, (39, 0): -20.0, (0, 55): 5.0, (17, 23): 1e-3}
    for (s, f), delta in planted.items():
        cand[s, f] += np.float32(delta)
    case = tmp_path / "reports" / "img" / "20250101T000000Z"
    save_npy(case / "planted_c.npy", ref)
    save_npy(case / "planted_py.npy", cand)
    wh = tracedb.connect(url)
    first = wh.ingest([tmp_path / "reports"])
    assert first.ok and first.stats["evidence_bundles"] == 1
    row = by_case(wh)["planted"]
    assert row["status"] == "diverged" and row["shape"] == [40, 56]
    assert [(w["slow"], w["fast"]) for w in row["worst"]] == [
        (3, 7), (39, 0), (0, 55), (17, 23)]  # worst first, and nothing else
    assert row["outside_tolerance"] == 4
    assert row["worst"][0]["abs_delta"] == pytest.approx(50.0, rel=1e-5)
    assert row["worst"][0]["ref"] == str(ref[3, 7])
    assert all(w["outside"] for w in row["worst"])
    assert row["stamp"] == "20250101T000000Z" and row["recorded"] is None
    # the worst pixels are rows SQL can join with the traced pixels
    with wh.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM image_worst WHERE slow = 3 AND fast = 7"
                              )).scalar_one()
    assert n == 1
    frames = wh.images()
    assert list(frames["case"]) == ["planted"]
    assert list(frames["outside_tolerance"]) == [4]


def test_nan_and_inf_are_counted_never_a_pass(url, tmp_path):
    ref = rng_image((8, 8))
    cand = ref.copy()
    cand[2, 3] = np.nan
    ref[5, 5] = cand[5, 5] = np.inf  # the same infinity on both sides: within
    cand[6, 1] += 1.0
    d = tmp_path / "reports" / "nan"
    save_npy(d / "c_image.npy", ref)
    save_npy(d / "py_image.npy", cand)
    wh = tracedb.connect(url)
    assert wh.ingest([d]).ok
    row = by_case(wh)["nan"]  # c_image/py_image: the folder names the case
    assert row["status"] == "nonfinite"
    assert (row["ref_nonfinite"], row["cand_nonfinite"]) == (1, 2)
    assert row["correlation"] is None and row["mse"] is None
    assert row["outside_tolerance"] == 2
    assert [(w["slow"], w["fast"]) for w in row["worst"]] == [(2, 3), (6, 1)]
    assert row["worst"][0]["cand"] == "nan" and row["worst"][0]["abs_delta"] is None


def test_shapes_that_differ_are_a_status_not_a_crash(url, tmp_path):
    d = tmp_path / "reports" / "shapes"
    save_npy(d / "run_golden.npy", rng_image((4, 4)))
    save_npy(d / "run_pytorch.npy", rng_image((4, 5)))
    wh = tracedb.connect(url)
    res = wh.ingest([d])
    assert res.ok
    row = by_case(wh)["run"]
    assert row["status"] == "shape_mismatch"
    assert row["shape"] == [4, 4] and row["cand_shape"] == [4, 5]
    assert row["correlation"] is None and row["worst"] == []
    assert any("shapes differ" in n.message for n in res.notes)


# --------------------------------------------------------------------------- recorded

def test_recorded_metrics_that_disagree_are_flagged(url, tmp_path):
    ref = rng_image((16, 16), seed=2)
    cand = rng_image((16, 16), seed=3)
    a, b = ref.astype(np.float64), cand.astype(np.float64)
    d = tmp_path / "reports" / "rec"
    save_npy(d / "good_c.npy", ref)
    save_npy(d / "good_py.npy", cand)
    save_npy(d / "bad_c.npy", ref)
    save_npy(d / "bad_py.npy", cand)
    good = {"correlation": float(np.float32(np.corrcoef(a.ravel(), b.ravel())[0, 1])),
            "c_sum": float(ref.sum(dtype=np.float32)), "py_sum": float(cand.sum()),
            "mse": float(((b - a) ** 2).mean()), "timestamp": "2025-10-06T14:24:17.1"}
    write(d / "good_metrics.json", json.dumps(good))
    write(d / "bad_metrics.json", json.dumps({**good, "correlation": 0.5}))
    wh = tracedb.connect(url)
    assert wh.ingest([d]).ok
    rows = by_case(wh)
    assert rows["good"]["recorded_agreement"] in ("float32", "same")
    assert rows["good"]["stamp"] == "20251006T142417Z"
    assert rows["bad"]["recorded_agreement"] == "differs"
    assert rows["bad"]["recorded_check"]["correlation"]["agreement"] == "differs"
    assert rows["bad"]["recorded_check"]["mse"]["agreement"] in ("same", "float32")


def test_raw_bin_images_are_sized_by_detpixels(url, tmp_path):
    d = tmp_path / "reports" / "bins" / "20250102T000000Z"
    ref = rng_image((6, 6), seed=4)
    cand = ref.copy()
    cand[1, 2] += 3
    write(d / "commands.txt", "./nanoBragg -detpixels 6 -floatfile c_floatimage.bin\n")
    write(d / "c_floatimage.bin", ref.astype("<f4").tobytes())
    write(d / "py_floatimage.bin", cand.astype("<f4").tobytes())
    other = tmp_path / "reports" / "bins" / "20250103T000000Z"
    write(other / "c_floatimage.bin", ref.astype("<f4").tobytes())
    wh = tracedb.connect(url)
    res = wh.ingest([tmp_path / "reports"])
    rows = wh.image_rows()
    assert [(r["case"], r["shape"], r["status"]) for r in rows] == [
        ("20250102T000000Z", [6, 6], "diverged")]
    assert [(w["slow"], w["fast"]) for w in rows[0]["worst"]] == [(1, 2)]
    unsized = [n for n in res.notes if n.path.endswith("20250103T000000Z/c_floatimage.bin")]
    assert len(unsized) == 1 and "cannot be sized" in unsized[0].message


def test_metrics_without_images_and_their_timeline(url, tmp_path):
    root = tmp_path / "reports" / "probe"
    for stamp, ratio in (("20250101T000000Z", 1.5), ("20250102T000000Z", 1.25)):
        write(root / stamp / "summary.json", json.dumps({
            "sum_ratio": ratio, "runtime_c_ms": 516, "status": "DIVERGENCE",
            "spec_mode": {"max_delta_k": 1e-2, "pass": False}, "roi": [1, 2, 3, 4],
            "args": ["-lambda", "0.5"], "note": None}))
    write(root / "20250102T000000Z" / "broken_metrics.json", "{not json")
    wh = tracedb.connect(url)
    res = wh.ingest([root])
    assert res.stats["metric_files"] == 3 and res.stats["image_comparisons"] == 0
    tl = wh.metric_timeline("sum_ratio")
    assert list(tl["stamp"]) == [pd.Timestamp("2025-01-01", tz="UTC"),
                                 pd.Timestamp("2025-01-02", tz="UTC")]
    assert list(tl["value"]) == [1.5, 1.25]
    rows = wh.rows("metric_timeline", name="runtime_c_ms")
    assert [(r["value"], r["unit"]) for r in rows] == [(516.0, "ms"), (516.0, "ms")]
    # nothing lost: text, booleans, lists and nulls are kept as what they are
    got = {r["name"]: (r["kind"], r["value"], r["text"])
           for r in wh.rows("metric_timeline", name="status")
           + wh.rows("metric_timeline", name="spec_mode.pass")
           + wh.rows("metric_timeline", name="roi[2]")
           + wh.rows("metric_timeline", name="args")
           + wh.rows("metric_timeline", name="note")}
    assert got["status"] == ("text", None, "DIVERGENCE")
    assert got["spec_mode.pass"][:2] == ("bool", 0.0)
    assert got["roi[2]"][:2] == ("number", 3.0)
    assert got["args"] == ("list", None, '["-lambda", "0.5"]')
    assert got["note"][0] == "null"
    broken = [n for n in res.notes if n.path.endswith("broken_metrics.json")]
    assert len(broken) == 1 and "not JSON" in broken[0].message
    with wh.engine.connect() as conn:
        kept = conn.execute(text("SELECT content FROM metric_file WHERE path LIKE "
                                 "'%broken_metrics.json'")).scalar_one()
    assert kept == "{not json"
    assert wh.ingest([root]).stats["metric_files"] == 0  # nothing loaded twice


# --------------------------------------------------------------------------- next pixels

def test_next_pixels_skip_the_traced_ones(url, tmp_path):
    ref = rng_image((10, 10), seed=5)
    cand = ref.copy()
    cand[1, 2] += 30
    cand[3, 4] += 20
    cand[5, 6] += 10
    d = tmp_path / "reports" / "np" / "20250101T000000Z"
    save_npy(d / "case_c.npy", ref)
    save_npy(d / "case_py.npy", cand)
    write(tmp_path / "reports" / "np" / "20250101T010000Z" / "c_traces" / "pixel_1_2.log",
          C_TRACE)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    nxt = wh.next_pixels(2)
    assert [(r.slow, r.fast) for r in nxt.itertuples()] == [(3, 4), (5, 6)]
    worst = wh.image_worst()
    assert list(worst["traced_runs"]) == [1, 0, 0]


def test_cli_images_formats(sqlite_url, tmp_path):
    d = tmp_path / "reports" / "cli" / "20250101T000000Z"
    ref = rng_image((5, 5), seed=6)
    cand = ref.copy()
    cand[0, 0] += 1
    save_npy(d / "k_c.npy", ref)
    save_npy(d / "k_py.npy", cand)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tracedb", "--db", sqlite_url, *args],
                              capture_output=True, text=True)

    assert run("ingest", str(tmp_path / "reports")).returncode == 0
    proc = run("images", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert {"case", "ref_path", "cand_path", "shape", "correlation", "mse", "rmse",
            "max_abs_diff", "ref_sum", "cand_sum", "sum_ratio", "outside_tolerance",
            "recorded", "worst"} <= set(row)
    assert row["case"] == "k" and row["ref_path"].endswith("k_c.npy")
    assert row["worst"][0]["pixel"] == [0, 0] and row["outside_tolerance"] == 1
    csv = run("images", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("id,case,stamp") and len(csv) == 2
    table = run("images")
    assert table.returncode == 0 and "diverged" in table.stdout
    nxt = json.loads(run("images", "--next-pixels", "1", "--format", "json").stdout)
    assert [r["pixel"] for r in nxt] == [[0, 0]]
    tl = run("query", "metric_timeline", "--param", "name=sum_ratio", "--format", "json")
    assert tl.returncode == 0 and json.loads(tl.stdout) == []


def test_report_has_an_image_section(url, tmp_path):
    pytest.importorskip("matplotlib")
    from .conftest import PY_TRACE

    ref = rng_image((12, 12), seed=7)
    cand = ref.copy()
    cand[1, 2] += 5  # the traced pixel below is one of the worst
    cand[7, 8] += 9
    root = tmp_path / "reports" / "rep"
    d = root / "20250101T000000Z"
    save_npy(d / "det_c.npy", ref)
    save_npy(d / "det_py.npy", cand)
    write(d / "det_metrics.json", json.dumps({"correlation": 0.25, "c_sum": float(ref.sum())}))
    write(root / "20250101T010000Z" / "c_traces" / "pixel_1_2.log", C_TRACE)
    write(root / "20250101T020000Z" / "py_traces" / "pixel_1_2.log", PY_TRACE)
    wh = tracedb.connect(url)
    assert wh.ingest([root]).ok
    rep = wh.report(tmp_path / "out")
    md = (tmp_path / "out" / "images.md").read_text()
    assert "## det @ 20250101T000000Z" in md
    assert "agreement **differs**" in md  # the planted recorded correlation
    assert "| correlation |" in md and "| differs |" in md
    assert "| 1 | (7, 8) |" in md and "| 2 | (1, 2) |" in md
    worst_2 = next(ln for ln in md.splitlines() if ln.startswith("| 2 | (1, 2) |"))
    assert worst_2.endswith("| yes | yes |")  # outside, and traced
    first = (tmp_path / "out" / "first_divergence.md").read_text()
    assert "Image cases with this pixel among their worst pixels (`images.md`): " \
        "det @ 20250101T000000Z (rank 2)." in first
    png = tmp_path / "out" / "plots" / f"image_{wh.image_rows()[0]['id']}.png"
    assert png.is_file() and png in rep.files


def test_image_timeline_across_stamps_of_a_case(url, tmp_path):
    ref = rng_image((6, 6), seed=8)
    root = tmp_path / "reports" / "tl"
    for stamp, bad in (("20250102T000000Z", 1), ("20250101T000000Z", 3)):
        cand = ref.copy()
        cand.ravel()[:bad] += 1
        save_npy(root / stamp / "k_c.npy", ref)
        save_npy(root / stamp / "k_py.npy", cand)
    save_npy(root / "20250103T000000Z" / "other_c.npy", ref)
    save_npy(root / "20250103T000000Z" / "other_py.npy", ref)
    wh = tracedb.connect(url)
    assert wh.ingest([root]).ok
    tl = wh.image_timeline("k")
    assert list(tl["stamp"]) == [pd.Timestamp("2025-01-01", tz="UTC"),
                                 pd.Timestamp("2025-01-02", tz="UTC")]
    assert list(tl["outside_tolerance"]) == [3, 1]
    assert list(tl["status"]) == ["diverged", "diverged"]
    assert list(wh.image_timeline("other")["status"]) == ["match"]
    # one image stored once, wherever it was found: three C copies, one content
    assert count(wh, "image_file") == 6 and count(wh, "image") == 3


def test_outside_tolerance_is_counted_at_the_users_tolerance(url, tmp_path):
    # three planted pixels, |a-b| = 2^-10, 2^-17, 2^-22 against 1.0 (relative
    # 9.8e-4, 7.6e-6, 2.4e-7): each tolerance below lets a known number of them in
    ref = np.ones((16, 24), dtype=np.float32)
    cand = ref.copy()
    cand[2, 3] += np.float32(2.0 ** -10)
    cand[9, 20] += np.float32(2.0 ** -17)
    cand[15, 0] += np.float32(2.0 ** -22)
    case = tmp_path / "reports" / "tol" / "20250101T000000Z"
    save_npy(case / "planted_c.npy", ref)
    save_npy(case / "planted_py.npy", cand)
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok

    def at(**tol):
        row = by_case(wh, **tol)["planted"]
        return (row["outside_tolerance"], row["status"], row["rtol"], row["atol"],
                [w["outside"] for w in row["worst"]])

    assert at() == (3, "diverged", 1e-12, 0.0, [True, True, True])  # ingest's count
    assert at(rtol=1e-6) == (2, "diverged", 1e-6, 0.0, [True, True, False])
    assert at(rtol=1e-4) == (1, "diverged", 1e-4, 0.0, [True, False, False])
    assert at(rtol=1e-2) == (0, "match", 1e-2, 0.0, [False, False, False])
    assert at(atol=1e-5) == (1, "diverged", 1e-12, 1e-5, [True, False, False])
    assert at(rtol=0.0, atol=2.0 ** -10) == (0, "match", 0.0, 2.0 ** -10,
                                             [False, False, False])
    assert list(wh.images(rtol=1e-6)["outside_tolerance"]) == [2]
    # the stored count is unchanged: a recount writes nothing
    assert at() == (3, "diverged", 1e-12, 0.0, [True, True, True])
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "images",
                           "--rtol", "1e-6"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "rtol=1e-06, atol=0" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "images",
                           "--rtol", "1e-4", "--format", "json"], capture_output=True,
                          text=True)
    (row,) = json.loads(proc.stdout)
    assert (row["outside_tolerance"], row["rtol"], row["atol"]) == (1, 1e-4, 0.0)
    # the timeline states the tolerance its statuses were counted at, in every format
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "images",
                           "--timeline", "--rtol", "1e-2", "--format", "csv"],
                          capture_output=True, text=True)
    header, line = proc.stdout.splitlines()
    cells = dict(zip(header.split(","), line.split(","), strict=True))
    assert (cells["status"], cells["rtol"], cells["atol"], cells["outside_tolerance"]) \
        == ("match", "0.01", "0.0", "0")
    # a tolerance that would pass anything, or means nothing, is refused in one line
    for bad in (["--atol", "inf"], ["--rtol", "-1"], ["--rtol", "nan"],
                ["--next-pixels", "2", "--rtol", "1e-3"]):
        proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "images", *bad],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stdout == "", (bad, proc.stdout)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    with pytest.raises(tracedb.TracedbError, match="finite numbers >= 0"):
        wh.images(atol=float("inf"))


def test_db_check_finds_broken_image_and_metric_rows(url, tmp_path):
    # two planted cases; each corruption below is one a user would want named
    for case, seed in (("alpha", 3), ("beta", 4)):
        d = tmp_path / "reports" / case / "20250101T000000Z"
        ref = rng_image((6, 8), seed=seed)
        cand = ref.copy()
        cand[1, 2] += 1
        save_npy(d / f"{case}_c.npy", ref)
        save_npy(d / f"{case}_py.npy", cand)
        write(d / f"{case}_metrics.json", json.dumps({"correlation": 0.99}))
    wh = tracedb.connect(url)
    assert wh.ingest([tmp_path / "reports"]).ok
    assert wh.check().problems.sum() == 0
    rows = {r["case"]: r for r in wh.image_rows()}
    a, b = rows["alpha"], rows["beta"]
    other = "f" * 64
    corrupt = [
        ("UPDATE image SET compression = 'none', content = :blob WHERE sha256 = :sha",
         {"blob": b"not the image", "sha": a["ref_sha256"]}),
        ("UPDATE image SET shape = '[3, 16]' WHERE sha256 = :sha", {"sha": a["cand_sha256"]}),
        ("UPDATE image_worst SET slow = 6 WHERE comparison_id = :id AND rank = 1",
         {"id": a["id"]}),
        ("UPDATE image_file SET image_sha256 = :other WHERE image_sha256 = :sha",
         {"other": other, "sha": b["cand_sha256"]}),
        ("UPDATE image_comparison SET metric_file_id = 999999 WHERE id = :id", {"id": b["id"]}),
        ("INSERT INTO metric (file_id, seq, name, pointer, kind) "
         "VALUES (999999, 0, 'x', '/x', 'null')", {}),
    ]
    if url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))  # foreign keys off
        with con:
            for sql, params in corrupt:
                con.execute(sql, params)
        con.close()
    else:
        with wh.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for sql, params in corrupt:
                conn.execute(text(sql), params)
    checks = wh.check().set_index("check_name")
    wh.close()
    found = {name: int(n) for name, n in checks.problems.items() if n}
    # SQLite's own foreign-key check sees the three rows that point at nothing, too
    engine_check = found.pop("foreign keys (PRAGMA foreign_key_check)", 0)
    assert engine_check == (3 if url.startswith("sqlite") else 0)
    assert found == {
        "images whose stored file does not match its hash, size or shape": 2,
        "worst pixels outside their image comparison's bounds": 1,
        "image files without their image": 1,
        "images no image file refers to": 1,
        "image comparisons whose image file or image is missing": 1,
        "image comparisons whose recorded metrics file is missing": 1,
        "metrics without their metrics file": 1,
    }
    detail = checks.detail["images whose stored file does not match its hash, size or shape"]
    assert f"{a['ref_sha256'][:12]}: content does not match its SHA-256" in detail
    assert f"{a['cand_sha256'][:12]}: shape [6, 8], recorded [3, 16]" in detail
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "db", "check"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"error: {7 + bool(engine_check)} check(s) found problems" in proc.stderr
    assert "worst pixels outside their image comparison's bounds" in proc.stdout
