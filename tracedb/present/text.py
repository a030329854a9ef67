"""Text helpers shared by every renderer: numbers, Markdown cells, tap labels, ASCII."""

from __future__ import annotations

import unicodedata

from ..compare.results import SIDE_LABEL as SIDE

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


def g(v, digits: int = 6) -> str:
    """A number in ``%g`` style (``-`` for none)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def num(v, digits: int = 6) -> str:
    """A number in ``%g`` style, empty for none (table cells)."""
    return "" if v is None else f"{v:.{digits}g}"


def md_cell(text) -> str:
    text = "" if text is None else str(text)
    return text.replace("|", "\\|").replace("\n", " ")


def code(text) -> str:
    text = "" if text is None else str(text)
    return f"`{text}`" if "`" not in text else f"``{text}``"


def clip(text, n: int = 60) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def pixel_text(pixel) -> str:
    """``s,f`` (``?`` for an unknown pixel)."""
    return "?" if pixel is None else f"{pixel[0]},{pixel[1]}"


def pixel_name(pixel, ref_run: int, cand_run: int) -> str:
    """File-name stem from integers only."""
    if pixel is None:
        return f"runs_{int(ref_run)}_{int(cand_run)}"
    return f"pixel_{int(pixel[0])}_{int(pixel[1])}"


def pixel_title(pixel) -> str:
    return "unknown pixel" if pixel is None else f"({int(pixel[0])}, {int(pixel[1])})"


def tap_label(tap, loop_key=None, occurrence=None, channel=None) -> str:
    label = str(tap)
    if channel:
        label = f"{channel}:{label}"
    if loop_key:
        label += f"[{loop_key}]"
    if occurrence is not None and int(occurrence) > 1:
        label += f"#{int(occurrence)}"
    return label


def row_label(r: dict) -> str:
    """Label of a tap_diff / rollup row."""
    return tap_label(r["tap"], r["loop_key"], r["occurrence"], r["channel"])


def first_label(s: dict) -> str:
    """Label of a summary's first divergence."""
    return tap_label(s["first_tap"], s["first_loop_key"], s["first_occurrence"],
                     s["first_channel"])


def is_first(r: dict, s: dict) -> bool:
    """Whether tap_diff row ``r`` is the first divergence of summary ``s``."""
    return r["tap"] == s["first_tap"] and r["loop_key"] == s["first_loop_key"] \
        and r["channel"] == s["first_channel"] and r["occurrence"] == s["first_occurrence"]


#: What a summary whose run is missing says in place of its first divergence.
MISSING_RUN_TEXT = {"missing_ref": "no ref run", "missing_cand": "no cand run"}


def run_desc(side, run, stamp, path) -> str:
    if run is None:
        return "none: no run of this pixel"
    return f"run {int(run)}, {SIDE.get(side, side or '?')} @ {stamp or 'no stamp'}, {path}"


def ref_desc(r: dict) -> str:
    return run_desc(r["ref_side"], r["ref_run"], r["ref_stamp"], r["ref_path"])


def cand_desc(r: dict) -> str:
    return run_desc(r["cand_side"], r["cand_run"], r["cand_stamp"], r["cand_path"])


def short_run(side, run, stamp) -> str:
    """``12 c@20251010T053711Z`` (``-`` for no stamp, ``unknown`` for no side, ``none``
    for a missing run)."""
    return "none" if run is None else f"{run} {side or 'unknown'}@{stamp or '-'}"
