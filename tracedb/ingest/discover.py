"""Walk trees and group what is found into bundles. No parsing of trace content.

A *bundle* is one capture directory: the nearest directory whose name holds a
stamp (``20251010T053711Z``, also ``fix_20251008T180356Z``); failing that, the
nearest directory holding ``commands.txt`` or env metadata; failing that, the
trace file's directory (or its parent when the directory is a ``c_traces``-like
side folder).

A *trace file* is any non-Markdown, non-JSON text file with at least one line
whose first non-blank characters are ``TRACE_`` or ``TRACE:``, or a JSON file whose
content is a trace (``jsontaps.sniff``; other JSON is metadata). ``commands.txt`` is the
bundle's command log and Markdown files are its notes, never trace captures.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .names import STAMP
from .parse import is_trace_text

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
    json: bool = False  # a trace written as JSON (ingest/jsontaps.py)


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
    #: image and numeric results files (``ingest.images``): (path, display, bundle display)
    evidence: list[tuple[Path, str, str]] = field(default_factory=list)


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
        if STAMP.search(c.name):
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
    initiative = rest[0] if rest and not STAMP.search(rest[0]) else None
    phase = rest[1] if len(rest) > 1 and not STAMP.search(rest[1]) else None
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


_METRICS_NAME = re.compile(r"^(summary|(.*[_-])?metrics([_-].*)?)\.json$", re.I)
#: A side in an image's name: C (c, golden) or PyTorch (py, pytorch, torch).
IMAGE_SIDE = re.compile(r"(?<![A-Za-z0-9])(c|golden|py|pytorch|torch)(?![A-Za-z0-9])", re.I)


def evidence_kind(name: str) -> str | None:
    """'image' (``.npy``; a raw ``.bin`` floatimage whose name has a side, ``c_*.bin``),
    'metrics' (``*_metrics.json``, ``metrics*.json``, ``summary.json``) or None: the
    files ``ingest.images`` loads (other ``.bin`` files are classified as ever)."""
    low = name.lower()
    if low.endswith(".npy") and len(name) > 4 or low.endswith(".bin") \
            and IMAGE_SIDE.search(name[:-4]):
        return "image"
    if _METRICS_NAME.match(name):
        return "metrics"
    return None


_TRACE_BYTES = re.compile(rb"^[ \t]*TRACE[_:]", re.M)  # is_trace_text, on undecoded bytes


def classify(path: Path | str) -> tuple[str, str | None]:
    """('trace' | 'text' | 'binary' | 'empty' | 'error', message)."""
    try:
        with _open_regular(path) as fh:
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


def _special(mode: int) -> str:
    """What a file that is neither a regular file nor a folder is."""
    return ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")


def _open_regular(path: Path | str):
    """A regular file opened for reading (unbuffered). It is opened without blocking
    and checked, so a FIFO or device found where a file was is refused, never waited
    on (OSError, its strerror saying what it is)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{_special(mode)}, not a regular file")
        return open(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


#: What a file's encoding is recorded as when undecodable bytes were replaced.
REPLACED = "utf-8 (invalid bytes replaced)"


def decode_utf8(data: bytes, display: str, notes: list[Note]) -> tuple[str, bool]:
    """``data`` as UTF-8 text, and whether undecodable bytes were replaced (a warning
    note names the file and the line of the first)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        notes.append(Note(display, f"invalid UTF-8 at byte {exc.start}; undecodable "
                                   "bytes replaced (raw file kept)", line, level="warning"))
        return data.decode("utf-8", errors="replace"), True


def read_regular(path: Path | str) -> bytes:
    """A regular file's bytes (see :func:`_open_regular`: never waits on a FIFO)."""
    with _open_regular(path) as fh:
        return fh.readall()


def _within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies under it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass(slots=True)
class _Walk:
    """How a tree is walked: whether links that leave it are followed, and the real
    paths of the folders walked from (the tree, and each followed link's target)."""

    follow_links: bool
    walked: list[str]
    onerror: Callable[[OSError], None]


def _link(path: str, folder_real: str, walk: _Walk) -> tuple[str, object]:
    """What to do with a symbolic link in a walked folder (see :func:`_walk`)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "other", ("symbolic link loop; skipped", "warning")
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "other", (f"dangling symbolic link (to {os.readlink(path)}); skipped",
                             "warning")
        return "other", (f"cannot follow symbolic link: {exc.strerror or exc}", "error")
    is_dir = stat.S_ISDIR(mode)
    if not is_dir and not stat.S_ISREG(mode):
        return "other", (f"symbolic link to {_special(mode)}; skipped", "note")
    target = os.path.realpath(path)
    if is_dir and _within(folder_real, target):
        return "other", (f"symbolic link to {target}, a folder above it (a loop); "
                         "not followed", "note")
    if any(_within(target, w) for w in walk.walked):
        return "other", (f"symbolic link to {target}, which this ingest walks anyway; "
                         "not followed", "note")
    if not walk.follow_links:
        return "other", (f"symbolic link out of the tree (to {target}); not followed "
                         "(--follow-links follows it)", "note")
    if is_dir:
        walk.walked.append(target)
        return "dir", target
    return "file", None


def _walk(top: str, real: str, walk: _Walk):
    """Like os.walk (top-down), in name order, hidden entries left out: (folder, [(file
    name, True)], [(name, message, note level)] for what is not loaded: FIFOs, sockets,
    devices, and symbolic links that are broken, loop, point into what this ingest walks
    anyway, or leave the tree while ``walk.follow_links`` is off). ``real`` is the
    folder's real path (it differs from ``top`` under a followed link)."""
    try:
        with os.scandir(top) as it:
            entries = [e for e in it if not e.name.startswith(".")]
    except OSError as exc:
        walk.onerror(exc)
        return
    dirs: list[tuple[str, str]] = []
    files: list[tuple[str, bool]] = []
    others: list[tuple[str, str, str]] = []
    for e in entries:
        try:
            if e.is_symlink():
                kind, detail = _link(e.path, real, walk)
            elif e.is_dir(follow_symlinks=False):
                kind, detail = "dir", os.path.join(real, e.name)
                if detail in walk.walked:  # the target of a link followed before
                    kind, detail = "other", ("folder already walked through a symbolic "
                                             "link; not walked again", "note")
            elif e.is_file(follow_symlinks=False):
                kind, detail = "file", None
            else:
                kind, detail = "other", (f"{_special(e.stat(follow_symlinks=False).st_mode)}"
                                         ", not a file or folder; skipped", "note")
        except OSError as exc:
            kind, detail = "other", (f"cannot read: {exc.strerror or exc}", "error")
        if kind == "dir":
            dirs.append((e.name, detail))  # type: ignore[arg-type]
        elif kind == "file":
            files.append((e.name, True))
        else:
            others.append((e.name, *detail))  # type: ignore[misc]
    files.sort()
    others.sort()
    yield top, files, others
    for name, child_real in sorted(dirs):
        yield from _walk(os.path.join(top, name), child_real, walk)


class _Finder:
    """What a walk has found so far: bundles with their trace files, metadata files,
    notes and the number of files seen."""

    def __init__(self) -> None:
        self.bundles: dict[Path, BundlePlan] = {}
        self.notes: list[Note] = []
        self.files = 0
        self.meta_files: list[tuple[Path, Path, str]] = []  # (file, root, kind)
        self.owner: dict[Path, Path] = {}  # directory -> its bundle directory
        self.evidence: list[tuple[Path, str, str]] = []  # see Discovery.evidence

    def plan_for(self, directory: Path, root: Path, root_display: str) -> BundlePlan:
        b = self.owner.get(directory)
        if b is None:
            b = self.owner[directory] = bundle_dir(directory, root)
        plan = self.bundles.get(b)
        if plan is None:
            initiative, phase = _initiative_phase(b)
            plan = BundlePlan(directory=b, display=_display(root, root_display, b),
                              stamp=(STAMP.findall(b.name) or [None])[-1],
                              initiative=initiative, phase=phase)
            self.bundles[b] = plan
        return plan

    def visit(self, directory: Path, entries: list[tuple[str, bool]], root: Path,
              root_display: str, listed: bool, others: list[tuple[str, str, str]]) -> None:
        """One folder's files (``listed``: every name in the folder is in ``entries``)
        and what it holds that is not loaded (``others``: name, message, note level)."""
        in_dir = {name for name, is_file in entries if is_file}
        dir_display = _display(root, root_display, directory)
        prefix = "" if dir_display == "." else dir_display.rstrip("/") + "/"
        for name, message, level in others:
            self.notes.append(Note(prefix + name, message, level=level))
        in_env = directory.name == "env"
        for name, is_file in entries:
            if not is_file:
                continue
            self.files += 1
            low = name.lower()
            evidence = evidence_kind(name)
            if evidence is not None:  # images and results files: loaded by ingest.images
                b = self.owner.get(directory)
                if b is None:
                    b = self.owner[directory] = bundle_dir(directory, root)
                self.evidence.append((directory / name, prefix + name,
                                      _display(root, root_display, b)))
                if evidence == "image":
                    continue
            f = directory / name
            display = prefix + name
            if low.endswith(".json") and not in_env and low not in _ENV_NAMES:
                from . import jsontaps  # it imports this module

                if jsontaps.sniff(f, name):  # taps written as JSON (and maybe metadata)
                    self.plan_for(directory, root, root_display).trace_files.append(
                        TraceFile(f, display, None, json=True))
                continue  # per-trace metadata, read with its trace file
            meta = "note" if low.endswith(".md") else "commands" if low == "commands.txt" \
                else "env" if low in _ENV_NAMES or in_env else None
            if meta is not None:
                self.meta_files.append((f, root, meta))
                if meta != "env" or low.endswith((".json", ".txt")):
                    continue
            kind, message = classify(f)
            if kind == "trace":
                self.plan_for(directory, root, root_display).trace_files.append(TraceFile(
                    f, display, _metadata_for(f, in_dir if listed else None)))
            elif kind in ("binary", "empty"):
                self.notes.append(Note(display, message or kind))
            elif kind == "error":
                self.notes.append(Note(display, message or "cannot read", level="error"))

    def bundles_in_order(self) -> list[BundlePlan]:
        """The bundles with trace files, their metadata attached, in path order."""
        for f, root, kind in self.meta_files:
            plan = self.bundles.get(bundle_dir(f.parent, root))
            if plan is not None:  # metadata only for bundles that hold trace files
                {"note": plan.note_files, "commands": plan.commands_files,
                 "env": plan.env_files}[kind].append(f)
        for plan in self.bundles.values():  # a bundle above the ingest root: its metadata
            d = plan.directory
            for name, bucket in (("commands.txt", plan.commands_files),
                                 ("env.json", plan.env_files),
                                 ("trace_env.json", plan.env_files)):
                if (d / name).is_file() and (d / name) not in bucket:
                    bucket.append(d / name)
            if (d / "env").is_dir():
                for e in sorted((d / "env").iterdir()):
                    if e.is_file() and e not in plan.env_files:
                        plan.env_files.append(e)
        ordered = [self.bundles[k] for k in sorted(self.bundles)]
        for plan in ordered:
            plan.trace_files.sort(key=lambda t: t.path.parts)
            for bucket in (plan.commands_files, plan.env_files, plan.note_files):
                bucket.sort()
        return ordered


def _path_problem(p: Path) -> str | None:
    """Why a path named on the command line cannot be walked or read ("" when it does
    not exist), or None for a file or folder."""
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop; nothing to load"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            if os.path.islink(p):
                return f"dangling symbolic link (to {os.readlink(p)}); nothing to load"
            return ""
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f"{_special(mode)}, not a file or folder; nothing read"


def discover(paths: list[str], follow_links: bool = True) -> Discovery:
    """Walk each path (a folder or a file) and group the trace files found into
    bundles with their metadata; missing paths are listed, not raised.

    A path named here is followed wherever it points. In the trees, symbolic links
    that leave them are followed with ``follow_links`` (and named in a note without);
    links into what the ingest walks anyway, broken links, loops, FIFOs, sockets and
    devices are named in notes and not read.
    """
    finder = _Finder()
    missing: list[str] = []
    for given in paths:
        p = Path(given)
        problem = _path_problem(p)
        if problem == "":
            missing.append(given)
            continue
        if problem is not None:
            finder.notes.append(Note(given, problem, level="error"))
            continue
        if p.is_file():  # a named file: its metadata JSON is looked up on disk
            root = p.resolve().parent
            finder.visit(root, [(p.name, True)], root, str(p.parent), listed=False,
                         others=[])
            continue
        root, root_display = p.resolve(), given.rstrip("/") or "/"
        walk = _Walk(follow_links, [str(root)], lambda e: finder.notes.append(
            Note(str(e.filename), f"cannot list directory: {e.strerror}", level="error")))
        for dir_path, entries, others in _walk(str(root), str(root), walk):
            finder.visit(Path(dir_path), entries, root, root_display, listed=True,
                         others=others)
    return Discovery(bundles=finder.bundles_in_order(), files=finder.files,
                     notes=finder.notes, missing=missing, evidence=finder.evidence)
