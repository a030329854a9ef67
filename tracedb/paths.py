"""Paths as tracedb shows them to people and writes them into files meant to travel
(reports, curation files): never this machine's absolute path."""

from __future__ import annotations

from pathlib import PurePosixPath


def portable_path(path: str | None) -> str | None:
    """A file's path as a report shows it, never this machine's absolute path: a path
    the ingest was given relative to where it ran (``reports/ini/...``) as it is;
    an absolute one, or one that climbs out with ``..``, from its last folder named
    ``reports`` (the root of a campaign tree, ``reports/<initiative>/<phase>/...``),
    else its last three parts after ``.../``."""
    if path is None:
        return None
    pure = PurePosixPath(path)
    if not pure.is_absolute() and ".." not in pure.parts:
        return path
    parts = [p for p in pure.parts if p not in ("/", "..", ".")]
    if "reports" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("reports"):])
    return ".../" + "/".join(parts[-3:])


def same_file(stored: str, portable: str) -> bool:
    """Whether ``portable`` (:func:`portable_path` of some path) can name the stored
    path ``stored``: the same path, or its end."""
    tail = portable[4:] if portable.startswith(".../") else portable
    return stored == portable or stored.endswith("/" + tail)
