"""Whole-image benchmark: tracedb comparing two float32 images (ingest of a bundle with
``bench_c.npy`` and ``bench_py.npy``: read, hash, compress, store, compare in float64,
worst pixels) against numpy alone loading the two files and computing the same
reductions (float64 correlation, mse, rmse, max |diff|, sums, ratio, the tolerance
count, the 50 worst pixels), side by side in one run.

    python -m benchmarks.images --size 4096 --backend both --repeat 2 --workdir bench-img

Each measurement runs in a child process of its own: the seconds are those of the
work (imports and interpreter start-up left out, and reported apart), the peak RSS
that of the child (``ru_maxrss``), and its growth over the RSS before the work.
Targets (issue 14): tracedb <= 3x numpy's time, peak memory <= 4x the two images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .run import USES_POSTGRESQL, fresh_warehouse, measure_rss, settle

K = 50


def make_images(folder: Path, n: int, seed: int) -> int:
    """Two n x n float32 images: a speckled background with Bragg-like peaks (C), and
    the same with float32-sized noise and a few planted bad pixels (PyTorch)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ref = rng.gamma(2.0, 0.5, (n, n)).astype(np.float32)
    peaks = rng.integers(0, n, (max(1, n * n // 4096), 2))
    ref[peaks[:, 0], peaks[:, 1]] += rng.uniform(50, 500, len(peaks)).astype(np.float32)
    cand = ref * (1 + rng.normal(0, 1e-6, (n, n))).astype(np.float32)
    cand[rng.integers(0, n, 10), rng.integers(0, n, 10)] += 100.0
    np.save(folder / "bench_c.npy", ref)
    np.save(folder / "bench_py.npy", cand)
    return ref.nbytes + cand.nbytes


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_numpy(folder: Path) -> dict:
    """numpy alone: load the two files, the same reductions in float64."""
    import numpy as np

    before = _rss_mb()
    t0 = time.perf_counter()
    a32 = np.load(folder / "bench_c.npy")
    b32 = np.load(folder / "bench_py.npy")
    a, b = a32.astype(np.float64), b32.astype(np.float64)
    ca, cb = a - a.mean(), b - b.mean()
    corr = float((ca * cb).sum() / np.sqrt((ca * ca).sum() * (cb * cb).sum()))
    del ca, cb
    d = np.abs(b - a)
    mse = float((d * d).mean())
    out = {"correlation": corr, "mse": mse, "rmse": mse ** 0.5, "max_abs_diff": float(d.max()),
           "ref_sum": float(a.sum()), "cand_sum": float(b.sum())}
    out["sum_ratio"] = out["cand_sum"] / out["ref_sum"]
    out["outside"] = int((d > 1e-12 * np.maximum(np.abs(a), np.abs(b))).sum())
    flat = d.ravel()
    top = np.argpartition(-flat, K)[:K]
    out["worst"] = [int(i) for i in top[np.lexsort((top, -flat[top]))]]
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before_mb": before, "peak_mb": _peak_mb(), **out}


def child_tracedb(url: str, folder: Path) -> dict:
    """tracedb: ingest the bundle (images stored, compared, worst pixels)."""
    import tracedb

    wh = tracedb.connect(url)
    before = _rss_mb()
    t0 = time.perf_counter()
    res = wh.ingest([folder])
    seconds = time.perf_counter() - t0
    peak = _peak_mb()
    (row,) = wh.image_rows(worst=K)
    keys = ("correlation", "mse", "rmse", "max_abs_diff", "ref_sum", "cand_sum", "sum_ratio")
    return {"seconds": seconds, "rss_before_mb": before, "peak_mb": peak,
            "ok": res.ok, "comparisons": res.stats["image_comparisons"],
            "outside": row["outside_tolerance"],
            "worst": [w["slow"] * row["fast"] + w["fast"] for w in row["worst"]],
            **{k: row[k] for k in keys}}


def child_compare(folder: Path) -> dict:
    """tracedb's arithmetic alone (imagemath: read + compare), no database."""
    from tracedb.ingest import imagemath

    before = _rss_mb()
    t0 = time.perf_counter()
    a = imagemath.read_npy((folder / "bench_c.npy").read_bytes())
    b = imagemath.read_npy((folder / "bench_py.npy").read_bytes())
    fig = imagemath.compare(a.array, b.array, 1e-12, 0.0, K)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before_mb": before, "peak_mb": _peak_mb(),
            "outside": fig.outside_tolerance}


def _child(args: list[str]) -> dict:
    proc = measure_rss([sys.executable, "-m", "benchmarks.images", "--child", *args])
    if proc["rc"] != 0:
        raise SystemExit(f"child {args[0]} failed: {proc['err'].strip()[-400:]}")
    out = json.loads(proc["out"].strip().splitlines()[-1])
    out["process_seconds"] = proc["seconds"]
    return out


def run(size: int, backends: list[str], repeat: int, work: Path, seed: int) -> dict:
    folder = work / "reports" / "bench-images" / "20250101T000000Z"
    nbytes = make_images(folder, size, seed)
    res: dict = {"size": size, "image_mb": nbytes / 2**20, "backends": {}}
    numpy_runs = []
    compare_runs = []
    for backend in backends:
        runs = []
        for i in range(repeat):  # alternating, the fastest of each counts
            settle()
            numpy_runs.append(_child(["numpy", str(folder)]))
            settle()
            compare_runs.append(_child(["compare", str(folder)]))
            url = fresh_warehouse(backend, work, f"bench_img_{os.getpid()}_{i}")
            settle()
            runs.append(_child(["tracedb", url, str(folder)]))
        res["backends"][backend] = runs
    res["numpy"] = numpy_runs
    res["compare"] = compare_runs
    return res


def _all(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.3f}" for r in runs)


def render(res: dict) -> str:
    mb = res["image_mb"]
    npy = min(res["numpy"], key=lambda r: r["seconds"])
    cmp_ = min(res["compare"], key=lambda r: r["seconds"])
    lines = [f"tracedb image benchmark: two {res['size']}x{res['size']} float32 images "
             f"({mb:.0f} MB together)",
             f"  numpy alone          {npy['seconds']:7.3f} s  peak RSS {npy['peak_mb']:5.0f} MB"
             f" (+{npy['peak_mb'] - npy['rss_before_mb']:.0f} MB over start)"
             f"  (all: {_all(res['numpy'])})",
             f"  imagemath (no DB)    {cmp_['seconds']:7.3f} s  peak RSS "
             f"{cmp_['peak_mb']:5.0f} MB (+{cmp_['peak_mb'] - cmp_['rss_before_mb']:.0f} MB)"
             f"  -> / numpy = {cmp_['seconds'] / npy['seconds']:.2f}x"]
    for backend, runs in res["backends"].items():
        best = min(runs, key=lambda r: r["seconds"])
        grow = best["peak_mb"] - best["rss_before_mb"]
        agree = all(abs(best[k] - npy[k]) <= 1e-9 * max(abs(npy[k]), 1e-300)
                    for k in ("correlation", "mse", "max_abs_diff", "ref_sum", "cand_sum"))
        lines.append(
            f"  [{backend}] ingest    {best['seconds']:7.3f} s  peak RSS {best['peak_mb']:5.0f} MB"
            f" (+{grow:.0f} MB over start)  -> / numpy = {best['seconds'] / npy['seconds']:.2f}x"
            f" (target <= 3x); peak / images = {best['peak_mb'] / mb:.2f}x, growth / images = "
            f"{grow / mb:.2f}x (target <= 4x)"
            f"  (all: {_all(runs)})")
        lines.append(f"      figures agree with numpy's: {agree}; outside tolerance "
                     f"{best['outside']} (numpy {npy['outside']}); worst pixels equal: "
                     f"{best['worst'] == npy['worst']}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        out = {"numpy": lambda: child_numpy(Path(rest[0])),
               "compare": lambda: child_compare(Path(rest[0])),
               "tracedb": lambda: child_tracedb(rest[0], Path(rest[1]))}[kind]()
        print(json.dumps(out))
        return
    ap = argparse.ArgumentParser(description="tracedb whole-image benchmark")
    ap.add_argument("--size", type=int, default=4096, help="image side in pixels")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", type=Path, help="keep the images and warehouses here")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    USES_POSTGRESQL[0] = "postgresql" in backends
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tracedb-img-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(render(run(args.size, backends, args.repeat, work, args.seed)))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
