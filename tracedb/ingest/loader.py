"""Load discovered bundles: one transaction per bundle, idempotent by content hash.

Loading does not interpret text: it hands files to ``files.prepare_file`` or
``staging.stage_files`` (in worker processes when the ingest is large) and writes
what comes back, plus provenance (bundle metadata, the raw file, quarantined
lines), through the dialect's bulk writer (``store``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Engine

from .. import workers
from ..store.engine import backend, utcnow
from ..store.layout import MAX_LINES, TAP_BITS, WRITE_ORDER, digest_list, shape_signature
from ..store.writer import BulkWriter
from . import parse, rows, stream
from .discover import BundlePlan, Note, discover
from .files import BLOB_COMPRESSION, Prepared, bundle_metadata, prepare_file
from .images import load_evidence
from .runs import UnitRules, alias_lookup, run_template, summarise, unit_lookup
from .staging import STAGE_BYTES, STAGE_FILES, StageContext, Staged, Turns, init_worker, stage_files

ProgressFn = Callable[[str, int, int], None]  # (description, done, total)

#: Rows buffered before they are written (bounds memory whatever the input size).
FLUSH_VALUES = 50_000
#: Ingests of fewer files stay in one process (worker start-up would cost more).
PARALLEL_MIN_FILES = 300
#: Pairing key ids the loader keeps, and hands to stagers: at each bundle the newest
#: this many of the warehouse (all of them, in most warehouses), then those it meets.
#: A key not kept is looked up (or registered) when it is met, so a warehouse of
#: millions of keys (per-phi records) costs no memory.
KEY_IDS = 20_000


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
    trace_lines: int = 0  # lines of TRACE records, continuation lines included
    continuation_lines: int = 0
    parsed_lines: int = 0
    quarantined_lines: int = 0
    json_files: int = 0  # trace files written as JSON, and their leaves: values loaded,
    json_values: int = 0  # items quarantined (with their JSON pointers)
    json_quarantined: int = 0
    skipped_files: int = 0
    failed_bundles: int = 0
    errors: int = 0
    pixel_set: set = field(default_factory=set)

    def as_dict(self, seconds: float) -> dict:
        """The documented counts, in field order, and the seconds the ingest took."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pixel_set"}
        out["seconds"] = round(seconds, 3)
        return out


