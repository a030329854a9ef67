"""The report's plots (matplotlib, the ``plot`` extra): a divergence profile per pixel
and a status map of every tap for every pixel. Rendering only: the rows come from
the report's data."""

from __future__ import annotations

import math
from pathlib import Path

from .. import workers
from ..compare.results import Divergences, by_comparison
from .text import asciify, is_first, pixel_name, pixel_title, tap_label

#: Okabe and Ito's colour-blind-safe palette, one colour per status.
STATUS_COLORS = {"match": "#009E73", "print_precision": "#F0E442", "diverged": "#D55E00",
                 "accepted": "#0072B2", "missing_ref": "#56B4E9", "missing_cand": "#CC79A7"}
#: The first divergence's marker and the tolerance line (Okabe-Ito black and orange).
FIRST_COLOR, RTOL_COLOR = "#000000", "#E69F00"


def difference_size(r: dict) -> float | None:
    """How far apart a tap's two sides are, uncapped: |ref - cand| / min(|ref|, |cand|)
    (from the ratio ref/cand where one holds for the whole tap: ``max(|k|, 1/|k|) - 1``,
    so x1e3 is 999 and x1e10 is 1e10), else from the relative delta d =
    |a-b|/max(|a|,|b|) as d / (1 - d). 0 for an exact match; None where the sides
    differ in sign or one is 0 (no finite size)."""
    k = r["ratio"]
    if k is not None and k > 0 and math.isfinite(k):
        return max(k, 1 / k) - 1
    d = r["rel_delta"]
    if d is None or d <= 0:
        return 0.0
    return d / (1 - d) if d < 1 else None


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "tracedb", "font.size": 8})
    return plt


def _save(fig, path: Path) -> None:
    # fixed margins (no bbox_inches="tight", which draws every figure twice)
    fig.savefig(path, dpi=100, metadata={"Software": None})


