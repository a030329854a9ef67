"""Pure parsing: trace text -> tap records.

Nothing here touches the database or the file system. ``parse_line`` turns one
line into zero or more :class:`Tap` records (or a pixel marker, or a reason for
quarantine); ``parse_text`` does that for a whole file and keeps line numbers.

A TRACE line is a line whose first non-blank characters are ``TRACE_`` or ``TRACE:``
(nanoBragg's own cell set-up prints, which name no side). The
shapes seen in real nanoBragg traces are documented in PRODUCT.md; each has one
small function below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

#: 2: name = value with blanks before =, comma lists, a trailing comma, loop indices
#: only when they count, template placeholders quarantined, name k=v k=v as labelled
#: numbers; 3: continuation lines, the pixel marker family, expression names, unit
#: words, side-by-side lines, TRACE: lines without a side
PARSER_VERSION = "3"

#: Lines longer than this are quarantined instead of parsed (a runaway print).
MAX_LINE_CHARS = 65536

TRACE_LINE = re.compile(r"^[ \t]*TRACE[_:]")
_PREFIX = re.compile(r"TRACE(?:_[A-Za-z0-9_]+|(?=:))")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_KV_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)=(.*)\Z", re.S)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\Z")
_SPECIAL = {
    "nan": "nan", "+nan": "nan", "-nan": "nan",
    "inf": "inf", "+inf": "inf", "infinity": "inf", "+infinity": "inf",
    "-inf": "-inf", "-infinity": "-inf",
}
_LABELLED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(\S+)\Z")
#: key=value components after a tap's name (TRACE_ROTATE:x_rotation ryy=0.99 ryz=0.08)
_LABELLED_EQ = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)\Z")
_SOURCE_INDEX = re.compile(r"(\d+)\s*:\s*(.*)\Z", re.S)
_GRID = re.compile(r"\[([-+\d,\s]+)\]\s*=\s*(.*)\Z", re.S)

# A pixel marker names the traced pixel as (slow, fast). Sentences: "tracing pixel
# (spixel=236, fpixel=398)" (TRACE_CONFIG), the PyTorch CLI's "Tracing pixel (slow=158,
# fast=147)", the trace script's "=== PyTorch Pixel Trace for (1792, 2048) ===",
# "Target pixel: (1792, 2048)" and "Target Pixel: (slow=512, fast=512)". Headers: a line
# that is only "pixel (s, f)" with a few marker words and decorations around it
# ("=== PIXEL (262, 368) TRACE START ===", "# Pixel: (slow=1, fast=2)"). A pixel in a
# sentence that says something about it ("Pixel (685, 1039) final intensity: 1.2",
# "Max intensity 3.1 at pixel (1, 2)", "# Pixel (0,0) - edge pixel") is not a marker.
_PAIR = (r"\(\s*(?:(spixel|fpixel|slow|fast)\s*=\s*)?(\d+)\s*,"
         r"\s*(?:(spixel|fpixel|slow|fast)\s*=\s*)?(\d+)\s*\)")
_MARKER_SENTENCE = re.compile(r"(?:tracing\s+pixel|pixel\s+trace\s+for|target\s+pixel:?)\s*"
                              + _PAIR, re.I)
_MARKER_WORDS = r"(?:target|trace[ds]?|tracing|begin|start|end|debug|section|for)"
_MARKER_HEADER = re.compile(
    rf"[\s=#*\-:>\[]*(?:{_MARKER_WORDS}\s+)*pixel\s*:?\s*{_PAIR}(?:\s+{_MARKER_WORDS})*"
    r"[\s=#*\-:<\]]*\Z", re.I)


def pixel_marker(text: str) -> tuple[int, int] | None:
    """The (slow, fast) pixel a marker line names, or None when it is not a marker."""
    if "ixel" not in text and "IXEL" not in text:
        return None
    m = _MARKER_SENTENCE.search(text) or _MARKER_HEADER.match(text)
    if m is None:
        return None
    first_label, first, second_label, second = m.groups()
    if (first_label or "").lower() in ("fast", "fpixel") \
            and (second_label or "").lower() in ("slow", "spixel"):
        first, second = second, first  # (fast=368, slow=262)
    return _pixel_number(first), _pixel_number(second)


def _pixel_number(digits: str) -> int:
    """A pixel number as written (decimal digits), however long: past 100 digits only
    the first 100 are read (int() stops at 4300). Whether it can be a pixel is the
    loader's question (``names.pixel_problem``); a marker stays a marker."""
    return int(digits[:100])


