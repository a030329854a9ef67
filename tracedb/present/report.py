"""Evidence reports rendered from query results (never from trace files, never from
the database: :class:`ReportData` holds what the queries returned).

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
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from ..compare.results import MISSING_RUN, TOLERANCE_RULE, Divergences, by_comparison
from ..errors import TracedbError
from ..paths import portable_path
from .plots import PlotFiles, draw_plots, plot_image_map
from .text import (
    SIDE,
    asciify,
    cand_desc,
    clip,
    code,
    first_label,
    g,
    is_first,
    md_cell,
    pixel_name,
    pixel_title,
    ref_desc,
    row_label,
    tap_label,
)

REPORT_FILES = ("first_divergence.md", "summary.md", "commands.txt")
TIMESTAMP_MARK = "generation timestamp, the only line that differs between identical runs"


@dataclass
class ReportData:
    """What a report says, as the queries returned it (records)."""

    found: Divergences  # one summary per compared pair, and the tolerance
    diff: list[dict]  # tap_diff of the complete set, with unit hints
    rollup: list[dict]  # divergence_rollup
    gap: list[dict]  # factor_gap of ``model``
    provenance: list[dict]  # provenance
    loads: list[dict]  # load_commands
    model: str
    database: dict  # dialect, version, masked url
    images: list[dict] = field(default_factory=list)  # compare.images.comparisons
    image_maps: dict = field(default_factory=dict)  # comparison id -> (grid, block)
    traced: list = field(default_factory=list)  # (slow, fast) of every traced pixel
    map_floor: float = -16.0
    components: list[dict] = field(default_factory=list)  # first_components


@dataclass
class Report:
    outdir: Path
    files: list[Path] = field(default_factory=list)
    set_id: int = 0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- next step


def _at(r: dict, key: str):
    """Where a tap is written: ``r[key]`` (a line number), or for a tap of a JSON trace
    (line 0) its JSON pointer (``key`` with ``_pointer`` for ``_line``)."""
    return r.get(key.replace("_line", "_pointer")) or r.get(key)


def next_step(first: dict, rows: list[dict], rollup: dict | None, pixels_total: int) -> str:
    """A recommendation derived from the data of one pixel's first divergence."""
    tap = first["first_tap"]
    label = first_label(first)
    ratio = first["first_ratio"]
    if first["first_unit_hint"]:
        said = (f"`{label}` differs by a clean unit factor (ratio ref/cand {g(ratio)}): "
                f"{first['first_unit_hint']}.")
        later = "later taps with the same factor may only inherit it."
        off = _program(first["first_suspect"], first["ref_side"], first["cand_side"])
        if off is None:
            return (f"{said} The data does not tell which side is off (no other tap of "
                    "that dimension agrees with one side's value alone): check the unit "
                    f"conversion where `{tap}` is computed or printed in both programs; "
                    f"{later}")
        return (f"{said} Check the {off} code's unit conversion where `{tap}` is computed "
                f"or printed; {later}")
    if rollup and pixels_total > 1 and rollup["pixels_diverged"] == pixels_total \
            and rollup["distinct_ref_values"] == 1 and rollup["distinct_cand_values"] == 1:
        return (f"`{label}` has one value for every pixel on each side "
                f"({clip(first['first_ref_value'], 40)} vs {clip(first['first_cand_value'], 40)})"
                ": it is a constant or configuration input, so check its definition on both "
                "sides (default value, physical constant, command-line parsing) rather than "
                "the per-pixel computation.")
    before = [r for r in rows if r["ref_seq"] is not None
              and r["ref_seq"] < first_seq(rows, first) and r["status"] == "match"]
    if before:
        prev = before[-1]
        was = f"{g(_at(prev, 'ref_line'))}/{g(_at(prev, 'cand_line'))}"
        now = f"{g(_at(first, 'first_ref_line'))}/{g(_at(first, 'first_cand_line'))}"
        return (f"`{tap_label(prev['tap'], prev['loop_key'], prev['occurrence'])}` (line "
                f"{was}) still matches and `{label}` (line {now}) diverges: "
                f"the difference is introduced between them. Inspect the code that computes "
                f"`{tap}` from its inputs.")
    return (f"`{label}` is the first tap traced and already differs: compare the inputs and "
            "configuration both programs were run with.")


def _program(suspect, ref_side, cand_side) -> str | None:
    """The program a unit hint puts off ('C', 'PyTorch'), None when undecided."""
    if suspect not in ("ref", "cand"):
        return None
    side = ref_side if suspect == "ref" else cand_side
    role = "reference" if suspect == "ref" else "candidate"
    return SIDE[side] if side in SIDE and ref_side != cand_side else \
        f"{role} ({SIDE.get(side, 'unknown side')})"


def first_seq(rows: list[dict], first: dict) -> float:
    for r in rows:
        if is_first(r, first):
            return r["ref_seq"]
    return math.inf


def missing_role(s: dict) -> str:
    """Which run of a summary is missing: 'reference' or 'candidate'."""
    return "reference" if s["ref_run"] is None else "candidate"


