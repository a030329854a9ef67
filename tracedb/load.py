"""Load discovered bundles: one transaction per bundle, idempotent by content hash.

Loading does not interpret text: it reads files, hashes them, hands the text to
``parse`` and writes what comes back, plus provenance (bundle metadata, the
raw file, quarantined lines).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from . import parse, stage
from .bulk import BulkWriter
from .discover import BundlePlan, Note, TraceFile

QUARANTINE_TEXT_LIMIT = 4096


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Stats:
    files: int = 0
    trace_files: int = 0
    new_trace_files: int = 0
    unchanged_files: int = 0
    bundles: int = 0
    bundles_updated: int = 0
    runs: int = 0
    pixels: int = 0
    taps: int = 0
    values: int = 0
    trace_lines: int = 0
    parsed_lines: int = 0
    quarantined_lines: int = 0
    skipped_files: int = 0
    failed_bundles: int = 0
    errors: int = 0
    notes: list[Note] = field(default_factory=list)
    pixel_set: set = field(default_factory=set)

    def as_dict(self, seconds: float) -> dict:
        out = {k: getattr(self, k) for k in (
            "files", "trace_files", "new_trace_files", "unchanged_files", "bundles",
            "bundles_updated", "runs", "pixels", "taps", "values", "trace_lines",
            "parsed_lines", "quarantined_lines", "skipped_files", "failed_bundles", "errors")}
        out["seconds"] = round(seconds, 3)
        out["notes"] = [{"level": n.level, "path": n.path, "line": n.line,
                         "message": n.message} for n in self.notes]
        return out


# --------------------------------------------------------------------------- helpers


def _read_json(path: Path, display: str, notes: list[Note]) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        notes.append(Note(display, f"cannot read metadata: {exc.strerror}", level="warning"))
        return None
    except json.JSONDecodeError as exc:
        notes.append(Note(display, f"invalid JSON ({exc.msg}); ignored", exc.lineno,
                          level="warning"))
        return None
    return data if isinstance(data, dict) else {"value": data}


def _metadata_pixel(meta: dict | None) -> tuple[int, int] | None:
    if not meta:
        return None
    s, f = meta.get("pixel_slow"), meta.get("pixel_fast")
    if isinstance(s, int) and isinstance(f, int):
        return s, f
    pix = meta.get("pixel")
    if isinstance(pix, dict) and isinstance(pix.get("slow"), int) \
            and isinstance(pix.get("fast"), int):
        return pix["slow"], pix["fast"]
    if isinstance(pix, list) and len(pix) == 2 and all(isinstance(v, int) for v in pix):
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
                text = f.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if len(text) <= 4096:
                env.setdefault(f.stem, text)

    def joined(files: list[Path]) -> str | None:
        chunks = []
        for f in files:
            try:
                text = f.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                notes.append(Note(str(f), f"cannot read: {exc.strerror}", level="warning"))
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


# --------------------------------------------------------------------------- runs


@dataclass(slots=True)
class RunDraft:
    side: str | None
    pixel: tuple[int, int] | None
    pixel_source: str | None
    taps: list[tuple] = field(default_factory=list)  # see build_runs
    # set when the run's rows were staged (the taps are then dropped)
    tap_count: int = 0
    value_count: int = 0
    first_line: int | None = None
    last_line: int | None = None
    shape_sig: str | None = None  # None: staged with provisional keys, the writer sets it


def build_runs(scanned: parse.Scanned, file_side: str | None,
               file_pixel: tuple[int, int] | None, file_pixel_source: str | None
               ) -> list[RunDraft]:
    """Split a file's taps into runs by side and by in-file pixel markers.

    Taps before the first marker belong to the first marker's pixel (the C code
    prints detector geometry before it announces the pixel); without markers,
    the pixel comes from the metadata JSON or the file name. A tap without a side
    of its own takes the last side named by a line before it (else the file's).
    A run's taps are common-shape tuples ``(line_no, side, name, raw, n)`` or
    ``(line_no, Tap)``.
    """
    plain = sorted(scanned.markers)  # pixel sentences outside TRACE lines
    traced = [(ln.line_no, ln.pixel) for ln in scanned.general if ln.pixel]
    if not plain and not traced:
        one = _one_run(scanned, file_side, file_pixel, file_pixel_source)
        if one is not None:
            return one
    first_marker = min(plain + traced)[1] if plain or traced else None
    current = None
    last_side = file_side
    runs: dict[tuple, RunDraft] = {}
    j, n_plain = 0, len(plain)
    for item in scanned.items:
        no = item[0]
        while j < n_plain and plain[j][0] <= no:
            current = plain[j][1]
            j += 1
        if current is not None:
            pixel, source = current, "marker"
        elif first_marker is not None:
            pixel, source = first_marker, "marker"
        else:
            pixel, source = file_pixel, file_pixel_source
        if len(item) == 5:  # a common-shape line: one tap, its side from the prefix
            last_side = item[1]
            key = (last_side, pixel)
            draft = runs.get(key)
            if draft is None:
                draft = runs[key] = RunDraft(last_side, pixel, source if pixel else None)
            draft.taps.append(item)
            continue
        ln: parse.Line = item[1]
        if ln.pixel:
            current = pixel = ln.pixel
            source = "marker"
        if ln.side:
            last_side = ln.side
        for tap in ln.taps:
            side = tap.side or last_side
            key = (side, pixel)
            draft = runs.get(key)
            if draft is None:
                draft = runs[key] = RunDraft(side, pixel, source if pixel else None)
            draft.taps.append((no, tap))
    return list(runs.values())


def _one_run(scanned: parse.Scanned, file_side, file_pixel, file_pixel_source
             ) -> list[RunDraft] | None:
    """build_runs for the usual file: no pixel markers and one side throughout (what
    the general loop would give, without its per-line work); None when it does not
    apply."""
    items = scanned.items
    if not items:
        return []
    first = items[0]
    side = first[1] if len(first) == 5 else first[1].side
    if side is None:
        return None
    for ln in scanned.general:
        if ln.side not in (None, side) or any(t.side not in (None, side) for t in ln.taps):
            return None
    if any(it[1] != side for it in items if len(it) == 5):
        return None
    draft = RunDraft(side, file_pixel, file_pixel_source if file_pixel else None)
    if scanned.general:
        taps: list = []
        for it in items:
            if len(it) == 5:
                taps.append(it)
            else:
                taps.extend((it[0], tap) for tap in it[1].taps)
        draft.taps = taps
    else:
        draft.taps = list(items)
    return [draft] if draft.taps else []


# --------------------------------------------------------------------------- loader


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
    trace_lines: int = 0
    quarantined: list[tuple[int, str, str]] = field(default_factory=list)
    drafts: list[RunDraft] = field(default_factory=list)
    meta_display: str | None = None
    metadata_json: str | None = None
    meta_time: str | None = None
    meta_stamp: str | None = None
    path_stamp: str | None = None


def decode(data: bytes, display: str, notes: list[Note]) -> tuple[str, str]:
    encoding = "utf-8"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        notes.append(Note(display, f"invalid UTF-8 at byte {exc.start}; undecodable "
                                   "bytes replaced (raw file kept)", line, level="warning"))
        text, encoding = data.decode("utf-8", errors="replace"), \
            "utf-8 (invalid bytes replaced)"
    if "\0" in text:  # no SQL text type stores NUL; the raw file keeps it
        line = text[:text.index("\0")].count("\n") + 1
        notes.append(Note(display, "NUL character(s) replaced (raw file kept)", line,
                          level="warning"))
        text, encoding = text.replace("\0", "\ufffd"), encoding + ", NUL replaced"
    return text, encoding


def read_file(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


#: A tap's id is its run id shifted by TAP_BITS plus its order in the run, so the
#: writer builds tap rows without a round trip to the database.
TAP_BITS = 20
MAX_TAPS = (1 << TAP_BITS) - 1

_UNIT_CACHE: dict[tuple, dict[str, str | None]] = {}


def unit_lookup(suffixes: tuple[tuple[str, str], ...]):
    cache = _UNIT_CACHE.setdefault(suffixes, {})
    ordered = sorted(suffixes, key=lambda s: -len(s[0]))

    def unit_of(name: str) -> str | None:
        unit = cache.get(name, False)
        if unit is False:
            unit = next((u for suffix, u in ordered if name.endswith(suffix)), None)
            cache[name] = unit
        return unit  # type: ignore[return-value]

    return unit_of


def alias_lookup(aliases: tuple[tuple[str, str, str], ...]):
    """(channel, name) -> pairing name; a channel-specific alias beats a '*' one."""
    table: dict[tuple[str, str], str] = {}
    for channel, name, canonical in aliases:  # ordered by id: the oldest wins
        table.setdefault((channel, name), canonical)

    def key_of(channel: str, name: str) -> str:
        return table.get((channel, name)) or table.get(("*", name)) or name

    return key_of


def shape_signature(keys) -> str:
    """A run's shape: sha256 of its sorted (pairing key id, component count) pairs.

    Two comparisons whose runs have the same shapes have the same taps missing on
    either side and the same length differences, so the comparison works that out
    once per pair of shapes (queries/compare_flag.sql).
    """
    text = "\n".join(f"{k}:{n}" for k, n in sorted(keys))
    return hashlib.sha256(text.encode()).hexdigest()


def stale_shapes(conn: Connection) -> list[dict]:
    """Runs whose stored shape signature differs from their taps: [{id, sig}].

    Streams the taps in id order (run by run, since a tap id starts with its run id),
    so memory holds one run at a time.
    """
    stored = dict(conn.exec_driver_sql("SELECT id, shape_sig FROM run").all())
    out = []

    def judge(run_id: int, keys: list[tuple[int, int]]) -> None:
        actual = shape_signature(keys)
        if stored.pop(run_id, None) != actual:
            out.append({"id": run_id, "sig": actual})

    current, keys = None, []
    rows = conn.exec_driver_sql("SELECT run_id, key_id, n_components FROM tap ORDER BY id",
                                execution_options={"stream_results": True})
    for run_id, key_id, n in rows:
        if run_id != current:
            if current is not None:
                judge(current, keys)
            current, keys = run_id, []
        keys.append((key_id, n))
    if current is not None:
        judge(current, keys)
    for run_id in list(stored):  # runs without taps
        judge(run_id, [])
    return out


@dataclass(slots=True)
class Template:
    """What the taps of a run with a given sequence of tap names share with every
    other run of that sequence (the pixels of a campaign run the same code path)."""

    static: list[tuple]  # per tap: channel, name, loop_key, occurrence, unit, key_name,
    #                      key_occurrence, key_id
    order: list[int]  # tap positions in key id order (the value rows' key order)
    provisional: bool  # some key id is provisional (< 0): no shape signature yet
    sigs: dict[tuple, str] = field(default_factory=dict)  # component counts -> shape


def _template(ident: tuple, unit_of, key_of, key_id_of) -> Template:
    seen: dict = {}
    seen_key: dict = {}
    static = []
    for item in ident:
        channel, name, loop_key = ("", item, "") if type(item) is str else item
        key = (channel, name, loop_key)
        occ = seen[key] = seen.get(key, 0) + 1
        key_name = key_of(channel, name)
        pkey = (channel, key_name, loop_key)
        key_occ = seen_key[pkey] = seen_key.get(pkey, 0) + 1
        key_id = key_id_of((channel, key_name, loop_key, key_occ))
        static.append((channel, name, loop_key, occ, unit_of(name), key_name, key_occ, key_id))
    order = sorted(range(len(static)), key=lambda i: static[i][7])
    return Template(static, order, any(t[7] < 0 for t in static))


def run_template(draft: RunDraft, unit_of, key_of, key_id_of,
                 templates: dict | None = None) -> Template:
    """What a run shares with every run of the same tap names (see :class:`Template`).

    ``key_of`` maps (channel, name) to the pairing name (aliases); ``key_id_of``
    maps a pairing key (channel, key_name, loop_key, key_occurrence) to its
    ``tap_key`` id. ``templates`` caches templates for as long as ``key_id_of``
    gives the same ids.
    """
    if len(draft.taps) > MAX_TAPS:
        raise ValueError(f"a run with more than {MAX_TAPS} taps is not supported")
    ident = tuple([e[2] if len(e) == 5 else (e[1].channel, e[1].name, e[1].loop_key)
                   for e in draft.taps])
    template = templates.get(ident) if templates is not None else None
    if template is None:
        template = _template(ident, unit_of, key_of, key_id_of)
        if templates is not None:
            if len(templates) >= 1024:
                templates.clear()
            templates[ident] = template
    return template


def run_shape(template: Template, counts: tuple[int, ...]) -> str | None:
    """A run's shape signature from its template and component counts (None while a
    key id is provisional)."""
    if template.provisional:
        return None
    sig = template.sigs.get(counts)
    if sig is None:
        sig = template.sigs[counts] = shape_signature(
            (t[7], n) for t, n in zip(template.static, counts, strict=True))
    return sig


def _first(item: tuple):
    return item[0]


def prepare_file(job: tuple) -> Prepared:
    """Read, hash and parse one trace file; no database, so it runs in worker processes.

    ``job`` is (trace file, known sha256s of that path).
    """
    tf, known_shas = job
    prep = Prepared(tf=tf)
    try:
        data = read_file(tf.path)
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
    text, prep.encoding = decode(data, tf.display, notes)
    parsed = parse.scan_text(text, stage.scan)
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
    file_pixel, pixel_source = _metadata_pixel(meta), "metadata"
    if file_pixel is None:
        file_pixel, pixel_source = parse.pixel_from_name(tf.path.name), "filename"
    file_side = parse.side_from_path(list(Path(tf.display).parts[-3:]))
    prep.drafts = build_runs(parsed, file_side, file_pixel, pixel_source)
    prep.path_stamp = parse.stamp_in(str(tf.path))
    prep.meta_time = _metadata_time(meta)
    prep.meta_stamp = parse.normalize_stamp(prep.meta_time)
    prep.metadata_json = json.dumps(meta, sort_keys=True) if meta is not None else None
    quarantined = [ln for ln in parsed.general if ln.quarantine]
    if quarantined:
        lines = parse.split_lines(text)
        prep.quarantined = [(ln.line_no, ln.quarantine,
                             lines[ln.line_no - 1][:QUARANTINE_TEXT_LIMIT])
                            for ln in quarantined]
    prep.trace_lines = parsed.trace_lines
    prep.line_count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    prep.size = len(data)
    prep.blob = compress_blob(data)
    return prep


class Turns:
    """Job order across worker processes: the PostgreSQL stager of job k registers its
    new pairing keys and draws its run ids after that of job k - 1 did, so that ids
    follow the files' order as they do on SQLite (and in one process), whichever
    worker finishes parsing first."""

    #: Seconds a job waits for its turn before it draws ids anyway (ids stay unique;
    #: only their order would differ). Jobs are handed out in turn order, so an
    #: earlier one is always running or done; this only guards against the unforeseen.
    WAIT = 120.0

    def __init__(self, mp_context) -> None:
        self.next = mp_context.Value("q", 0, lock=False)
        self.cond = mp_context.Condition()

    def wait(self, turn: int) -> bool:
        """Wait until every earlier job has had its turn; False after WAIT s."""
        with self.cond:
            return self.cond.wait_for(lambda: self.next.value >= turn, timeout=self.WAIT)

    def done(self, turn: int) -> None:
        """Let later jobs go (again harmless; a job that failed never waits)."""
        with self.cond:
            self.next.value = max(self.next.value, turn + 1)
            self.cond.notify_all()


#: This worker process's Turns (None in the writing process: it runs jobs in order).
_TURNS: Turns | None = None


def _worker_init(parent: int, turns: Turns | None = None) -> None:
    """In a worker: yield the CPU to the writer, and exit once the writer is gone.

    The writer is the pipeline's narrow part (workers outnumber free cores), so
    workers run at a lower priority. A writer killed with SIGKILL cannot stop its
    workers, and they would wait for work forever (holding its stdout and stderr
    open), so a thread watches for that.
    """
    import os
    import threading
    import time

    global _TURNS
    _TURNS = turns
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # not on this platform, or not allowed
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="tracedb-orphan-watch", daemon=True).start()


WORKER_NICENESS = 10


class WindowedPool:
    """An ordered map over a process pool with a bounded number of jobs in flight."""

    def __init__(self, workers: int, window: int = 64):
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        self.pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                        initargs=(os.getpid(), Turns(context)))
        self.window = window

    def __call__(self, fn, jobs):
        from collections import deque

        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append(self.pool.submit(fn, job))
            if len(pending) >= self.window:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(self.pool.submit(fn, nxt))
            yield result

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


TAP_COLS = ("id", "run_id", "seq", "line_no", "channel", "name", "loop_key", "occurrence",
            "unit", "shape", "n_components", "value_text", "key_name", "key_occurrence",
            "key_id")
VALUE_COLS = ("run_id", "key_id", "idx", "label", "num", "text", "kind", "digits", "half_ulp")
RUN_COLS = ("id", "source_file_id", "bundle_id", "segment", "side", "pixel_id", "pixel_source",
            "stamp", "path_stamp", "meta_stamp", "meta_time", "metadata_json", "tap_count",
            "first_line", "last_line", "shape_sig")
FILE_COLS = ("id", "bundle_id", "path", "abs_path", "sha256", "version", "size", "line_count",
             "trace_lines", "parsed_lines", "quarantined_lines", "parser", "encoding",
             "metadata_path", "command_id", "loaded_at")
BLOB_COLS = ("sha256", "size", "compression", "content")
QUARANTINE_COLS = ("id", "source_file_id", "line_no", "reason", "text")

#: Rows buffered before they are written (bounds memory whatever the input size).
FLUSH_VALUES = 50_000
#: Files per staged group (and bytes): small enough to bound memory, large enough
#: that a group's fixed costs (a process round trip, a stage database) are noise.
STAGE_FILES = 200
STAGE_BYTES = 8 << 20
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


class Batch:
    """Rows waiting to be written, in foreign-key order."""

    ORDER = (("source_blob", BLOB_COLS, True), ("source_file", FILE_COLS, False),
             ("run", RUN_COLS, False), ("tap", TAP_COLS, False), ("value", VALUE_COLS, False),
             ("quarantine", QUARANTINE_COLS, False))

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name, _c, _i in self.ORDER}

    def flush(self, writer: BulkWriter) -> None:
        for name, cols, ignore in self.ORDER:
            rows = self.rows[name]
            if rows:
                (writer.insert_ignore if ignore else writer.insert)(name, cols, rows)
                rows.clear()


# --------------------------------------------------------------------------- staging
#
# On SQLite the tap and value rows of a group of files are built where the files are
# parsed (a worker process when the ingest is large) into a private in-memory SQLite
# database, shipped as that database's image (one bytes object: no per-row pickling)
# and copied into the warehouse by one INSERT ... SELECT per table, which runs at the
# engine's speed inside the bundle's transaction. The writing process thus spends no
# Python time per row.


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stager needs from the writer: unit rules, aliases and known key ids;
    on PostgreSQL also the warehouse URL (``copy_url``), see :func:`stage_files`."""

    suffixes: tuple[tuple[str, str], ...]
    aliases: tuple[tuple[str, str, str], ...]
    key_ids: dict[tuple[str, str, str, int], int]
    copy_url: str | None = field(default=None, repr=False)  # may hold a password
    turn: int = 0  # the job's place in the ingest (see Turns)