#: Keys of key=value records that index a loop rather than name a quantity.
INDEX_KEYS = frozenset({"phi_tic", "mos_tic", "source_tic", "thick_tic", "subpixel",
                        "source", "mos", "phi", "thick", "tic"})


class Component(NamedTuple):
    """One component of a tap value, as written and as read.

    The fields are in the order of the ``value`` table's columns after the key,
    so the loader builds a row as ``(run_id, key_id, idx) + component``.
    """

    label: str | None
    num: float | None  # None for strings, nan and infinities
    text: str  # as written
    kind: str  # "num", "nan", "inf", "-inf" or "text"
    digits: int | None = None  # significant digits as written (numbers only)
    half_ulp: float | None = None  # half a unit in the last significant digit


def _word(text: str, kind: str) -> Component:
    """A component that is not a finite number (a string, nan, inf, -inf)."""
    return Component(None, None, text, kind)


@dataclass(slots=True)
class Tap:
    side: str | None  # "c", "py" or None when the prefix does not say
    channel: str  # prefix with TRACE_ and the side removed: "", "PHI", "TAP5" ...
    name: str
    loop_key: str  # "" or e.g. "phi_tic=3", "0", "[0,0,1]"
    shape: str  # scalar, vector, labelled, matrix, list, tuple, text, free_text, event
    components: list[Component]
    unit: str | None = None  # the unit written after the value (a unit table symbol)
    raw: str = ""  # the value as written in the file


@dataclass(slots=True)
class Line:
    """What one TRACE line said."""

    line_no: int
    side: str | None = None
    taps: list[Tap] = field(default_factory=list)
    pixel: tuple[int, int] | None = None
    quarantine: str | None = None


@dataclass(slots=True)
class ParsedText:
    lines: list[Line]  # one per TRACE line or continuation line, in file order
    trace_lines: int  # lines of TRACE records, continuation lines included
    continuation_lines: int  # indented lines that continue a TRACE record
    markers: list[tuple[int, tuple[int, int]]]  # pixel markers outside TRACE lines
    warnings: list[str]  # "line N: message"


# --------------------------------------------------------------------------- numbers


def _precision(text: str) -> tuple[int, float]:
    """Significant digits as written and half a unit in the last one.

    ``text`` is a decimal number (checked by the caller). A number is read as
    having at least 6 significant digits (C's %g drops trailing zeros); an exact
    zero carries no precision (half_ulp 0).
    """
    s = text
    if s[0] in "+-":
        s = s[1:]
    cut = s.find("e")
    if cut < 0:
        cut = s.find("E")
    if cut >= 0:
        exp_text = s[cut + 1:]  # as the C twin does, a runaway exponent saturates
        exp = int(exp_text) if len(exp_text) <= 18 else \
            (-1 if exp_text[0] == "-" else 1) * (1 << 60)
        s = s[:cut]
    else:
        exp = 0
    point = s.find(".")
    if point >= 0:
        digits = s[:point] + s[point + 1:]
    else:
        digits, point = s, len(s)
    n = len(digits.lstrip("0"))
    if not n:
        return 0, 0.0
    # position of the first significant digit relative to the units digit
    adjusted = point - (len(digits) - n) - 1 + exp
    return n, 0.5 * 10.0 ** (adjusted - (n if n > 6 else 6) + 1)


_INF = float("inf")
_new = tuple.__new__  # builds a Component without the NamedTuple constructor's overhead


def number(text: str) -> Component | None:
    """Read one numeric token, or None when it is not a number."""
    if _NUMBER.match(text):
        value = float(text)
        if value == _INF or value == -_INF:  # overflow such as "1e999"
            return _word(text, "inf" if value > 0 else "-inf")
        digits, half_ulp = _precision(text)
        return _new(Component, (None, value, text, "num", digits, half_ulp))
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return _word(text, special)
    return None