def missing_run_sentence(s: dict) -> str:
    """What a summary whose reference or candidate run is missing says of it."""
    missing = missing_role(s)
    there, role = ("cand", "candidate") if missing == "reference" else ("ref", "reference")
    side = SIDE.get(s[f"{there}_side"], s[f"{there}_side"] or "?")
    n = s["missing_ref"] if there == "cand" else s["missing_cand"]
    return (f"Only the {role} run {s[f'{there}_run']} ({side} @ "
            f"{s[f'{there}_stamp'] or 'no stamp'}, {s[f'{there}_path']}, {n} tap(s)) traced "
            f"this pixel; there is no {missing} run to compare it with (the other program "
            "crashed, its trace is empty, or it was not loaded), so nothing was compared.")


# --------------------------------------------------------------------------- rendering


def _header(title: str, found: Divergences, generated: str | None) -> list[str]:
    lines = [f"# {title}", ""]
    if generated:
        lines += [f"Generated: {generated} ({TIMESTAMP_MARK})", ""]
    mode = ("strict: print_precision counts as diverged" if found.strict
            else "default: differences within print precision are reported apart")
    lines += [
        f"- Tolerance: {TOLERANCE_RULE} with rtol = {found.rtol:g}, "
        f"atol = {found.atol:g}; mode {mode}.",
        f"- Pairing: {found.rows[0]['pairing']}.",
        "",
        "| pixel | reference | candidate |",
        "|---|---|---|",
    ]
    for r in found.rows:
        lines.append(f"| {pixel_title(r['pixel'])} | {md_cell(ref_desc(r))} | "
                     f"{md_cell(cand_desc(r))} |")
    lines.append("")
    return lines