def plot_profile(s: dict, rows: list[dict], path: Path, rtol: float, ascii_only: bool) -> None:
    plt = _plt()
    paired = [r for r in rows if r["status"] not in ("missing_ref", "missing_cand")]
    labels = [tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"]) for r in paired]
    if ascii_only:
        labels = [asciify(lab) for lab in labels]
    floor = -18.0
    sizes = [difference_size(r) for r in paired]
    finite = [math.log10(v) for v in sizes if v]
    beyond = max([1.0] + finite) + 1.5  # where a sign change or a zero is drawn
    ys = [beyond if v is None else floor if v <= 0 else max(math.log10(v), floor)
          for v in sizes]
    width = max(7.0, 0.16 * len(paired) + 3.2)
    longest = max([len(lab) for lab in labels] + [8])
    label_in = min(0.075 * longest, 3.5)  # room for rotated tap names, in inches
    height = 3.6 + label_in
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=0.9 / width, right=1 - 1.9 / width, top=1 - 0.45 / height,
                        bottom=(label_in + 0.55) / height)
    xs = list(range(len(paired)))
    ax.plot(xs, ys, color="#999999", linewidth=0.6, zorder=1)
    for status, color in STATUS_COLORS.items():
        pts = [(x, y) for x, y, r in zip(xs, ys, paired, strict=True) if r["status"] == status]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color=color,
                       label=status, zorder=2)
    if rtol > 0:
        ax.axhline(math.log10(rtol), color=RTOL_COLOR, linestyle="--", linewidth=0.8,
                   label=f"rtol = {rtol:g}")
    if None in sizes:
        ax.axhline(beyond, color="#999999", linestyle=":", linewidth=0.6,
                   label="sign differs or one side is 0")
    top = max([1.0] + [y for y in ys]) + 2.5
    for x, r in zip(xs, paired, strict=True):
        if is_first(r, s):
            ax.axvline(x, color=FIRST_COLOR, linewidth=1.0, zorder=0)
            ax.scatter([x], [ys[x]], s=70, facecolors="none", edgecolors=FIRST_COLOR,
                       linewidths=1.5, zorder=3, label="first divergence")
            ax.annotate(f"first divergence: {labels[x]}", (x, top - 0.4),
                        xytext=(4, -2), textcoords="offset points", color=FIRST_COLOR,
                        va="top", ha="left" if x < 0.6 * len(xs) else "right")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=90, fontsize=6 if len(xs) > 60 else 7)
    ax.set_ylabel("log10 |ref - cand| / min(|ref|, |cand|)\n(x1e3 at 3, x1e10 at 10; "
                  "exact match at -18)")
    ax.set_xlabel("paired taps in reference order")
    ax.set_ylim(floor - 1, top)
    ax.set_xlim(-1, max(len(xs), 1))
    ax.set_title(f"pixel {pixel_title(s['pixel'])}: run {s['ref_run']} (ref) vs "
                 f"run {s['cand_run']} (cand)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    ax.grid(axis="y", linewidth=0.3)
    _save(fig, path)
    plt.close(fig)


#: Profile plots drawn in worker processes once there are this many (each is
#: mostly text layout: one rotated label per tap, so a plot takes a few tenths of
#: a second and a 100-pixel report most of a minute in one process).
PARALLEL_PLOTS = 8


def _profile_job(job: tuple) -> None:
    plot_profile(*job)


def draw_profiles(jobs: list[tuple]) -> None:
    """plot_profile for each job (its arguments), in worker processes when there are
    many (see workers.count: TRACEDB_WORKERS, else one per CPU, at most four; 0 keeps
    them in this process). The files are the same either way."""
    workers.run_all(_profile_job, jobs, workers.count(), PARALLEL_PLOTS)


def plot_status_map(summaries: list[dict], diff: list[dict], path: Path,
                    ascii_only: bool) -> None:
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    order: dict = {}
    for r in diff:
        key = (r["channel"], r["tap"], r["loop_key"], r["occurrence"])
        seq = r["ref_seq"]
        pos = (0, seq) if seq is not None else (1, r["cand_seq"] or 0)
        if key not in order or pos < order[key]:
            order[key] = pos
    keys = sorted(order, key=lambda k: (order[k], k[1]))
    names = list(STATUS_COLORS)
    grid = []
    ylabels = []
    by_cmp = by_comparison(diff)
    for s in summaries:
        status = {(r["channel"], r["tap"], r["loop_key"], r["occurrence"]): r["status"]
                  for r in by_cmp.get(s["comparison_id"], [])}
        grid.append([names.index(status[k]) if k in status else math.nan for k in keys])
        ylabels.append(pixel_title(s["pixel"]))
    xl = [tap_label(k[1], k[2], k[3], k[0]) for k in keys]
    if ascii_only:
        xl = [asciify(x) for x in xl]
    width = max(7.0, 0.16 * len(keys) + 3.2)
    label_in = min(0.075 * max([len(x) for x in xl] + [8]), 3.5)
    height = 1.0 + label_in + 0.3 * len(grid)
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=1.1 / width, right=1 - 1.7 / width, top=1 - 0.4 / height,
                        bottom=(label_in + 0.2) / height)
    ax.imshow(grid, aspect="auto", interpolation="nearest",
              cmap=ListedColormap(list(STATUS_COLORS.values())), vmin=-0.5,
              vmax=len(names) - 0.5)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(xl, rotation=90, fontsize=6 if len(keys) > 60 else 7)
    ax.set_yticks(range(len(ylabels)))
    ax.set_yticklabels(ylabels)
    ax.set_title("status of every tap (columns, reference order) for every pixel (rows)")
    ax.legend(handles=[Patch(color=c, label=n) for n, c in STATUS_COLORS.items()]
              + [Patch(facecolor="white", edgecolor="#999999", label="not in this pair")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    _save(fig, path)
    plt.close(fig)




def plot_image_map(record: dict, grid, block: int, traced: list[tuple[int, int]],
                   path: Path, floor: float) -> None:
    """An image comparison's divergence map: log10 relative difference per pixel
    (cividis, a colour-blind-safe map, from the smallest difference drawn, or
    ``floor`` for exact agreement, to 0; ``block`` > 1: each cell the worst of a
    block x block square), traced pixels ringed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    fig.subplots_adjust(left=0.1, right=0.9, top=0.9, bottom=0.1)
    above = grid[grid > floor]
    low = min(math.floor(float(above.min())), -1) if above.size else floor
    im = ax.imshow(grid, cmap="cividis", vmin=low, vmax=0.0, interpolation="nearest",
                   origin="upper")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("log10 |PyTorch - C| / max(|C|, |PyTorch|)")
    slow, fast = record["slow"], record["fast"]
    inside = [(s, f) for s, f in traced if s < slow and f < fast]
    if inside:
        ax.scatter([f / block for _s, f in inside], [s / block for s, _f in inside], s=40,
                   facecolors="none", edgecolors="#ff7f0e", linewidths=1.2,
                   label=f"traced pixel ({len(inside)})")
        ax.legend(loc="upper right", fontsize=7)
    ax.set_xlabel("fast" + (f" (/{block})" if block > 1 else ""))
    ax.set_ylabel("slow" + (f" (/{block})" if block > 1 else ""))
    ax.set_title(asciify(f"{record['case']} @ {record['stamp'] or 'no stamp'}: "
                         f"{record['status']}"))
    _save(fig, path)
    plt.close(fig)


def draw_plots(outdir: Path, found: Divergences, diff: list[dict], ascii_only: bool
               ) -> dict[str, str] | None:
    """Every plot of a report into ``outdir/plots``: {key: relative path}, profiles
    first, then ``status_map``; None when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    (outdir / "plots").mkdir(exist_ok=True)
    by_cmp = by_comparison(diff)
    files: dict[str, str] = {}
    jobs = []
    for s in found.rows:
        if s["compared"] == 0:
            continue
        key = pixel_name(s["pixel"], s["ref_run"], s["cand_run"])
        files[key] = f"plots/profile_{key}.png"
        jobs.append((s, by_cmp.get(s["comparison_id"], []), outdir / files[key], found.rtol,
                     ascii_only))
    draw_profiles(jobs)
    plot_status_map(found.rows, diff, outdir / "plots" / "status_map.png", ascii_only)
    files["status_map"] = "plots/status_map.png"
    return files