@dataclass(slots=True)
class Staged:
    """A group of files read, parsed and staged.

    SQLite: ``image`` holds the rows with local run ids (0, 1, ...) and provisional
    ids for ``new_keys``. PostgreSQL: ``copy`` holds them as COPY text with the run
    ids ``run_ids`` and keys already registered (``key_ids`` has the new ones).
    """

    preps: list[Prepared]
    runs: int  # staged runs, in file then segment order
    image: bytes | None  # serialized stage database (None when nothing was staged)
    new_keys: list[tuple[int, tuple[str, str, str, int]]]  # (provisional id < 0, key)
    run_ids: list[int] | None = None
    copy: tuple[bytes, bytes] | None = None  # COPY text of the tap and value rows
    key_ids: dict[tuple[str, str, str, int], int] = field(default_factory=dict)


STAGE_DDL = (
    "CREATE TABLE tap (id INTEGER PRIMARY KEY, "
    f"{', '.join(c for c in TAP_COLS if c != 'id')})",
    f"CREATE TABLE value ({', '.join(VALUE_COLS)})",
    "CREATE TABLE new_key (lid INTEGER PRIMARY KEY, channel, key_name, loop_key, "
    "key_occurrence, gid INTEGER)",
)
STAGE_SQL = (
    f"INSERT INTO tap VALUES ({', '.join('?' * len(TAP_COLS))})",
    f"INSERT INTO value VALUES ({', '.join('?' * len(VALUE_COLS))})",
    "INSERT INTO new_key (lid, channel, key_name, loop_key, key_occurrence) "
    "VALUES (?, ?, ?, ?, ?)",
)