def _labelled(label: str, comp: Component) -> Component:
    return _new(Component, (label, *comp[1:]))


class Value(NamedTuple):
    """A tap's value as read: its shape, components and the unit written after it."""

    shape: str
    components: list[Component]
    unit: str | None = None


#: Unit words written after a value (``0.9768 Angstroms``, ``0.1 m``, ``12.4 keV``) and
#: the unit table symbol each stands for. A word not listed leaves the value text.
UNIT_WORDS = {
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), "m"),
    "mm": "mm", **dict.fromkeys(("um", "µm", "micron", "microns"), "um"),
    "nm": "nm",
    **dict.fromkeys(("A", "Å", "Ang", "Angstrom", "Angstroms", "angstrom", "angstroms"), "A"),
    **dict.fromkeys(("A^-1", "1/A", "Å^-1", "Angstrom^-1"), "A^-1"),
    **dict.fromkeys(("m^-1", "1/m"), "m^-1"),
    **dict.fromkeys(("sr", "steradian", "steradians"), "sr"),
    **dict.fromkeys(("rad", "radian", "radians"), "rad"),
    **dict.fromkeys(("deg", "degree", "degrees", "°"), "deg"),
    "eV": "eV", "keV": "keV", "photons/m^2": "photons/m^2",
}


#: The text parse_value read last and its reading: the body shapes test a line's
#: value before the shape that reads it reads it again (``_expression`` lets ``name
#: v1 v2 ...`` through when its value is not text). Readings are never modified, so
#: the two may share one.
_LAST_VALUE: tuple[str, Value | None] = ("", None)


def parse_value(text: str) -> Value | None:
    """Read the value part of a tap: numbers (with a unit word after them), labelled
    numbers, a matrix or a string."""
    global _LAST_VALUE
    last = _LAST_VALUE
    if text == last[0]:
        return last[1]
    value = _parse_value(text)
    _LAST_VALUE = (text, value)
    return value


def _parse_value(text: str) -> Value | None:
    text = text.strip()
    if not text:
        return None
    parts = text.rsplit(None, 1)
    unit = UNIT_WORDS.get(parts[-1]) if len(parts) == 2 else None
    if unit is not None:  # 0.1 m, [1, 2] mm: the numbers, and the unit as the tap's
        value = _value(parts[0])
        if value.shape != "text":
            return Value(value.shape, value.components, unit)
    return _value(text)


def _value(text: str) -> Value:
    text = text.strip()
    if (text[0], text[-1]) in (("[", "]"), ("(", ")")) and len(text) >= 2:
        inner = text[1:-1]
        parts = [p for p in re.split(r"[;,\s]+", inner) if p]
        comps = [number(p) for p in parts]
        if parts and all(c is not None for c in comps):
            shape = "matrix" if ";" in inner else ("tuple" if text[0] == "(" else "list")
            return Value(shape, comps)  # type: ignore[arg-type]
    if text.endswith(",") and len(text) > 1:  # a trailing comma (dtype=torch.float64,)
        text = text[:-1].rstrip()
    tokens = text.split()
    comps = []
    for t in tokens:  # numbers, until a token is not one
        c = number(t)
        if c is None:
            break
        comps.append(c)
    else:
        return Value("scalar" if len(comps) == 1 else "vector", comps)
    if "," in text:  # numbers separated by commas, without brackets (1.0, 2.0, 3.0)
        comps = [number(p.strip()) for p in text.split(",")]
        if all(c is not None for c in comps):
            return Value("list", comps)  # type: ignore[arg-type]
    labelled = [_LABELLED.match(t) or _LABELLED_EQ.match(t) for t in tokens]
    if all(m is not None for m in labelled):
        out = []
        for m in labelled:
            c = number(m.group(2))  # type: ignore[union-attr]
            if c is None:
                break
            out.append(_labelled(m.group(1), c))  # type: ignore[union-attr]
        else:
            return Value("labelled", out)
    return Value("text", [_word(text, "text")])


# --------------------------------------------------------------------------- lines


