"""Walk trees and group what is found into bundles. No parsing of trace content.

A *bundle* is one capture directory: the nearest directory whose name holds a
stamp (``20251010T053711Z``, also ``fix_20251008T180356Z``); failing that, the
nearest directory holding ``commands.txt`` or env metadata; failing that, the
trace file's directory (or its parent when the directory is a ``c_traces``-like
side folder).

A *trace file* is any non-Markdown, non-JSON text file with at least one line
whose first non-blank characters are ``TRACE_``. ``commands.txt`` is the
bundle's command log and Markdown files are its notes, never trace captures.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .parse import _STAMP, is_trace_text

BINARY_SNIFF = 8192
_SIDE_DIR = re.compile(r"^(c|py|pytorch)(_|$)", re.I)
_ENV_NAMES = {"env.json", "trace_env.json"}


@dataclass(slots=True)
class Note:
    path: str
    message: str
    line: int | None = None
    level: str = "note"  # note (skipped, expected) / warning / error

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(slots=True)
class TraceFile:
    path: Path  # resolved
    display: str
    metadata_path: Path | None = None


@dataclass(slots=True)
class BundlePlan:
    directory: Path
    display: str
    stamp: str | None
    initiative: str | None
    phase: str | None
    trace_files: list[TraceFile] = field(default_factory=list)
    commands_files: list[Path] = field(default_factory=list)
    env_files: list[Path] = field(default_factory=list)
    note_files: list[Path] = field(default_factory=list)


@dataclass(slots=True)
class Discovery:
    bundles: list[BundlePlan]
    files: int
    notes: list[Note]  # skipped files and problems found while walking
    missing: list[str]


def _display(root: Path, root_display: str, path: Path) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path.as_posix()
    return Path(os.path.normpath(os.path.join(root_display, rel))).as_posix()


def _has_bundle_metadata(d: Path) -> bool:
    return ((d / "commands.txt").is_file() or (d / "env.json").is_file()
            or (d / "trace_env.json").is_file() or (d / "env").is_dir())


STAMP_LEVELS = 6  # how far up a stamped directory is looked for
META_LEVELS = 3  # how far up a directory with commands.txt or env metadata is looked for


def bundle_dir(d: Path, root: Path | None = None) -> Path:
    """The bundle directory that owns directory ``d``.

    Independent of where an ingest starts (``root`` is accepted and ignored), so
    the same file lands in the same bundle whether its tree or its folder is named.
    """
    chain = [d, *list(d.parents)[:STAMP_LEVELS]]
    for c in chain:
        if _STAMP.search(c.name):
            return c
    for c in chain[:META_LEVELS + 1]:
        if _has_bundle_metadata(c):
            return c
    if _SIDE_DIR.match(d.name) and d.parent != d:
        return d.parent
    return d


def _initiative_phase(directory: Path) -> tuple[str | None, str | None]:
    parts = directory.parts
    idx = [i for i, p in enumerate(parts) if p == "reports"]
    if not idx:
        return None, None
    i = idx[-1]
    rest = list(parts[i + 1:])
    initiative = rest[0] if rest and not _STAMP.search(rest[0]) else None
    phase = rest[1] if len(rest) > 1 and not _STAMP.search(rest[1]) else None
    return initiative, phase


def _metadata_for(path: Path, names: set[str] | None = None) -> Path | None:
    """The per-trace metadata JSON beside ``path`` (``names``: its folder's file names,
    when known, spare a stat per candidate)."""
    stem = path.stem
    for cand in (f"{stem}_metadata.json", f"{stem}.json", f"{stem}_meta.json",
                 f"{stem}_per_phi.json"):
        if names is not None:  # the folder's files, as listed a moment ago
            if cand in names:
                return path.with_name(cand)
            continue
        p = path.with_name(cand)
        if p.is_file():
            return p
    return None


_TRACE_BYTES = re.compile(rb"^[ \t]*TRACE_", re.M)  # is_trace_text, on undecoded bytes


def classify(path: Path | str) -> tuple[str, str | None]:
    """('trace' | 'text' | 'binary' | 'empty' | 'error', message)."""
    try:
        with open(path, "rb", buffering=0) as fh:
            head = fh.read(BINARY_SNIFF)
            if not head:
                return "empty", "empty file, nothing to load"
            if b"\0" not in head and _TRACE_BYTES.search(head):
                return "trace", None  # a TRACE line near the top: no need to read on
            data = head + fh.readall() if b"\0" not in head else head
            if b"\0" in head:
                # NUL bytes mean binary, unless the file holds TRACE lines (a trace
                # with a stray NUL is loaded; the loader names the line)
                data = head + fh.readall()
                if not is_trace_text(data.decode("utf-8", errors="replace")):
                    return "binary", "binary file skipped"
                return "trace", None
    except OSError as exc:
        return "error", f"cannot read: {exc.strerror or exc}"
    text = data.decode("utf-8", errors="replace")
    return ("trace", None) if is_trace_text(text) else ("text", None)


def _walk(top: str, onerror):
    """Like os.walk (top-down, symlinked folders listed but not entered), in name
    order, hidden entries left out: (folder, [(file name, is a file)])."""
    try:
        with os.scandir(top) as it:
            entries = [e for e in it if not e.name.startswith(".")]
    except OSError as exc:
        onerror(exc)
        return
    dirs, files = [], []
    for e in entries:
        try:
            is_dir = e.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not e.is_symlink():
                dirs.append(e.name)
            continue
        try:
            files.append((e.name, e.is_file()))
        except OSError:
            files.append((e.name, False))
    files.sort()
    yield top, files
    for name in sorted(dirs):
        yield from _walk(os.path.join(top, name), onerror)


def discover(paths: list[str]) -> Discovery:
    bundles: dict[Path, BundlePlan] = {}
    notes: list[Note] = []
    missing: list[str] = []
    files = 0
    meta_files: list[tuple[Path, Path, str, str]] = []  # (file, root, root_display, kind)

    owner: dict[Path, Path] = {}  # directory -> its bundle directory

    def plan_for(directory: Path, root: Path, root_display: str) -> BundlePlan:
        b = owner.get(directory)
        if b is None:
            b = owner[directory] = bundle_dir(directory, root)
        plan = bundles.get(b)
        if plan is None:
            initiative, phase = _initiative_phase(b)
            plan = BundlePlan(directory=b, display=_display(root, root_display, b),
                              stamp=(_STAMP.findall(b.name) or [None])[-1],
                              initiative=initiative, phase=phase)
            bundles[b] = plan
        return plan

    for given in paths:
        p = Path(given)
        if not p.exists():
            missing.append(given)
            continue
        listed = True  # the folder's names are all known (a walked folder)
        if p.is_file():
            root, root_display = p.resolve().parent, str(Path(given).parent)
            candidates = [(str(root), [(p.name, p.resolve().is_file())])]
            listed = False  # a named file: its metadata JSON is looked up on disk
        else:
            root, root_display = p.resolve(), given.rstrip("/") or "/"
            candidates = _walk(str(root), lambda e: notes.append(
                Note(str(e.filename), f"cannot list directory: {e.strerror}", level="error")))
        for dir_path, entries in candidates:
            directory = Path(dir_path)
            in_dir = {name for name, is_file in entries if is_file}
            dir_display = _display(root, root_display, directory)
            prefix = "" if dir_display == "." else dir_display.rstrip("/") + "/"
            in_env = directory.name == "env"
            for name, is_file in entries:
                if not is_file:
                    continue
                files += 1
                low = name.lower()
                if low.endswith(".json") and not in_env and low not in _ENV_NAMES:
                    continue  # per-trace metadata, read with its trace file
                f = directory / name
                display = prefix + name
                if low.endswith(".md"):
                    meta_files.append((f, root, root_display, "note"))
                    continue
                if low == "commands.txt":
                    meta_files.append((f, root, root_display, "commands"))
                    continue
                if low in _ENV_NAMES or in_env:
                    meta_files.append((f, root, root_display, "env"))
                    if low.endswith(".json") or low.endswith(".txt"):
                        continue
                kind, message = classify(f)
                if kind == "trace":
                    plan = plan_for(directory, root, root_display)
                    plan.trace_files.append(TraceFile(
                        f, display, _metadata_for(f, in_dir if listed else None)))
                elif kind in ("binary", "empty"):
                    notes.append(Note(display, message or kind))
                elif kind == "error":
                    notes.append(Note(display, message or "cannot read", level="error"))

    # Bundle metadata is attached only to bundles that hold trace files.
    for f, root, _root_display, kind in meta_files:
        b = bundle_dir(f.parent, root)
        plan = bundles.get(b)
        if plan is None:
            continue
        {"note": plan.note_files, "commands": plan.commands_files,
         "env": plan.env_files}[kind].append(f)
    # A bundle directory above the ingest root still has its own metadata.
    for plan in bundles.values():
        d = plan.directory
        for name, bucket in (("commands.txt", plan.commands_files),
                             ("env.json", plan.env_files), ("trace_env.json", plan.env_files)):
            if (d / name).is_file() and (d / name) not in bucket:
                bucket.append(d / name)
        if (d / "env").is_dir():
            for e in sorted((d / "env").iterdir()):
                if e.is_file() and e not in plan.env_files:
                    plan.env_files.append(e)
    ordered = [bundles[k] for k in sorted(bundles)]
    for plan in ordered:
        plan.trace_files.sort(key=lambda t: t.path.parts)
        for bucket in (plan.commands_files, plan.env_files, plan.note_files):
            bucket.sort()
    return Discovery(bundles=ordered, files=files, notes=notes, missing=missing)
