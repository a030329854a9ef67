"""Evidence reports rendered from query results (never from trace files).

``write_report`` asks the warehouse for a comparison set and the named queries
``divergence``, ``tap_diff``, ``divergence_rollup``, ``factor_gap``,
``provenance`` and ``load_commands``, and renders what they return:

    first_divergence.md   per pixel: first diverged tap, what follows, next step
    summary.md            roll-up across pixels and what explains the final gap
    diff_pixel_S_F.txt    every paired tap side by side (fixed width)
    commands.txt          the tracedb commands that produced the report
    env/trace_env.json    provenance: versions, tolerance, every source file
    plots/*.png           divergence profile per pixel, status map

Output is ASCII unless ``unicode`` is set, and byte-identical between runs on
the same warehouse except the one line marked as the generation timestamp.
"""

from __future__ import annotations

import json
import math
import platform
import re
import shlex
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import TracedbError
from .load import utcnow

SIDE = {"c": "C", "py": "PyTorch"}
REPORT_FILES = ("first_divergence.md", "summary.md", "commands.txt")
TIMESTAMP_MARK = "generation timestamp, the only line that differs between identical runs"

_ASCII = {"\u2190": "<-", "\u2192": "->", "\u2194": "<->", "\u00c5": "A", "\u212b": "A",
          "\u00b0": "deg", "\u00b2": "^2", "\u00b3": "^3", "\u00d7": "x", "\u00b7": "*",
          "\u03bb": "lambda", "\u03b8": "theta", "\u03c6": "phi", "\u03c9": "omega",
          "\u00b5": "u", "\u03bc": "u", "\u2013": "-", "\u2014": "-", "\u2212": "-",
          "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...",
          "\u2264": "<=", "\u2265": ">=", "\u2248": "~", "\u00b1": "+/-"}


def asciify(text: str) -> str:
    """ASCII for reports: known symbols spelled out, the rest escaped as \\uXXXX."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch in _ASCII:
            out.append(_ASCII[ch])
        else:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(base if base else f"\\u{ord(ch):04x}")
    return "".join(out)


def _none(v):
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def g(v, digits: int = 6) -> str:
    v = _none(v)
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def md_cell(text) -> str:
    text = "" if _none(text) is None else str(text)
    return text.replace("|", "\\|").replace("\n", " ")


def code(text) -> str:
    text = "" if _none(text) is None else str(text)
    return f"`{text}`" if "`" not in text else f"``{text}``"


def clip(text, n: int = 60) -> str:
    text = "" if _none(text) is None else str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def pixel_name(pixel, ref_run: int, cand_run: int) -> str:
    """File-name stem from integers only."""
    if pixel is None:
        return f"runs_{int(ref_run)}_{int(cand_run)}"
    return f"pixel_{int(pixel[0])}_{int(pixel[1])}"


def pixel_title(pixel) -> str:
    return "unknown pixel" if pixel is None else f"({int(pixel[0])}, {int(pixel[1])})"


def rlabel(r: dict) -> str:
    """Label of a tap_diff / rollup row."""
    return tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"])


def ref_desc(r: dict) -> str:
    return _run_desc(r["ref_side"], r["ref_run"], r["ref_stamp"], r["ref_path"])


def cand_desc(r: dict) -> str:
    return _run_desc(r["cand_side"], r["cand_run"], r["cand_stamp"], r["cand_path"])


def tap_label(tap, loop_key=None, occurrence=None, channel=None) -> str:
    label = str(tap)
    if _none(channel):
        label = f"{channel}:{label}"
    if _none(loop_key):
        label += f"[{loop_key}]"
    if _none(occurrence) and int(occurrence) > 1:
        label += f"#{int(occurrence)}"
    return label


@dataclass
class Report:
    outdir: Path
    files: list[Path] = field(default_factory=list)
    set_id: int = 0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- next step


def next_step(first: dict, rows: list[dict], rollup: dict | None, pixels_total: int) -> str:
    """A recommendation derived from the data of one pixel's first divergence."""
    tap = first["first_tap"]
    label = tap_label(tap, first["first_loop_key"], first["first_occurrence"],
                      first["first_channel"])
    ratio = _none(first["first_ratio"])
    if _none(first["first_unit_hint"]):
        return (f"`{label}` differs by a clean unit factor (ratio ref/cand {g(ratio)}): "
                f"{first['first_unit_hint']}. Check the unit conversion where `{tap}` is "
                "computed or printed; later taps with the same factor may only inherit it.")
    if rollup and pixels_total > 1 and rollup["pixels_diverged"] == pixels_total \
            and rollup["distinct_ref_values"] == 1 and rollup["distinct_cand_values"] == 1:
        return (f"`{label}` has one value for every pixel on each side "
                f"({clip(first['first_ref_value'], 40)} vs {clip(first['first_cand_value'], 40)})"
                ": it is a constant or configuration input, so check its definition on both "
                "sides (default value, physical constant, command-line parsing) rather than "
                "the per-pixel computation.")
    before = [r for r in rows if _none(r["ref_seq"]) is not None
              and r["ref_seq"] < first_seq(rows, first) and r["status"] == "match"]
    if before:
        prev = before[-1]
        return (f"`{tap_label(prev['tap'], prev['loop_key'], prev['occurrence'])}` (line "
                f"{g(prev['ref_line'])}/{g(prev['cand_line'])}) still matches and `{label}` "
                f"(line {g(first['first_ref_line'])}/{g(first['first_cand_line'])}) diverges: "
                f"the difference is introduced between them. Inspect the code that computes "
                f"`{tap}` from its inputs.")
    return (f"`{label}` is the first tap traced and already differs: compare the inputs and "
            "configuration both programs were run with.")