def split_prefix(prefix: str) -> tuple[str | None, str]:
    """TRACE_C_PHI -> ("c", "PHI"); TRACE_PY -> ("py", ""); TRACE_CONFIG -> (None, "CONFIG");
    TRACE (of ``TRACE:``) -> (None, "")."""
    rest = prefix[len("TRACE_"):]
    head, _, tail = rest.partition("_")
    side = {"C": "c", "PY": "py"}.get(head.upper())
    if side is None:
        return None, rest
    return side, tail


def _pixel_of(values: list[str]) -> tuple[int, int] | None:
    if len(values) == 1 and values[0].startswith("(") and values[0].endswith(")"):
        values = [v for v in re.split(r"[,\s]+", values[0][1:-1]) if v]
    if len(values) == 2 and all(v.isdecimal() for v in values):
        return _pixel_number(values[0]), _pixel_number(values[1])
    return None


def _index_text(values: list[str]) -> str:
    joined = " ".join(values)
    if joined.startswith("(") and joined.endswith(")"):
        joined = joined[1:-1]
    return ",".join(p for p in re.split(r"[,\s]+", joined) if p)


_COUNT = re.compile(r"[-+]?\d+\Z")
#: a value written as a template's placeholder: ``k=<val>``, ``name <value>``
_PLACEHOLDER = re.compile(r"(?:(?<==)|(?<!\S))(<[A-Za-z_][A-Za-z0-9_. -]*>)(?=\s|,|\Z)")


def _is_index(key: str, vals: list[str]) -> bool:
    """A loop index: a loop's key (phi_tic, mos, source, ...) that counts, integers
    only; ``phi=0.05`` is a quantity named phi."""
    if key not in INDEX_KEYS and not key.endswith("_tic"):
        return False
    parts = _index_text(vals).split(",")
    return bool(vals) and all(_COUNT.match(p) for p in parts)


def _record(line: Line, side, channel, loop_key, groups) -> None:
    """Several named quantities on one line (key=value or key value records)."""
    index = []
    for key, vals in groups:
        if key == "pixel":
            pix = _pixel_of(vals)
            if pix is not None:
                line.pixel = pix
                continue
        if _is_index(key, vals):
            index.append(f"{key}={_index_text(vals)}")
    key_text = ";".join(([loop_key] if loop_key else []) + index)
    if index and all(k == "pixel" or _is_index(k, v) for k, v in groups):
        # only loop indices (phi_tic=1 mos_tic=0): the line marks a loop step
        text = " ".join(f"{k}={' '.join(v)}" for k, v in groups if k != "pixel")
        line.taps.append(Tap(side, channel, "index", key_text, "event",
                             [_word(text, "text")], raw=text))
        return
    for key, vals in groups:
        if key == "pixel" and line.pixel is not None:
            continue
        if _is_index(key, vals):
            continue
        parsed = parse_value(" ".join(vals))
        if parsed is None:
            line.quarantine = f"record key '{key}' has no value"
            line.taps.clear()
            return
        line.taps.append(Tap(side, channel, key, key_text, *parsed, raw=" ".join(vals)))


def _kv_groups(tokens: list[str]) -> list[tuple[str, list[str]]] | None:
    groups: list[tuple[str, list[str]]] = []
    for tok in tokens:
        m = _KV_TOKEN.match(tok)
        if m:
            groups.append((m.group(1), [m.group(2)] if m.group(2) else []))
        elif groups:
            groups[-1][1].append(tok)
        else:
            return None
    return groups


def _spaced_groups(tokens: list[str]) -> list[tuple[str, list[str]]] | None:
    """``pixel 2048 2048 subpixel 1 1 h -7.9`` -> [(pixel, [..]), (subpixel, [..]), (h, [..])].

    Only when every word is followed by at least one number; otherwise None.
    """
    groups: list[tuple[str, list[str]]] = []
    for tok in tokens:
        if number(tok) is not None:
            if not groups:
                return None
            groups[-1][1].append(tok)
        elif _IDENT.match(tok):
            groups.append((tok, []))
        else:
            return None
    if len(groups) < 2 or any(not vals for _, vals in groups):
        return None
    return groups


# The most common shapes, all-numeric values on the main channel, take a short
# path; anything it does not fully recognise goes through the general parser.
_FAST = re.compile(r"[ \t]*TRACE_(C|PY)(?::[ \t]*|[ \t]+)([A-Za-z_][A-Za-z0-9_.]*)"
                   r"(?:=|[ \t]+)([-+0-9.eE][-+0-9.eE \t]*)\Z")
