"""A large trace file loaded in chunks of lines, so that memory does not grow with it.

A file of ``STREAM_BYTES`` or more is not read whole (``files.prepare_file``): the
writing process (never a worker: nothing of it is pickled) reads it twice. The
first pass hashes it, counts its lines and compresses it, a block at a time. The
second reads chunks of about ``CHUNK_BYTES``, each cut before a line that is not
indented (so a record and its continuation lines stay in one chunk, and each chunk
scans as it would in the whole file: ``rows.scan_text`` numbers its lines from the
chunk's first). Each chunk's taps go to their runs as ``runs.build_runs`` would put
them, with what a run needs from earlier chunks kept per run (its next tap order,
its tap name and pairing key counts: in memory while a run has at most
``RUN_COUNTS`` distinct names, else in a private SQLite database on disk, read and
written back a chunk at a time, see ``_Spill``); taps before the file's first pixel
marker belong to that marker's pixel, which a later chunk may name, so those runs get
their pixel at the file's end. Each chunk's rows are staged (a SQLite stage image
or PostgreSQL COPY text, as ``ingest.staging`` does for groups of files) and
copied into the warehouse at once. The file's source_file row and its run rows are
written before its taps (foreign keys) and completed at its end: counts, encoding,
pixels and shape signatures (read back from the taps written). A file refused
midway (a run of too many taps, a read error) is rolled back to a savepoint, as if
it had never been loaded; its bundle loads on.

The stored rows are the same as those of the whole-file path (tests/test_stream.py);
only the compressed raw file's bytes may differ (the same content).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..store.layout import (
    BLOB_COLS,
    FILE_COLS,
    MAX_TAPS,
    RUN_COLS,
    STAGE_DDL,
    STAGE_SQL,
    TAP_BITS,
    TAP_COLS,
    VALUE_COLS,
    digest_list,
    shape_signature,
)
from . import files, names, parse, rows
from .discover import Note, TraceFile, _open_regular

#: Files of at least this many bytes are loaded in chunks (``TRACEDB_STREAM_BYTES``).
STREAM_BYTES = int(os.environ.get("TRACEDB_STREAM_BYTES", "") or 4 << 20)
#: Bytes per chunk (a chunk is cut at a line end, and extended past indented lines).
CHUNK_BYTES = 1 << 20
#: Bytes of the compressed raw file written to the database at a time.
BLOB_PIECE = 8 << 20
#: Pairing keys a file keeps the ids of, beyond those the loader knew.
KEY_CACHE = 20_000
#: Distinct (channel, name, loop key) a run counts in memory; a run with more (per-phi
#: records: each record has its own loop key) keeps its counts in a ``_Spill``.
RUN_COUNTS = 4096
#: Entries the file's memos of run states and templates hold at most (each is cleared
#: when full: they only save work).
MEMO_ENTRIES = 1 << 17
#: Bytes per read of the first pass.
BLOCK_BYTES = 1 << 20


def streams(tf: TraceFile, size: int | None = None) -> bool:
    """Whether ``tf`` is loaded in chunks (a text trace; JSON is read whole, within
    ``ingest.jsontaps``' own size limit). ``size``: its size in bytes when the caller
    has it (else it is looked up; a file that cannot be is not streamed)."""
    if tf.json:
        return False
    if size is None:
        try:
            size = tf.path.stat().st_size
        except OSError:
            return False
    return size >= STREAM_BYTES


class Refused(Exception):
    """The file is not loaded (the message says why); its bundle loads on."""


@dataclass(slots=True)
class _Run:
    """One run of the file as its chunks are read."""

    id: int
    segment: int
    side: str | None
    pixel: tuple | None  # None with pending: the file's first marker's, or the file's
    source: str | None
    pending: bool
    taps: int = 0
    values: int = 0
    first_line: int | None = None
    last_line: int | None = None
    # occurrences so far of each (channel, name, loop_key) and (channel, key_name,
    # loop_key): between chunks as one tuple shared by the runs whose taps so far had
    # the same names (a file that traces pixel after pixel keeps one, not one per run);
    # None once the run's counts are in the file's _Spill
    counts: tuple | None = ((), ())
    chunk: list = field(default_factory=list)  # this chunk's taps


def first_pass(tf: TraceFile, prep: files.Prepared):
    """sha256, size and line count of ``tf``, a block at a time; its compressed bytes
    in a temporary file (returned, at its start)."""
    import tempfile

    import zstandard

    sha = hashlib.sha256()
    size = newlines = 0
    last = b""
    with _open_regular(tf.path) as fh:
        total = os.fstat(fh.fileno()).st_size
        comp = zstandard.ZstdCompressor(level=files.BLOB_LEVEL).compressobj(size=total)
        out = tempfile.TemporaryFile()
        while True:
            block = fh.read(BLOCK_BYTES)
            if not block:
                break
            sha.update(block)
            size += len(block)
            newlines += block.count(b"\n")
            last = block[-1:]
            out.write(comp.compress(block))
    if size != total:  # the file changed while it was read
        out.close()
        raise OSError(f"file changed while it was read ({total} then {size} bytes)")
    out.write(comp.flush())
    out.seek(0)
    prep.sha, prep.size = sha.hexdigest(), size
    prep.line_count = newlines + (1 if size and last != b"\n" else 0)
    return out


def _chunks(fh, chunk_bytes: int):
    """The file's bytes in chunks of whole lines, each cut before a line that does not
    start with a blank (the last chunk may lack its line end)."""
    pending = b""
    while True:
        block = fh.read(chunk_bytes)
        if not block:
            if pending:
                yield pending
            return
        data = pending + block if pending else block
        cut = data.rfind(b"\n")
        while cut >= 0 and (cut + 1 >= len(data) or data[cut + 1] in (32, 9)):
            cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            pending = data
            continue
        yield data[:cut + 1]
        pending = data[cut + 1:]


class _Spill:
    """The occurrence counts of a file's runs with many distinct names, in a private
    SQLite database on disk (its page cache bounded; gone when closed): the counts of
    a chunk's keys are read before the chunk is counted and written back after."""

    def __init__(self) -> None:
        self.con = sqlite3.connect("", isolation_level=None)  # "": a temporary file
        self.con.execute("CREATE TABLE counts (run INTEGER, kind INTEGER, key TEXT, "
                         "n INTEGER, PRIMARY KEY (run, kind, key)) WITHOUT ROWID")
        self.con.execute("CREATE TABLE want (kind INTEGER, key TEXT)")

    def load(self, run_id: int, keys) -> tuple[dict, dict]:
        """The counts so far of ``keys`` ((kind, key): 0 a name's, 1 a pairing key's)
        of run ``run_id``: (names, pairing keys), each key -> count (absent: none)."""
        con = self.con
        con.execute("BEGIN")
        con.execute("DELETE FROM want")
        con.executemany("INSERT INTO want VALUES (?, ?)", keys)
        got: tuple[dict, dict] = ({}, {})
        for kind, key, n in con.execute(
                "SELECT w.kind, w.key, c.n FROM want w JOIN counts c ON c.run = ? "
                "AND c.kind = w.kind AND c.key = w.key", (run_id,)):
            got[kind][key] = n
        con.execute("COMMIT")
        return got

    def save(self, run_id: int, seen: dict, seen_key: dict) -> None:
        """Write back a run's counts (those of one chunk's keys, or all it had)."""
        con = self.con
        con.execute("BEGIN")
        for kind, counts in ((0, seen), (1, seen_key)):
            con.executemany("INSERT OR REPLACE INTO counts VALUES (?, ?, ?, ?)",
                            [(run_id, kind, k, n) for k, n in counts.items()])
        con.execute("COMMIT")

    def close(self) -> None:
        self.con.close()


class FileStream:
    """One large file's load, inside its bundle's transaction (see the module)."""

    def __init__(self, loader, w, bundle, tf: TraceFile, sf_id: int, staged: bool,
                 chunk_bytes: int | None = None):
        self.loader, self.w, self.bundle, self.tf = loader, w, bundle, tf
        self.sf_id, self.staged = sf_id, staged
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.copy = staged and loader.copy_url is not None  # PostgreSQL: COPY text

    # -- the file's context, as prepare_file makes it --------------------------------
    def context(self, prep: files.Prepared, notes: list[Note]) -> None:
        tf = self.tf
        meta = None
        if tf.metadata_path is not None:
            prep.meta_display = tf.display.rsplit("/", 1)[0] + "/" + tf.metadata_path.name \
                if "/" in tf.display else tf.metadata_path.name
            meta = files._read_json(tf.metadata_path, prep.meta_display, notes)
        pixel, source = files._usable_pixel(files._metadata_pixel(meta),
                                            prep.meta_display or tf.display, None,
                                            notes), "metadata"
        if pixel is None:
            pixel, source = files._usable_pixel(names.pixel_from_name(tf.path.name),
                                                tf.display, None, notes), "filename"
        self.file_pixel, self.file_source = pixel, source
        self.file_side = names.side_from_path(list(Path(tf.display).parts[-3:]))
        prep.path_stamp = names.stamp_in(str(tf.path))
        prep.meta_time = files._metadata_time(meta)
        prep.meta_stamp = names.normalize_stamp(prep.meta_time)
        prep.metadata_json = json.dumps(meta, sort_keys=True) if meta is not None else None

    # -- the second pass ---------------------------------------------------------------
    def load(self, prep: files.Prepared, file_row: tuple, blob) -> list[Note]:
        """Write the file's rows (``file_row`` its source_file row, whose counts and
        encoding are set at the end; ``blob`` the file of its compressed bytes); the
        notes on what was read."""
        w, tf = self.w, self.tf
        self._write_blob(prep, blob)
        w.insert("source_file", FILE_COLS, [file_row])
        self.runs: dict[tuple, _Run] = {}
        self.order: list[_Run] = []
        self.new_runs: list[_Run] = []
        self.states: dict[tuple, tuple] = {}  # see _Run.counts
        self.memo = 0  # entries of self.states and self.statics (see MEMO_ENTRIES)
        self.spill: _Spill | None = None
        # pairing keys this file registered (at most KEY_CACHE; the loader's cache is
        # not given them: a file of a million keys would keep them all)
        self.keys: dict[tuple, int] = {}
        self.targets = frozenset(a[2] for a in self.loader.aliases)
        self.statics: dict[tuple, tuple] = {}  # see _static
        self.first_marker: tuple | None = None
        self.marker_lines: dict[tuple, int] = {}  # marker pixel -> its first line
        self.current: tuple | None = None
        self.last_side = self.file_side
        self.too_many: _Run | None = None
        unit_of, key_of = self.loader.unit_of, self.loader.key_of
        scan_notes: list[Note] = []
        bad_utf8 = nul = None
        encoding_bad = encoding_nul = False
        trace_lines = continuation = quarantined = 0
        line_base = offset = 0
        last_text = ""
        with _open_regular(tf.path) as fh, self._spilled():
            for data in _chunks(fh, self.chunk_bytes):
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    if bad_utf8 is None:
                        bad_utf8 = Note(tf.display, f"invalid UTF-8 at byte "
                                        f"{offset + exc.start}; undecodable bytes replaced "
                                        "(raw file kept)",
                                        line_base + data[:exc.start].count(b"\n") + 1,
                                        level="warning")
                    encoding_bad = True
                    text = data.decode("utf-8", errors="replace")
                if "\0" in text:
                    if nul is None:
                        nul = Note(tf.display, "NUL character(s) replaced (raw file kept)",
                                   line_base + text[:text.index("\0")].count("\n") + 1,
                                   level="warning")
                    encoding_nul = True
                    text = text.replace("\0", "\ufffd")
                scanned = rows.scan_text(text, line_base)
                for warning in scanned.warnings:
                    no, _, msg = warning.partition(": ")
                    scan_notes.append(Note(tf.display, msg, int(no.split()[1]),
                                           level="warning"))
                trace_lines += scanned.trace_lines
                continuation += scanned.continuation_lines
                qlines = [ln for ln in scanned.general if ln.quarantine]
                if qlines:
                    split = parse.split_lines(text)
                    qids = w.ids("quarantine", len(qlines))
                    w.insert("quarantine", ("id", "source_file_id", "line_no", "reason",
                                            "text"),
                             [(qid, self.sf_id, ln.line_no, ln.quarantine,
                               split[ln.line_no - line_base - 1][:files.QUARANTINE_TEXT_LIMIT])
                              for qid, ln in zip(qids, qlines, strict=True)])
                    quarantined += len(qlines)
                self._assign(scanned)
                self._open_runs()
                self._stage(unit_of, key_of)
                line_base += data.count(b"\n")
                offset += len(data)
                last_text = text
        if offset != prep.size:
            raise OSError(f"file changed while it was read ({prep.size} then {offset} bytes)")
        if self.too_many is not None:
            run = self.too_many
            pixel = self._final_pixel(run)[0]
            pixel = f" (pixel {names.pixel_text(pixel)})" if pixel else ""
            raise Refused(f"a run{pixel} of {run.taps:,} taps, more than the "
                          f"{MAX_TAPS:,} a run may hold; file not loaded")
        notes: list[Note] = [n for n in (bad_utf8, nul) if n is not None] + scan_notes
        if last_text and not last_text.endswith("\n"):
            tail = last_text.rsplit("\n", 1)[-1]
            if parse.TRACE_LINE.match(tail):
                notes.append(Note(tf.display, "last line has no line end (truncated "
                                  "file?); parsed as written", line_base + 1,
                                  level="warning"))
        prep.encoding = "utf-8" + (" (invalid bytes replaced)" if encoding_bad else "") \
            + (", NUL replaced" if encoding_nul else "")
        prep.trace_lines, prep.continuation_lines = trace_lines, continuation
        self.quarantined = quarantined
        self._finish(prep, quarantined)
        return notes

    def _spill(self) -> _Spill:
        """The file's spill database (made when a run first needs it)."""
        if self.spill is None:
            self.spill = _Spill()
        return self.spill

    @contextlib.contextmanager
    def _spilled(self):
        """Around the second pass: the spill database (if one was made) closed at its end."""
        try:
            yield
        finally:
            if self.spill is not None:
                self.spill.close()
                self.spill = None

    def _write_blob(self, prep: files.Prepared, blob) -> None:
        """The source_blob row (unless the warehouse has it), its content written a
        piece at a time: SQLite's incremental blob I/O into a zeroblob, PostgreSQL's
        bytea appended to."""
        w = self.w
        m = w.MARK
        n = os.fstat(blob.fileno()).st_size
        if m == "?":
            w.cur.execute(f"INSERT INTO source_blob ({', '.join(BLOB_COLS)}) VALUES "
                          "(?, ?, ?, zeroblob(?)) ON CONFLICT DO NOTHING",
                          (prep.sha, prep.size, files.BLOB_COMPRESSION, n))
            if w.cur.rowcount != 1:
                return
            with w.raw.blobopen("source_blob", "content", w.cur.lastrowid) as dst:
                for piece in iter(lambda: blob.read(BLOB_PIECE), b""):
                    dst.write(piece)
            return
        w.cur.execute(f"INSERT INTO source_blob ({', '.join(BLOB_COLS)}) VALUES "
                      f"({m}, {m}, {m}, {m}) ON CONFLICT DO NOTHING RETURNING sha256",
                      (prep.sha, prep.size, files.BLOB_COMPRESSION, blob.read(BLOB_PIECE)))
        if w.cur.fetchone() is None:
            return
        for piece in iter(lambda: blob.read(BLOB_PIECE), b""):
            w.cur.execute(f"UPDATE source_blob SET content = content || {m} "
                          f"WHERE sha256 = {m}", (piece, prep.sha))

    def _assign(self, scanned: rows.Scanned) -> None:
        """The chunk's taps to their runs (``runs.build_runs``, one chunk at a time)."""
        plain = sorted(scanned.markers)
        traced = [(ln.line_no, ln.pixel) for ln in scanned.general if ln.pixel]
        for no, pix in plain + traced:
            if pix not in self.marker_lines or no < self.marker_lines[pix]:
                self.marker_lines[pix] = no
        if self.first_marker is None and (plain or traced):
            self.first_marker = min(plain + traced)[1]
            for key in [k for k in self.runs if k[1] is _PENDING]:  # they now know it
                self.runs[(key[0], self.first_marker)] = self.runs.pop(key)
        j, n_plain = 0, len(plain)
        current, last_side, first = self.current, self.last_side, self.first_marker
        for item in scanned.items:
            no = item[0]
            while j < n_plain and plain[j][0] <= no:
                current = plain[j][1]
                j += 1
            if current is not None:
                pixel = current
            elif first is not None:
                pixel = first
            else:
                pixel = _PENDING
            if len(item) == 5:
                last_side = item[1]
                self._run(last_side, pixel).chunk.append(item)
                continue
            ln: parse.Line = item[1]
            if ln.pixel:
                current = pixel = ln.pixel
            if ln.side:
                last_side = ln.side
            for tap in ln.taps:
                self._run(tap.side or last_side, pixel).chunk.append((no, tap))
        if j < n_plain:  # markers after the chunk's last tap hold for the next chunk
            current = plain[-1][1]
        self.current, self.last_side = current, last_side

    def _run(self, side, pixel) -> _Run:
        run = self.runs.get((side, pixel))
        if run is None:
            pending = pixel is _PENDING
            run = _Run(0, len(self.order) + 1, side, None if pending else pixel,
                       "marker" if not pending else None, pending)
            self.runs[(side, pixel)] = run
            self.order.append(run)
            self.new_runs.append(run)
        return run

    def _open_runs(self) -> None:
        """Ids and rows (completed at the file's end) for the chunk's new runs."""
        new, self.new_runs = self.new_runs, []
        if not new:
            return
        for run, run_id in zip(new, self.w.ids("run", len(new)), strict=True):
            run.id = run_id
        b = self.bundle
        self.w.insert("run", RUN_COLS, [(
            run.id, self.sf_id, b.id, run.segment, run.side, None, None, None, None, None,
            None, None, 0, None, None, None, None) for run in new])

    def _stage(self, unit_of, key_of) -> None:
        """Stage and copy the chunk's taps and values, run by run."""
        work = [r for r in self.order if r.chunk]
        if not work:
            return
        statics = {}
        missing: dict = {}
        for run in work:
            if self.too_many is None and run.taps + len(run.chunk) <= MAX_TAPS:
                statics[run.id] = self._static(run, unit_of, key_of, missing)
        if missing:  # the chunk's new pairing keys, registered at once
            ids = self.w.register_tap_keys(list(missing))
            if len(self.keys) + len(ids) > KEY_CACHE:
                self.keys.clear()
            self.keys.update(ids)
            for static in statics.values():
                for i, t in enumerate(static):
                    if t[7] is None:
                        static[i] = t[:7] + (ids[(key_of(t[0], t[1])[0], t[5], t[2],
                                                  t[6])],)
        stager = rows.Stager(None) if self.copy else \
            rows.Stager(STAGE_DDL, *STAGE_SQL) if self.staged else None
        tap_rows: list = []
        value_rows: list = []
        for run in work:
            taps, run.chunk = run.chunk, []
            if self.too_many is not None or run.taps + len(taps) > MAX_TAPS:
                run.taps += len(taps)  # counted, never written (the file is refused)
                self.too_many = self.too_many or run
                continue
            static = statics[run.id]
            order = sorted(range(len(static)), key=lambda i: static[i][7])
            base = run.id << TAP_BITS
            if stager is not None:
                # (the chunk's digests: the run's whole list is read back, _shapes)
                counts, _digests = stager.run(run.id, base, taps, static, order, run.taps)
            else:
                trow, entries, counts, _digests = rows.run_rows(run.id, base, taps, static,
                                                                order, run.taps)
                tap_rows.extend(trow)
                value_rows.extend(rows.value_rows(run.id, entries, rows.components))
            run.taps += len(counts)
            run.values += sum(counts)
            state = run.counts
            if state is not None:
                run.counts = self.states.get(state)
                if run.counts is None:
                    self._memo(len(state[0]) + len(state[1]))
                    run.counts = self.states[state] = state
            if run.first_line is None:
                run.first_line = taps[0][0]
            run.last_line = taps[-1][0]
        w = self.w
        if self.copy:
            w.copy_staged(*stager.copy_text())
        elif stager is not None:
            w.stage(stager.image())
            w.copy_stage(0, in_order=True)
        else:
            w.insert("tap", TAP_COLS, tap_rows)
            w.insert("value", VALUE_COLS, value_rows)

    def _memo(self, entries: int) -> None:
        """Make room for ``entries`` more in the memos (both emptied when full)."""
        self.memo += entries
        if self.memo > MEMO_ENTRIES:
            self.states.clear()
            self.statics.clear()
            self.memo = entries

    def _static(self, run: _Run, unit_of, key_of, missing: dict) -> list[tuple]:
        """:func:`_static`, once per run state and tap names while every key id is known
        (a file that traces pixel after pixel repeats both: ``runs.run_template``)."""
        shared = run.counts is not None
        if shared:
            ident = (run.counts, tuple([e[2] if len(e) == 5 else (
                e[1].channel, e[1].name, e[1].loop_key, e[1].unit) for e in run.chunk]))
            hit = self.statics.get(ident)
            if hit is not None:
                run.counts = hit[1]
                return list(hit[0])
        static = _static(run.chunk, run, unit_of, key_of, self.targets, self.loader.key_ids,
                         self.keys, missing, self._spill)
        if shared and run.counts is not None and None not in [t[7] for t in static]:
            self._memo(2 * len(static))
            self.statics[ident] = (tuple(static), run.counts)
        return static

    def _final_pixel(self, run: _Run) -> tuple:
        if not run.pending:
            return run.pixel, run.source
        if self.first_marker is not None:
            return self.first_marker, "marker"
        return self.file_pixel, self.file_source if self.file_pixel else None

    def _finish(self, prep: files.Prepared, quarantined: int) -> None:
        """Complete the source_file and run rows: counts, pixels, shape signatures."""
        w, tf = self.w, self.tf
        usable: dict[tuple, tuple | None] = {}
        notes: list[Note] = []
        finals = []
        for run in self.order:
            pixel, source = self._final_pixel(run)
            if pixel is not None and source == "marker":
                if pixel not in usable:
                    usable[pixel] = files._usable_pixel(
                        pixel, tf.display, self.marker_lines.get(pixel), notes)
                if usable[pixel] is None:
                    pixel = source = None
            finals.append((run, pixel, source))
        self.marker_notes = notes
        pixels = self.loader.pixel_ids({p for _r, p, _s in finals if p is not None})
        stamp = prep.path_stamp or prep.meta_stamp
        shapes = self._shapes()
        updates = []
        for run, pixel, source in finals:
            run.pixel, run.source = pixel, source
            updates.append((pixels[pixel] if pixel is not None else None, source, stamp,
                            prep.path_stamp, prep.meta_stamp, prep.meta_time,
                            prep.metadata_json, run.taps, run.first_line, run.last_line,
                            *shapes.get(run.id, _NO_TAPS), run.id))
        sets = ", ".join(f"{c} = {w.MARK}" for c in RUN_COLS[5:])
        w.cur.executemany(f"UPDATE run SET {sets} WHERE id = {w.MARK}", updates)
        m = w.MARK
        w.cur.execute(f"UPDATE source_file SET trace_lines = {m}, parsed_lines = {m}, "
                      f"quarantined_lines = {m}, encoding = {m}, continuation_lines = {m} "
                      f"WHERE id = {m}",
                      (prep.trace_lines, prep.trace_lines - quarantined, quarantined,
                       prep.encoding, prep.continuation_lines, self.sf_id))

    def _shapes(self) -> dict[int, tuple[str, bytes]]:
        """``layout.shape_signature`` and ``layout.digest_list`` of each of the file's
        runs, from its taps as written, read back in key order (one pass over the
        file's taps)."""
        out: dict[int, tuple[str, bytes]] = {}
        w = self.w
        # streamed from the database: a server-side cursor on PostgreSQL
        cur = w.raw.cursor(name="tracedb_shapes") if w.MARK == "%s" else w.raw.cursor()
        run_id, keys, digests = None, [], []

        def done() -> None:
            if run_id is not None:
                out[run_id] = (shape_signature(keys), digest_list(digests))

        try:
            cur.execute(f"SELECT run_id, key_id, n_components, digest FROM tap WHERE run_id IN "
                        f"(SELECT id FROM run WHERE source_file_id = {w.MARK}) "
                        "ORDER BY run_id, key_id", (self.sf_id,))
            while True:
                batch = cur.fetchmany(50_000)
                if not batch:
                    break
                for rid, k, n, d in batch:
                    if rid != run_id:
                        done()
                        run_id, keys, digests = rid, [], []
                    keys.append((k, n))
                    digests.append(d)
        finally:
            cur.close()
        done()
        return out


#: The shape signature and digest list of a run without taps.
_NO_TAPS = (shape_signature([]), b"")
#: The pixel of taps before the file's first marker while no chunk has named it yet.
_PENDING = ("pending",)


def _static(taps: list, run: _Run, unit_of, key_of, targets: frozenset, known: dict,
            mine: dict, missing: dict, spill) -> list[tuple]:
    """The template tuples of a run's taps of one chunk (``runs._template``, with the
    run's occurrence counts carried from chunk to chunk: ``run.counts``, or when that is
    None the ``_Spill`` that ``spill()`` gives, where they go once the run counts more
    than ``RUN_COUNTS`` names); a key id in neither ``known`` nor ``mine`` is None, its
    key added to ``missing``. ``targets``: the pairing names and channels aliases give
    (only those need counts of their own)."""
    parts = []
    for e in taps:
        if len(e) == 5:
            channel, name, loop_key, written = "", e[2], "", None
        else:
            t = e[1]
            channel, name, loop_key, written = t.channel, t.name, t.loop_key, t.unit
        # one str per (channel, name, loop_key): names hold no NUL (decode replaces it)
        key = f"{channel}\0{name}\0{loop_key}" if channel or loop_key else name
        key_channel, key_name = key_of(channel, name)
        # other names (or channels) may count towards an alias's pairing key; any other
        # pairing key is the name itself and no other: the same count
        pkey = f"{key_channel}\0{key_name}\0{loop_key}" \
            if key_name in targets or key_channel in targets else None
        parts.append((channel, name, loop_key, written, key, key_channel, key_name, pkey))
    if run.counts is None:  # spilled: the counts so far of this chunk's keys
        seen, seen_key = spill().load(run.id, {(0, p[4]) for p in parts}
                                      | {(1, p[7]) for p in parts if p[7] is not None})
    else:
        seen, seen_key = dict(run.counts[0]), dict(run.counts[1])
    out = []
    for channel, name, loop_key, written, key, key_channel, key_name, pkey in parts:
        occ = seen[key] = seen.get(key, 0) + 1
        if pkey is not None:
            key_occ = seen_key[pkey] = seen_key.get(pkey, 0) + 1
        else:
            key_occ = occ
        pairing = (key_channel, key_name, loop_key, key_occ)
        key_id = known.get(pairing)
        if key_id is None:
            key_id = mine.get(pairing)
            if key_id is None:
                missing[pairing] = None
        out.append((channel, name, loop_key, occ, unit_of(name, written), key_name, key_occ,
                    key_id))
    if run.counts is None or len(seen) > RUN_COUNTS:
        spill().save(run.id, seen, seen_key)
        run.counts = None
    else:
        run.counts = (tuple(seen.items()), tuple(seen_key.items()))
    return out