def first_seq(rows: list[dict], first: dict) -> float:
    for r in rows:
        if r["tap"] == first["first_tap"] and r["loop_key"] == first["first_loop_key"] \
                and r["channel"] == first["first_channel"] \
                and _none(r["occurrence"]) == _none(first["first_occurrence"]):
            return r["ref_seq"]
    return math.inf


# --------------------------------------------------------------------------- rendering


def _run_desc(side, run, stamp, path) -> str:
    return f"run {int(run)}, {SIDE.get(side, side or '?')} @ {stamp or 'no stamp'}, {path}"


def _header(title: str, summaries, generated: str | None) -> list[str]:
    a = summaries.attrs
    lines = [f"# {title}", ""]
    if generated:
        lines += [f"Generated: {generated} ({TIMESTAMP_MARK})", ""]
    mode = ("strict: print_precision counts as diverged" if a["strict"]
            else "default: differences within print precision are reported apart")
    lines += [
        f"- Tolerance: |a-b| <= atol + rtol*max(|a|,|b|) with rtol = {a['rtol']:g}, "
        f"atol = {a['atol']:g}; mode {mode}.",
        f"- Pairing: {summaries['pairing'].iloc[0]}.",
        "",
        "| pixel | reference | candidate |",
        "|---|---|---|",
    ]
    for r in summaries.to_dict("records"):
        lines.append(f"| {pixel_title(r['pixel'])} | {md_cell(ref_desc(r))} | "
                     f"{md_cell(cand_desc(r))} |")
    lines.append("")
    return lines