_FAST_SIDE = {"C": "c", "PY": "py"}


def fast_shape(text: str) -> tuple[str, str, str, int] | None:
    """(side, name, value text, component count) of a common-shape line, else None."""
    m = _FAST.match(text)
    if m is None:
        return None
    prefix, name, raw = m.groups()
    if name == "pixel":
        return None
    raw = raw.strip()
    tokens = raw.split()
    for tok in tokens:
        try:  # the character class admits only digits, signs, '.', 'e' and 'E'
            float(tok)
        except ValueError:
            return None
    return _FAST_SIDE[prefix], name, raw, len(tokens)


def fast_components(raw: str) -> list[Component]:
    """The components of a common-shape value text (numbers only, checked before)."""
    comps = []
    for tok in raw.split():
        value = float(tok)
        if value == _INF or value == -_INF:
            comps.append(_word(tok, "inf" if value > 0 else "-inf"))
            continue
        digits, half_ulp = _precision(tok)
        comps.append(_new(Component, (None, value, tok, "num", digits, half_ulp)))
    return comps


def _fast(text: str, line_no: int) -> Line | None:
    shape = fast_shape(text)
    if shape is None:
        return None
    side, name, raw, n = shape
    return Line(line_no, side, [Tap(side, "", name, "", "scalar" if n == 1 else "vector",
                                    fast_components(raw), raw=raw)])


#: a tab before a second TRACE prefix: C and PyTorch side by side (a .tsv row)
_NEXT_PREFIX = re.compile(r"[ \t]*\t[ \t]*(?=TRACE[_:])")


def parse_line(text: str, line_no: int = 0) -> Line:
    """Parse one TRACE line (the caller has checked it starts with TRACE_ or TRACE:)."""
    if len(text) <= MAX_LINE_CHARS:
        fast = _fast(text, line_no)
        if fast is not None:
            return fast
    line = Line(line_no=line_no)
    if len(text) > MAX_LINE_CHARS:
        line.quarantine = f"line longer than {MAX_LINE_CHARS} characters ({len(text)})"
        return line
    stripped = text.strip()
    if "\t" in stripped:
        columns = _NEXT_PREFIX.split(stripped)
        if len(columns) > 1:  # TRACE_C: F_cell 100 <TAB> TRACE_PY: F_cell 100
            return _side_by_side(line, columns)
    m = _PREFIX.match(stripped)
    if m is None:
        line.quarantine = "no TRACE_ prefix"
        return line
    side, channel = split_prefix(m.group(0))
    line.side = side
    rest = stripped[m.end():]
    if rest.startswith("=") or (rest and rest[0] not in ": \t"):
        line.quarantine = "shell environment assignment or malformed prefix, not a tap"
        return line
    body = rest.lstrip(": \t").strip()
    if not body:
        # A bare prefix (TRACE_PY_TRICUBIC_GRID_START) marks an event in the trace.
        line.taps.append(Tap(side, channel, "event", "", "event",
                             [_word(m.group(0), "text")], raw=m.group(0)))
        return line

    _read_body(line, side, channel, body)
    return line


def _side_by_side(line: Line, columns: list[str]) -> Line:
    """One line holding a TRACE record per column: the taps of every column, each
    with the side its own prefix names; a column that cannot be read quarantines the
    line (with that column's reason)."""
    for number_, column in enumerate(columns, start=1):
        part = parse_line(column, line.line_no)
        if part.quarantine:
            line.taps.clear()
            line.quarantine = f"side-by-side line, column {number_}: {part.quarantine}"
            return line
        line.taps.extend(part.taps)
        line.pixel = line.pixel or part.pixel
    return line