def stage_files(job: tuple[list[tuple], StageContext]) -> Staged:
    """Read, parse and stage a group of files (runs in worker processes).

    SQLite (no ``copy_url``): the rows go into a private in-memory database, with
    local run ids; pairing keys the writer did not know when the job was made get
    provisional negative ids, which the writer registers and rewrites before
    copying. A run with such a key has no shape signature yet (the writer computes
    it). PostgreSQL: the worker registers new keys and draws run ids on its own
    autocommit connection (neither is rolled back with a failed bundle: an unused
    key or id is harmless), then writes the rows as COPY text for the writer to
    stream.
    """
    files, ctx = job
    if ctx.copy_url is not None:
        return _stage_copy(files, ctx)
    unit_of = unit_lookup(ctx.suffixes)
    key_of = alias_lookup(ctx.aliases)
    known = ctx.key_ids
    new: dict[tuple[str, str, str, int], int] = {}

    def key_id_of(key: tuple[str, str, str, int]) -> int:
        kid = known.get(key)
        if kid is None:
            kid = new.get(key)
            if kid is None:
                kid = new[key] = -(len(new) + 1)
        return kid

    preps: list[Prepared] = []
    templates: dict = {}
    stager = None
    local = 0
    for item in files:
        prep = prepare_file(item)
        preps.append(prep)
        if prep.error or prep.unchanged:
            continue
        for draft in prep.drafts:
            template = run_template(draft, unit_of, key_of, key_id_of, templates)
            if stager is None:
                stager = stage.Stager(STAGE_DDL, *STAGE_SQL)
            _stage_run(stager, local, draft, template)
            local += 1
    image = None
    if stager is not None:
        stager.new_keys([(kid, *key) for key, kid in new.items()])
        image = stager.image()
    return Staged(preps, local, image, [(kid, key) for key, kid in new.items()])