class Batch:
    """Rows waiting to be written, in foreign-key order."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name, _c, _i in WRITE_ORDER}

    def flush(self, writer: BulkWriter) -> None:
        for name, cols, ignore in WRITE_ORDER:
            rows = self.rows[name]
            if rows:
                (writer.insert_ignore if ignore else writer.insert)(name, cols, rows)
                rows.clear()


class Loader:
    def __init__(self, tables: dict[str, Table], command_id: int | None,
                 units: UnitRules, aliases: list[tuple[str, str, str, str]],
                 copy_url: str | None = None):
        """``copy_url``: on PostgreSQL, the warehouse URL for staging (see
        :func:`stage_files`)."""
        self.copy_url = copy_url
        self._turn = 0  # staged jobs handed out so far (see Turns)
        self.t = tables
        self.command_id = command_id
        self.units = units
        self.unit_of = unit_lookup(units)
        self.aliases = tuple(aliases)
        self.key_of = alias_lookup(self.aliases)
        self.pixels: dict[tuple[int, int], int] = {}  # committed pixel ids
        self._new_pixels: dict[tuple[int, int], int] = {}  # this transaction's
        # pairing key -> tap_key.id, for at most KEY_IDS keys (see remember_keys)
        self.key_ids: dict[tuple[str, str, str, int], int] = {}
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
        w = backend(conn).Writer(conn)
        w.lock_bundle(str(plan.directory))
        bundle = _Bundle.open(conn, w, self.t["bundle"], plan, stats, notes)
        batch = Batch()
        # pairing keys as the database has them now (another writer may have added some)
        self._writer = w
        self.key_ids = w.tap_keys(KEY_IDS)
        self.templates = {}  # their key ids may be from a rolled-back bundle
        file_ids = iter(w.ids("source_file", len(plan.trace_files)))
        jobs = [(tf, tuple(bundle.known.get(str(tf.path), ()))) for tf in plan.trace_files]
        if staged:
            for group in mapper(stage_files, self._stage_jobs(jobs)):
                if group.stream is not None:
                    file_ids = self.stream_file(w, batch, bundle, group.stream, file_ids,
                                                staged)
                    continue
                run_ids = self._open_stage(w, group)
                ids = iter(run_ids)
                for prep in group.preps:
                    if bundle.accept(prep):
                        self.store(w, batch, bundle, prep, next(file_ids), ids)
                self.flush(w, batch)  # run rows before the taps and values that need them
                if group.copy is not None:
                    w.copy_staged(*group.copy)
                elif run_ids:
                    w.copy_stage(run_ids[0], in_order=not group.new_keys)
            return
        jobs = [(*job, stream.streams(job[0])) for job in jobs]
        for prep in mapper(prepare_file, jobs):
            if prep.stream:
                file_ids = self.stream_file(w, batch, bundle,
                                            (prep.tf, _known(bundle, prep.tf)), file_ids,
                                            staged)
                continue
            if bundle.accept(prep):
                self.store(w, batch, bundle, prep, next(file_ids))
            if len(batch.rows["value"]) >= FLUSH_VALUES:
                self.flush(w, batch)
        self.flush(w, batch)

    def _stage_jobs(self, jobs: list[tuple]):
        """Groups of files to stage, each with the key ids known when it is handed out."""
        group: list[tuple] = []
        size = 0
        for job in jobs:
            try:
                file_size: int | None = job[0].path.stat().st_size
            except OSError:  # not streamed; reading it says why
                file_size = None
            if file_size is not None and stream.streams(job[0], file_size):
                # loaded in chunks by this process, in its turn
                if group:
                    yield group, self._context()
                    group, size = [], 0
                yield [job], self._context(stream=True)
                continue
            group.append(job)
            size += file_size or 0
            if len(group) >= STAGE_FILES or size >= STAGE_BYTES:
                yield group, self._context()
                group, size = [], 0
        if group:
            yield group, self._context()

    def _context(self, stream: bool = False) -> StageContext:
        self._turn += 1
        if stream:  # a placeholder: its worker needs no key ids
            return StageContext(self.units, self.aliases, {}, self.copy_url, self._turn - 1,
                                stream=True)
        return StageContext(self.units, self.aliases, dict(self.key_ids), self.copy_url,
                            self._turn - 1)

    def stream_file(self, w: BulkWriter, batch: Batch, bundle: _Bundle, job: tuple,
                    file_ids, staged: bool):
        """Load one large file in chunks (see ``ingest.stream``), in this process and
        inside a savepoint, so that a file refused midway leaves nothing behind. Returns
        ``file_ids`` (the iterator of source_file ids, the id put back if unused)."""
        tf, known = job
        prep = Prepared(tf=tf)
        blob = None
        try:
            blob = stream.first_pass(tf, prep)
        except OSError as exc:
            prep.notes.append(Note(tf.display, f"cannot read: {exc.strerror or exc}",
                                   level="error"))
            prep.error = True
        if not prep.error and prep.sha in known:
            prep.unchanged = True
        elif not prep.error and prep.line_count > MAX_LINES:
            prep.notes.append(Note(tf.display, f"{prep.line_count:,} lines, more than the "
                                   f"{MAX_LINES:,} a file may hold; file not loaded",
                                   level="error"))
            prep.error = True
        if prep.error or prep.unchanged:
            if blob is not None:
                blob.close()
            bundle.accept(prep)
            return file_ids
        with blob:
            return self._stream(w, batch, bundle, prep, blob, file_ids, staged)

    def _stream(self, w, batch, bundle, prep, blob, file_ids, staged: bool):
        tf = prep.tf
        self.flush(w, batch)
        fs = stream.FileStream(self, w, bundle, tf, 0, staged, stream.CHUNK_BYTES)
        context_notes: list[Note] = []
        fs.context(prep, context_notes)
        # what a rollback to the savepoint takes back (the stream keeps the pairing keys
        # it registers to itself)
        saved = (dict(self._new_pixels), bundle.id, bundle.stats.bundles)
        w.cur.execute("SAVEPOINT tracedb_stream")
        bundle.accept(prep)  # makes the bundle's row if it is new
        fs.sf_id = sf_id = next(file_ids)
        version = len(bundle.known.get(str(tf.path), ())) + 1
        try:
            notes = fs.load(prep, file_row(prep, sf_id, bundle.id, version, 0, 0,
                                           self.command_id, bundle.now), blob)
        except (stream.Refused, OSError) as exc:
            w.cur.execute("ROLLBACK TO SAVEPOINT tracedb_stream")
            w.cur.execute("RELEASE SAVEPOINT tracedb_stream")
            self._new_pixels = saved[0]
            bundle.id, bundle.stats.bundles = saved[1], saved[2]
            message = str(exc) if isinstance(exc, stream.Refused) \
                else f"cannot read: {exc.strerror or exc}"
            bundle.notes.extend(context_notes)
            bundle.notes.append(Note(tf.display, message, level="error"))
            bundle.stats.errors += 1
            return itertools.chain([sf_id], file_ids)
        w.cur.execute("RELEASE SAVEPOINT tracedb_stream")
        bundle.notes.extend(notes + context_notes + fs.marker_notes)
        bundle.version_of(prep)
        stats = bundle.stats
        for run in fs.order:
            stats.runs += 1
            stats.taps += run.taps
            stats.values += run.values
            if run.pixel:
                stats.pixel_set.add(run.pixel)
        stats.new_trace_files += 1
        stats.trace_lines += prep.trace_lines
        stats.continuation_lines += prep.continuation_lines
        stats.quarantined_lines += fs.quarantined
        stats.parsed_lines += prep.trace_lines - fs.quarantined
        return file_ids

    def pixel_ids(self, pixels: set) -> dict[tuple[int, int], int]:
        """The ids of ``pixels`` (those new to the warehouse inserted: one insert, one
        look-up per 500 slow numbers)."""
        assert self._writer is not None
        w = self._writer
        # tested one by one: a set minus a dict's keys walks every key of the dict
        known, new = self.pixels, self._new_pixels
        wanted = {p for p in pixels if p not in known and p not in new}
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
        # looked up in place (merging the two maps first copied every pixel known so
        # far at each of a bundle's flushes)
        return {p: known[p] if p in known else new[p] for p in pixels}

    def _open_stage(self, w: BulkWriter, group: Staged) -> list[int]:
        """Attach the group's staged rows, register its new keys, give its runs ids."""
        if not group.runs:
            return []
        if group.copy is not None:  # PostgreSQL: keys and ids came with it
            self.remember_keys(group.key_ids)
            return list(group.run_ids or ())
        w.stage(group.image)
        if group.new_keys:
            gids = w.register_tap_keys([k for _lid, k in group.new_keys])
            self.remember_keys(gids)
            shapes = w.remap_stage_keys([(lid, gids[k]) for lid, k in group.new_keys])
            drafts = [d for p in group.preps if not (p.error or p.unchanged) for d in p.drafts]
            for local, draft in enumerate(drafts):
                if draft.shape_sig is None:
                    taps = shapes.get(local, [])
                    draft.shape_sig = shape_signature((k, n) for k, n, _d in taps)
                    draft.tap_digests = digest_list([d for _k, _n, d in taps])
        return w.ids("run", group.runs)

    def remember_keys(self, ids: dict[tuple[str, str, str, int], int]) -> None:
        """Keep the ids of these pairing keys (those kept before forgotten when there
        would be more than KEY_IDS)."""
        if len(self.key_ids) + len(ids) > KEY_IDS:
            self.key_ids = {}
        self.key_ids.update(ids)

    def key_id_of(self, key: tuple[str, str, str, int]) -> int:
        """The tap_key id of a pairing key (looked up, or registered when it is new)."""
        key_id = self.key_ids.get(key)
        if key_id is None:
            assert self._writer is not None
            ids = self._writer.register_tap_keys([key])
            self.remember_keys(ids)
            key_id = ids[key]
        return key_id

    def flush(self, w: BulkWriter, batch: Batch) -> None:
        """Resolve the batch's pixels to ids (one insert, one lookup), then write it."""
        runs = batch.rows["run"]
        if runs:
            ids = self.pixel_ids({r[5] for r in runs if r[5] is not None})
            batch.rows["run"] = [r[:5] + (ids[r[5]] if r[5] is not None else None,) + r[6:]
                                 for r in runs]
        batch.flush(w)

    def store(self, w: BulkWriter, batch: Batch, bundle: _Bundle, prep: Prepared, sf_id: int,
              staged_ids=None) -> None:
        """Rows of one file. With ``staged_ids`` (an iterator over the ids of the staged
        runs) its taps and values are already staged and only the run rows are built."""
        stats, now, bundle_id = bundle.stats, bundle.now, bundle.id
        version = bundle.version_of(prep)
        batch.rows["source_blob"].append((prep.sha, prep.size, BLOB_COMPRESSION, prep.blob))
        batch.rows["source_file"].append(file_row(
            prep, sf_id, bundle_id, version, prep.trace_lines, len(prep.quarantined),
            self.command_id, now))
        if prep.quarantined:
            qids = w.ids("quarantine", len(prep.quarantined))
            batch.rows["quarantine"].extend(
                (qid, sf_id, line_no, reason, text, None)
                for qid, (line_no, reason, text) in zip(qids, prep.quarantined, strict=True))
        if prep.json_quarantined:  # a JSON trace's items: line 0, their pointers
            qids = w.ids("quarantine", len(prep.json_quarantined))
            batch.rows["quarantine"].extend(
                (qid, sf_id, 0, reason, text, ptr)
                for qid, (ptr, reason, text) in zip(qids, prep.json_quarantined, strict=True))
        run_ids = w.ids("run", len(prep.drafts)) if staged_ids is None \
            else [next(staged_ids) for _ in prep.drafts]
        for segment, (run_id, draft) in enumerate(zip(run_ids, prep.drafts, strict=True),
                                                  start=1):
            if staged_ids is None:
                template = run_template(draft, self.unit_of, self.key_of, self.key_id_of,
                                        self.templates)
                taps, entries, counts, digests = rows.run_rows(
                    run_id, run_id << TAP_BITS, draft.taps, template.static, template.order)
                batch.rows["tap"].extend(taps)
                batch.rows["value"].extend(rows.value_rows(run_id, entries, rows.components))
                summarise(draft, template, counts, digests)
            batch.rows["run"].append((
                run_id, sf_id, bundle_id, segment, draft.side,
                draft.pixel,  # resolved to a pixel id when the batch is flushed
                draft.pixel_source, prep.path_stamp or prep.meta_stamp, prep.path_stamp,
                prep.meta_stamp, prep.meta_time, prep.metadata_json, draft.tap_count,
                draft.first_line, draft.last_line, draft.shape_sig, draft.tap_digests))
            if draft.pointers is not None:
                base = run_id << TAP_BITS
                batch.rows["tap_pointer"].extend(
                    (base + seq, ptr) for seq, ptr in enumerate(draft.pointers, start=1))
            stats.runs += 1
            stats.taps += draft.tap_count
            stats.values += draft.value_count
            if draft.pixel:
                stats.pixel_set.add(draft.pixel)
        stats.new_trace_files += 1
        if prep.tf.json:
            stats.json_files += 1
            stats.json_values += prep.json_values
            stats.json_quarantined += len(prep.json_quarantined)
        stats.trace_lines += prep.trace_lines
        stats.continuation_lines += prep.continuation_lines
        stats.quarantined_lines += len(prep.quarantined)
        stats.parsed_lines += prep.trace_lines - len(prep.quarantined)