def _tap_table(rows: list[dict], with_reason: bool = False) -> list[str]:
    head = ("| tap | lines (ref/cand) | ref value | cand value | rel delta | ratio | unit hint "
            "| side off |")
    sep = "|---|---|---|---|---|---|---|---|"
    if with_reason:
        head, sep = head + " reason |", sep + "---|"
    out = [head, sep]
    for r in rows:
        cells = [code(tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"])),
                 f"{g(_at(r, 'ref_line'))}/{g(_at(r, 'cand_line'))}",
                 code(clip(r["ref_value"])) if r["ref_value"] is not None else "-",
                 code(clip(r["cand_value"])) if r["cand_value"] is not None else "-",
                 g(r["rel_delta"], 3), g(r["ratio"]), md_cell(r["unit_hint"] or ""),
                 _side_off(r)]
        if with_reason:
            cells.append(md_cell(r["accepted_reason"]))
        out.append("| " + " | ".join(md_cell(c) if i > 1 else c for i, c in enumerate(cells))
                   + " |")
    return out


def _side_off(r: dict) -> str:
    """A tap's "side off" cell: the program its unit hint puts off, "undecided" when
    the data does not decide, "-" without a unit hint."""
    if not r["unit_hint"]:
        return "-"
    return _program(r["suspect"], r["ref_side"], r["cand_side"]) or "undecided"


def render_first_divergence(data: ReportData, plots: PlotFiles, generated: str) -> str:
    by_cmp = by_comparison(data.diff)
    roll = {(r["channel"], r["tap"], r["loop_key"], r["occurrence"]): r for r in data.rollup}
    total = len(paired(data.found.rows))
    lines = _header("First divergence", data.found, generated)
    lines += _configuration_section(data.found.rows) + _causes_section(data.found.rows)
    comps: dict[int, list[dict]] = {}
    for c in data.components:
        comps.setdefault(c["comparison_id"], []).append(c)
    for s in data.found.rows:
        rows = by_cmp.get(s["comparison_id"], [])
        rollup = roll.get((s["first_channel"], s["first_tap"], s["first_loop_key"],
                           s["first_occurrence"]))
        lines += _first_section(s, rows, rollup, total)
        lines += _component_lines(s, comps.get(s["comparison_id"], []))
        lines += _image_cases_of(s["pixel"], data.images)
        key = pixel_name(s["pixel"], s["ref_run"], s["cand_run"])
        if key in plots.profiles:
            lines += [f"![divergence profile of pixel {pixel_title(s['pixel'])}]"
                      f"({plots.profiles[key]})", ""]
        lines += _later_sections(s, rows)
    return "\n".join(lines).rstrip() + "\n"


#: Significant digits both sides must write for a count of units in the last place
#: to say something about the computation rather than the printing (``%.15e`` writes
#: 16; a double needs 17 to be read back exactly).
DOUBLE_DIGITS = 16
#: The components of a first divergence listed, at most.
COMPONENTS_SHOWN = 4


def significant_digits(text: str) -> int:
    """Significant digits of a number as written: ``1.024250000000000e-01`` 16,
    ``0.000102425`` 6."""
    mantissa = text.strip().lstrip("+-").lower().split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0")) or 1


def ulps(a: float, b: float) -> float:
    """|a - b| in units in the last place of the larger magnitude."""
    return abs(a - b) / math.ulp(max(abs(a), abs(b)))


def _component_lines(s: dict, comps: list[dict]) -> list[str]:
    """Which components of the first divergence diverged, and by how many ULPs where
    both sides wrote enough digits for that to mean something."""
    off = [c for c in comps if c["status"] not in ("match",)]
    if not off:
        return []
    items = []
    for c in off[:COMPONENTS_SHOWN]:
        name = c["label"] or f"[{c['idx']}]"
        text = (f"`{name}` {code(md_cell(c['ref_text']))} vs {code(md_cell(c['cand_text']))}"
                f" ({c['status']}")
        if c["ref_kind"] == c["cand_kind"] == "num" and c["ref_num"] != c["cand_num"]:
            digits = min(significant_digits(c["ref_text"]), significant_digits(c["cand_text"]))
            if digits >= DOUBLE_DIGITS and math.isfinite(c["ref_num"]) \
                    and math.isfinite(c["cand_num"]):
                text += f", {ulps(c['ref_num'], c['cand_num']):.4g} ULPs"
            else:
                text += f", written with {digits} significant digits: too few to count ULPs"
        items.append(text + ")")
    more = f" and {len(off) - COMPONENTS_SHOWN} more" if len(off) > COMPONENTS_SHOWN else ""
    return [f"- diverged component(s), {len(off)} of {len(comps)}: "
            + "; ".join(items) + more, ""]


def _image_cases_of(pixel, images: list[dict]) -> list[str]:
    """The image comparisons that have ``pixel`` among their worst pixels (see
    images.md), or nothing."""
    if not pixel:
        return []
    hits = [f"{md_cell(rec['case'])} @ {rec['stamp'] or 'no stamp'} (rank {w['rank']})"
            for rec in images for w in rec["worst"]
            if (w["slow"], w["fast"]) == tuple(pixel)]
    return [f"Image cases with this pixel among their worst pixels (`images.md`): "
            f"{', '.join(hits)}.", ""] if hits else []


def _options_text(d: dict, rside: str, cside: str) -> str:
    items = [f"`-{x['option']}` {x['ref'] or '(not given)'} ({rside}) vs "
             f"{x['cand'] or '(not given)'} ({cside})" for x in d["differ"]]
    items += [f"`{x['tap']}` {md_cell(x['ref'])} ({rside}) vs {md_cell(x['cand'])} ({cside})"
              for x in d.get("taps", [])]
    text = "; ".join(items) if items else \
        "the recorded configurations agree on every option both sides record"
    one = [f"{side} " + ", ".join(f"{k} {v}" for k, v in opts.items())
           for side, opts in ((rside, d["only_ref"]), (cside, d["only_cand"])) if opts]
    return text + (f" (recorded on one side only: {'; '.join(one)})" if one else "")


def _configuration_section(found_rows: list[dict]) -> list[str]:
    """What the two runs were asked to do (``compare.config``), before any value: once
    when every pair has the same differences, else per pixel."""
    rows = [r for r in found_rows if r.get("config_diff") is not None]
    if not rows:
        return []
    out = ["## Configuration", ""]
    texts = [_options_text(r["config_diff"], SIDE.get(r["ref_side"], "ref"),
                           SIDE.get(r["cand_side"], "cand")) for r in rows]
    if len(set(texts)) == 1:
        out.append(f"- every pair: {texts[0]}")
    else:
        out += [f"- pixel {pixel_title(r['pixel'])}: {t}" for r, t in zip(rows, texts,
                                                                          strict=True)]
    return out + [""]


def _cause_key(t: dict) -> tuple:
    return (t["channel"], t["tap"], t["loop_key"], t["occurrence"], t["verdict"],
            t["evidence"])


def _causes_section(found_rows: list[dict]) -> list[str]:
    """The root causes (``compare.causes``) with their verdicts: those every diverged
    pair shares said once, then each pixel's own, then how many taps follow."""
    diverged = [r for r in found_rows if r["status"] == "diverged"]
    if not diverged:
        return []
    shared = set.intersection(*({_cause_key(t) for t in r["roots"]} for r in diverged))
    out = ["## Causes", "",
           "Root causes: diverged taps none of whose inputs in the dependency graph "
           "(`tracedb graph show`) diverged; every other diverged tap follows from one.", ""]

    def table(roots: list[dict], r: dict) -> list[str]:
        lines = ["| cause | lines (ref/cand) | verdict | evidence | side off | "
                 "what follows |", "|---|---|---|---|---|---|"]
        for t in roots:
            side = SIDE.get(t["suspect_side"], t["suspect_side"]) if t["suspect_side"] \
                else "-"
            follows = ", ".join(t["consequences"]) or (
                "nothing: every consequence matches (contained)" if t["contained"]
                else "-")
            label = tap_label(t["tap"], t["loop_key"], t["occurrence"], t["channel"])
            lines.append(f"| {code(label)} | {g(t['ref_line'])}/{g(t['cand_line'])} | "
                         f"{t['verdict']} | "
                         f"{md_cell(t['evidence'])} | {side} | {md_cell(follows)} |")
        return lines + [""]

    if shared and len(diverged) > 1:
        first = diverged[0]
        out += [f"### Every diverged pixel ({len(diverged)})", ""]
        out += table([t for t in first["roots"] if _cause_key(t) in shared], first)
    for r in diverged:
        own = [t for t in r["roots"] if _cause_key(t) not in shared or len(diverged) == 1]
        unknown = f", {r['unknown']} not in the graph" if r["unknown"] else ""
        out += [f"### Pixel {pixel_title(r['pixel'])}: {len(r['roots'])} cause(s), "
                f"{r['inherited']} diverged tap(s) following from them{unknown}", ""]
        if own:
            out += table(own, r)
    return out


def _first_section(s: dict, rows: list[dict], rollup: dict | None, total: int) -> list[str]:
    """A pixel's heading and its first divergence (or why there is none)."""
    rside, cside = SIDE.get(s["ref_side"], "ref"), SIDE.get(s["cand_side"], "cand")
    title = pixel_title(s["pixel"])
    if s["status"] in MISSING_RUN:
        return [f"## Pixel {title}: missing {missing_role(s)} run ({s['status']})", "",
                missing_run_sentence(s) + " This is not a match.", ""]
    if s["status"] == "nothing compared":
        return [f"## Pixel {title}: nothing compared",
                "", f"No tap of run {s['ref_run']} pairs with a tap of run "
                f"{s['cand_run']} ({s['missing_cand']} taps only in the reference, "
                f"{s['missing_ref']} only in the candidate). This is not a match.", ""]
    if s["first_tap"] is None:
        return [f"## Pixel {title}: no divergence",
                "", f"All {s['compared']} paired taps agree within tolerance "
                f"({s['print_precision']} only within print precision).", ""]
    return [
        f"## Pixel {title}: first divergence `{first_label(s)}` at line "
        f"{g(_at(s, 'first_ref_line'))} ({rside}) / line "
        f"{g(_at(s, 'first_cand_line'))} ({cside})",
        "",
        f"| | reference ({rside}) | candidate ({cside}) |",
        "|---|---|---|",
        f"| run | {s['ref_run']} @ {s['ref_stamp'] or '-'} | "
        f"{s['cand_run']} @ {s['cand_stamp'] or '-'} |",
        f"| line | {g(_at(s, 'first_ref_line'))} | {g(_at(s, 'first_cand_line'))} |",
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
        "**Next step:** " + next_step(s, rows, rollup, total),
        "",
    ]


def _later_sections(s: dict, rows: list[dict]) -> list[str]:
    """What else diverged, what is within print precision, missing or accepted."""
    rside, cside = SIDE.get(s["ref_side"], "ref"), SIDE.get(s["cand_side"], "cand")
    seq = first_seq(rows, s) if s["first_tap"] is not None else math.inf
    after = [r for r in rows if r["status"] == "diverged" and r["ref_seq"] is not None
             and r["ref_seq"] > seq]
    sections = [
        ("Diverged after the first", after, False),
        ("Within print precision only", [r for r in rows
                                         if r["status"] == "print_precision"], False),
        ("Missing on one side", [r for r in rows
                                 if r["status"] in ("missing_ref", "missing_cand")], False),
        ("Accepted divergences", [r for r in rows if r["status"] == "accepted"], True),
    ]
    lines: list[str] = []
    for name, sel, reason in sections:
        lines += [f"### {name} ({len(sel)})", ""]
        if not sel:
            lines.append("None.")
        elif name.startswith("Missing"):
            lines += ["| tap | present in | line | value |", "|---|---|---|---|"]
            for r in sel:
                ref_only = r["status"] == "missing_cand"
                where = f"{rside} only" if ref_only else f"{cside} only"
                line = _at(r, "ref_line") if ref_only else _at(r, "cand_line")
                val = r["ref_value"] if ref_only else r["cand_value"]
                lines.append(f"| {code(row_label(r))} "
                             f"| {where} | {g(line)} | {code(md_cell(clip(val)))} |")
        else:
            lines += _tap_table(sel, with_reason=reason)
        lines.append("")
    return lines


def paired(rows: list[dict]) -> list[dict]:
    """The summaries with both runs (a pixel missing a run is in no roll-up count)."""
    return [r for r in rows if r["status"] not in MISSING_RUN]


def render_summary(data: ReportData, plots: PlotFiles) -> str:
    rows = data.found.rows
    total = len(paired(rows))
    lines = _header("Summary", data.found, None)
    pix_of = {r["comparison_id"]: pixel_title(r["pixel"]) for r in rows}
    unpaired = [r for r in rows if r["status"] in MISSING_RUN]
    status_counts = {k: sum(int(r[k]) for r in paired(rows)) for k in
                     ("compared", "diverged", "print_precision", "accepted", "missing_ref",
                      "missing_cand")}
    nothing = [pix_of[r["comparison_id"]] for r in rows if r["status"] == "nothing compared"]
    lines += [f"## Diverged taps across {total} pixel(s)", "",
              f"Totals: {status_counts['compared']} taps compared, "
              f"{status_counts['diverged']} diverged, {status_counts['print_precision']} "
              f"within print precision, {status_counts['accepted']} accepted, "
              f"{status_counts['missing_ref'] + status_counts['missing_cand']} missing on "
              "one side.", ""]
    if nothing:
        lines += [f"Nothing compared for: {', '.join(nothing)}.", ""]
    if unpaired:
        lines += [f"Missing runs ({len(unpaired)} pixel(s), in none of the counts here; "
                  "this is not a match):", ""]
        lines += [f"- {pix_of[r['comparison_id']]}: missing {missing_role(r)} run "
                  f"({r['status']}). {missing_run_sentence(r)}" for r in unpaired]
        lines.append("")
    roll = data.rollup
    common = [r for r in roll if r["pixels_diverged"] == total]
    if common:
        e = common[0]
        lines += [f"Earliest common divergence: "
                  f"{code(tap_label(e['tap'], e['loop_key'], e['occurrence'], e['channel']))} "
                  f"(reference line {g(_at(e, 'first_ref_line'))}).", ""]
    else:
        lines += ["No tap diverges in every pixel.", ""]
    lines += _causes_and_consequences(rows, pix_of, total)
    lines += ["", *render_gap(rows, data.gap, data.model)]
    for caption, rel in plots.status_map:
        lines += ["", f"![{caption}]({rel})"]
    return "\n".join(lines).rstrip() + "\n"


def _causes_and_consequences(rows: list[dict], pix_of: dict, total: int) -> list[str]:
    """summary.md's roll-up: each root cause (``compare.causes``) with its verdict and
    the pixels where it is one, then each tap that follows from one, with its inputs
    and pixels."""
    causes: dict[tuple, dict] = {}
    follows: dict[tuple, dict] = {}
    for r in rows:
        for t in r.get("roots", []):
            key = (t["channel"], t["tap"], t["loop_key"], t["occurrence"])
            c = causes.setdefault(key, {"t": t, "verdicts": {}, "pixels": []})
            c["verdicts"][t["verdict"]] = c["verdicts"].get(t["verdict"], 0) + 1
            c["pixels"].append(pix_of[r["comparison_id"]])
        for t in r.get("inherited_taps", []):
            key = (t["channel"], t["tap"], t["loop_key"], t["occurrence"])
            f = follows.setdefault(key, {"t": t, "inputs": {}, "pixels": []})
            f["inputs"].update(dict.fromkeys(t["inherited_from"]))
            f["pixels"].append(pix_of[r["comparison_id"]])

    def label(t: dict) -> str:
        return code(tap_label(t["tap"], t["loop_key"], t["occurrence"], t["channel"]))

    def where(pixels: list[str]) -> str:
        return f"all {total}" if len(pixels) == total and total > 1 else \
            f"{len(pixels)} of {total}: {', '.join(pixels)}"

    out = [f"### Causes ({len(causes)})", "",
           "Diverged taps none of whose inputs in the dependency graph diverged "
           "(`tracedb graph show`), with their verdicts (see first_divergence.md for the "
           "evidence).", ""]
    if causes:
        out += ["| cause | verdict | root in pixels |", "|---|---|---|"]
        for c in causes.values():
            verdicts = ", ".join(f"{v} ({n})" if len(c["verdicts"]) > 1 else v
                                 for v, n in c["verdicts"].items())
            out.append(f"| {label(c['t'])} | {verdicts} | {where(c['pixels'])} |")
    else:
        out.append("None.")
    out += ["", f"### Consequences ({len(follows)})", "",
            "Diverged taps that follow from a diverged input.", ""]
    if follows:
        out += ["| tap | follows from | in pixels |", "|---|---|---|"]
        out += [f"| {label(f['t'])} | {', '.join(f['inputs'])} | {where(f['pixels'])} |"
                for f in follows.values()]
    else:
        out.append("None.")
    unknown = sum(int(r.get("unknown", 0)) for r in rows)
    if unknown:
        out += ["", f"{unknown} diverged tap(s) are in no edge of the graph: neither cause "
                    "nor consequence can be told (add them with `tracedb graph set`)."]
    return out


def _model_factors(gap: list[dict]) -> list[dict]:
    """One row per factor of the model, in its order."""
    first: dict = {}
    for r in gap:
        first.setdefault(r["position"], r)
    return [first[p] for p in sorted(first)]


def model_formula(gap: list[dict]) -> str:
    if not gap:
        return ""
    factors = _model_factors(gap)
    num = [f"{r['factor']}^{g(r['exponent'])}" if r["exponent"] not in (1, -1) else r["factor"]
           for r in factors if r["exponent"] > 0]
    den = [f"{r['factor']}^{g(-r['exponent'])}" if r["exponent"] != -1 else r["factor"]
           for r in factors if r["exponent"] < 0]
    text = f"{gap[0]['target']} = " + " * ".join(num or ["1"])
    if den:
        text += " / " + (den[0] if len(den) == 1 else "(" + " * ".join(den) + ")")
    return text


def _share(v, total) -> str:
    if v is None:
        return "-"
    if abs(v) < 1e-12:
        v = 0.0
    text = "0" if v == 0 else f"{v:+.4g}"
    if total is None or total == 0:
        return text
    return f"{text} ({100 * v / total + 0.0:.1f}%)"


def render_gap(summaries: list[dict], gap: list[dict], model: str) -> list[str]:
    if not gap:
        return ["## What explains the gap", "",
                f"Factor model {model!r} is not defined; see `tracedb factor-model show`."]
    target = gap[0]["target"]
    factors = [r["factor"] for r in _model_factors(gap)]
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
    for r in gap:
        by_cmp.setdefault(r["comparison_id"], []).append(r)
    largest = []
    notes = []
    for s in summaries:
        rows = sorted(by_cmp.get(s["comparison_id"], []), key=lambda r: r["position"])
        if not rows or s["status"] in MISSING_RUN:
            continue
        total = rows[0]["target_log10_ratio"]
        cells = [_share(r["factor_log10"], total) for r in rows]
        rem = rows[0]["remainder_log10"]
        lines.append(f"| {pixel_title(s['pixel'])} | {code(rows[0]['target_ref_value'])} | "
                     f"{code(rows[0]['target_cand_value'])} | "
                     f"{'-' if total is None else f'{total:+.4g}'} | " + " | ".join(cells)
                     + f" | {_share(rem, total)} |")
        notes += _gap_notes(s, rows, target, total, rem)
        known = [(abs(r["factor_log10"]), r["factor"]) for r in rows
                 if r["factor_log10"] is not None]
        if known and total:
            top = max(known)
            largest.append((pixel_title(s["pixel"]), top[1], 100 * top[0] / abs(total)))
    if largest:
        lines += ["", "Largest single factor per pixel: " + "; ".join(
            f"{p}: `{f}` ({pct:.0f}% of the gap)" for p, f, pct in largest) + "."]
    if notes:
        lines += ["", *notes]
    return lines


#: The share of a final value's log10 gap left unexplained above which the factor
#: model is said to miss something.
RESIDUAL_BUDGET = 0.05


def _gap_notes(s: dict, rows: list[dict], target: str, total, rem) -> list[str]:
    """What a pixel's row of the factor table cannot show: a residual above the
    budget, or which factor is zero on which side when the final value is."""
    title, out = pixel_title(s["pixel"]), []
    if total and rem is not None and abs(rem) > RESIDUAL_BUDGET * abs(total):
        out.append(f"- {title}: **the factors leave {100 * abs(rem) / abs(total):.0f}% of "
                   f"the log10 gap unexplained** (budget {100 * RESIDUAL_BUDGET:.0f}%): a "
                   "factor the model does not name differs.")
    for side, key, label in (("ref", "target_ref_num", s["ref_side"]),
                             ("cand", "target_cand_num", s["cand_side"])):
        if rows[0][key] != 0:
            continue
        who = SIDE.get(label, side)
        zero = [f"`{r['factor']}`" for r in rows
                if r[f"factor_{side}_num"] == 0 and r["exponent"] > 0]
        out.append(f"- {title}: `{target}` is 0 on the {who} side; " + (
            f"{', '.join(zero)} {'is' if len(zero) == 1 else 'are'} 0 there."
            if zero else "no factor of the model is 0 there: the zero comes from a step "
                         "the model does not name."))
    return out


def render_diff(s: dict, rows: list[dict]) -> str:
    rside, cside = SIDE.get(s["ref_side"], "ref"), SIDE.get(s["cand_side"], "cand")
    out = [f"tracedb diff, pixel {pixel_title(s['pixel'])}",
           f"reference: {ref_desc(s)}",
           f"candidate: {cand_desc(s)}",
           f"tolerance: {TOLERANCE_RULE}, rtol={s['rtol']:g}, atol={s['atol']:g}",
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
        ref_v = r["ref_value"] if r["ref_value"] is not None else "(absent)"
        cand_v = r["cand_value"] if r["cand_value"] is not None else "(absent)"
        mark = " <-- first divergence" if is_first(r, s) else ""
        out.append(f"{i:>4}  {lab:<{w}}  {r['status']:<15}  {g(_at(r, 'ref_line')):>7} "
                   f"{g(_at(r, 'cand_line')):>7}  {g(r['abs_delta'], 4):>10}  "
                   f"{g(r['rel_delta'], 4):>10}  {g(r['ratio'], 4):>10}  "
                   f"{rside}: {ref_v}{mark}")
        out.append(f"{'':>4}  {'':<{w}}  {'':<15}  {'':>7} {'':>7}  {'':>10}  {'':>10}  "
                   f"{'':>10}  {cside}: {cand_v}")
        if r["unit_hint"]:
            out.append(f"{'':>4}  {'':<{w}}  {'':<15}  {'':>7} {'':>7}  {'':>10}  {'':>10}  "
                       f"{'':>10}  unit hint: {r['unit_hint']}")
        if r["accepted_reason"]:
            out.append(f"{'':>4}  {'':<{w}}  {'':<15}  {'':>7} {'':>7}  {'':>10}  {'':>10}  "
                       f"{'':>10}  accepted: {r['accepted_reason']}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- files


def _fig(v, digits: int = 6) -> str:
    return "-" if v is None else f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def render_images(images: list[dict], plots: dict, traced: set) -> str:
    """images.md: each image comparison, its figures recorded vs recomputed, its
    divergence map and worst pixels (traced ones marked)."""
    lines = ["# Whole-image comparisons", "",
             "C image = reference, PyTorch image = candidate; figures recomputed in float64 "
             "at ingest. Recorded: the metrics file beside the pair; agreement `same` "
             "(1e-12 relative), `float32` (1e-5 relative), `differs`.", ""]
    for rec in images:
        lines += [f"## {md_cell(rec['case'])} @ {rec['stamp'] or 'no stamp'}", "",
                  f"- status: **{rec['status']}**" + (f" ({md_cell(rec['message'])})"
                                                     if rec["message"] else ""),
                  f"- C: `{rec['ref_path']}`", f"- PyTorch: `{rec['cand_path']}`",
                  f"- shape: {'x'.join(map(str, rec['shape']))}, {rec['dtype']}; outside "
                  f"tolerance (rtol {g(rec['rtol'])}, atol {g(rec['atol'])}): "
                  f"{_fig(rec['outside_tolerance'])} of {_fig(rec['pixels'])} pixels; NaN "
                  f"or inf: C {_fig(rec['ref_nonfinite'])}, PyTorch "
                  f"{_fig(rec['cand_nonfinite'])}",
                  "- recorded: " + (f"`{rec['recorded_path']}`, agreement "
                                    f"**{rec['recorded_agreement']}**"
                                    if rec["recorded_path"] else "none"), "",
                  "| figure | recomputed | recorded | relative difference | agreement |",
                  "|---|---|---|---|---|"]
        check = rec["recorded_check"] or {}
        for fig in ("correlation", "mse", "rmse", "max_abs_diff", "ref_sum", "cand_sum",
                    "sum_ratio"):
            c = check.get(fig)
            lines.append(f"| {fig} | {_fig(rec[fig], 10)} | "
                         f"{_fig(c['recorded'], 10) if c else '-'} | "
                         f"{_fig(c['rel_diff']) if c else '-'} | "
                         f"{c['agreement'] if c else '-'} |")
        lines.append("")
        if rec["id"] in plots:
            lines += [f"![divergence map]({plots[rec['id']]})", ""]
        if rec["worst"]:
            lines += [f"Worst pixels ({len(rec['worst'])} shown):", "",
                      "| rank | pixel | C | PyTorch | abs delta | rel delta | outside | traced |",
                      "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {w['rank']} | ({w['slow']}, {w['fast']}) | {w['ref']} | {w['cand']} "
                      f"| {_fig(w['abs_delta'])} | {_fig(w['rel_delta'])} | "
                      f"{'yes' if w['outside'] else 'no'} | "
                      f"{'yes' if (w['slow'], w['fast']) in traced else 'no'} |"
                      for w in rec["worst"]]
            lines.append("")
    return "\n".join(lines)


def prepare_outdir(outdir: Path, force: bool) -> None:
    """An empty report directory (an earlier report's files removed with ``force``)."""
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


#: Where the report command of commands.txt writes: the script's first argument, else
#: a new temporary directory, never the report it came with (so replaying it neither
#: collides with nor overwrites that report, and the script reads the same whichever
#: directory the report was written to).
REPLAY_OUTDIR = '"${1:-$(mktemp -d)}"'


def render_commands(loads: list[dict], report_argv: list[str], url_masked: str) -> str:
    """commands.txt: a POSIX shell script that replays the report from any directory,
    ``sh commands.txt [OUTDIR]``: the warehouse's absolute URL, the ingests that loaded
    its runs each in the directory it ran in (loading again adds nothing that is
    already there), then the report command into OUTDIR."""
    lines = ["# Commands that produced this report. Replay them from any directory with",
             "#   sh commands.txt [OUTDIR]",
             "# which runs the ingests again (a file already loaded is not loaded twice) "
             "and writes",
             "# the report anew into OUTDIR (default: a new temporary directory, never "
             "this one).",
             "# Warehouse" + (" (put the secrets masked as *** back to replay)"
                              if "***" in url_masked else "") + ":",
             f"TRACEDB_URL={shlex.quote(url_masked)}", "export TRACEDB_URL", "",
             "# Ingests that loaded the runs (from the warehouse's command log), each in "
             "the directory it ran in:"]
    if not loads:
        lines.append("# (none recorded: the runs were loaded by an older tracedb)")
    for r in loads:
        cmd = shlex.join(json.loads(r["argv"]))
        cwd = r.get("cwd")
        lines.append(f"# {r['started_at']}, tracedb {r['tracedb_version']}, {r['status']}")
        lines.append(f"(cd {shlex.quote(cwd)} && {cmd})" if cwd else cmd)
    argv = list(report_argv)
    at = argv.index("report") + 1 if "report" in argv[:-1] else None
    command = shlex.join(argv) if at is None else " ".join(
        [shlex.join(argv[:at]), REPLAY_OUTDIR, shlex.join(argv[at + 1:])]).rstrip()
    lines += ["", "# This report:", command, ""]
    return "\n".join(lines)


#: The libraries whose versions shaped a report (reading, arithmetic, plots, the
#: database driver), recorded in env/trace_env.json; null where not installed.
LIBRARIES = ("sqlalchemy", "alembic", "numpy", "pandas", "matplotlib", "psycopg", "zstandard")


def library_versions() -> dict:
    """{library: installed version or None} for :data:`LIBRARIES` (read from the
    installed packages' metadata, nothing imported)."""
    from importlib import metadata

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def render_env(data: ReportData) -> dict:
    import sys

    found = data.found
    sources = []
    for r in data.provenance:
        env = json.loads(r["env_json"]) if r["env_json"] else {}
        sources.append({
            "path": r["path"], "sha256": r["sha256"], "version": int(r["version"]),
            "run_id": int(r["run_id"]), "role": r["role"], "side": r["side"],
            "stamp": r["stamp"], "path_stamp": r["path_stamp"], "meta_stamp": r["meta_stamp"],
            "pixel": None if r["slow"] is None else [int(r["slow"]), int(r["fast"])],
            "bundle": r["bundle_path"],
            "git_sha": env.get("git_sha"), "git_branch": env.get("git_branch"),
        })
    return {
        "tracedb_version": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": sys.platform,
        "database": data.database,
        "libraries": library_versions(),
        "tolerance": {"rtol": found.rtol, "atol": found.atol,
                      "mode": "strict" if found.strict else "default",
                      "rule": TOLERANCE_RULE},
        "pairing": found.rows[0]["pairing"] if found.rows else None,
        "factor_model": data.model,
        "sources": sources,
    }


#: The path fields of the report's records (see :func:`portable_path`).
PATH_FIELDS = ("path", "ref_path", "cand_path", "bundle_path", "recorded_path")


def _portable(data: ReportData) -> ReportData:
    """``data`` with every path a report shows made portable (:func:`portable_path`)."""
    def fix(rows: list[dict]) -> list[dict]:
        return [{k: portable_path(v) if k in PATH_FIELDS else v for k, v in r.items()}
                for r in rows]

    return replace(data, found=replace(data.found, rows=fix(data.found.rows)),
                   provenance=fix(data.provenance), images=fix(data.images))


def write_report(outdir: Path, data: ReportData, generated: str, *, unicode: bool = False,
                 argv: list[str] | None = None, plots: bool = True, progress=None) -> Report:
    """Write every report file into ``outdir`` (see :func:`prepare_outdir`);
    ``progress(description, done, total)`` hears of each stage."""
    data = _portable(data)
    report = Report(outdir=outdir, set_id=data.found.set_id)
    fix = (lambda t: t) if unicode else asciify

    def put(rel: str, text: str) -> None:
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fix(text), encoding="utf-8", newline="\n")
        report.files.append(path)

    if plots and progress:
        progress(f"drawing plots of {len(data.found.rows)} pixel(s)", 0, None)
    drawn = draw_plots(outdir, data.found, data.diff, ascii_only=not unicode) if plots \
        else None
    if plots and drawn is None:
        report.notes.append("matplotlib is not installed: no plots "
                            "(pip install 'tracedb[plot]')")
    plot_files = drawn or PlotFiles()
    report.files += [outdir / rel for rel in plot_files.paths()]
    put("first_divergence.md", render_first_divergence(data, plot_files, generated))
    put("summary.md", render_summary(data, plot_files))
    by_cmp = by_comparison(data.diff)
    for done, s in enumerate(data.found.rows):
        if progress:
            progress("writing diff files", done, len(data.found.rows))
        put(f"diff_{pixel_name(s['pixel'], s['ref_run'], s['cand_run'])}.txt",
            render_diff(s, by_cmp.get(s["comparison_id"], [])))
    if data.images:
        image_plots: dict[int, str] = {}
        if drawn is not None:
            for rec in data.images:
                grid, block = data.image_maps.get(rec["id"], (None, 1))
                if grid is not None:
                    rel = f"plots/image_{rec['id']}.png"
                    plot_image_map(rec, grid, block, data.traced, outdir / rel,
                                   data.map_floor)
                    image_plots[rec["id"]] = rel
                    report.files.append(outdir / rel)
        put("images.md", render_images(data.images, image_plots, set(data.traced)))
    put("commands.txt", render_commands(data.loads, argv or ["tracedb", "report", str(outdir)],
                                        data.database["url"]))
    text = json.dumps(render_env(data), indent=2, sort_keys=True,
                      ensure_ascii=not unicode) + "\n"
    put("env/trace_env.json", text)
    return report