def _stage_run(stager, run_id: int, draft: RunDraft, template: Template) -> None:
    """Stage one run's taps and values; keep its summary and drop its taps."""
    counts = stager.run(run_id, run_id << TAP_BITS, draft.taps, template.static,
                        template.order)
    draft.tap_count, draft.value_count = len(counts), sum(counts)
    draft.shape_sig = run_shape(template, counts)
    draft.first_line, draft.last_line = draft.taps[0][0], draft.taps[-1][0]
    draft.taps = []


def _stage_copy(files: list[tuple], ctx: StageContext) -> Staged:
    """stage_files for PostgreSQL: final ids, rows as COPY text."""
    turn = ctx.turn if _TURNS is not None else None
    try:
        return _stage_copy_in_turn(files, ctx, turn)
    finally:  # whatever happened, later jobs need not wait for this one any more
        if turn is not None:
            _TURNS.done(turn)  # type: ignore[union-attr]


def _stage_copy_in_turn(files: list[tuple], ctx: StageContext, turn: int | None) -> Staged:
    from .bulk import pg_nextvals, pg_register_tap_keys, pg_sequence

    unit_of = unit_lookup(ctx.suffixes)
    key_of = alias_lookup(ctx.aliases)
    known = dict(ctx.key_ids)
    new: dict[tuple[str, str, str, int], None] = {}  # in order of first use

    def key_id_of(key: tuple[str, str, str, int]) -> int:
        kid = known.get(key)
        if kid is None:
            new[key] = None
            return -1
        return kid

    preps = [prepare_file(item) for item in files]
    drafts = [d for p in preps if not (p.error or p.unchanged) for d in p.drafts]
    if not drafts:
        return Staged(preps, 0, None, [])
    templates: dict = {}
    for draft in drafts:  # which keys are new (their templates are then made again)
        run_template(draft, unit_of, key_of, key_id_of, templates)
    cur = _copy_cursor(ctx.copy_url)
    if turn is not None and not _TURNS.wait(turn):  # type: ignore[union-attr]
        first = next(p for p in preps if not (p.error or p.unchanged))
        first.notes.append(Note(first.tf.display, f"waited {Turns.WAIT:.0f} s for an "
                                "earlier group of files; run ids of this group do not "
                                "follow the files' order", level="warning"))
    registered = pg_register_tap_keys(cur, list(new))  # keys and run ids in files' order
    known.update(registered)
    run_ids = pg_nextvals(cur, pg_sequence(cur, "run"), len(drafts))
    if turn is not None:  # staging the rows needs no turn
        _TURNS.done(turn)  # type: ignore[union-attr]
    templates = {}
    stager = stage.Stager(None)
    for run_id, draft in zip(run_ids, drafts, strict=True):
        _stage_run(stager, run_id, draft,
                   run_template(draft, unit_of, key_of, known.__getitem__, templates))
    return Staged(preps, len(drafts), None, [], run_ids, stager.copy_text(), registered)