def _read_body(line: Line, side, channel: str, body: str) -> None:
    """A TRACE line's body after its prefix (or a continuation line's text)."""
    marker = pixel_marker(body)
    if marker:
        line.pixel = marker
        return

    placeholders = _PLACEHOLDER.findall(body) if "<" in body else ()
    if placeholders:  # a line copied from notes: TRACE_C_PHI phi_tic=<idx> k=<val>
        line.quarantine = ("template placeholders instead of values ("
                           + ", ".join(dict.fromkeys(placeholders)) + ")")
        return

    loop_key = ""
    src = _SOURCE_INDEX.match(body)
    if src:  # TRACE_PY_SOURCE 0: wavelength_angstroms 0.97
        loop_key, body = src.group(1), src.group(2).strip()
        if not body:
            line.quarantine = "indexed TRACE line without a tap"
            return

    for shape in BODY_SHAPES:
        if shape(line, side, channel, loop_key, body):
            break


def is_indented(raw: str) -> bool:
    """An indented line with something on it (a continuation candidate)."""
    return raw[:1] in (" ", "\t") and bool(raw.strip(" \t\r"))


#: an arithmetic expression of named quantities: ``normalized * r_e^2 * fluence``
_OPERAND = r"[A-Za-z_][A-Za-z0-9_.^\[\]]*"
_ARITHMETIC = re.compile(rf"{_OPERAND}(?:\s+[-+*/]\s+{_OPERAND})+\Z")
_OPERATOR = re.compile(r"\s+[-+*/]\s+")


def continuation(head: Line, text: str, line_no: int, expression: str | None = None
                 ) -> tuple[Line, str | None]:
    """An indented line that continues the TRACE record ``head`` (TRACE_SIM_F_LATT:
    pixel=(1792,2048) Na=5.0 ... then ``  h_mean=... k_mean=...``): its taps take the
    record's side, channel and loop key.

    A worked calculation goes on over such lines (``TRACE: Intensity calculation
    chain:`` then ``normalized * r_e^2 * fluence``, ``= 8.53e+01 * 7.94e-30 *
    1.26e+29``, ``= 4.27e+01``): the expression is a text tap, and each ``= ...`` line
    is a tap named by it (its factors labelled by their names, then its value).
    ``expression`` is the chain's expression so far; the new one is returned with the
    line. A line that reads as no named value is quarantined."""
    line = Line(line_no=line_no, side=head.side)
    first = head.taps[0] if head.taps else None
    channel, loop_key = (first.channel, first.loop_key) if first else ("", "")
    body = text.strip()
    if len(text) > MAX_LINE_CHARS:
        line.quarantine = f"line longer than {MAX_LINE_CHARS} characters ({len(text)})"
        return line, None
    if _ARITHMETIC.match(body):
        line.taps.append(Tap(head.side, channel, "text", loop_key, "free_text",
                             [_word(body, "text")], raw=body))
        return line, body
    if body.startswith("=") and expression is not None:
        names = _OPERATOR.split(expression)
        values = [number(v) for v in _OPERATOR.split(body[1:].strip())]
        if all(v is not None for v in values) and len(values) in (1, len(names)):
            comps = values if len(values) == 1 else [
                _labelled(n, v) for n, v in zip(names, values, strict=True)]
            line.taps.append(Tap(head.side, channel, expression, loop_key,
                                 "scalar" if len(values) == 1 else "labelled",
                                 comps, raw=body[1:].strip()))  # type: ignore[arg-type]
            return line, expression
    _read_body(line, head.side, channel, body)
    if loop_key:
        for tap in line.taps:
            if not tap.loop_key:
                tap.loop_key = loop_key
    if not line.quarantine and not line.pixel and any(t.shape == "free_text"
                                                      for t in line.taps):
        line.taps.clear()
        line.quarantine = ("continuation of a TRACE record with no named value (worked "
                           "arithmetic or prose)")
    return line, None


# Each shape of a line's body after the prefix (and a source index) is one function:
# it adds taps (or a pixel, or a quarantine reason) to ``line`` and returns True, or
# returns False when the body is not its shape. BODY_SHAPES tries them in order.


def _grid_entry(line: Line, side, channel: str, loop_key: str, body: str) -> bool:
    """TRACE_PY_TRICUBIC: [0,0,1]=147.1"""
    grid = _GRID.match(body)
    if not grid:
        return False
    parsed = parse_value(grid.group(2))
    if parsed is None:
        line.quarantine = "grid entry without a value"
        return True
    idx = "[" + ",".join(p.strip() for p in grid.group(1).split(",")) + "]"
    key = ";".join(k for k in (loop_key, idx) if k)
    line.taps.append(Tap(side, channel, (channel or "value").lower(), key, *parsed,
                         raw=grid.group(2).strip()))
    return True