def file_row(prep: Prepared, sf_id: int, bundle_id: int, version: int, trace_lines: int,
             quarantined: int, command_id: int | None, now: str) -> tuple:
    """A source_file row (layout.FILE_COLS)."""
    tf = prep.tf
    return (sf_id, bundle_id, tf.display, str(tf.path), prep.sha, version, prep.size,
            prep.line_count, trace_lines, trace_lines - quarantined, quarantined,
            prep.parser or f"tracedb.parse v{parse.PARSER_VERSION}", prep.encoding,
            prep.meta_display, command_id, now, prep.continuation_lines, prep.json_values,
            len(prep.json_quarantined))


def _known(bundle: _Bundle, tf) -> tuple:
    return tuple(bundle.known.get(str(tf.path), ()))


@dataclass
class _Bundle:
    """One bundle's load in progress: its row (made with its first new file), what is
    already loaded from its paths, its counts and notes."""

    conn: Connection
    table: Table
    plan: BundlePlan
    stats: Stats
    notes: list[Note]
    meta: dict
    now: str
    id: int | None
    known: dict[str, list[str]]  # path -> sha256 of every version loaded

    @classmethod
    def open(cls, conn, w: BulkWriter, table: Table, plan: BundlePlan, stats: Stats,
             notes: list[Note]) -> _Bundle:
        now = utcnow()
        row = conn.execute(select(table).where(
            table.c.directory == str(plan.directory))).mappings().first()
        # what is already loaded from these paths (under any bundle: a file is the
        # same file whichever folder an ingest started from)
        known: dict[str, list[str]] = {}
        paths = [str(tf.path) for tf in plan.trace_files]
        for i in range(0, len(paths), 500):
            chunk = tuple(paths[i:i + 500])
            for abs_path, sha in w.query("SELECT abs_path, sha256 FROM source_file "
                                         f"WHERE abs_path IN ({', '.join('?' * len(chunk))})",
                                         chunk):
                known.setdefault(abs_path, []).append(sha)
        meta = bundle_metadata(plan, notes)
        bundle_id = row["id"] if row is not None else None
        if row is not None and any(row[k] != v for k, v in meta.items()):
            conn.execute(table.update().where(table.c.id == bundle_id)
                         .values(updated_at=now, **meta))
            stats.bundles_updated += 1
        return cls(conn, table, plan, stats, notes, meta, now, bundle_id, known)

    def accept(self, prep: Prepared) -> bool:
        """Notes, errors and unchanged files; True when ``prep`` is to be stored (the
        bundle's row is made then, if it is new)."""
        self.notes.extend(prep.notes)
        if prep.error:
            self.stats.errors += 1
            return False
        if prep.unchanged:
            self.stats.unchanged_files += 1
            return False
        if self.id is None:
            plan = self.plan
            self.id = self.conn.execute(self.table.insert().returning(self.table.c.id), dict(
                directory=str(plan.directory), path=plan.display, initiative=plan.initiative,
                phase=plan.phase, stamp=plan.stamp, created_at=self.now, updated_at=self.now,
                **self.meta)).scalar_one()
            self.stats.bundles += 1
        return True

    def version_of(self, prep: Prepared) -> int:
        """The version a changed file is loaded as (1 for a new path)."""
        versions = self.known.setdefault(str(prep.tf.path), [])
        if versions:
            self.notes.append(Note(prep.tf.display, "content changed since last ingest; "
                                   f"loaded as version {len(versions) + 1}", level="note"))
        versions.append(prep.sha)
        return len(versions)