#: Connections that PostgreSQL stagers use for keys and ids: {(pid, url): DBAPI conn}
_COPY_CONNECTIONS: dict[tuple[int, str], object] = {}


def _copy_cursor(url: str):
    """A cursor on this process's autocommit connection to ``url`` (made once)."""
    import os

    raw = _COPY_CONNECTIONS.get((os.getpid(), url))
    if raw is not None and (raw.driver_connection.closed or raw.driver_connection.broken):
        _COPY_CONNECTIONS.pop((os.getpid(), url), None)  # dropped by the server: again
        raw = None
    if raw is None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        # keep the pool's wrapper: dropping it would close the connection
        raw = create_engine(url, poolclass=NullPool).raw_connection()
        raw.driver_connection.autocommit = True
        _COPY_CONNECTIONS[(os.getpid(), url)] = raw
    return raw.driver_connection.cursor()


def close_copy_connections() -> None:
    """Close this process's stager connections (an ingest's end, in the writer)."""
    import os

    for key in [k for k in _COPY_CONNECTIONS if k[0] == os.getpid()]:
        try:
            _COPY_CONNECTIONS.pop(key).close()
        except Exception:  # already gone with the server: nothing to release
            pass


def can_stage() -> bool:
    """Staging needs sqlite3's serialize/deserialize (Python 3.11 on SQLite 3.36+)."""
    import sqlite3

    return hasattr(sqlite3.Connection, "deserialize") \
        and sqlite3.sqlite_version_info >= (3, 36, 0)


