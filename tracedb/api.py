"""The Python API. Every CLI command is a thin wrapper over a method here.

    >>> import tracedb
    >>> wh = tracedb.connect("sqlite:///tracedb.sqlite")
    >>> result = wh.ingest(["reports/"])
    >>> wh.runs(side="py").head()
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from . import __version__, db
from .bulk import WalFlusher, bulk_session
from .discover import Note, discover
from .errors import TracedbError
from .load import Loader, Stats, can_stage, close_copy_connections, utcnow

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
def _query_text(name: str, dialect: str | None = None) -> str:
    """A named query's SQL; ``queries/<name>.<dialect>.sql`` when that exists (the
    same rows, written for that engine's planner)."""
    path = db.resource_dir("queries") / f"{name}.sql"
    if dialect and (db.resource_dir("queries") / f"{name}.{dialect}.sql").is_file():
        path = db.resource_dir("queries") / f"{name}.{dialect}.sql"
    if "." in name or not path.is_file():
        raise TracedbError(f"no named query {name!r}; available: {', '.join(_all_names())}")
    # Whole-line comments document the parameters (":side"); drop them so the
    # binder does not mistake those names for placeholders.
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(ln for ln in lines if not ln.lstrip().startswith("--"))


_WRITE = re.compile(r"\s*(?:WITH\b.*?\)\s*)?(INSERT|UPDATE|DELETE)\b", re.I | re.S)


def _is_write_query(name: str) -> bool:
    """A write step: INSERT, UPDATE or DELETE, possibly after a WITH clause."""
    return _WRITE.match(_query_text(name)) is not None


def _all_names() -> list[str]:
    return sorted(p.stem for p in db.resource_dir("queries").glob("*.sql") if "." not in p.stem)


