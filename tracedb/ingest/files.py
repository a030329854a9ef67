"""One trace file read, hashed, decoded and parsed, with its metadata and its bundle's:
no database, so it runs in worker processes (``prepare_file``).

The raw bytes are kept compressed (``compress_blob`` / ``decompress_blob``), so a
later parser can re-derive taps without the original tree.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..store.layout import MAX_LINES, MAX_TAPS
from . import jsontaps, names, parse, rows
from .discover import REPLACED, BundlePlan, Note, TraceFile, decode_utf8, read_regular
from .runs import RunDraft, build_runs

QUARANTINE_TEXT_LIMIT = 4096


def _read_json(path: Path, display: str, notes: list[Note]) -> dict | None:
    """A metadata file's object (a JSON value that is not an object as ``{"value": ..}``),
    or None with a note naming the file when it cannot be read or stored."""
    try:
        data = json.loads(read_regular(path).decode("utf-8", errors="replace"))
        json.dumps(data)  # what is kept must also be written back
    except OSError as exc:
        notes.append(Note(display, f"cannot read metadata: {exc.strerror or exc}",
                          level="warning"))
        return None
    except json.JSONDecodeError as exc:
        notes.append(Note(display, f"invalid JSON ({exc.msg}); ignored", exc.lineno,
                          level="warning"))
        return None
    except RecursionError:
        notes.append(Note(display, "JSON nested too deeply to read; ignored",
                          level="warning"))
        return None
    except ValueError:  # an integer of more than 4300 digits
        notes.append(Note(display, "JSON holds a number too long to read; ignored",
                          level="warning"))
        return None
    return data if isinstance(data, dict) else {"value": data}


def _metadata_pixel(meta: dict | None) -> tuple | None:
    """The (slow, fast) the metadata names, as written (any JSON values; a missing
    one as None), or None when it names no pixel."""
    if not meta:
        return None
    if "pixel_slow" in meta or "pixel_fast" in meta:
        return meta.get("pixel_slow"), meta.get("pixel_fast")
    pix = meta.get("pixel")
    if isinstance(pix, dict) and ("slow" in pix or "fast" in pix):
        return pix.get("slow"), pix.get("fast")
    if isinstance(pix, list) and len(pix) == 2:
        return pix[0], pix[1]
    return None


def _metadata_time(meta: dict | None) -> str | None:
    if not meta:
        return None
    for key in ("timestamp_utc", "timestamp", "captured_at"):
        if isinstance(meta.get(key), str):
            return meta[key]
    return None


def bundle_metadata(plan: BundlePlan, notes: list[Note]) -> dict:
    """env_json (merged), env_files, commands_text and notes_text of a bundle."""
    env: dict = {}
    env_files: list[str] = []
    for f in sorted(plan.env_files, key=lambda p: (p.name not in ("trace_env.json",
                                                                   "env.json"), p)):
        rel = f.relative_to(plan.directory).as_posix() if plan.directory in f.parents \
            else f.name
        env_files.append(rel)
        if f.suffix == ".json":
            data = _read_json(f, f"{plan.display}/{rel}", notes)
            for k, v in (data or {}).items():
                env.setdefault(k, v)
        else:
            try:
                text = read_regular(f).decode("utf-8", errors="replace").strip()
            except OSError:
                continue
            if len(text) <= 4096:
                env.setdefault(f.stem, text)

    def joined(files: list[Path]) -> str | None:
        chunks = []
        for f in files:
            try:
                text = read_regular(f).decode("utf-8", errors="replace")
            except OSError as exc:
                notes.append(Note(str(f), f"cannot read: {exc.strerror or exc}",
                                  level="warning"))
                continue
            if len(files) > 1:
                rel = f.relative_to(plan.directory).as_posix() \
                    if plan.directory in f.parents else f.name
                text = f"# --- {rel}\n{text}"
            chunks.append(text)
        return "\n".join(chunks) if chunks else None

    return {
        "env_json": json.dumps(env, sort_keys=True) if env else None,
        "env_files": json.dumps(env_files) if env_files else None,
        "commands_text": joined(plan.commands_files),
        "notes_text": joined(plan.note_files),
    }


@dataclass
class Prepared:
    """One trace file read, hashed and parsed, ready to be stored (no ids yet)."""

    tf: TraceFile
    notes: list[Note] = field(default_factory=list)
    error: bool = False
    unchanged: bool = False
    sha: str = ""
    size: int = 0
    blob: bytes = b""
    encoding: str = "utf-8"
    line_count: int = 0
    trace_lines: int = 0  # continuation lines included
    continuation_lines: int = 0
    quarantined: list[tuple[int, str, str]] = field(default_factory=list)
    drafts: list[RunDraft] = field(default_factory=list)
    meta_display: str | None = None
    metadata_json: str | None = None
    meta_time: str | None = None
    meta_stamp: str | None = None
    path_stamp: str | None = None
    parser: str | None = None  # source_file.parser when not the text parser
    json_values: int = 0  # a JSON trace: values loaded, and items quarantined
    json_quarantined: list[tuple[str, str, str]] = field(default_factory=list)  # pointer,
    #                                                        reason, text
    stream: bool = False  # a large file, left to the writer to load in chunks (ingest.stream)


def decode(data: bytes, display: str, notes: list[Note]) -> tuple[str, str]:
    text, replaced = decode_utf8(data, display, notes)
    encoding = REPLACED if replaced else "utf-8"
    if "\0" in text:  # no SQL text type stores NUL; the raw file keeps it
        line = text[:text.index("\0")].count("\n") + 1
        notes.append(Note(display, "NUL character(s) replaced (raw file kept)", line,
                          level="warning"))
        text, encoding = text.replace("\0", "\ufffd"), encoding + ", NUL replaced"
    return text, encoding


#: How raw files are kept in source_blob (its ``compression`` column says which):
#: zstd level 1 compresses these texts a little better than zlib level 1 and
#: about four times faster; older rows may say 'zlib'.
BLOB_COMPRESSION = "zstd"
BLOB_LEVEL = 1
_COMPRESSOR: list = []


def compress_blob(data: bytes) -> bytes:
    if not _COMPRESSOR:
        import zstandard

        _COMPRESSOR.append(zstandard.ZstdCompressor(level=BLOB_LEVEL))
    return _COMPRESSOR[0].compress(data)


def decompress_blob(compression: str, content: bytes) -> bytes:
    """A kept raw file's bytes, from a source_blob row's compression and content."""
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(content)
    if compression == "zlib":
        return zlib.decompress(content)
    if compression in ("none", ""):
        return bytes(content)
    raise ValueError(f"unknown compression {compression!r}")


def prepare_file(job: tuple) -> Prepared:
    """Read, hash and parse one trace file; no database, so it runs in worker processes.

    ``job`` is (trace file, known sha256s of that path[, whether the file is loaded
    in chunks by the writer instead: then nothing is read here]).
    """
    tf, known_shas = job[:2]
    prep = Prepared(tf=tf)
    if len(job) > 2 and job[2]:
        prep.stream = True
        return prep
    try:
        data = read_regular(tf.path)
    except OSError as exc:
        prep.notes.append(Note(tf.display, f"cannot read: {exc.strerror or exc}",
                               level="error"))
        prep.error = True
        return prep
    prep.sha = hashlib.sha256(data).hexdigest()
    if prep.sha in known_shas:
        prep.unchanged = True
        return prep
    notes = prep.notes
    if tf.json:
        return _prepare_json(prep, data)
    text, prep.encoding = decode(data, tf.display, notes)
    prep.line_count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if prep.line_count > MAX_LINES:
        return _refused(prep, f"{prep.line_count:,} lines, more than the {MAX_LINES:,} a "
                              "file may hold; file not loaded")
    parsed = rows.scan_text(text)
    for warning in parsed.warnings:
        no, _, msg = warning.partition(": ")
        notes.append(Note(tf.display, msg, int(no.split()[1]), level="warning"))
    if data and not data.endswith(b"\n"):
        last = text.rsplit("\n", 1)[-1]
        if parse.TRACE_LINE.match(last):
            notes.append(Note(tf.display, "last line has no line end (truncated file?); "
                                          "parsed as written", text.count("\n") + 1,
                              level="warning"))
    meta = None
    if tf.metadata_path is not None:
        prep.meta_display = tf.display.rsplit("/", 1)[0] + "/" + tf.metadata_path.name \
            if "/" in tf.display else tf.metadata_path.name
        meta = _read_json(tf.metadata_path, prep.meta_display, notes)
    file_pixel, pixel_source = _usable_pixel(_metadata_pixel(meta),
                                             prep.meta_display or tf.display, None,
                                             notes), "metadata"
    if file_pixel is None:
        file_pixel, pixel_source = _usable_pixel(names.pixel_from_name(tf.path.name),
                                                 tf.display, None, notes), "filename"
    file_side = names.side_from_path(list(Path(tf.display).parts[-3:]))
    prep.drafts = build_runs(parsed, file_side, file_pixel, pixel_source)
    _drop_unusable_markers(prep.drafts, parsed, tf.display, notes)
    big = next((d for d in prep.drafts if len(d.taps) > MAX_TAPS), None)
    if big is not None:
        pixel = f" (pixel {names.pixel_text(big.pixel)})" if big.pixel else ""
        return _refused(prep, f"a run{pixel} of {len(big.taps):,} taps, more than the "
                              f"{MAX_TAPS:,} a run may hold; file not loaded")
    prep.path_stamp = names.stamp_in(str(tf.path))
    prep.meta_time = _metadata_time(meta)
    prep.meta_stamp = names.normalize_stamp(prep.meta_time)
    prep.metadata_json = json.dumps(meta, sort_keys=True) if meta is not None else None
    quarantined = [ln for ln in parsed.general if ln.quarantine]
    if quarantined:
        lines = parse.split_lines(text)
        prep.quarantined = [(ln.line_no, ln.quarantine,
                             lines[ln.line_no - 1][:QUARANTINE_TEXT_LIMIT])
                            for ln in quarantined]
    prep.trace_lines = parsed.trace_lines
    prep.continuation_lines = parsed.continuation_lines
    prep.size = len(data)
    prep.blob = compress_blob(data)
    return prep


def _prepare_json(prep: Prepared, data: bytes) -> Prepared:
    """prepare_file for a trace written as JSON (``jsontaps``): no lines, its taps'
    JSON pointers instead."""
    tf = prep.tf
    found = jsontaps.read(data, tf.display, tf.path.name, prep.notes)
    if found.error:
        return _refused(prep, found.error)
    big = next((d for d in found.drafts if len(d.taps) > MAX_TAPS), None)
    if big is not None:
        return _refused(prep, f"a run of {len(big.taps):,} taps, more than the "
                              f"{MAX_TAPS:,} a run may hold; file not loaded")
    prep.drafts = found.drafts
    prep.json_values = found.values
    prep.json_quarantined = found.quarantined
    prep.encoding, prep.parser = found.encoding, jsontaps.PARSER
    prep.line_count = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    prep.path_stamp = names.stamp_in(str(tf.path))
    prep.meta_time = found.meta_time
    prep.meta_stamp = names.normalize_stamp(prep.meta_time)
    prep.metadata_json = json.dumps(found.meta, sort_keys=True) if found.meta else None
    prep.size = len(data)
    prep.blob = compress_blob(data)
    return prep


def _refused(prep: Prepared, message: str) -> Prepared:
    """``prep`` as a file not loaded, named in an error note (its bundle loads on)."""
    prep.notes.append(Note(prep.tf.display, message, level="error"))
    prep.error = True
    prep.drafts = []
    return prep


def _usable_pixel(pixel: tuple | None, display: str, line: int | None,
                  notes: list[Note]) -> tuple[int, int] | None:
    """``pixel`` when it can be stored, else None with a note naming where it is
    written (the run is then loaded without it, or with the next source's pixel)."""
    if pixel is None:
        return None
    problem = names.pixel_problem(pixel)
    if problem is None:
        return pixel
    notes.append(Note(display, f"pixel {names.pixel_text(pixel)} unusable "
                      f"({problem}); ignored", line, level="warning"))
    return None


def _drop_unusable_markers(drafts: list[RunDraft], scanned: rows.Scanned, display: str,
                           notes: list[Note]) -> None:
    """Runs whose in-file marker names an unusable pixel keep their taps (a marker still
    starts a run) but not the pixel; each such marker is noted once, at its line."""
    seen: dict[tuple, tuple[int, int] | None] = {}
    for draft in drafts:
        if draft.pixel is None or draft.pixel_source != "marker":
            continue
        if draft.pixel not in seen:
            lines = [no for no, pix in scanned.markers if pix == draft.pixel] \
                + [ln.line_no for ln in scanned.general if ln.pixel == draft.pixel]
            seen[draft.pixel] = _usable_pixel(draft.pixel, display, min(lines, default=None),
                                              notes)
        if seen[draft.pixel] is None:
            draft.pixel = draft.pixel_source = None