class Loader:
    def __init__(self, tables: dict[str, Table], command_id: int | None,
                 suffixes: list[tuple[str, str]], aliases: list[tuple[str, str, str]],
                 copy_url: str | None = None):
        """``copy_url``: on PostgreSQL, the warehouse URL for staging (see
        :func:`stage_files`)."""
        self.copy_url = copy_url
        self._turn = 0  # staged jobs handed out so far (see Turns)
        self.t = tables
        self.command_id = command_id
        self.suffixes = tuple(sorted(suffixes))
        self.unit_of = unit_lookup(self.suffixes)
        self.aliases = tuple(aliases)
        self.key_of = alias_lookup(self.aliases)
        self.pixels: dict[tuple[int, int], int] = {}  # committed pixel ids
        self._new_pixels: dict[tuple[int, int], int] = {}  # this transaction's
        self.key_ids: dict[tuple[str, str, str, int], int] = {}  # pairing key -> tap_key.id
        self.templates: dict = {}  # see run_template (registered key ids never change)
        self._writer: BulkWriter | None = None

    def committed(self) -> None:
        self.pixels.update(self._new_pixels)
        self._new_pixels.clear()

    def rolled_back(self) -> None:
        self._new_pixels.clear()

    # -- one bundle --------------------------------------------------------------
    def load_bundle(self, conn: Connection, plan: BundlePlan, stats: Stats,
                    notes: list[Note], mapper=map, staged: bool = False) -> None:
        """Everything for one bundle, inside the caller's transaction.

        ``mapper`` runs :func:`prepare_file` (read, hash, parse: no database) over
        the bundle's files, in order, or with ``staged`` (see :func:`stage_files`)
        runs :func:`stage_files` over groups of them; a process pool's windowed map
        parallelises either.
        """
        t = self.t
        w = BulkWriter(conn)
        w.lock_bundle(str(plan.directory))
        now = utcnow()
        brow = conn.execute(select(t["bundle"]).where(
            t["bundle"].c.directory == str(plan.directory))).mappings().first()
        # what is already loaded from these paths (under any bundle: a file is the
        # same file whichever folder an ingest started from)
        known: dict[str, list[str]] = {}
        paths = [str(tf.path) for tf in plan.trace_files]
        for i in range(0, len(paths), 500):
            chunk = paths[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            for abs_path, sha in w.query("SELECT abs_path, sha256 FROM source_file "
                                         f"WHERE abs_path IN ({marks})", tuple(chunk)):
                known.setdefault(abs_path, []).append(sha)
        meta = bundle_metadata(plan, notes)
        bundle_id = brow["id"] if brow is not None else None
        if brow is not None and any(brow[k] != v for k, v in meta.items()):
            conn.execute(t["bundle"].update().where(t["bundle"].c.id == bundle_id)
                         .values(updated_at=now, **meta))
            stats.bundles_updated += 1
        batch = Batch()
        # pairing keys as the database has them now (another writer may have added some)
        self._writer = w
        self.key_ids = w.tap_keys()
        self.templates = {}  # their key ids may be from a rolled-back bundle
        file_ids = iter(w.ids("source_file", len(plan.trace_files)))
        jobs = [(tf, tuple(known.get(str(tf.path), ()))) for tf in plan.trace_files]

        def accept(prep: Prepared) -> bool:
            """Notes, errors and unchanged files; True when ``prep`` is to be stored."""
            nonlocal bundle_id
            notes.extend(prep.notes)
            if prep.error:
                stats.errors += 1
                return False
            if prep.unchanged:
                stats.unchanged_files += 1
                return False
            if bundle_id is None:
                bundle_id = conn.execute(
                    t["bundle"].insert().returning(t["bundle"].c.id), dict(
                        directory=str(plan.directory), path=plan.display,
                        initiative=plan.initiative, phase=plan.phase, stamp=plan.stamp,
                        created_at=now, updated_at=now, **meta)).scalar_one()
                stats.bundles += 1
            return True

        def version_of(prep: Prepared) -> int:
            version = len(known.get(str(prep.tf.path), [])) + 1
            if version > 1:
                notes.append(Note(prep.tf.display, "content changed since last ingest; "
                                  f"loaded as version {version}", level="note"))
            known.setdefault(str(prep.tf.path), []).append(prep.sha)
            return version

        if staged:
            for group in mapper(stage_files, self._stage_jobs(jobs)):
                run_ids = self._open_stage(w, group)
                ids = iter(run_ids)
                for prep in group.preps:
                    if accept(prep):
                        self.store(w, batch, bundle_id, prep, version_of(prep), stats, now,
                                   next(file_ids), ids)
                self.flush(w, batch)  # run rows before the taps and values that need them
                if group.copy is not None:
                    w.copy_staged(TAP_COLS, VALUE_COLS, *group.copy)
                elif run_ids:
                    w.copy_stage(run_ids[0], TAP_COLS, VALUE_COLS, TAP_BITS,
                                 in_order=not group.new_keys)
            return
        for prep in mapper(prepare_file, jobs):
            if accept(prep):
                self.store(w, batch, bundle_id, prep, version_of(prep), stats, now,
                           next(file_ids))
            if len(batch.rows["value"]) >= FLUSH_VALUES:
                self.flush(w, batch)
        self.flush(w, batch)

    def _stage_jobs(self, jobs: list[tuple]):
        """Groups of files to stage, each with the key ids known when it is handed out."""
        group: list[tuple] = []
        size = 0
        for job in jobs:
            group.append(job)
            try:
                size += job[0].path.stat().st_size
            except OSError:
                pass
            if len(group) >= STAGE_FILES or size >= STAGE_BYTES:
                yield group, self._context()
                group, size = [], 0
        if group:
            yield group, self._context()

    def _context(self) -> StageContext:
        self._turn += 1
        return StageContext(self.suffixes, self.aliases, dict(self.key_ids), self.copy_url,
                            self._turn - 1)

    def _open_stage(self, w: BulkWriter, group: Staged) -> list[int]:
        """Attach the group's staged rows, register its new keys, give its runs ids."""
        if not group.runs:
            return []
        if group.copy is not None:  # PostgreSQL: keys and ids came with it
            self.key_ids.update(group.key_ids)
            return list(group.run_ids or ())
        w.stage(group.image)
        if group.new_keys:
            gids = w.register_tap_keys([k for _lid, k in group.new_keys])
            self.key_ids.update(gids)
            shapes = w.remap_stage_keys([(lid, gids[k]) for lid, k in group.new_keys])
            drafts = [d for p in group.preps if not (p.error or p.unchanged) for d in p.drafts]
            for local, draft in enumerate(drafts):
                if draft.shape_sig is None:
                    draft.shape_sig = shape_signature(shapes.get(local, []))
        return w.ids("run", group.runs)

    def key_id_of(self, key: tuple[str, str, str, int]) -> int:
        """The tap_key id of a pairing key, registering it when it is new."""
        key_id = self.key_ids.get(key)
        if key_id is None:
            assert self._writer is not None
            self.key_ids.update(self._writer.register_tap_keys([key]))
            key_id = self.key_ids[key]
        return key_id

    def flush(self, w: BulkWriter, batch: Batch) -> None:
        """Resolve the batch's pixels to ids (one insert, one lookup), then write it."""
        runs = batch.rows["run"]
        wanted = {r[5] for r in runs if r[5] is not None} - self.pixels.keys() \
            - self._new_pixels.keys()
        if wanted:
            w.insert_ignore("pixel", ("slow", "fast"), sorted(wanted))
            slows = sorted({p[0] for p in wanted})
            for i in range(0, len(slows), 500):
                chunk = slows[i:i + 500]
                marks = ", ".join("?" * len(chunk))
                for pid, slow, fast in w.query(
                        f"SELECT id, slow, fast FROM pixel WHERE slow IN ({marks})",
                        tuple(chunk)):
                    if (slow, fast) in wanted:
                        self._new_pixels[(slow, fast)] = pid
        if runs:
            ids = {**self.pixels, **self._new_pixels}
            batch.rows["run"] = [r[:5] + (ids[r[5]] if r[5] is not None else None,) + r[6:]
                                 for r in runs]
        batch.flush(w)

    def store(self, w: BulkWriter, batch: Batch, bundle_id: int, prep: Prepared,
              version: int, stats: Stats, now: str, sf_id: int, staged_ids=None) -> None:
        """Rows of one file. With ``staged_ids`` (an iterator over the ids of the staged
        runs) its taps and values are already staged and only the run rows are built."""
        tf = prep.tf
        batch.rows["source_blob"].append((prep.sha, prep.size, BLOB_COMPRESSION, prep.blob))
        batch.rows["source_file"].append((
            sf_id, bundle_id, tf.display, str(tf.path), prep.sha, version, prep.size,
            prep.line_count, prep.trace_lines, prep.trace_lines - len(prep.quarantined),
            len(prep.quarantined), f"tracedb.parse v{parse.PARSER_VERSION}", prep.encoding,
            prep.meta_display, self.command_id, now))
        if prep.quarantined:
            qids = w.ids("quarantine", len(prep.quarantined))
            batch.rows["quarantine"].extend(
                (qid, sf_id, line_no, reason, text)
                for qid, (line_no, reason, text) in zip(qids, prep.quarantined, strict=True))
        run_ids = w.ids("run", len(prep.drafts)) if staged_ids is None \
            else [next(staged_ids) for _ in prep.drafts]
        for segment, (run_id, draft) in enumerate(zip(run_ids, prep.drafts, strict=True),
                                                  start=1):
            if staged_ids is None:
                template = run_template(draft, self.unit_of, self.key_of, self.key_id_of,
                                        self.templates)
                taps, entries, counts = stage.run_rows(run_id, run_id << TAP_BITS, draft.taps,
                                                       template.static, template.order)
                batch.rows["tap"].extend(taps)
                batch.rows["value"].extend(stage.value_rows(run_id, entries, stage.components))
                draft.tap_count, draft.value_count = len(counts), sum(counts)
                draft.shape_sig = run_shape(template, counts)
                draft.first_line, draft.last_line = draft.taps[0][0], draft.taps[-1][0]
            batch.rows["run"].append((
                run_id, sf_id, bundle_id, segment, draft.side,
                draft.pixel,  # resolved to a pixel id when the batch is flushed
                draft.pixel_source, prep.path_stamp or prep.meta_stamp, prep.path_stamp,
                prep.meta_stamp, prep.meta_time, prep.metadata_json, draft.tap_count,
                draft.first_line, draft.last_line, draft.shape_sig))
            stats.runs += 1
            stats.taps += draft.tap_count
            stats.values += draft.value_count
            if draft.pixel:
                stats.pixel_set.add(draft.pixel)
        stats.new_trace_files += 1
        stats.trace_lines += prep.trace_lines
        stats.quarantined_lines += len(prep.quarantined)
        stats.parsed_lines += prep.trace_lines - len(prep.quarantined)