def query_names() -> list[str]:
    """The named queries a user can run (the engine's own writes are left out)."""
    return [name for name in _all_names() if not _is_write_query(name)]


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

        keys, rows = self._fetch(name, **params)
        # column by column: much faster than a frame built from row objects
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(keys)
        return pd.DataFrame({k: list(c) for k, c in zip(keys, columns, strict=True)},
                            columns=keys)

    def _fetch(self, name: str, **params) -> tuple[list[str], list[tuple]]:
        """The named query's column names and rows (plain tuples)."""
        if _is_write_query(name):
            raise TracedbError(f"{name!r} is one of tracedb's own write steps, not a query; "
                               f"available: {', '.join(query_names())}")
        sql = text(_query_text(name, self.engine.dialect.name))
        wanted = set(sql.compile().params)
        unknown = set(params) - wanted
        if unknown:
            raise TracedbError(f"query {name!r} has no parameter(s) {', '.join(sorted(unknown))}"
                               f"; it takes: {', '.join(sorted(wanted)) or 'none'}")
        bound = {k: params.get(k) for k in wanted}
        with self.engine.connect() as conn:
            # straight through the driver's cursor: SQLAlchemy's row objects cost more
            # than the query itself for the 10^5-row answers of a large warehouse
            compiled = sql.compile(dialect=conn.dialect)
            args = compiled.construct_params(bound)
            if compiled.positional:
                args = tuple(args[k] for k in compiled.positiontup)
            cur = conn.connection.dbapi_connection.cursor()
            try:
                cur.execute(compiled.string, args)
                keys = [d[0] for d in cur.description]
                rows = cur.fetchall()
            finally:
                cur.close()
        return keys, rows

    def _log_command(self, command: str, argv: list[str] | None) -> int:
        import os

        t = self.tables["command_log"]
        with self.write() as conn, conn.begin():
            return conn.execute(t.insert().returning(t.c.id), dict(
                started_at=utcnow(), command=command,
                argv=json.dumps(argv if argv is not None else ["tracedb", command]),
                cwd=os.getcwd(), tracedb_version=__version__, status="running")
            ).scalar_one()

    def _finish_command(self, cid: int, status: str, stats: dict) -> None:
        t = self.tables["command_log"]
        with self.write() as conn, conn.begin():
            conn.execute(t.update().where(t.c.id == cid).values(
                finished_at=utcnow(), status=status, stats_json=json.dumps(stats)))

    # -- ingest --------------------------------------------------------------------
    def ingest(self, paths: list[str | Path], *, progress: ProgressFn | None = None,
               argv: list[str] | None = None, workers: int | None = None) -> IngestResult:
        """Load every trace file under ``paths``. Re-running loads only what is new.

        Ingests of a few hundred files or more are read and parsed by ``workers``
        processes (or ``TRACEDB_WORKERS``) while this one writes; 0 keeps it all in
        this process. The default is one worker per CPU (at most four): workers
        hand over whole staged groups of files (see ``load.stage_files``), a SQLite
        database image or PostgreSQL COPY text, so the writer does no per-row work.
        """
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
            ta = self.tables["tap_alias"]
            aliases = [tuple(r) for r in conn.execute(
                select(ta.c.channel, ta.c.name, ta.c.canonical).order_by(ta.c.id))]
        dialect = self.engine.dialect.name
        copy_url = self.engine.url.render_as_string(hide_password=False) \
            if dialect == "postgresql" else None
        loader = Loader(self.tables, cid, suffixes, aliases, copy_url)
        total = stats.trace_files
        staged = dialect == "postgresql" or dialect == "sqlite" and can_stage()
        pool = _parse_pool(total, workers, staged)
        mapper = pool if pool is not None else map
        path = self.engine.url.database
        flusher = WalFlusher(path) if staged and pool is not None and path \
            and path != ":memory:" and not path.startswith("file:") else None
        try:
            self._ingest_bundles(found, loader, stats, notes, mapper, progress, total,
                                 staged, flusher)
        finally:
            if flusher is not None:
                flusher.close()
            if pool is not None:
                pool.close()
            close_copy_connections()
        stats.pixels = len(stats.pixel_set)
        if stats.values:
            db.after_bulk_load(self.engine)
        result = stats.as_dict(time.perf_counter() - started)
        result["notes"] = [{"level": n.level, "path": n.path, "line": n.line,
                            "message": n.message} for n in notes]
        result["missing"] = list(found.missing)
        status = "ok" if not found.missing and stats.errors == 0 else "error"
        self._finish_command(cid, status, {k: v for k, v in result.items() if k != "notes"})
        return IngestResult(stats=result, notes=notes, missing=found.missing)

    def _ingest_bundles(self, found, loader, stats, notes, mapper, progress, total,
                        staged: bool, flusher=None) -> None:
        done = 0
        for plan in found.bundles:
            if progress:
                progress(plan.display, done, total)
            bundle_notes: list[Note] = []
            before = Stats()
            try:
                with self.write() as conn:
                    raw = conn.connection.dbapi_connection
                    if flusher is not None:
                        flusher.bound(raw)
                    with bulk_session(raw, flusher is not None) \
                            if staged and conn.dialect.name == "sqlite" \
                            else nullcontext(), conn.begin():
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
                for k in ("new_trace_files", "unchanged_files", "bundles", "bundles_updated",
                          "runs", "taps", "values", "trace_lines", "parsed_lines",
                          "quarantined_lines", "errors"):
                    setattr(stats, k, getattr(stats, k) + getattr(before, k))
                stats.pixel_set |= before.pixel_set
            done += len(plan.trace_files)
        if progress:
            progress("done", total, total)

    # -- listing -------------------------------------------------------------------
    def runs(self, *, side: str | None = None, stamp: str | None = None,
             pixel: tuple[int, int] | None = None, path: str | None = None,
             run_id: int | None = None):
        """Loaded runs, filtered; a pandas DataFrame (pixel as [slow, fast] or None)."""
        if side is not None and side not in ("c", "py"):
            raise TracedbError(f"side must be 'c' or 'py', not {side!r}")
        df = self.query("runs", side=side, stamp=_like_literal(stamp),
                        path=_like_literal(path), run_id=run_id,
                        slow=pixel[0] if pixel else None, fast=pixel[1] if pixel else None)
        return _with_pixel(df)

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
        return self.query("quarantine", path=_like_literal(path))

    # -- comparisons ---------------------------------------------------------------
    def _comparison_set(self, pairs: list[tuple[int, int, int, int, str]], rtol: float,
                        atol: float, description: str, detail: str = "all") -> int:
        """Compare (grp, ordinal, ref, cand, pairing) run pairs; returns the set id.

        The comparison runs in SQL. ``detail='all'`` materialises the tap_status
        view of every tap into tap_result (queries/compare.sql); ``'mismatch'``
        keeps only the taps that do not match (compare_flag + compare_flagged: one
        ordered pass over the values, then the full rules for the flagged taps),
        which is what a divergence summary needs; :meth:`complete` adds the rest.
        Every request is compared afresh, so aliases or accepted divergences
        recorded since count; results of the same request older than an hour are
        removed then.
        """
        import hashlib
        import math

        if not (math.isfinite(rtol) and math.isfinite(atol)) or rtol < 0 or atol < 0:
            raise TracedbError("--rtol and --atol must be finite numbers >= 0")
        if detail not in ("all", "mismatch"):
            raise ValueError(f"detail must be 'all' or 'mismatch', not {detail!r}")
        key = hashlib.sha256(json.dumps(
            {"rtol": repr(float(rtol)), "atol": repr(float(atol)), "detail": detail,
             "pairs": [list(p[:4]) for p in pairs]}).encode()).hexdigest()
        t_set, t_cmp = self.tables["comparison_set"], self.tables["comparison"]
        t_res, t_flag = self.tables["tap_result"], self.tables["tap_flag"]
        now = utcnow()
        with self.write() as conn, conn.begin():
            # Earlier results of the same request go once they are an hour old (a
            # reader of a result made moments ago by another process keeps it).
            cutoff = _hours_ago(now, 1)
            for old in conn.execute(select(t_set.c.id).where(
                    (t_set.c.request_key == key) & (t_set.c.created_at < cutoff))
                    ).scalars().all():
                for t in (t_res, t_flag, t_cmp):
                    conn.execute(t.delete().where(t.c.set_id == old))
                conn.execute(t_set.delete().where(t_set.c.id == old))
            set_id = conn.execute(t_set.insert().returning(t_set.c.id), dict(
                request_key=key, rtol=float(rtol), atol=float(atol), detail=detail,
                description=description, created_at=now)).scalar_one()
            conn.execute(t_cmp.insert(), [dict(
                set_id=set_id, grp=g, ordinal=o, ref_run_id=r, cand_run_id=c, pairing=how)
                for g, o, r, c, how in pairs])
            db.tune_for_comparison(conn)
            self._compare(conn, set_id, detail)
        return set_id

    def complete(self, set_id: int) -> None:
        """Make a 'mismatch' comparison set hold every tap (a no-op for 'all' sets).

        Per-tap queries (``tap_diff``, ``tap_changes``, ``factor_gap``) need every
        tap; :meth:`diff` and ``tracedb report`` call this first. The set is compared
        again in full (not topped up), so aliases or accepted divergences recorded
        since its comparison cannot leave it half old, half new.
        """
        t_set = self.tables["comparison_set"]
        with self.write() as conn, conn.begin():
            query = select(t_set.c.detail).where(t_set.c.id == set_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()  # one completer at a time
            detail = conn.execute(query).scalar_one_or_none()
            if detail is None:
                raise TracedbError(f"no comparison set {set_id}")
            if detail == "all":
                return
            for name in ("tap_result", "tap_flag"):
                t = self.tables[name]
                conn.execute(t.delete().where(t.c.set_id == set_id))
            db.tune_for_comparison(conn)
            self._compare(conn, set_id, "all")
            conn.execute(t_set.update().where(t_set.c.id == set_id).values(detail="all"))

    @staticmethod
    def _compare(conn, set_id: int, detail: str) -> None:
        """Fill tap_result for a comparison set, then add the unit hints."""
        steps = ["compare"] if detail == "all" else ["compare_flag", "compare_flagged"]
        # PostgreSQL plans each step by table statistics, which know nothing yet of
        # the rows just added (it would take a set's 28,800 comparisons for one)
        db.refresh_statistics(conn, "comparison")
        for step in [*steps, "unit_hints", "unit_hints_other"]:
            conn.execute(text(_query_text(step, conn.dialect.name)), {"set_id": set_id})
            if step == "compare_flag":
                db.refresh_statistics(conn, "tap_flag")

    def _pixel_runs(self, pixels):
        runs = _with_pixel(self.query("pairing_runs"))
        if pixels:
            wanted = {tuple(p) for p in pixels}
            runs = runs[[p is not None and tuple(p) in wanted for p in runs["pixel"]]]
            if runs.empty:
                raise TracedbError("no runs for pixel(s) " + ", ".join(
                    f"{s},{f}" for s, f in sorted(wanted)))
        return runs

    def pair_runs(self, ref: str | None = None, cand: str | None = None,
                  pixels: list[tuple[int, int]] | None = None) -> list[tuple]:
        """Which runs to compare: [(grp, ordinal, ref_run, cand_run, pairing)].

        Default: per pixel, the newest C run against the newest PyTorch run.
        Explicit selectors must name one run per pixel; two single runs pair even
        when their pixel is unknown.
        """
        from . import select as sel

        if not ref and not cand:
            return self._default_pairs(pixels)
        runs = self._pixel_runs(pixels)
        rsel = sel.parse_selector(ref) if ref else None
        csel = sel.parse_selector(cand) if cand else None
        rdf = sel.apply(runs, rsel) if rsel else sel.latest_versions(runs[runs["side"] == "c"])
        cdf = sel.apply(runs, csel) if csel else sel.latest_versions(runs[runs["side"] == "py"])
        if rdf.empty or cdf.empty:
            which = "reference (C)" if rdf.empty else "candidate (PyTorch)"
            raise TracedbError(f"no {which} runs to compare; load some or pass --ref/--cand")
        if rsel and csel and len(rdf) == 1 and len(cdf) == 1:
            r, c = rdf.iloc[0], cdf.iloc[0]
            return [(0, 1, int(r["id"]), int(c["id"]), f"{rsel.text} vs {csel.text}")]
        rby = sel.one_per_pixel(rdf, rsel, "ref")
        cby = sel.one_per_pixel(cdf, csel, "cand")
        common = [p for p in rby if p is not None and p in cby]
        if not common:
            def pix(d):
                return ", ".join(f"{p[0]},{p[1]}" for p in d if p is not None) or "none"
            raise TracedbError("no pixel has both a reference and a candidate run "
                               f"(reference pixels: {pix(rby)}; candidate pixels: {pix(cby)})")
        how = (f"{rsel.text if rsel else 'newest C run'} vs "
               f"{csel.text if csel else 'newest PyTorch run'} of each pixel")
        return [(i, 1, int(rby[p]["id"]), int(cby[p]["id"]), how)
                for i, p in enumerate(sorted(common))]

    def _default_pairs(self, pixels) -> list[tuple]:
        """pair_runs without selectors, on plain rows (no DataFrame: a large warehouse
        has 10^5 runs): per pixel, the newest C run against the newest PyTorch run,
        among the newest version of each trace file."""
        keys, rows = self._fetch("pairing_runs")
        i_id, i_side, i_stamp, i_slow, i_fast, i_path, i_version = (keys.index(k) for k in (
            "id", "side", "stamp", "pixel_slow", "pixel_fast", "path", "file_version"))
        if pixels:
            wanted = {(int(s), int(f)) for s, f in pixels}
            rows = [r for r in rows if r[i_slow] is not None
                    and (r[i_slow], r[i_fast]) in wanted]
            if not rows:
                raise TracedbError("no runs for pixel(s) " + ", ".join(
                    f"{s},{f}" for s, f in sorted(wanted)))
        newest_version: dict = {}
        for r in rows:
            k = (r[i_side], r[i_path])
            if r[i_version] > newest_version.get(k, r[i_version] - 1):
                newest_version[k] = r[i_version]
        best: dict[str, dict] = {"c": {}, "py": {}}
        for r in rows:
            side = best.get(r[i_side])
            if side is None or r[i_version] != newest_version[(r[i_side], r[i_path])]:
                continue
            pix = None if r[i_slow] is None else (int(r[i_slow]), int(r[i_fast]))
            order = (r[i_stamp] if isinstance(r[i_stamp], str) else "", int(r[i_id]))
            if pix not in side or order > side[pix]:
                side[pix] = order
        rby, cby = best["c"], best["py"]
        if not rby or not cby:
            which = "reference (C)" if not rby else "candidate (PyTorch)"
            raise TracedbError(f"no {which} runs to compare; load some or pass --ref/--cand")
        common = [p for p in rby if p is not None and p in cby]
        if not common:
            def pix(d):
                return ", ".join(f"{p[0]},{p[1]}" for p in d if p is not None) or "none"
            raise TracedbError("no pixel has both a reference and a candidate run "
                               f"(reference pixels: {pix(rby)}; candidate pixels: {pix(cby)})")
        how = "newest C run vs newest PyTorch run of each pixel"
        return [(i, 1, rby[p][1], cby[p][1], how) for i, p in enumerate(sorted(common))]

    def _summary_columns(self, set_id: int, strict: bool) -> Columns:
        """The divergence summary of a set as columns of plain values (no pandas)."""
        keys, rows = self._fetch("divergence", set_id=set_id, strict=int(strict))
        if not rows:
            raise TracedbError(f"comparison set {set_id} has no results (removed while "
                               "reading?); run the command again")
        col = Columns({k: list(c) for k, c in zip(keys, zip(*rows, strict=True),
                                                   strict=True)})
        col["pixel"] = [_pixel(rs, rf) or _pixel(cs, cf) for rs, rf, cs, cf in zip(
            col["ref_slow"], col["ref_fast"], col["cand_slow"], col["cand_fast"], strict=True)]
        col["status"] = ["nothing compared" if c == 0 else "diverged" if d > 0 else "match"
                         for c, d in zip(col["compared"], col["diverged"], strict=True)]
        col["first_unit_hint"] = [
            unit_hint_text(rs, cs, rh, ch) for rs, cs, rh, ch in zip(
                col["ref_side"], col["cand_side"], col["first_hint_ref_unit"],
                col["first_hint_cand_unit"], strict=True)]
        return col

    def _summaries(self, set_id: int, strict: bool):
        import pandas as pd

        return pd.DataFrame(dict(self._summary_columns(set_id, strict)))

    def _diverge_columns(self, ref=None, cand=None, pixels=None, rtol=1e-12, atol=0.0,
                         strict=False, detail="mismatch") -> Columns:
        """What :meth:`diverge` returns, as plain columns (the CLI needs no pandas)."""
        pairs = self.pair_runs(ref, cand, pixels)
        set_id = self._comparison_set(pairs, rtol, atol, "diverge", detail)
        col = self._summary_columns(set_id, strict)
        col.attrs.update(set_id=set_id, rtol=rtol, atol=atol, strict=strict)
        return col

    def diverge(self, ref: str | None = None, cand: str | None = None,
                pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
                atol: float = 0.0, strict: bool = False, detail: str = "mismatch"):
        """First divergence per pixel pair; one row per pair (a pandas DataFrame).

        ``df.attrs["set_id"]`` names the comparison set; with the default
        ``detail='mismatch'`` it holds the taps that did not match (enough for
        every count and divergence); ``detail='all'`` stores every tap.
        """
        import pandas as pd

        col = self._diverge_columns(ref, cand, pixels, rtol, atol, strict, detail)
        df = pd.DataFrame(dict(col))
        df.attrs.update(col.attrs)
        return df

    def diff(self, set_id: int, strict: bool = False):
        """Every tap of every comparison in a set, side by side, with statuses."""
        self.complete(set_id)
        df = self.query("tap_diff", set_id=set_id, strict=int(strict))
        sides = self.query("divergence", set_id=set_id, strict=int(strict))[
            ["comparison_id", "ref_side", "cand_side"]]
        df = df.merge(sides, on="comparison_id", how="left")
        df["unit_hint"] = [unit_hint_text(r.ref_side, r.cand_side, r.hint_ref_unit,
                                          r.hint_cand_unit) for r in df.itertuples()]
        return df

    def diff_runs(self, run_a: int, run_b: int, rtol: float = 1e-12, atol: float = 0.0,
                  strict: bool = False):
        """Two runs side by side: every tap with its status (``taps RUN --diff RUN``)."""
        self.run(run_a)
        self.run(run_b)
        set_id = self._comparison_set([(0, 1, run_a, run_b, "run vs run")], rtol, atol, "diff")
        return self.diff(set_id, strict)

    def timeline(self, pixel: tuple[int, int], ref: str | None = None,
                 cand: str | None = None, rtol: float = 1e-12, atol: float = 0.0,
                 strict: bool = False):
        """A fixed reference run against each candidate run of one pixel, in stamp order.

        Returns (summaries, changes): the first divergence and counts per candidate,
        and the taps fixed or newly diverged since the previous candidate.
        """
        from . import select as sel

        runs = self._pixel_runs([pixel])
        rsel = sel.parse_selector(ref) if ref else None
        rdf = sel.apply(runs, rsel) if rsel else sel.latest_versions(runs[runs["side"] == "c"])
        if rdf.empty:
            raise TracedbError(f"no C run of pixel {pixel[0]},{pixel[1]}; pass --ref")
        if rsel and len(rdf) > 1:
            raise TracedbError(f"--ref {rsel.text!r} matches {len(rdf)} runs of pixel "
                               f"{pixel[0]},{pixel[1]}; narrow it. Candidates: "
                               f"{sel.candidates_text(rdf)}")
        r = sel.newest(rdf)
        other = "py" if r["side"] == "c" else "c"
        csel = sel.parse_selector(cand) if cand else None
        cdf = sel.apply(runs, csel) if csel else sel.latest_versions(runs[runs["side"] == other])
        cdf = cdf[cdf["id"] != r["id"]]
        unstamped = cdf[cdf["stamp"].isna()]
        cdf = cdf[cdf["stamp"].notna()]
        if cdf.empty:
            raise TracedbError(f"no candidate runs with a stamp for pixel {pixel[0]},{pixel[1]}"
                               + (f" ({len(unstamped)} without a stamp)" if len(unstamped)
                                  else ""))
        cdf = cdf.sort_values(["stamp", "id"])
        pairs = [(0, i, int(r["id"]), int(c), "timeline")
                 for i, c in enumerate(cdf["id"], start=1)]
        set_id = self._comparison_set(pairs, rtol, atol, "timeline")
        summaries = self._summaries(set_id, strict)
        changes = self.query("tap_changes", set_id=set_id, strict=int(strict))
        summaries.attrs.update(set_id=set_id, rtol=rtol, atol=atol, strict=strict,
                               unstamped=[int(i) for i in unstamped["id"]])
        return summaries, changes

    def regress(self, base: str, head: str, ref: str | None = None,
                pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
                atol: float = 0.0, strict: bool = False):
        """Per pixel: taps that matched at base and diverge at head, and the reverse.

        Returns (summaries, changes) like :meth:`timeline`; ordinal 1 is base, 2 head.
        """
        from . import select as sel

        runs = self._pixel_runs(pixels)
        rsel = sel.parse_selector(ref) if ref else None
        rby = sel.one_per_pixel(sel.apply(runs, rsel) if rsel
                                else sel.latest_versions(runs[runs["side"] == "c"]), rsel, "ref")
        bsel, hsel = sel.parse_selector(base), sel.parse_selector(head)
        bby = sel.one_per_pixel(sel.apply(runs, bsel), bsel, "base")
        hby = sel.one_per_pixel(sel.apply(runs, hsel), hsel, "head")
        common = sorted(p for p in rby if p is not None and p in bby and p in hby)
        if not common:
            raise TracedbError("no pixel has a reference, a base and a head run")
        pairs = []
        for g, p in enumerate(common):
            pairs.append((g, 1, int(rby[p]["id"]), int(bby[p]["id"]), "base"))
            pairs.append((g, 2, int(rby[p]["id"]), int(hby[p]["id"]), "head"))
        set_id = self._comparison_set(pairs, rtol, atol, "regress")
        summaries = self._summaries(set_id, strict)
        changes = self.query("tap_changes", set_id=set_id, strict=int(strict))
        summaries.attrs.update(set_id=set_id, rtol=rtol, atol=atol, strict=strict)
        return summaries, changes

    # -- user data: aliases and accepted divergences ------------------------------------
    def add_alias(self, name: str, canonical: str, channel: str = "*",
                  note: str | None = None) -> None:
        """Pair taps named ``name`` with taps named ``canonical``."""
        t = self.tables["tap_alias"]
        with self.write() as conn, conn.begin():
            conn.execute(t.delete().where((t.c.name == name) & (t.c.channel == channel)))
            conn.execute(t.insert(), dict(name=name, canonical=canonical, channel=channel,
                                          note=note))
            self._rekey(conn, name)

    def _rekey(self, conn, name: str | None) -> None:
        conn.execute(text(_query_text("rekey_names")), {"name": name})
        conn.execute(text(_query_text("rekey_occurrence")), {"name": name})
        for step in ("rekey_register", "rekey_values", "rekey_taps", "rekey_values_finish"):
            conn.execute(text(_query_text(step)))
        from .load import stale_shapes

        changed = stale_shapes(conn)  # new key ids: new run shapes
        if changed:
            conn.execute(text("UPDATE run SET shape_sig = :sig WHERE id = :id"), changed)

    def rekey(self) -> None:
        """Recompute every tap's pairing key from tap_alias (after editing it by SQL)."""
        with self.write() as conn, conn.begin():
            self._rekey(conn, None)

    def accept(self, name: str, reason: str, channel: str = "*",
               loop_key: str | None = None, run_id: int | None = None) -> int:
        """Record a known, accepted divergence of tap ``name`` (optionally for one run)."""
        if not reason.strip():
            raise TracedbError("an accepted divergence needs a reason")
        if run_id is not None:
            self.run(run_id)
        t = self.tables["accepted_divergence"]
        with self.write() as conn, conn.begin():
            return conn.execute(t.insert().returning(t.c.id), dict(
                name=name, reason=reason, channel=channel, loop_key=loop_key, run_id=run_id,
                created_at=utcnow())).scalar_one()

    # -- reports ------------------------------------------------------------------------
    def report(self, outdir: str | Path, *, ref: str | None = None, cand: str | None = None,
               pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
               atol: float = 0.0, strict: bool = False, unicode: bool = False,
               force: bool = False, model: str = "nanoBragg",
               argv: list[str] | None = None):
        """Write the evidence set (Markdown, diffs, provenance, plots) to ``outdir``."""
        from .report import write_report

        if argv is None:
            argv = report_argv(self.display_url, outdir, ref=ref, cand=cand, pixels=pixels,
                               rtol=rtol, atol=atol, strict=strict, unicode=unicode,
                               force=force, model=model)
        cid = self._log_command("report", argv)
        try:
            rep = write_report(self, Path(outdir), ref=ref, cand=cand, pixels=pixels,
                               rtol=rtol, atol=atol, strict=strict, unicode=unicode,
                               force=force, model=model, argv=argv)
        except Exception:
            self._finish_command(cid, "error", {})
            raise
        self._finish_command(cid, "ok", {"files": len(rep.files), "set_id": rep.set_id})
        return rep

    def factor_model(self, model: str | None = None):
        """The factor model rows (all models when ``model`` is None)."""
        t = self.tables["factor_model"]
        q = select(t.c.model, t.c.target, t.c.position, t.c.factor, t.c.exponent)
        if model:
            q = q.where(t.c.model == model)
        import pandas as pd

        with self.engine.connect() as conn:
            res = conn.execute(q.order_by(t.c.model, t.c.position))
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))

    def set_factor_model(self, model: str, formula: str) -> list[tuple[str, float]]:
        """Define (or replace) ``model`` from 'target = a * b^2 / c'."""
        from .report import parse_model

        target, factors = parse_model(formula)
        t = self.tables["factor_model"]
        with self.write() as conn, conn.begin():
            conn.execute(t.delete().where(t.c.model == model))
            conn.execute(t.insert(), [dict(model=model, target=target, position=i, factor=f,
                                           exponent=e)
                                      for i, (f, e) in enumerate(factors, start=1)])
        return factors

    # -- health ---------------------------------------------------------------------
    def check(self):
        """Consistency checks (orphans, counts, every TRACE line accounted for) and the
        engine's own integrity check; a DataFrame of (check_name, problems, detail)."""
        import pandas as pd

        df = self.query("check")
        df["detail"] = ""
        extra = []
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                extra.append(("sqlite integrity_check", 0 if rows == ["ok"] else len(rows),
                              "; ".join(rows[:5])))
                fk = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                extra.append(("foreign keys (PRAGMA foreign_key_check)", len(fk),
                              "; ".join(str(r) for r in fk[:5])))
            from .load import stale_shapes

            stale = stale_shapes(conn)
            extra.append(("runs whose shape signature is stale (run tracedb db rekey)",
                          len(stale), "; ".join(f"run {r['id']}" for r in stale[:5])))
            running = conn.execute(text(
                "SELECT id, started_at, command FROM command_log WHERE status = 'running'")
            ).fetchall()
        checks = pd.concat([df, pd.DataFrame(extra, columns=["check_name", "problems",
                                                             "detail"])],
                           ignore_index=True)
        checks["problems"] = checks["problems"].astype(int)
        checks.attrs["interrupted"] = [
            f"command {r[0]} ({r[2]}, started {r[1]}) never finished: it was interrupted "
            "and its open bundle rolled back; run it again to complete it" for r in running]
        return checks

    # -- ad-hoc SQL --------------------------------------------------------------------
    def sql(self, statement: str):
        """Run one read-only statement; writes and extension loading are refused."""
        import pandas as pd

        stmt = _read_only_statement(statement)
        conn = self.engine.connect()
        try:
            if self.engine.dialect.name == "sqlite":
                raw = conn.connection.dbapi_connection
                raw.set_authorizer(_sqlite_read_only_authorizer)
                try:
                    result = conn.exec_driver_sql(stmt)
                    rows, cols = result.fetchall(), list(result.keys())
                finally:
                    raw.set_authorizer(None)
                    conn.rollback()
            else:
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    result = conn.exec_driver_sql(stmt)
                    rows, cols = (result.fetchall(), list(result.keys())) \
                        if result.returns_rows else ([], [])
                    conn.rollback()
        except Exception as exc:
            from sqlalchemy.exc import DBAPIError

            if isinstance(exc, DBAPIError):
                first = str(exc.orig).strip().splitlines()
                raise TracedbError(f"sql refused or failed: {first[0] if first else exc}"
                                   ) from None
            raise
        finally:
            conn.close()
        return pd.DataFrame(rows, columns=cols)