@dataclass
class IngestResult:
    stats: dict
    notes: list[Note]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing and not any(n.level == "error" for n in self.notes)


def ingest(engine: Engine, tables: dict[str, Table], paths: list[str], log_command, *,
           progress: ProgressFn | None = None, workers_requested: int | None = None,
           follow_links: bool = True) -> IngestResult:
    """Load every trace file under ``paths`` into the warehouse of ``engine``.

    Ingests of a few hundred files or more are read and parsed by worker processes
    (``workers_requested``, else ``TRACEDB_WORKERS``, else one per CPU, at most four;
    0 keeps it all in this process) while this one writes: staged groups of files
    (see ``staging.stage_files``), so the writer does no per-row work.
    ``log_command()`` records the command once the paths are walked and returns its
    command_log id. ``follow_links``: see :func:`discover.discover`.
    """
    started = time.perf_counter()
    found = discover(paths, follow_links)
    stats = Stats(files=found.files)
    notes: list[Note] = list(found.notes)
    stats.skipped_files = sum(1 for n in found.notes if n.level == "note")
    stats.errors = sum(1 for n in found.notes if n.level == "error")
    stats.trace_files = sum(len(b.trace_files) for b in found.bundles)
    command_id = log_command()
    with engine.connect() as conn:
        units = UnitRules(
            tuple(sorted((r.suffix, r.unit) for r in conn.execute(select(tables["unit_suffix"])))),
            frozenset(conn.execute(select(tables["unit"].c.symbol)).scalars()))
        ta = tables["tap_alias"]
        aliases = [tuple(r) for r in conn.execute(
            select(ta.c.channel, ta.c.name, ta.c.canonical, ta.c.kind).order_by(ta.c.id))]
    store = backend(engine)
    staged, copy_url = store.bulk_context(engine)
    n_workers = workers.count(workers_requested, default=None if staged else 0) \
        if stats.trace_files >= PARALLEL_MIN_FILES else 0
    pool = workers.WindowedPool(n_workers, window=2 * n_workers if staged else 64,
                                init=init_worker, initargs_of=lambda ctx: (Turns(ctx),)) \
        if n_workers > 0 else None
    flusher = store.wal_flusher(engine) if staged and pool is not None else None
    loader = Loader(tables, command_id, units, aliases, copy_url)
    try:
        try:
            _load_bundles(engine, found, loader, stats, notes, pool or map, progress,
                          staged, flusher)
        finally:
            if pool is not None:
                pool.close()
            store.close_stagers()
        # the flusher's checkpoint of the last bundle (about a second of disk writes)
        # runs in the background while the evidence files load and the statistics are
        # refreshed (the flusher used to be stopped first, often before it began)
        evidence = load_evidence(engine, tables, found.evidence, command_id, notes, units)
        if stats.values:
            store.after_bulk_load(engine)
    finally:
        if flusher is not None:
            flusher.close()
    stats.errors += evidence.pop("evidence_errors")
    stats.pixels = len(stats.pixel_set)
    result = stats.as_dict(time.perf_counter() - started)
    result.update(evidence)  # images and numeric results files (ingest.images)
    result["notes"] = [{"level": n.level, "path": n.path, "line": n.line,
                        "message": n.message} for n in notes]
    result["missing"] = list(found.missing)
    return IngestResult(stats=result, notes=notes, missing=found.missing)


