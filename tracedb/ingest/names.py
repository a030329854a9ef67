"""What paths and metadata say about a trace: stamps, pixels in file names, sides in
folder and file names. Pure functions."""

from __future__ import annotations

import re

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