PARALLEL_MIN_FILES = 300
MAX_DEFAULT_WORKERS = 4


def _with_pixel(df):
    """Replace pixel_slow/pixel_fast by one ``pixel`` column: [slow, fast] or None."""
    df.insert(3, "pixel", [None if s is None or s != s else [int(s), int(f)]
                           for s, f in zip(df["pixel_slow"].tolist(), df["pixel_fast"].tolist(),
                                           strict=True)])
    return df.drop(columns=["pixel_slow", "pixel_fast"])


def _like_literal(text: str | None) -> str | None:
    """A substring for LIKE ... ESCAPE '\\': % and _ match themselves."""
    if text is None:
        return None
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _hours_ago(stamp: str, hours: float) -> str:
    from datetime import datetime, timedelta

    t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") - timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_pool(files: int, workers: int | None, staged: bool):
    import os

    from .load import WindowedPool

    if workers is None:
        env = os.environ.get("TRACEDB_WORKERS", "")
        if env.isdigit():
            workers = int(env)
        else:  # one writer keeps up with a few workers, not with many
            workers = min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS) if staged else 0
    if files < PARALLEL_MIN_FILES:
        workers = 0
    if workers <= 0:
        return None
    # staged groups are large (hundreds of files): a couple per worker keep it busy
    return WindowedPool(workers, window=2 * workers if staged else 64)