def _key_value(line: Line, side, channel: str, loop_key: str, body: str) -> bool:
    """name=value, and key=value records (phi_tic=3 phi_deg=0.03 k_frac=-0.59)."""
    tokens = body.split()
    kv = _KV_TOKEN.match(tokens[0])
    if not kv:
        return False
    groups = _kv_groups(tokens)
    if groups is not None and len(groups) > 1:
        _record(line, side, channel, loop_key, groups)
        return True
    name = kv.group(1)
    value_text = body[body.index("=") + 1:]
    if name == "pixel" and _pixel_of(value_text.split()):
        line.pixel = _pixel_of(value_text.split())
        return True
    parsed = parse_value(value_text)
    if parsed is None:
        line.quarantine = f"tap '{name}' has no value"
        return True
    line.taps.append(Tap(side, channel, name, loop_key, *parsed, raw=value_text.strip()))
    return True


_SPACED_EQUALS = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)[ \t]+=[ \t]*(.*)\Z", re.S)


def _name_equals_value(line: Line, side, channel: str, loop_key: str, body: str) -> bool:
    """name = value, with blanks before the = (TRACE_PY: F_cell = 1.000000000000000e+02):
    read as name=value, not as a name whose value is the text "= ..."."""
    m = _SPACED_EQUALS.match(body)
    if not m:
        return False
    return _key_value(line, side, channel, loop_key, f"{m.group(1)}={m.group(2)}")


#: an = that assigns (not part of ==, <=, >= or !=), with the blanks around it
_ASSIGN = re.compile(r"\s*(?<![<>!=])=(?!=)\s*")
#: a one-word name that is an expression: -Fbeam*fdet_vector[1], pixel(512,512)_position
_EXPRESSION_NAME = re.compile(r"[-+]?[A-Za-z_|][^\s=]*[-+*/^()\[\]|][^\s=]*\Z")


def _leading_value(text: str) -> tuple[str, str] | None:
    """``[1, 2, 3] |a|`` -> ("[1, 2, 3]", "|a|"); ``24682.3, V_star`` -> ("24682.3",
    "V_star"): the value at the start of the text and the name after it, or None."""
    if text[:1] in "[(":
        close = text.find("]" if text[0] == "[" else ")")
        if close < 0:
            return None
        lead, rest = text[:close + 1], text[close + 1:]
    else:
        tokens = text.split()
        n = 0
        while n < len(tokens) and number(tokens[n].rstrip(",")) is not None:
            n += 1
        if n < len(tokens) and n and tokens[n].rstrip(",") in UNIT_WORDS:
            n += 1
        if not n:
            return None
        lead, rest = " ".join(tokens[:n]), " ".join(tokens[n:])
    value = parse_value(lead.rstrip(","))
    if value is None or value.shape == "text":
        return None
    return lead.rstrip(","), rest.strip().lstrip(",").strip()


def _expression(line: Line, side, channel: str, loop_key: str, body: str) -> bool:
    """A name that is not an identifier, kept as written (it is how the program
    labelled the quantity): ``a_star (raw) = [..]``, ``a = [..] |a| = 26.75`` (two
    taps), ``V_star = a_star . (b_star x c_star) = 4.05e-05``, ``-Fbeam*fdet_vector[1]
    -0.00337``, ``pixel(512,512)_position=[..]``."""
    tokens = body.split()
    if _IDENT.match(tokens[0]) and len(tokens) > 1:
        spaced = _SPACED_EQUALS.match(body)
        rest = parse_value(spaced.group(2) if spaced else body[len(tokens[0]):])
        if rest is not None and rest.shape != "text":
            return False  # name [=] v1 v2 ..., name k=v k=v: the shapes after this read it
    items: list[tuple[str, str]] = []
    if _ASSIGN.search(body):
        cuts = list(_ASSIGN.finditer(body))
        name_start, name_end = 0, cuts[0].start()
        for cut, following in zip(cuts, [*cuts[1:], None], strict=True):
            segment = body[cut.end():following.start() if following else len(body)]
            if following is None:
                items.append((body[name_start:name_end], segment))
                break
            split = _leading_value(segment)
            if split is None or not split[1]:  # part of the name: V_cell = 1/V_star = ..
                name_end = following.start()
                continue
            items.append((body[name_start:name_end], split[0]))
            name_start = following.start() - len(split[1])
            name_end = following.start()
    elif _EXPRESSION_NAME.match(tokens[0]) and len(tokens) > 1:
        items.append((tokens[0], body[len(tokens[0]):]))
    else:
        return False
    values = [(name.strip(), parse_value(text), text.strip()) for name, text in items]
    if any(not name or v is None or v.shape == "text" for name, v, _t in values):
        return False
    for name, value, text in values:
        line.taps.append(Tap(side, channel, name, loop_key, *value, raw=text))
    return True


