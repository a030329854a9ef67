"""What paths and metadata say about a trace: stamps, pixels in file names, sides in
folder and file names. Pure functions."""

from __future__ import annotations

import json
import re

from ..store.layout import INT_MAX

STAMP = re.compile(r"\d{8}T\d{6}Z")


def stamp_in(text: str) -> str | None:
    """The last YYYYMMDDTHHMMSSZ stamp in a path segment or string, if any."""
    found = STAMP.findall(text)
    return found[-1] if found else None


_ISO = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T ](\d{2}):?(\d{2}):?(\d{2})")


def normalize_stamp(value: object) -> str | None:
    """'20251010T055812Z' or '2025-10-08T06:22:40.75Z' -> 'YYYYMMDDTHHMMSSZ'."""
    if not isinstance(value, str):
        return None
    m = STAMP.search(value)
    if m:
        return m.group(0)
    iso = _ISO.search(value)
    if iso:
        return "{}{}{}T{}{}{}Z".format(*iso.groups())
    return None


_PIXEL_NAME = re.compile(r"pixel_?(\d+)_(\d+)")

#: Pixel numbers run from 0 to what the schema's pixel columns hold.
PIXEL_MAX = INT_MAX


def pixel_problem(pixel: tuple) -> str | None:
    """Why ``(slow, fast)`` cannot be stored as a pixel, or None when it can: each
    must be an integer (not a bool, float or string) from 0 to PIXEL_MAX."""
    problems = [f"{_shown(v)} is a bool" if isinstance(v, bool)
                else f"{_shown(v)} is not an integer" if type(v) is not int
                else f"{_shown(v)} is outside 0..{PIXEL_MAX}" for v in pixel
                if type(v) is not int or not 0 <= v <= PIXEL_MAX]
    return "; ".join(problems) or None


def pixel_text(pixel: tuple) -> str:
    """``(slow, fast)`` as a note shows it, whatever its numbers are."""
    return f"({', '.join(_shown(v) for v in pixel)})"


def _shown(v: object) -> str:
    """A pixel number as the note shows it: as JSON writes it, a missing one as
    'missing', a long one cut short."""
    if type(v) is int:
        digits = str(abs(v))  # JSON and markers give at most 4300 digits (str's limit)
        return v.__repr__() if len(digits) <= 20 else f"{'-' if v < 0 else ''}{digits[:20]}..."
    if v is None:
        return "missing"
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


def pixel_from_name(name: str) -> tuple[int, int] | None:
    """pixel_1792_2048.log, c_trace_pixel_64_79.log -> (slow, fast)."""
    m = _PIXEL_NAME.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def side_from_path(parts: list[str]) -> str | None:
    """c_traces/..., py_traces/..., trace_py_*.log, c_trace.txt -> side, deepest part first."""
    for part in reversed(parts):
        low = part.lower()
        tokens = re.split(r"[^a-z0-9]+", low)
        has_c = "c" in tokens
        has_py = "py" in tokens or "pytorch" in tokens or "torch" in tokens
        if has_c != has_py:
            return "c" if has_c else "py"
    return None