_SUMMED = ("new_trace_files", "unchanged_files", "bundles", "bundles_updated", "runs", "taps",
           "values", "trace_lines", "continuation_lines", "parsed_lines", "quarantined_lines",
           "json_files", "json_values", "json_quarantined", "errors")


def _load_bundles(engine, found, loader, stats, notes, mapper, progress, staged: bool,
                  flusher) -> None:
    """Each bundle in its own transaction; a failing bundle rolls back alone."""
    store = backend(engine)
    done, total = 0, stats.trace_files
    for plan in found.bundles:
        if progress:
            progress(plan.display, done, total)
        bundle_notes: list[Note] = []
        before = Stats()
        try:
            with store.write_connection(engine) as conn:
                with store.bundle_session(conn, staged, flusher), conn.begin():
                    loader.load_bundle(conn, plan, before, bundle_notes, mapper, staged)
        except Exception as exc:  # a failing bundle rolls back alone
            loader.rolled_back()
            stats.failed_bundles += 1
            stats.errors += 1
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            notes.append(Note(plan.display, "bundle not loaded, warehouse unchanged: "
                              f"{type(exc).__name__}: {first[0] if first else ''}",
                              level="error"))
            notes.extend(n for n in bundle_notes if n.level == "error")
        else:
            loader.committed()
            if flusher is not None:
                flusher.committed()
            notes.extend(bundle_notes)
            for k in _SUMMED:
                setattr(stats, k, getattr(stats, k) + getattr(before, k))
            stats.pixel_set |= before.pixel_set
        done += len(plan.trace_files)
    if progress:
        progress("done", total, total)
