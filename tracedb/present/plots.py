"""The report's plots (matplotlib, the ``plot`` extra): a divergence profile per pixel
and a status map of every tap for every pixel. Rendering only: the rows come from
the report's data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

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


#: Matplotlib settings of every plot, applied around each drawing (never globally).
STYLE = {"font.size": 8}
#: PNG compression: zlib level 1 writes these mostly white images in half the time of
#: the default level 6, 4% larger.
PNG_COMPRESS_LEVEL = 1
#: Where an exact match is drawn on the profile's log10 axis.
FLOOR = -18.0
#: The statuses a profile draws (a tap on one side only has no size to draw).
PAIRED_STATUSES = ("match", "print_precision", "diverged", "accepted")
#: Pixels per page of the status map: a page keeps its rows tall enough to read and
#: the tap names at its foot near every row.
STATUS_MAP_ROWS = 50


def _figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (no pyplot: no global figure registry
    to close, no backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _write_png(fig, path: Path) -> None:
    """The canvas as drawn, as an RGB PNG (no metadata: the same bytes every run),
    encoded in memory and written at once (Pillow writes a file in many small
    pieces)."""
    import io

    from PIL import Image

    width, height = fig.canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), fig.canvas.buffer_rgba(), "raw",
                             "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=PNG_COMPRESS_LEVEL)
    path.write_bytes(buf.getvalue())


def _save(fig, path: Path) -> None:
    fig.canvas.draw()
    _write_png(fig, path)


def _tick_size(n: int) -> int:
    return 6 if n > 60 else 7


def _label_room(labels) -> float:
    """Inches below an axis for its rotated tap names (a character of DejaVu Sans is
    at most about 0.0085 inch wide per point of size)."""
    return min(0.0085 * _tick_size(len(labels)) * max([len(lab) for lab in labels] + [8]),
               3.5)


@dataclass
class Profile:
    """One pixel's divergence profile: its paired taps in reference order with the
    size of each difference (see :func:`difference_size`)."""

    summary: dict
    labels: tuple[str, ...]
    sizes: list[float | None]
    statuses: list[str]
    first: int | None  # index of the first divergence among the paired taps
    path: Path


def profile_of(s: dict, rows: list[dict], path: Path, ascii_only: bool) -> Profile:
    """The profile of summary ``s`` from its tap_diff ``rows``, to be drawn to ``path``."""
    paired = [r for r in rows if r["status"] in PAIRED_STATUSES]
    labels = [tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"]) for r in paired]
    if ascii_only:
        labels = [asciify(lab) for lab in labels]
    first = next((i for i, r in enumerate(paired) if is_first(r, s)), None)
    return Profile(s, tuple(labels), [difference_size(r) for r in paired],
                   [r["status"] for r in paired], first, path)


@dataclass
class _Axis:
    """The y axis every profile of a report shares, so that pixels compare at a
    glance and one drawing of each tap axis serves every pixel that has it."""

    beyond: float  # where a sign change or a zero is drawn
    top: float
    sign_line: bool  # some profile has a tap drawn at ``beyond``

    @classmethod
    def of(cls, profiles: list[Profile]) -> _Axis:
        sizes = [v for p in profiles for v in p.sizes]
        beyond = max([1.0] + [math.log10(v) for v in sizes if v]) + 1.5
        sign_line = None in sizes
        return cls(beyond, (beyond if sign_line else beyond - 1.5) + 2.5, sign_line)

    def y(self, size: float | None) -> float:
        return self.beyond if size is None else FLOOR if size <= 0 else \
            max(math.log10(size), FLOOR)


class _ProfileCanvas:
    """A profile figure for one tap axis: everything the pixels share (tap names,
    axes, legend, tolerance line) drawn once, each pixel's points drawn over it.

    Rotated tap names are nearly all of a profile's drawing time, so a report draws
    them once per distinct tap axis rather than once per pixel."""

    def __init__(self, labels: tuple[str, ...], axis: _Axis, rtol: float):
        from matplotlib.lines import Line2D

        n = len(labels)
        width = max(7.0, 0.16 * n + 3.2)
        label_in = _label_room(labels)
        height = 3.6 + label_in
        self.fig = fig = _figure(width, height)
        self.ax = ax = fig.add_subplot()
        fig.subplots_adjust(left=0.9 / width, right=1 - 1.9 / width, top=1 - 0.45 / height,
                            bottom=(label_in + 0.55) / height)
        self.n, self.axis = n, axis
        # each pixel's artists: drawn only by draw() (animated), first ones lowest
        self.vline = ax.axvline(0, color=FIRST_COLOR, linewidth=1.0, animated=True)
        (self.line,) = ax.plot([], [], color="#999999", linewidth=0.6, animated=True)
        self.dots = ax.scatter([], [], s=14, animated=True)
        self.ring = ax.scatter([], [], s=70, facecolors="none", edgecolors=FIRST_COLOR,
                               linewidths=1.5, animated=True)
        self.note = ax.annotate("", (0, axis.top - 0.4), xytext=(4, -2),
                                textcoords="offset points", color=FIRST_COLOR, va="top",
                                animated=True)
        ax.title.set_animated(True)
        handles = [Line2D([], [], linestyle="", marker="o", markersize=4.5, color=c,
                          label=status)
                   for status, c in STATUS_COLORS.items() if status in PAIRED_STATUSES]
        if rtol > 0:
            handles.append(ax.axhline(math.log10(rtol), color=RTOL_COLOR, linestyle="--",
                                      linewidth=0.8, label=f"rtol = {rtol:g}"))
        if axis.sign_line:
            handles.append(ax.axhline(axis.beyond, color="#999999", linestyle=":",
                                      linewidth=0.6, label="sign differs or one side is 0"))
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=8,
                              markerfacecolor="none", markeredgecolor=FIRST_COLOR,
                              markeredgewidth=1.5, label="first divergence"))
        ax.set_xticks(range(n))
        ax.set_xticklabels(labels, rotation=90, fontsize=_tick_size(n))
        ax.set_ylabel("log10 |ref - cand| / min(|ref|, |cand|)\n(x1e3 at 3, x1e10 at 10; "
                      "exact match at -18)")
        ax.set_xlabel("paired taps in reference order")
        ax.set_ylim(FLOOR - 1, axis.top)
        ax.set_xlim(-1, max(n, 1))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0),
                  fontsize=7, frameon=False)
        ax.grid(axis="y", linewidth=0.3)
        fig.canvas.draw()
        self.background = fig.canvas.copy_from_bbox(fig.bbox)

    def draw(self, p: Profile) -> None:
        """``p`` over the shared drawing, into its file."""
        ax = self.ax
        self.fig.canvas.restore_region(self.background)
        xs = list(range(self.n))
        ys = [self.axis.y(v) for v in p.sizes]
        artists = [self.line, self.dots]
        self.line.set_data(xs, ys)
        self.dots.set_offsets(list(zip(xs, ys, strict=True)) or [(math.nan, math.nan)])
        self.dots.set_facecolor([STATUS_COLORS[st] for st in p.statuses] or ["none"])
        if p.first is not None:
            x = p.first
            self.vline.set_xdata([x, x])
            self.ring.set_offsets([(x, ys[x])])
            self.note.set_text(f"first divergence: {p.labels[x]}")
            self.note.xy = (x, self.axis.top - 0.4)
            self.note.set_horizontalalignment("left" if x < 0.6 * self.n else "right")
            artists = [self.vline, *artists, self.ring, self.note]
        s = p.summary
        ax.set_title(f"pixel {pixel_title(s['pixel'])}: run {s['ref_run']} (ref) vs "
                     f"run {s['cand_run']} (cand)")
        for a in [*artists, ax.title]:
            ax.draw_artist(a)
        _write_png(self.fig, p.path)


def draw_profiles(profiles: list[Profile], rtol: float) -> None:
    """Every profile into its file, on one y axis; one canvas per distinct tap axis."""
    import matplotlib

    axis = _Axis.of(profiles)
    groups: dict[tuple[str, ...], list[Profile]] = {}
    for p in profiles:
        groups.setdefault(p.labels, []).append(p)
    with matplotlib.rc_context(STYLE):
        for labels, members in groups.items():
            canvas = _ProfileCanvas(labels, axis, rtol)
            for p in members:
                canvas.draw(p)


#: The status map's legend entry for an empty cell.
NOT_IN_PAIR = "not in this pair"


@dataclass
class StatusPage:
    """One page of the status map: a row per pixel, a column per tap of the report."""

    pixels: list[str]  # row titles
    grid: list[list[float]]  # index into STATUS_COLORS per cell, NaN: tap not in the pair
    start: int  # 1-based number of the page's first pixel
    total: int  # pixels in the whole map

    def counts(self) -> dict[str, int]:
        """Cells of each status on this page (every status, 0 included), then
        ``not in this pair``: what the legend says beside each colour."""
        names = list(STATUS_COLORS)
        out = {n: 0 for n in names} | {NOT_IN_PAIR: 0}
        for row in self.grid:
            for v in row:
                out[NOT_IN_PAIR if math.isnan(v) else names[int(v)]] += 1
        return out

    def caption(self) -> str:
        if self.start == 1 and len(self.pixels) == self.total:
            return "status of every tap for every pixel"
        return (f"status of every tap, pixels {self.start}-{self.start + len(self.pixels) - 1}"
                f" of {self.total}")


def status_pages(summaries: list[dict], diff: list[dict], ascii_only: bool,
                 rows_per_page: int = STATUS_MAP_ROWS) -> tuple[list[str], list[StatusPage]]:
    """The status map's tap names (columns: every tap of the report, in reference
    order) and its pages of at most ``rows_per_page`` pixels."""
    order: dict = {}
    for r in diff:
        key = (r["channel"], r["tap"], r["loop_key"], r["occurrence"])
        seq = r["ref_seq"]
        pos = (0, seq) if seq is not None else (1, r["cand_seq"] or 0)
        if key not in order or pos < order[key]:
            order[key] = pos
    keys = sorted(order, key=lambda k: (order[k], k[1]))
    names = list(STATUS_COLORS)
    by_cmp = by_comparison(diff)
    grid, titles = [], []
    for s in summaries:
        status = {(r["channel"], r["tap"], r["loop_key"], r["occurrence"]): r["status"]
                  for r in by_cmp.get(s["comparison_id"], [])}
        grid.append([names.index(status[k]) if k in status else math.nan for k in keys])
        titles.append(pixel_title(s["pixel"]))
    taps = [tap_label(k[1], k[2], k[3], k[0]) for k in keys]
    if ascii_only:
        taps = [asciify(t) for t in taps]
    pages = [StatusPage(titles[i:i + rows_per_page], grid[i:i + rows_per_page], i + 1,
                        len(titles)) for i in range(0, len(titles), rows_per_page)]
    return taps, pages


def plot_status_page(taps: list[str], page: StatusPage, path: Path) -> None:
    """One page of the status map: a heatmap with a legend entry, and its count of
    cells, for every colour."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    counts = page.counts()
    width = max(7.0, 0.16 * len(taps) + 3.2)
    label_in = _label_room(taps)
    height = 1.0 + label_in + 0.3 * len(page.pixels)
    fig = _figure(width, height)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=1.1 / width, right=1 - 1.9 / width, top=1 - 0.4 / height,
                        bottom=(label_in + 0.2) / height)
    # a mesh of cells (drawn as quads; an image would be resampled pixel by pixel),
    # cell (row i, tap j) centred on (j, i), first pixel at the top
    ax.pcolormesh([x - 0.5 for x in range(len(taps) + 1)],
                  [y - 0.5 for y in range(len(page.pixels) + 1)], page.grid,
                  cmap=ListedColormap(list(STATUS_COLORS.values())), vmin=-0.5,
                  vmax=len(STATUS_COLORS) - 0.5)
    ax.set_ylim(len(page.pixels) - 0.5, -0.5)
    ax.set_xticks(range(len(taps)))
    ax.set_xticklabels(taps, rotation=90, fontsize=_tick_size(len(taps)))
    ax.set_yticks(range(len(page.pixels)))
    ax.set_yticklabels(page.pixels)
    ax.set_title(f"{page.caption()}: taps in reference order (columns), pixels (rows)")
    ax.legend(handles=[Patch(color=c, label=f"{n} ({counts[n]})")
                       for n, c in STATUS_COLORS.items()]
              + [Patch(facecolor="white", edgecolor="#999999",
                       label=f"{NOT_IN_PAIR} ({counts[NOT_IN_PAIR]})")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7,
              title="cells", title_fontsize=7)
    _save(fig, path)


def plot_image_map(record: dict, grid, block: int, traced: list[tuple[int, int]],
                   path: Path, floor: float) -> None:
    """An image comparison's divergence map: log10 relative difference per pixel
    (cividis, a colour-blind-safe map, from the smallest difference drawn, or
    ``floor`` for exact agreement, to 0; ``block`` > 1: each cell the worst of a
    block x block square), traced pixels ringed."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        _image_map(record, grid, block, traced, path, floor)


def _image_map(record: dict, grid, block: int, traced: list[tuple[int, int]], path: Path,
               floor: float) -> None:
    fig = _figure(6.4, 5.4)
    ax = fig.add_subplot()
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


@dataclass
class PlotFiles:
    """The plots of a report, as paths relative to its directory."""

    profiles: dict[str, str] = field(default_factory=dict)  # pixel_name -> profile
    status_map: list[tuple[str, str]] = field(default_factory=list)  # (caption, page)

    def paths(self) -> list[str]:
        return [*self.profiles.values(), *(rel for _caption, rel in self.status_map)]


def draw_plots(outdir: Path, found: Divergences, diff: list[dict], ascii_only: bool
               ) -> PlotFiles | None:
    """Every plot of a report into ``outdir/plots``: a profile per compared pair, then
    the status map's pages (``status_map.png``, or ``status_map_1.png``,
    ``status_map_2.png``, ... beyond :data:`STATUS_MAP_ROWS` pixels); None when
    matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    (outdir / "plots").mkdir(exist_ok=True)
    by_cmp = by_comparison(diff)
    files = PlotFiles()
    profiles = []
    for s in found.rows:
        if s["compared"] == 0:
            continue
        key = pixel_name(s["pixel"], s["ref_run"], s["cand_run"])
        files.profiles[key] = f"plots/profile_{key}.png"
        profiles.append(profile_of(s, by_cmp.get(s["comparison_id"], []),
                                   outdir / files.profiles[key], ascii_only))
    draw_profiles(profiles, found.rtol)
    taps, pages = status_pages(found.rows, diff, ascii_only)
    with matplotlib.rc_context(STYLE):
        for n, page in enumerate(pages, start=1):
            rel = "plots/status_map.png" if len(pages) == 1 else f"plots/status_map_{n}.png"
            plot_status_page(taps, page, outdir / rel)
            files.status_map.append((page.caption(), rel))
    return files
