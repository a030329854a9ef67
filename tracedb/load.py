"""Load discovered bundles: one transaction per bundle, idempotent by content hash.

Loading does not interpret text: it reads files, hashes them, hands the text to
``parse`` and writes what comes back, plus provenance (bundle metadata, the
raw file, quarantined lines).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Table, and_, func, select
from sqlalchemy.engine import Connection

from . import parse
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


def insert_ignore(conn: Connection, table: Table, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: the one place the dialects differ here."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


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
    taps: list[tuple[int, parse.Tap]] = field(default_factory=list)  # (line_no, tap)


def build_runs(parsed: parse.ParsedText, file_side: str | None,
               file_pixel: tuple[int, int] | None, file_pixel_source: str | None
               ) -> list[RunDraft]:
    """Split a file's taps into runs by side and by in-file pixel markers.

    Taps before the first marker belong to the first marker's pixel (the C code
    prints detector geometry before it announces the pixel); without markers,
    the pixel comes from the metadata JSON or the file name.
    """
    markers = sorted([(ln.line_no, ln.pixel) for ln in parsed.lines if ln.pixel]
                     + parsed.markers)
    first_marker = markers[0][1] if markers else None
    events: list[tuple[int, int, object]] = [(no, 0, pix) for no, pix in parsed.markers]
    events += [(ln.line_no, 1, ln) for ln in parsed.lines]
    events.sort(key=lambda e: (e[0], e[1]))
    current = None
    last_side = file_side
    runs: dict[tuple, RunDraft] = {}
    for _no, kind, item in events:
        if kind == 0:
            current = item
            continue
        ln: parse.Line = item  # type: ignore[assignment]
        if ln.pixel:
            current = ln.pixel
        if ln.side:
            last_side = ln.side
        for tap in ln.taps:
            side = tap.side or last_side
            if current is not None:
                pixel, source = current, "marker"
            elif first_marker is not None:
                pixel, source = first_marker, "marker"
            else:
                pixel, source = file_pixel, file_pixel_source
            key = (side, pixel)
            draft = runs.get(key)
            if draft is None:
                draft = runs[key] = RunDraft(side, pixel, source if pixel else None)
            draft.taps.append((ln.line_no, tap))
    return list(runs.values())


# --------------------------------------------------------------------------- loader


class Loader:
    def __init__(self, tables: dict[str, Table], command_id: int | None,
                 suffixes: list[tuple[str, str]]):
        self.t = tables
        self.command_id = command_id
        self.suffixes = sorted(suffixes, key=lambda s: -len(s[0]))

    def unit_of(self, name: str) -> str | None:
        for suffix, unit in self.suffixes:
            if name.endswith(suffix):
                return unit
        return None

    # -- reading -----------------------------------------------------------------
    @staticmethod
    def read(tf: TraceFile) -> bytes:
        with open(tf.path, "rb") as fh:
            return fh.read()

    @staticmethod
    def decode(data: bytes, display: str, notes: list[Note]) -> tuple[str, str]:
        encoding = "utf-8"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            notes.append(Note(display, f"invalid UTF-8 at byte {exc.start}; undecodable "
                                       "bytes replaced (raw file kept)", line,
                              level="warning"))
            text, encoding = data.decode("utf-8", errors="replace"), \
                "utf-8 (invalid bytes replaced)"
        if "\0" in text:  # no SQL text type stores NUL; the raw file keeps it
            line = text[:text.index("\0")].count("\n") + 1
            notes.append(Note(display, "NUL character(s) replaced (raw file kept)", line,
                              level="warning"))
            text, encoding = text.replace("\0", "\ufffd"), encoding + ", NUL replaced"
        return text, encoding

    # -- one bundle --------------------------------------------------------------
    def load_bundle(self, conn: Connection, plan: BundlePlan, stats: Stats,
                    notes: list[Note]) -> None:
        """Everything for one bundle, inside the caller's transaction."""
        t = self.t
        now = utcnow()
        pending: list[tuple[TraceFile, bytes, str]] = []
        for tf in plan.trace_files:
            try:
                data = self.read(tf)
            except OSError as exc:
                notes.append(Note(tf.display, f"cannot read: {exc.strerror or exc}",
                                  level="error"))
                stats.errors += 1
                continue
            sha = hashlib.sha256(data).hexdigest()
            exists = conn.execute(select(t["source_file"].c.id).where(and_(
                t["source_file"].c.abs_path == str(tf.path),
                t["source_file"].c.sha256 == sha))).first()
            if exists:
                stats.unchanged_files += 1
                continue
            pending.append((tf, data, sha))

        meta = bundle_metadata(plan, notes)
        brow = conn.execute(select(t["bundle"]).where(
            t["bundle"].c.directory == str(plan.directory))).mappings().first()
        if brow is None:
            if not pending:
                return
            bundle_id = conn.execute(t["bundle"].insert().returning(t["bundle"].c.id), dict(
                directory=str(plan.directory), path=plan.display, initiative=plan.initiative,
                phase=plan.phase, stamp=plan.stamp, created_at=now, updated_at=now, **meta,
            )).scalar_one()
            stats.bundles += 1
        else:
            bundle_id = brow["id"]
            if any(brow[k] != v for k, v in meta.items()):
                conn.execute(t["bundle"].update().where(t["bundle"].c.id == bundle_id)
                             .values(updated_at=now, **meta))
                stats.bundles_updated += 1

        for tf, data, sha in pending:
            self.load_file(conn, bundle_id, tf, data, sha, stats, notes, now)

    def load_file(self, conn: Connection, bundle_id: int, tf: TraceFile, data: bytes,
                  sha: str, stats: Stats, notes: list[Note], now: str) -> None:
        t = self.t
        text, encoding = self.decode(data, tf.display, notes)
        parsed = parse.parse_text(text)
        for w in parsed.warnings:
            no, _, msg = w.partition(": ")
            notes.append(Note(tf.display, msg, int(no.split()[1]), level="warning"))
        lines = parse.split_lines(text)
        if data and not data.endswith(b"\n") and lines and parse.TRACE_LINE.match(lines[-1]):
            notes.append(Note(tf.display, "last line has no line end (truncated file?); "
                                          "parsed as written", len(lines), level="warning"))

        meta = None
        meta_display = None
        if tf.metadata_path is not None:
            meta_display = tf.display.rsplit("/", 1)[0] + "/" + tf.metadata_path.name \
                if "/" in tf.display else tf.metadata_path.name
            meta = _read_json(tf.metadata_path, meta_display, notes)
        file_pixel, pixel_source = _metadata_pixel(meta), "metadata"
        if file_pixel is None:
            file_pixel, pixel_source = parse.pixel_from_name(tf.path.name), "filename"
        file_side = parse.side_from_path(list(Path(tf.display).parts[-3:]))
        drafts = build_runs(parsed, file_side, file_pixel, pixel_source)

        path_stamp = parse.stamp_in(str(tf.path))
        meta_time = _metadata_time(meta)
        meta_stamp = parse.normalize_stamp(meta_time)

        insert_ignore(conn, t["source_blob"], [dict(
            sha256=sha, size=len(data), compression="zlib",
            content=zlib.compress(data, 6))])
        version = conn.execute(select(func.count()).select_from(t["source_file"]).where(
            t["source_file"].c.abs_path == str(tf.path))).scalar_one() + 1
        if version > 1:
            notes.append(Note(tf.display, f"content changed since last ingest; loaded as "
                                          f"version {version}", level="note"))
        quarantined = [ln for ln in parsed.lines if ln.quarantine]
        sf_id = conn.execute(t["source_file"].insert().returning(t["source_file"].c.id), dict(
            bundle_id=bundle_id, path=tf.display, abs_path=str(tf.path), sha256=sha,
            version=version, size=len(data), line_count=len(lines),
            trace_lines=parsed.trace_lines,
            parsed_lines=parsed.trace_lines - len(quarantined),
            quarantined_lines=len(quarantined),
            parser=f"tracedb.parse v{parse.PARSER_VERSION}", encoding=encoding,
            metadata_path=meta_display, command_id=self.command_id, loaded_at=now,
        )).scalar_one()
        if quarantined:
            conn.execute(t["quarantine"].insert(), [dict(
                source_file_id=sf_id, line_no=ln.line_no, reason=ln.quarantine,
                text=lines[ln.line_no - 1][:QUARANTINE_TEXT_LIMIT]) for ln in quarantined])

        pixels = {d.pixel for d in drafts if d.pixel is not None}
        pixel_ids: dict[tuple[int, int], int] = {}
        if pixels:
            insert_ignore(conn, t["pixel"], [dict(slow=s, fast=f) for s, f in sorted(pixels)])
            pc = t["pixel"].c
            for pid, s, f in conn.execute(select(pc.id, pc.slow, pc.fast).where(
                    pc.slow.in_({p[0] for p in pixels}))):
                if (s, f) in pixels:
                    pixel_ids[(s, f)] = pid
        metadata_json = json.dumps(meta, sort_keys=True) if meta is not None else None
        for segment, draft in enumerate(drafts, start=1):
            run_id = conn.execute(t["run"].insert().returning(t["run"].c.id), dict(
                source_file_id=sf_id, bundle_id=bundle_id, segment=segment, side=draft.side,
                pixel_id=pixel_ids.get(draft.pixel) if draft.pixel else None,
                pixel_source=draft.pixel_source, stamp=path_stamp or meta_stamp,
                path_stamp=path_stamp, meta_stamp=meta_stamp, meta_time=meta_time,
                metadata_json=metadata_json, tap_count=len(draft.taps),
                first_line=draft.taps[0][0], last_line=draft.taps[-1][0],
            )).scalar_one()
            self.insert_taps(conn, run_id, draft, stats)
            stats.runs += 1
            if draft.pixel:
                stats.pixel_set.add(draft.pixel)
        stats.new_trace_files += 1
        stats.trace_lines += parsed.trace_lines
        stats.quarantined_lines += len(quarantined)
        stats.parsed_lines += parsed.trace_lines - len(quarantined)

    def insert_taps(self, conn: Connection, run_id: int, draft: RunDraft,
                    stats: Stats) -> None:
        t = self.t
        seen: Counter = Counter()
        rows = []
        for seq, (line_no, tap) in enumerate(draft.taps, start=1):
            key = (tap.channel, tap.name, tap.loop_key)
            seen[key] += 1
            rows.append(dict(run_id=run_id, seq=seq, line_no=line_no, channel=tap.channel,
                             name=tap.name, loop_key=tap.loop_key, occurrence=seen[key],
                             unit=self.unit_of(tap.name), shape=tap.shape,
                             n_components=len(tap.components), value_text=tap.raw))
        ids = conn.execute(
            t["tap"].insert().returning(t["tap"].c.id, sort_by_parameter_order=True),
            rows).scalars().all()
        values = []
        for tap_id, (_line_no, tap) in zip(ids, draft.taps, strict=True):
            for idx, c in enumerate(tap.components):
                values.append(dict(tap_id=tap_id, idx=idx, label=c.label, num=c.num,
                                   text=c.text, kind=c.kind, digits=c.digits,
                                   half_ulp=c.half_ulp))
        if values:
            conn.execute(t["value"].insert(), values)
        stats.taps += len(rows)
        stats.values += len(values)