def report_argv(url: str, outdir, *, ref=None, cand=None, pixels=None, rtol=1e-12, atol=0.0,
                strict=False, unicode=False, force=False, model="nanoBragg") -> list[str]:
    """The full `tracedb report` command line (every option explicit) for commands.txt."""
    argv = ["tracedb", "--db", url, "report", Path(outdir).as_posix()]
    for opt, val in (("--ref", ref), ("--cand", cand)):
        if val is not None:
            argv += [opt, val]
    for p in pixels or []:
        argv += ["--pixel", f"{p[0]},{p[1]}"]
    argv += ["--rtol", repr(float(rtol)), "--atol", repr(float(atol)), "--model", model]
    return argv + (["--strict"] if strict else []) + (["--unicode"] if unicode else []) \
        + (["--force"] if force else [])


SIDE_LABEL = {"c": "C", "py": "PyTorch"}


class Columns(dict):
    """Columns of plain Python values by name, with ``attrs`` like a DataFrame's:
    enough for the command line's renderers without importing pandas."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attrs: dict = {}

    def __len__(self) -> int:
        return len(next(iter(self.values()))) if dict.__len__(self) else 0

    def column(self, name: str) -> list:
        return self[name]


def _pixel(slow, fast) -> list[int] | None:
    if slow is None or slow != slow:
        return None
    return [int(slow), int(fast)]


def unit_hint_text(ref_side, cand_side, ref_unit, cand_unit) -> str | None:
    """'m^-1 vs A^-1 (C appears to use m^-1, PyTorch A^-1)' from a unit-hint row."""
    if not isinstance(ref_unit, str) or not isinstance(cand_unit, str):
        return None
    rl = SIDE_LABEL.get(ref_side, "reference")
    cl = SIDE_LABEL.get(cand_side, "candidate")
    if rl == cl:
        rl, cl = f"reference {rl}", f"candidate {cl}"
    return f"{ref_unit} vs {cand_unit} ({rl} appears to use {ref_unit}, {cl} {cand_unit})"


_READ_KEYWORDS = ("select", "with", "values", "explain", "table")


def _read_only_statement(statement: str) -> str:
    import re

    stmt = statement.strip().rstrip(";").strip()
    body = re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", "''", stmt)  # literals
    body = re.sub(r"--[^\n]*|/\*.*?\*/", " ", body, flags=re.S).strip().lower()
    if not body:
        raise TracedbError("empty SQL statement")
    if ";" in body:
        raise TracedbError("tracedb sql runs one statement at a time")
    if body.split(None, 1)[0] not in _READ_KEYWORDS:
        raise TracedbError("tracedb sql is read-only: only SELECT, WITH, VALUES, EXPLAIN "
                           "and TABLE statements run")
    return stmt


def _sqlite_read_only_authorizer(action, arg1, arg2, dbname, source):
    import sqlite3

    allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE,
               sqlite3.SQLITE_TRANSACTION}  # the BEGIN/ROLLBACK tracedb itself issues
    if action in allowed:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if arg2 and arg2.lower() == "load_extension" \
            else sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def connect(url: str | None = None) -> Warehouse:
    """Open (creating at the current schema if new) the warehouse at ``url``.

    ``url`` is a SQLAlchemy URL; default ``$TRACEDB_URL`` or ``sqlite:///tracedb.sqlite``.
    """
    return Warehouse(url)


def example_tree() -> Path:
    """The small example reports tree shipped with tracedb (nanoBragg-shaped, synthetic)."""
    return Path(__file__).resolve().parent / "examples" / "reports"
