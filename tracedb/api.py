"""The Python API. Every CLI command is a thin wrapper over a method here.

    >>> import tracedb
    >>> wh = tracedb.connect("sqlite:///tracedb.sqlite")
    >>> result = wh.ingest(["reports/"])
    >>> wh.runs(side="py").head()
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from . import __version__, db
from .discover import Note, discover
from .errors import TracedbError
from .load import Loader, Stats, utcnow

ProgressFn = Callable[[str, int, int], None]  # (description, done, total)


@dataclass
class IngestResult:
    stats: dict
    notes: list[Note]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing and not any(n.level == "error" for n in self.notes)


@cache
def _query_text(name: str) -> str:
    path = db.resource_dir("queries") / f"{name}.sql"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in db.resource_dir("queries").glob("*.sql")))
        raise TracedbError(f"no named query {name!r}; available: {names}")
    # Whole-line comments document the parameters (":side"); drop them so the
    # binder does not mistake those names for placeholders.
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(ln for ln in lines if not ln.lstrip().startswith("--"))


def query_names() -> list[str]:
    return sorted(p.stem for p in db.resource_dir("queries").glob("*.sql"))


class Warehouse:
    """An open warehouse: a SQLAlchemy engine at the current schema revision."""

    def __init__(self, url: str | None = None, *, check_schema: bool = True):
        self.url = db.resolve_url(url)
        self.engine: Engine = db.make_engine(self.url)
        if check_schema:
            db.ensure_schema(self.engine, self.url)
        self._tables = None

    # -- plumbing ------------------------------------------------------------------
    @property
    def tables(self):
        if self._tables is None:
            self._tables = db.reflect(self.engine)
        return self._tables

    @property
    def display_url(self) -> str:
        return db.mask_url(self.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self) -> Connection:
        """A connection whose transactions take the SQLite write lock up front."""
        conn = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        return conn

    def upgrade(self) -> tuple[str | None, str]:
        return db.upgrade(self.engine)

    def revision(self) -> str | None:
        return db.current_revision(self.engine)

    def query(self, name: str, **params):
        """Run the named query ``queries/<name>.sql``; returns a pandas DataFrame."""
        import pandas as pd

        sql = text(_query_text(name))
        wanted = set(sql.compile().params)
        unknown = set(params) - wanted
        if unknown:
            raise TracedbError(f"query {name!r} has no parameter(s) {', '.join(sorted(unknown))}"
                               f"; it takes: {', '.join(sorted(wanted)) or 'none'}")
        bound = {k: params.get(k) for k in wanted}
        with self.engine.connect() as conn:
            result = conn.execute(sql, bound)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def _log_command(self, command: str, argv: list[str] | None) -> int:
        t = self.tables["command_log"]
        with self.write() as conn, conn.begin():
            return conn.execute(t.insert().returning(t.c.id), dict(
                started_at=utcnow(), command=command,
                argv=json.dumps(argv if argv is not None else ["tracedb", command]),
                tracedb_version=__version__, status="running")).scalar_one()

    def _finish_command(self, cid: int, status: str, stats: dict) -> None:
        t = self.tables["command_log"]
        with self.write() as conn, conn.begin():
            conn.execute(t.update().where(t.c.id == cid).values(
                finished_at=utcnow(), status=status, stats_json=json.dumps(stats)))

    # -- ingest --------------------------------------------------------------------
    def ingest(self, paths: list[str | Path], *, progress: ProgressFn | None = None,
               argv: list[str] | None = None) -> IngestResult:
        """Load every trace file under ``paths``. Re-running loads only what is new."""
        started = time.perf_counter()
        found = discover([str(p) for p in paths])
        stats = Stats(files=found.files)
        notes: list[Note] = list(found.notes)
        stats.skipped_files = sum(1 for n in found.notes if n.level == "note")
        stats.errors = sum(1 for n in found.notes if n.level == "error")
        stats.trace_files = sum(len(b.trace_files) for b in found.bundles)
        cid = self._log_command("ingest", argv or ["tracedb", "ingest", *map(str, paths)])
        with self.engine.connect() as conn:
            suffixes = [(r.suffix, r.unit) for r in conn.execute(
                select(self.tables["unit_suffix"]))]
        loader = Loader(self.tables, cid, suffixes)
        total = stats.trace_files
        done = 0
        for plan in found.bundles:
            if progress:
                progress(plan.display, done, total)
            bundle_notes: list[Note] = []
            before = Stats()
            try:
                with self.write() as conn, conn.begin():
                    loader.load_bundle(conn, plan, before, bundle_notes)
            except Exception as exc:  # a failing bundle rolls back alone
                stats.failed_bundles += 1
                stats.errors += 1
                first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
                notes.append(Note(plan.display, "bundle not loaded, warehouse unchanged: "
                                  f"{type(exc).__name__}: {first[0] if first else ''}",
                                  level="error"))
                notes.extend(n for n in bundle_notes if n.level == "error")
            else:
                notes.extend(bundle_notes)
                for k in ("new_trace_files", "unchanged_files", "bundles", "bundles_updated",
                          "runs", "taps", "values", "trace_lines", "parsed_lines",
                          "quarantined_lines", "errors"):
                    setattr(stats, k, getattr(stats, k) + getattr(before, k))
                stats.pixel_set |= before.pixel_set
            done += len(plan.trace_files)
        if progress:
            progress("done", total, total)
        stats.pixels = len(stats.pixel_set)
        result = stats.as_dict(time.perf_counter() - started)
        result["notes"] = [{"level": n.level, "path": n.path, "line": n.line,
                            "message": n.message} for n in notes]
        result["missing"] = list(found.missing)
        status = "ok" if not found.missing and stats.errors == 0 else "error"
        self._finish_command(cid, status, {k: v for k, v in result.items() if k != "notes"})
        return IngestResult(stats=result, notes=notes, missing=found.missing)

    # -- listing -------------------------------------------------------------------
    def runs(self, *, side: str | None = None, stamp: str | None = None,
             pixel: tuple[int, int] | None = None, path: str | None = None,
             run_id: int | None = None):
        """Loaded runs, filtered; a pandas DataFrame (pixel as [slow, fast] or None)."""
        if side is not None and side not in ("c", "py"):
            raise TracedbError(f"side must be 'c' or 'py', not {side!r}")
        df = self.query("runs", side=side, stamp=stamp, path=path, run_id=run_id,
                        slow=pixel[0] if pixel else None, fast=pixel[1] if pixel else None)
        df.insert(3, "pixel", [None if s is None or s != s else [int(s), int(f)]
                               for s, f in zip(df["pixel_slow"], df["pixel_fast"],
                                               strict=True)])
        return df.drop(columns=["pixel_slow", "pixel_fast"])

    def run(self, run_id: int) -> dict:
        df = self.runs(run_id=run_id)
        if df.empty:
            raise TracedbError(f"no run with id {run_id}; list them with `tracedb runs`")
        return df.iloc[0].to_dict()

    def taps(self, run_id: int):
        """The taps of one run in trace order: one row per tap, values as written."""
        import pandas as pd

        self.run(run_id)
        rows = self.query("taps", run_id=run_id)
        out = []
        for _tap_id, g in rows.groupby("tap_id", sort=False):
            first = g.iloc[0]
            comps = [{"label": lab if isinstance(lab, str) else None, "text": txt, "kind": kind,
                      "num": None if num is None or num != num else float(num)}
                     for lab, txt, kind, num in zip(g["label"], g["text"], g["kind"],
                                                    g["num"], strict=True)]
            shown = " ".join(f"{c['label']}:{c['text']}" if c["label"] else c["text"]
                             for c in comps)
            out.append({"seq": int(first["seq"]), "line": int(first["line"]),
                        "channel": first["channel"], "name": first["name"],
                        "loop_key": first["loop_key"], "occurrence": int(first["occurrence"]),
                        "unit": first["unit"], "shape": first["shape"], "value": shown,
                        "components": comps})
        return pd.DataFrame(out, columns=["seq", "line", "channel", "name", "loop_key",
                                          "occurrence", "unit", "shape", "value",
                                          "components"])

    def quarantine(self, path: str | None = None):
        return self.query("quarantine", path=path)


def connect(url: str | None = None) -> Warehouse:
    """Open (creating at the current schema if new) the warehouse at ``url``.

    ``url`` is a SQLAlchemy URL; default ``$TRACEDB_URL`` or ``sqlite:///tracedb.sqlite``.
    """
    return Warehouse(url)


def example_tree() -> Path:
    """The small example reports tree shipped with tracedb (nanoBragg-shaped, synthetic)."""
    return Path(__file__).resolve().parent / "examples" / "reports"