def _name_values(line: Line, side, channel: str, loop_key: str, body: str) -> bool:
    """name v1 v2 ..., and spaced records (pixel 0 0 / name v name v)."""
    tokens = body.split()
    first = tokens[0]
    if not _IDENT.match(first) or body.endswith(":"):  # a heading ("Cross products:")
        return False
    values = tokens[1:]
    if not values:
        line.quarantine = f"tap '{first}' has no value"
        return True
    groups = _spaced_groups(tokens)
    if groups is not None:
        _record(line, side, channel, loop_key, groups)
        return True
    if first == "pixel" and _pixel_of(values):
        line.pixel = _pixel_of(values)
        return True
    value_text = body[len(first):]
    if value_text.lstrip()[:1] in ("*", "/", "="):  # "normalized * r_e^2": arithmetic
        return False
    parsed = parse_value(value_text)
    line.taps.append(Tap(side, channel, first, loop_key, *parsed,  # type: ignore[misc]
                         raw=value_text.strip()))
    return True


def _bare(line: Line, side, channel: str, loop_key: str, body: str) -> bool:
    """No name: a bare value (TRACE_PY_TRICUBIC_L_COORDS: [-1.0, 0.0]) or free text."""
    parsed = parse_value(body)
    assert parsed is not None
    if parsed[0] != "text":
        line.taps.append(Tap(side, channel, (channel or "value").lower(), loop_key, *parsed,
                             raw=body))
    else:
        line.taps.append(Tap(side, channel, "text", loop_key, "free_text", parsed[1],
                             raw=body))
    return True


BODY_SHAPES = (_grid_entry, _key_value, _expression, _name_equals_value, _name_values, _bare)


def parse_text(text: str) -> ParsedText:
    """Parse a whole file's text. Line numbers are 1-based, as editors show them.

    The pure-Python reading of what the loader does (``ingest.rows.scan_text``):
    every TRACE line, the indented lines that continue a record, pixel markers."""
    lines: list[Line] = []
    markers: list[tuple[int, tuple[int, int]]] = []
    warnings: list[str] = []
    trace_lines = continuation_lines = 0
    head: Line | None = None  # the record the line above belongs to
    expression: str | None = None  # of a worked calculation in that record
    for no, raw in enumerate(split_lines(text), start=1):
        if TRACE_LINE.match(raw):
            trace_lines += 1
            parsed = parse_line(raw, no)
            if parsed.quarantine and len(raw) > MAX_LINE_CHARS:
                warnings.append(f"line {no}: {parsed.quarantine}; kept in quarantine")
            lines.append(parsed)
            head, expression = (None if parsed.quarantine else parsed), None
        elif head is not None and is_indented(raw):
            continuation_lines += 1
            line, expression = continuation(head, raw, no, expression)
            lines.append(line)
        else:
            head = None
            marker = pixel_marker(raw)
            if marker:
                markers.append((no, marker))
    return ParsedText(lines=lines, trace_lines=trace_lines + continuation_lines,
                      continuation_lines=continuation_lines, markers=markers,
                      warnings=warnings)


def split_lines(text: str) -> list[str]:
    """Split on newlines only (CRLF tolerated), so numbers match what editors show."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" not in text:
        return lines
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


_ANY_TRACE = re.compile(r"^[ \t]*TRACE[_:]", re.M)


def is_trace_text(text: str) -> bool:
    return _ANY_TRACE.search(text) is not None