def _tap_table(rows: list[dict], with_reason: bool = False) -> list[str]:
    head = "| tap | lines (ref/cand) | ref value | cand value | rel delta | ratio | unit hint |"
    sep = "|---|---|---|---|---|---|---|"
    if with_reason:
        head, sep = head + " reason |", sep + "---|"
    out = [head, sep]
    for r in rows:
        cells = [code(tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"])),
                 f"{g(r['ref_line'])}/{g(r['cand_line'])}",
                 code(clip(r["ref_value"])) if _none(r["ref_value"]) is not None else "-",
                 code(clip(r["cand_value"])) if _none(r["cand_value"]) is not None else "-",
                 g(r["rel_delta"], 3), g(r["ratio"]), md_cell(r["unit_hint"] or "")]
        if with_reason:
            cells.append(md_cell(r["accepted_reason"]))
        out.append("| " + " | ".join(md_cell(c) if i > 1 else c for i, c in enumerate(cells))
                   + " |")
    return out


def group_rows(diff) -> dict[int, list[dict]]:
    """tap_diff rows by comparison id, each list in the query's order."""
    out: dict[int, list[dict]] = {}
    for r in diff.to_dict("records"):
        out.setdefault(r["comparison_id"], []).append(r)
    return out


def render_first_divergence(summaries, diff, rollup, plots: dict, generated: str) -> str:
    by_cmp = group_rows(diff)
    roll = {(r["channel"], r["tap"], r["loop_key"], r["occurrence"]): r
            for r in rollup.to_dict("records")}
    total = len(summaries)
    lines = _header("First divergence", summaries, generated)
    for s in summaries.to_dict("records"):
        rows = by_cmp.get(s["comparison_id"], [])
        rside, cside = SIDE.get(s["ref_side"], "ref"), SIDE.get(s["cand_side"], "cand")
        title = pixel_title(s["pixel"])
        if s["status"] == "nothing compared":
            lines += [f"## Pixel {title}: nothing compared",
                      "", f"No tap of run {s['ref_run']} pairs with a tap of run "
                      f"{s['cand_run']} ({s['missing_cand']} taps only in the reference, "
                      f"{s['missing_ref']} only in the candidate). This is not a match.", ""]
        elif _none(s["first_tap"]) is None:
            lines += [f"## Pixel {title}: no divergence",
                      "", f"All {s['compared']} paired taps agree within tolerance "
                      f"({s['print_precision']} only within print precision).", ""]
        else:
            label = tap_label(s["first_tap"], s["first_loop_key"], s["first_occurrence"],
                              s["first_channel"])
            lines += [
                f"## Pixel {title}: first divergence `{label}` at line "
                f"{g(s['first_ref_line'])} ({rside}) / line {g(s['first_cand_line'])} ({cside})",
                "",
                f"| | reference ({rside}) | candidate ({cside}) |",
                "|---|---|---|",
                f"| run | {s['ref_run']} @ {s['ref_stamp'] or '-'} | "
                f"{s['cand_run']} @ {s['cand_stamp'] or '-'} |",
                f"| line | {g(s['first_ref_line'])} | {g(s['first_cand_line'])} |",
                f"| value as written | {code(md_cell(s['first_ref_value']))} | "
                f"{code(md_cell(s['first_cand_value']))} |",
                "",
                f"- absolute delta: {g(s['first_abs_delta'])}; relative delta: "
                f"{g(s['first_rel_delta'])}; ratio ref/cand: {g(s['first_ratio'])}",
                f"- unit of the tap (from its name): {s['first_unit'] or 'unknown'}",
                f"- unit hint: {s['first_unit_hint'] or 'none (no clean unit factor)'}",
                f"- counts: {s['compared']} compared, {s['matched']} match, "
                f"{s['diverged']} diverged, {s['print_precision']} within print precision, "
                f"{s['accepted']} accepted, {s['missing_ref']} missing in the reference, "
                f"{s['missing_cand']} missing in the candidate",
                "",
                "**Next step:** " + next_step(
                    s, rows, roll.get((s["first_channel"], s["first_tap"],
                                       s["first_loop_key"], s["first_occurrence"])), total),
                "",
            ]
        key = pixel_name(s["pixel"], s["ref_run"], s["cand_run"])
        if key in plots:
            lines += [f"![divergence profile of pixel {title}]({plots[key]})", ""]
        seq = first_seq(rows, s) if _none(s["first_tap"]) is not None else math.inf
        after = [r for r in rows if r["status"] == "diverged" and _none(r["ref_seq"]) is not None
                 and r["ref_seq"] > seq]
        sections = [
            ("Diverged after the first", after, False),
            ("Within print precision only", [r for r in rows
                                             if r["status"] == "print_precision"], False),
            ("Missing on one side", [r for r in rows
                                     if r["status"] in ("missing_ref", "missing_cand")], False),
            ("Accepted divergences", [r for r in rows if r["status"] == "accepted"], True),
        ]
        for name, sel, reason in sections:
            lines.append(f"### {name} ({len(sel)})")
            lines.append("")
            if sel:
                if name.startswith("Missing"):
                    lines += ["| tap | present in | line | value |", "|---|---|---|---|"]
                    for r in sel:
                        where = (f"{rside} only" if r["status"] == "missing_cand"
                                 else f"{cside} only")
                        line = r["ref_line"] if r["status"] == "missing_cand" else r["cand_line"]
                        val = r["ref_value"] if r["status"] == "missing_cand" else r["cand_value"]
                        lines.append(f"| {code(rlabel(r))} "
                                     f"| {where} | {g(line)} | {code(md_cell(clip(val)))} |")
                else:
                    lines += _tap_table(sel, with_reason=reason)
            else:
                lines.append("None.")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_summary(summaries, diff, rollup, gap, model: str, plots: dict,
                   generated: str | None) -> str:
    total = len(summaries)
    lines = _header("Summary", summaries, None)
    pix_of = {r["comparison_id"]: pixel_title(r["pixel"]) for r in summaries.to_dict("records")}
    status_counts = {k: int(summaries[k].sum()) for k in
                     ("compared", "diverged", "print_precision", "accepted", "missing_ref",
                      "missing_cand")}
    nothing = [pix_of[c] for c, s in zip(summaries["comparison_id"], summaries["status"],
                                         strict=True) if s == "nothing compared"]
    lines += [f"## Diverged taps across {total} pixel(s)", "",
              f"Totals: {status_counts['compared']} taps compared, "
              f"{status_counts['diverged']} diverged, {status_counts['print_precision']} "
              f"within print precision, {status_counts['accepted']} accepted, "
              f"{status_counts['missing_ref'] + status_counts['missing_cand']} missing on "
              "one side.", ""]
    if nothing:
        lines += [f"Nothing compared for: {', '.join(nothing)}.", ""]
    roll = rollup.to_dict("records")
    common = [r for r in roll if r["pixels_diverged"] == total]
    specific = [r for r in roll if r["pixels_diverged"] < total]
    if common:
        e = common[0]
        lines += [f"Earliest common divergence: "
                  f"{code(tap_label(e['tap'], e['loop_key'], e['occurrence'], e['channel']))} "
                  f"(reference line {g(e['first_ref_line'])}).", ""]
    else:
        lines += ["No tap diverges in every pixel.", ""]
    lines += [f"### Common to all pixels ({len(common)})", ""]
    if common:
        lines += ["| tap | unit | first ref line | rel delta (min .. max) | same values in all "
                  "pixels |", "|---|---|---|---|---|"]
        for r in common:
            same = "yes" if r["distinct_ref_values"] == 1 and r["distinct_cand_values"] == 1 \
                else "no"
            lines.append(f"| {code(rlabel(r))} "
                         f"| {_none(r['unit']) or '-'} | {g(r['first_ref_line'])} | "
                         f"{g(r['min_rel_delta'], 3)} .. {g(r['max_rel_delta'], 3)} | {same} |")
    else:
        lines.append("None.")
    lines += ["", f"### Specific to some pixels ({len(specific)})", ""]
    if specific:
        lines += ["| tap | diverged in | pixels |", "|---|---|---|"]
        where_of: dict = {}
        for d in diff.to_dict("records"):
            if d["status"] == "diverged":
                where_of.setdefault((d["channel"], d["tap"], d["loop_key"], d["occurrence"]),
                                    set()).add(pix_of[d["comparison_id"]])
        for r in specific:
            where = sorted(where_of.get((r["channel"], r["tap"], r["loop_key"],
                                         r["occurrence"]), ()))
            lines.append(f"| {code(rlabel(r))} "
                         f"| {r['pixels_diverged']} of {total} | {', '.join(where)} |")
    else:
        lines.append("None.")
    lines += ["", *render_gap(summaries, gap, model)]
    if "status_map" in plots:
        lines += ["", f"![status of every tap for every pixel]({plots['status_map']})"]
    return "\n".join(lines).rstrip() + "\n"


def model_formula(gap) -> str:
    if gap.empty:
        return ""
    first = gap.drop_duplicates("position").sort_values("position")
    num = [f"{f}^{g(e)}" if e not in (1, -1) and e > 0 else f for f, e in
           zip(first["factor"], first["exponent"], strict=True) if e > 0]
    den = [f"{f}^{g(-e)}" if e != -1 else f for f, e in
           zip(first["factor"], first["exponent"], strict=True) if e < 0]
    text = f"{first['target'].iloc[0]} = " + " * ".join(num or ["1"])
    if den:
        text += " / " + (den[0] if len(den) == 1 else "(" + " * ".join(den) + ")")
    return text


def _share(v, total) -> str:
    v = _none(v)
    if v is None:
        return "-"
    if abs(v) < 1e-12:
        v = 0.0
    text = "0" if v == 0 else f"{v:+.4g}"
    if total is None or total == 0:
        return text
    return f"{text} ({100 * v / total + 0.0:.1f}%)"


def render_gap(summaries, gap, model: str) -> list[str]:
    if gap.empty:
        return ["## What explains the gap", "",
                f"Factor model {model!r} is not defined; see `tracedb factor-model show`."]
    target = gap["target"].iloc[0]
    factors = list(gap.drop_duplicates("position").sort_values("position")["factor"])
    lines = [f"## What explains the gap of `{target}`", "",
             f"Factor model `{model}` (table `factor_model`; change it with `tracedb "
             f"factor-model set`): `{model_formula(gap)}`.", "",
             f"Each cell is log10(ref/cand) of that factor raised to its exponent, and its "
             f"share of log10(ref/cand) of `{target}`; the remainder is what the factors do "
             "not explain. Magnitudes are compared; `-` means the tap is missing or zero on "
             "a side.", "",
             "| pixel | " + f"{target} ref | {target} cand | log10 gap | "
             + " | ".join(factors) + " | remainder |",
             "|---|---|---|---|" + "---|" * len(factors) + "---|"]
    by_cmp = {}
    for r in gap.to_dict("records"):
        by_cmp.setdefault(r["comparison_id"], []).append(r)
    largest = []
    for s in summaries.to_dict("records"):
        rows = sorted(by_cmp.get(s["comparison_id"], []), key=lambda r: r["position"])
        if not rows:
            continue
        total = _none(rows[0]["target_log10_ratio"])
        cells = [_share(r["factor_log10"], total) for r in rows]
        rem = _none(rows[0]["remainder_log10"])
        lines.append(f"| {pixel_title(s['pixel'])} | {code(rows[0]['target_ref_value'])} | "
                     f"{code(rows[0]['target_cand_value'])} | "
                     f"{'-' if total is None else f'{total:+.4g}'} | " + " | ".join(cells)
                     + f" | {_share(rem, total)} |")
        known = [(abs(_none(r["factor_log10"])), r["factor"]) for r in rows
                 if _none(r["factor_log10"]) is not None]
        if known and total:
            top = max(known)
            largest.append((pixel_title(s["pixel"]), top[1], 100 * top[0] / abs(total)))
    if largest:
        lines += ["", "Largest single factor per pixel: " + "; ".join(
            f"{p}: `{f}` ({pct:.0f}% of the gap)" for p, f, pct in largest) + "."]
    return lines


def render_diff(s: dict, rows: list[dict]) -> str:
    rside, cside = SIDE.get(s["ref_side"], "ref"), SIDE.get(s["cand_side"], "cand")
    out = [f"tracedb diff, pixel {pixel_title(s['pixel'])}",
           f"reference: {ref_desc(s)}",
           f"candidate: {cand_desc(s)}",
           f"tolerance: |a-b| <= atol + rtol*max(|a|,|b|), rtol={s['rtol']:g}, atol={s['atol']:g}",
           f"status: {s['status']}; {s['compared']} compared, {s['diverged']} diverged, "
           f"{s['print_precision']} print_precision, {s['accepted']} accepted, "
           f"{s['missing_ref']} missing_ref, {s['missing_cand']} missing_cand",
           ""]
    labels = [tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"]) for r in rows]
    w = max([len(lab) for lab in labels] + [3])
    head = (f"{'#':>4}  {'tap':<{w}}  {'status':<15}  {'ref ln':>7} {'cand ln':>7}  "
            f"{'abs delta':>10}  {'rel delta':>10}  {'ratio':>10}  values (ref, then cand)")
    out += [head, "-" * len(head)]
    for i, (r, lab) in enumerate(zip(rows, labels, strict=True), start=1):
        ref_v = r["ref_value"] if _none(r["ref_value"]) is not None else "(absent)"
        cand_v = r["cand_value"] if _none(r["cand_value"]) is not None else "(absent)"
        mark = " <-- first divergence" if (
            r["tap"] == s["first_tap"] and r["loop_key"] == s["first_loop_key"]
            and r["channel"] == s["first_channel"]
            and _none(r["occurrence"]) == _none(s["first_occurrence"])) else ""
        out.append(f"{i:>4}  {lab:<{w}}  {r['status']:<15}  {g(r['ref_line']):>7} "
                   f"{g(r['cand_line']):>7}  {g(r['abs_delta'], 4):>10}  "
                   f"{g(r['rel_delta'], 4):>10}  {g(r['ratio'], 4):>10}  "
                   f"{rside}: {ref_v}{mark}")
        out.append(f"{'':>4}  {'':<{w}}  {'':<15}  {'':>7} {'':>7}  {'':>10}  {'':>10}  "
                   f"{'':>10}  {cside}: {cand_v}")
        if _none(r["unit_hint"]):
            out.append(f"{'':>4}  {'':<{w}}  {'':<15}  {'':>7} {'':>7}  {'':>10}  {'':>10}  "
                       f"{'':>10}  unit hint: {r['unit_hint']}")
        if _none(r["accepted_reason"]):
            out.append(f"{'':>4}  {'':<{w}}  {'':<15}  {'':>7} {'':>7}  {'':>10}  {'':>10}  "
                       f"{'':>10}  accepted: {r['accepted_reason']}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots

STATUS_COLORS = {"match": "#4daf4a", "print_precision": "#ffd92f", "diverged": "#e41a1c",
                 "accepted": "#377eb8", "missing_ref": "#bdbdbd", "missing_cand": "#8c8c8c"}


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
    ys = []
    for r in paired:
        v = _none(r["rel_delta"])
        ys.append(floor if v is None or v <= 0 else max(math.log10(v), floor))
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
        ax.axhline(math.log10(rtol), color="#e41a1c", linestyle="--", linewidth=0.8,
                   label=f"rtol = {rtol:g}")
    top = max([1.0] + [y for y in ys]) + 2.5
    for x, r in zip(xs, paired, strict=True):
        if r["tap"] == s["first_tap"] and r["loop_key"] == s["first_loop_key"] \
                and r["channel"] == s["first_channel"] \
                and _none(r["occurrence"]) == _none(s["first_occurrence"]):
            ax.axvline(x, color="#984ea3", linewidth=1.0, zorder=0)
            ax.scatter([x], [ys[x]], s=70, facecolors="none", edgecolors="#984ea3",
                       linewidths=1.5, zorder=3, label="first divergence")
            ax.annotate(f"first divergence: {labels[x]}", (x, top - 0.4),
                        xytext=(4, -2), textcoords="offset points", color="#984ea3",
                        va="top", ha="left" if x < 0.6 * len(xs) else "right")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=90, fontsize=6 if len(xs) > 60 else 7)
    ax.set_ylabel("log10 relative difference (exact match drawn at -18)")
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
MAX_PLOT_WORKERS = 4


def _profile_job(job: tuple) -> None:
    plot_profile(*job)


def draw_profiles(jobs: list[tuple]) -> None:
    """plot_profile for each job (its arguments), in worker processes when there are
    many (one per CPU, at most MAX_PLOT_WORKERS; TRACEDB_WORKERS overrides, 0 keeps
    them in this process). The files are the same either way."""
    import multiprocessing
    import os

    env = os.environ.get("TRACEDB_WORKERS", "")
    workers = int(env) if env.isdigit() else min(os.cpu_count() or 1, MAX_PLOT_WORKERS)
    workers = min(workers, len(jobs))
    if len(jobs) < PARALLEL_PLOTS or workers < 2 \
            or "fork" not in multiprocessing.get_all_start_methods():
        for job in jobs:
            plot_profile(*job)
        return
    from concurrent.futures import ProcessPoolExecutor

    # fork: the workers start with this process's modules (matplotlib imports once
    # per worker) and never touch its database connection
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for _ in pool.map(_profile_job, jobs, chunksize=max(1, len(jobs) // (4 * workers))):
            pass


def plot_status_map(summaries, diff, path: Path, ascii_only: bool) -> None:
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    order: dict = {}
    for r in diff.to_dict("records"):
        key = (r["channel"], r["tap"], r["loop_key"], r["occurrence"])
        seq = _none(r["ref_seq"])
        pos = (0, seq) if seq is not None else (1, _none(r["cand_seq"]) or 0)
        if key not in order or pos < order[key]:
            order[key] = pos
    keys = sorted(order, key=lambda k: (order[k], k[1]))
    names = list(STATUS_COLORS)
    grid = []
    ylabels = []
    by_cmp = group_rows(diff)
    for s in summaries.to_dict("records"):
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
    ax.legend(handles=[Patch(color=c, label=n) for n, c in STATUS_COLORS.items()],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    _save(fig, path)
    plt.close(fig)


# --------------------------------------------------------------------------- driver


def _prepare_outdir(outdir: Path, force: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise TracedbError(f"report directory {outdir} is a file")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not force:
            raise TracedbError(f"report directory {outdir} exists and is not empty; "
                               "pass --force to overwrite or choose another")
        for pattern in (*REPORT_FILES, "diff_*.txt", "env/trace_env.json", "plots/*.png"):
            for old in outdir.glob(pattern):
                old.unlink()
    (outdir / "env").mkdir(parents=True, exist_ok=True)


def _commands(loads, report_argv: list[str], url_masked: str) -> str:
    lines = ["# Commands that produced this report, replayable in a shell.",
             f"# Warehouse: {url_masked}", "",
             "# Ingests that loaded the runs (from the warehouse's command log):"]
    if loads.empty:
        lines.append("# (none recorded: the runs were loaded by an older tracedb)")
    for r in loads.to_dict("records"):
        argv = json.loads(r["argv"])
        cmd = shlex.join(argv)
        cwd = _none(r.get("cwd"))
        lines.append(f"# {r['started_at']}, tracedb {r['tracedb_version']}, {r['status']}")
        lines.append(f"(cd {shlex.quote(cwd)} && {cmd})" if cwd else cmd)
    lines += ["", "# This report:", shlex.join(report_argv), ""]
    return "\n".join(lines)


def _env(wh, summaries, prov, model: str) -> dict:
    import sys

    a = summaries.attrs
    dialect = wh.engine.dialect.name
    with wh.engine.connect() as conn:
        if dialect == "sqlite":
            version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
        else:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
    sources = []
    for r in prov.to_dict("records"):
        env = json.loads(r["env_json"]) if _none(r["env_json"]) else {}
        sources.append({
            "path": r["path"], "sha256": r["sha256"], "version": int(r["version"]),
            "run_id": int(r["run_id"]), "role": r["role"], "side": _none(r["side"]),
            "stamp": _none(r["stamp"]), "path_stamp": _none(r["path_stamp"]),
            "meta_stamp": _none(r["meta_stamp"]),
            "pixel": None if _none(r["slow"]) is None else [int(r["slow"]), int(r["fast"])],
            "bundle": r["bundle_path"],
            "git_sha": env.get("git_sha"), "git_branch": env.get("git_branch"),
        })
    return {
        "tracedb_version": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": sys.platform,
        "database": {"dialect": dialect, "version": version, "url": wh.display_url},
        "tolerance": {"rtol": a["rtol"], "atol": a["atol"],
                      "mode": "strict" if a["strict"] else "default",
                      "rule": "|a-b| <= atol + rtol*max(|a|,|b|)"},
        "pairing": summaries["pairing"].iloc[0] if len(summaries) else None,
        "factor_model": model,
        "sources": sources,
    }


def write_report(wh, outdir: Path, *, ref=None, cand=None, pixels=None, rtol=1e-12,
                 atol=0.0, strict=False, unicode=False, force=False, model="nanoBragg",
                 argv: list[str] | None = None, plots: bool = True) -> Report:
    outdir = Path(outdir)
    summaries = wh.diverge(ref=ref, cand=cand, pixels=pixels, rtol=rtol, atol=atol,
                           strict=strict, detail="all")
    _prepare_outdir(outdir, force)
    set_id = summaries.attrs["set_id"]
    diff = wh.diff(set_id, strict=strict)
    rollup = wh.query("divergence_rollup", set_id=set_id, strict=int(strict))
    gap = wh.query("factor_gap", set_id=set_id, model=model)
    prov = wh.query("provenance", set_id=set_id)
    loads = wh.query("load_commands", set_id=set_id)
    report = Report(outdir=outdir, set_id=set_id)
    fix = (lambda t: t) if unicode else asciify

    def put(rel: str, text: str) -> None:
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fix(text), encoding="utf-8", newline="\n")
        report.files.append(path)

    plot_files: dict[str, str] = {}
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            report.notes.append("matplotlib is not installed: no plots "
                                "(pip install 'tracedb[plot]')")
        else:
            (outdir / "plots").mkdir(exist_ok=True)
            by_cmp = group_rows(diff)
            jobs = []
            for s in summaries.to_dict("records"):
                rows = by_cmp.get(s["comparison_id"], [])
                if s["compared"] == 0:
                    continue
                key = pixel_name(s["pixel"], s["ref_run"], s["cand_run"])
                rel = f"plots/profile_{key}.png"
                jobs.append((s, rows, outdir / rel, rtol, not unicode))
                plot_files[key] = rel
                report.files.append(outdir / rel)
            draw_profiles(jobs)
            plot_status_map(summaries, diff, outdir / "plots" / "status_map.png", not unicode)
            plot_files["status_map"] = "plots/status_map.png"
            report.files.append(outdir / "plots" / "status_map.png")

    generated = utcnow()
    put("first_divergence.md", render_first_divergence(summaries, diff, rollup, plot_files,
                                                       generated))
    put("summary.md", render_summary(summaries, diff, rollup, gap, model, plot_files, None))
    by_cmp = group_rows(diff)
    for s in summaries.to_dict("records"):
        rows = by_cmp.get(s["comparison_id"], [])
        put(f"diff_{pixel_name(s['pixel'], s['ref_run'], s['cand_run'])}.txt",
            render_diff(s, rows))
    put("commands.txt", _commands(loads, argv or ["tracedb", "report", str(outdir)],
                                  wh.display_url))
    env = _env(wh, summaries, prov, model)
    text = json.dumps(env, indent=2, sort_keys=True, ensure_ascii=not unicode) + "\n"
    put("env/trace_env.json", text)
    return report


# --------------------------------------------------------------------------- factor models

_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?:\^([-+]?\d+(?:\.\d+)?))?$")


def parse_model(text: str) -> tuple[str, list[tuple[str, float]]]:
    """'I = a * b^2 / c' -> ('I', [('a', 1), ('b', 2), ('c', -1)])."""
    target, sep, expr = text.partition("=")
    target = target.strip()
    if not sep or not _TERM.match(target) or "^" in target:
        raise TracedbError(f"cannot read factor model {text!r}; write e.g. "
                           "'I_pixel_final = r_e_sqr * F_cell^2 / steps'")
    if "(" in expr or ")" in expr:
        raise TracedbError(f"factor model {text!r}: no parentheses; write a / b / c "
                           "instead of a / (b * c)")
    factors: list[tuple[str, float]] = []
    sign = 1.0
    for tok in re.split(r"\s*([*/])\s*", expr.strip()):
        if tok in ("*", "/"):
            sign = 1.0 if tok == "*" else -1.0
            continue
        m = _TERM.match(tok.strip())
        if not m:
            raise TracedbError(f"cannot read factor {tok!r} in {text!r}; factors are tap "
                               "names with an optional ^exponent, joined by * and /")
        factors.append((m.group(1), sign * float(m.group(2) or 1)))
    if not factors:
        raise TracedbError(f"factor model {text!r} has no factors")
    return target, factors
