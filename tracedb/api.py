"""The Python API: ``connect()`` and the :class:`Warehouse` facade, whose methods
return pandas DataFrames. This is the only module that makes them: the core
(``ingest``, ``compare``, ``curate``, ``store``) returns plain records, which the
CLI renders directly.

    >>> import tracedb
    >>> wh = tracedb.connect("sqlite:///tracedb.sqlite")
    >>> result = wh.ingest(["reports/"])
    >>> wh.runs(side="py").head()
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, curate
from .compare import causes, requests, results
from .errors import TracedbError
from .store import health, queries
from .store.engine import (
    Handle,
    absolute_url,
    current_revision,
    mask_argv,
    mask_secrets,
    upgrade,
    utcnow,
)

if TYPE_CHECKING:  # the loader (and numpy) is imported by the first ingest, not by analysis
    from .ingest.loader import IngestResult, ProgressFn

__all__ = ["Warehouse", "connect", "IngestResult", "example_tree", "query_names",
           "report_argv"]


def __getattr__(name: str):
    """``tracedb.api.IngestResult``, imported when first asked for."""
    if name == "IngestResult":
        from .ingest.loader import IngestResult

        return IngestResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Columns that only tie rows together inside the warehouse (comparison sets, groups,
#: bundles); a frame puts them last, after what a reader looks at.
INTERNAL_IDS = ("comparison_id", "previous_comparison_id", "set_id", "grp", "ordinal",
                "bundle_id", "tap_id", "command_id", "source_file_id", "pixel_id")
#: How the warehouse writes a stamp (``ingest.names``): UTC, to the second.
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def _frame(rows: list[dict], columns: list[str] | None = None, attrs: dict | None = None):
    """A DataFrame from records (built column by column: much faster than from rows),
    in the API's conventions: a ``pixel`` ([slow, fast] or None) as the two nullable
    ``Int64`` columns ``pixel_slow`` and ``pixel_fast``; stamps (``stamp``,
    ``*_stamp``) as timezone-aware UTC datetimes; every missing value ``pd.NA`` (or
    ``NaT``) in nullable dtypes, a NaN value NaN (:func:`_floats`); internal ids
    (:data:`INTERNAL_IDS`) last."""
    import pandas as pd

    if columns is None:
        columns = getattr(rows, "columns", None) or (list(rows[0]) if rows else [])
    data: dict = {}
    for c in columns:
        values = [r[c] for r in rows]
        if c == "pixel":
            data["pixel_slow"] = pd.array([None if p is None else p[0] for p in values],
                                          dtype="Int64")
            data["pixel_fast"] = pd.array([None if p is None else p[1] for p in values],
                                          dtype="Int64")
        elif c == "stamp" or c.endswith("_stamp"):
            data[c] = pd.to_datetime(pd.Series(values, dtype=object), format=STAMP_FORMAT,
                                     utc=True)
        else:
            data[c] = _floats(values)
    df = pd.DataFrame(data, columns=list(data)).convert_dtypes()
    for c in df.columns:
        if df[c].dtype == object:  # dicts and lists (roots, worst, components)
            df[c] = df[c].astype(object).where(df[c].notna(), pd.NA)
    df = df[[c for c in df.columns if c not in INTERNAL_IDS]
            + [c for c in df.columns if c in INTERNAL_IDS]]
    df.attrs.update(attrs or {})
    return df


def _floats(values: list):
    """A column of numbers with a float among them as ``Float64`` that keeps a NaN the
    trace wrote (a value: ``nan == nan`` matches) apart from a missing one (``NA``),
    and an integral float a float; any other column as it is."""
    kinds = {type(v) for v in values if v is not None}
    if float not in kinds or not kinds <= {float, int}:
        return values
    import numpy as np
    import pandas as pd

    return pd.arrays.FloatingArray(
        np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64),
        np.array([v is None for v in values], dtype=bool))


TAP_COLUMNS = ("seq", "line", "pointer", "channel", "name", "loop_key", "occurrence", "unit",
               "shape", "value", "components")


def _tap_records(rows: list[dict]) -> list[dict]:
    """One record per tap from the ``taps`` query's rows (one per component)."""
    out: list[dict] = []
    for r in rows:
        if not out or out[-1]["tap_id"] != r["tap_id"]:
            out.append({"tap_id": r["tap_id"], "seq": r["seq"], "line": r["line"],
                        "pointer": r["pointer"],
                        "channel": r["channel"], "name": r["name"], "loop_key": r["loop_key"],
                        "occurrence": r["occurrence"], "unit": r["unit"], "shape": r["shape"],
                        "components": []})
        out[-1]["components"].append({"label": r["label"], "text": r["text"],
                                      "kind": r["kind"], "num": r["num"]})
    for t in out:
        del t["tap_id"]
        t["value"] = " ".join(f"{c['label']}:{c['text']}" if c["label"] else c["text"]
                              for c in t["components"])
    return out


def query_names() -> list[str]:
    """The named queries a user can run (the engine's own write steps are left out)."""
    return queries.names()


class Warehouse:
    """An open warehouse (a :class:`tracedb.store.engine.Handle`) at the current schema."""

    def __init__(self, url: str | None = None, *, check_schema: bool = True,
                 create: bool = True):
        self.db = Handle(url, check_schema=check_schema, create=create)
        self.url, self.engine = self.db.url, self.db.engine

    @property
    def tables(self):
        return self.db.tables

    @property
    def display_url(self) -> str:
        return self.db.display_url

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self):
        """A connection for writes (on SQLite its transactions take the write lock up
        front)."""
        return self.db.store.write_connection(self.engine)

    def upgrade(self) -> tuple[str | None, str]:
        return upgrade(self.engine)

    def revision(self) -> str | None:
        return current_revision(self.engine)

    # -- named queries -------------------------------------------------------------
    def rows(self, name: str, /, **params) -> list[dict]:
        """Run the named query ``queries/<name>.sql``; its rows as dicts. It is held to
        a plain read as :meth:`sql` is (whatever the file says)."""
        return queries.records(*queries.fetch(self._reads(params), name, check=True,
                                              **params))

    def query(self, name: str, /, **params):
        """Run the named query ``queries/<name>.sql``; returns a pandas DataFrame."""
        keys, rows = queries.fetch(self._reads(params), name, check=True, **params)
        return _frame(queries.records(keys, rows), keys)

    def _reads(self, params: dict):
        """Where a query reads: a comparison set's results where it names one
        (``set_id``), else the session's connection (see ``Handle.reads``)."""
        set_id = params.get("set_id")
        try:
            return self.db.reads(None if set_id is None else int(set_id))
        except (TypeError, ValueError):
            return self.db.reads()  # the query refuses it, naming the parameter

    def _own(self, name: str, /, **params) -> list[dict]:
        """One of tracedb's own queries (read-only, as every query is)."""
        return queries.records(*queries.fetch(self._reads(params), name, **params))

    # -- ingest --------------------------------------------------------------------
    def ingest(self, paths: list[str | Path], *, progress: ProgressFn | None = None,
               argv: list[str] | None = None, workers: int | None = None,
               follow_links: bool = True) -> IngestResult:
        """Load every trace file under ``paths``; re-running loads only what is new.

        Ingests of a few hundred files or more are read and parsed by ``workers``
        processes (or ``TRACEDB_WORKERS``; default one per CPU, at most four; 0 keeps it
        all in this process) while this one writes (see ``ingest.loader``).
        ``follow_links`` False leaves symbolic links that lead out of the trees unfollowed
        (each is named in a note).
        """
        from .ingest.loader import ingest

        command = health.Command(self.db, "ingest",
                                 argv or ["tracedb", "ingest", *map(str, paths)], __version__)
        # the command is recorded once the tree is walked, as it starts loading
        result = ingest(self.engine, self.tables, [str(p) for p in paths], command.start,
                        progress=progress, workers_requested=workers,
                        follow_links=follow_links)
        command.finish("ok" if not result.missing and result.stats["errors"] == 0
                       else "error", {k: v for k, v in result.stats.items() if k != "notes"})
        return result

    def watch(self, paths: list[str | Path], load=None, *, debounce: float = 2.0,
              stop=None, **options) -> int:
        """Ingest ``paths`` (directories) now and again whenever files under them
        change, once nothing changed for ``debounce`` seconds, until ``stop`` (a
        ``threading.Event``) is set or KeyboardInterrupt. ``load(roots)`` does each
        load (default: :meth:`ingest` with ``options``). Returns how many loads ran
        (see ``ingest.watch``)."""
        from .ingest.watch import watch

        return watch([str(p) for p in paths],
                     load or (lambda roots: self.ingest(roots, **options)),
                     debounce=debounce, ignore=self.db.local_files(), stop=stop)

    # -- listing -------------------------------------------------------------------
    def run_rows(self, *, side: str | None = None, stamp: str | None = None,
                 pixel: tuple[int, int] | None = None, path: str | None = None,
                 run_id: int | None = None) -> list[dict]:
        """Loaded runs, filtered, as records (``pixel`` as [slow, fast] or None)."""
        if side is not None and side not in ("c", "py", "unknown"):
            raise TracedbError(f"side must be 'c', 'py' or 'unknown', not {side!r}")
        out = self._own("runs", side=side, stamp=stamp, path=path, run_id=run_id,
                        slow=pixel[0] if pixel else None, fast=pixel[1] if pixel else None)
        keys = [k for k in out.columns if k not in ("pixel_slow", "pixel_fast")]
        keys = keys[:3] + ["pixel"] + keys[3:]
        for i, r in enumerate(out):
            r["pixel"] = results.pixel_of(r["pixel_slow"], r["pixel_fast"])
            out[i] = {k: r[k] for k in keys}
        out.columns = keys
        return out

    def runs(self, *, side: str | None = None, stamp: str | None = None,
             pixel: tuple[int, int] | None = None, path: str | None = None,
             run_id: int | None = None):
        """Loaded runs, filtered; a pandas DataFrame (``pixel_slow``, ``pixel_fast``)."""
        return _frame(self.run_rows(side=side, stamp=stamp, pixel=pixel, path=path,
                                    run_id=run_id))

    def run(self, run_id: int) -> dict:
        requests.check_run(self.db, run_id)
        return self.run_rows(run_id=run_id)[0]

    def tap_rows(self, run_id: int) -> list[dict]:
        """The taps of one run in trace order: one record per tap, values as written."""
        self.run(run_id)
        return _tap_records(self._own("taps", run_id=run_id))

    def taps(self, run_id: int):
        """The taps of one run in trace order: one row per tap, values as written."""
        return _frame(self.tap_rows(run_id), list(TAP_COLUMNS))

    def quarantine(self, path: str | None = None):
        return self.query("quarantine", path=path)

    # -- images and recorded metrics ---------------------------------------------
    def image_rows(self, *, case: str | None = None, stamp: str | None = None,
                   path: str | None = None, worst: int | None = None,
                   rtol: float | None = None, atol: float | None = None) -> list[dict]:
        """Image comparisons as records (see ``compare.images.comparisons``): figures,
        the recorded metrics and their check, the ``worst`` worst pixels (None: all);
        with ``rtol``/``atol`` the pixels outside that tolerance, counted again."""
        from .compare import images

        return images.comparisons(self.db.reads(), case=case, stamp=stamp, path=path,
                                  worst=worst, rtol=rtol, atol=atol)

    def images(self, *, case: str | None = None, stamp: str | None = None,
               path: str | None = None, worst: int | None = None,
               rtol: float | None = None, atol: float | None = None):
        """Image comparisons, one row per comparison (``recorded``, ``recorded_check``
        and ``worst`` hold dicts and lists); ordered by case, then stamp.
        ``outside_tolerance`` is at the row's ``rtol``/``atol``: ingest's (diverge's
        defaults) unless ``rtol`` or ``atol`` is given."""
        from .compare.images import JSON_COLUMNS

        return _frame(self.image_rows(case=case, stamp=stamp, path=path, worst=worst,
                                      rtol=rtol, atol=atol), JSON_COLUMNS)

    def image_timeline(self, case: str):
        """One case's image comparisons stamp after stamp: how its figures moved."""
        from .compare.images import TIMELINE_COLUMNS

        return _frame(self.image_rows(case=case, worst=0), TIMELINE_COLUMNS)

    def image_worst(self, comparison_id: int | None = None):
        """The worst pixels kept for image comparisons, with the runs traced there."""
        return self.query("image_worst", comparison_id=comparison_id)

    def next_pixel_rows(self, n: int = 10, *, case: str | None = None,
                        stamp: str | None = None) -> list[dict]:
        """The ``n`` worst pixels of each image comparison that no run traces yet, as
        records."""
        from .compare import images

        return images.next_pixels(self.db.reads(), n, case=case, stamp=stamp)

    def next_pixels(self, n: int = 10, *, case: str | None = None, stamp: str | None = None):
        """:meth:`next_pixel_rows` as a DataFrame."""
        return _frame(self.next_pixel_rows(n, case=case, stamp=stamp))

    def metric_timeline(self, name: str, case: str | None = None):
        """One named metric of the numeric results files, stamp after stamp."""
        return self.query("metric_timeline", name=name, case=case)

    # -- comparisons ---------------------------------------------------------------
    def pair_runs(self, ref: str | None = None, cand: str | None = None,
                  pixels: list[tuple[int, int]] | None = None) -> list[tuple]:
        """Which runs to compare: [(grp, ordinal, ref_run, cand_run, pairing)]; a run is
        None where a pixel has no run on that side."""
        from .compare.select import pair_runs

        return pair_runs(requests.pairing_runs(self.db), ref, cand, pixels)

    def complete(self, set_id: int) -> None:
        """Make a 'mismatch' comparison set hold every tap (see compare.engine)."""
        from .compare.engine import complete

        complete(self.db, set_id)

    def divergences(self, ref: str | None = None, cand: str | None = None,
                    pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
                    atol: float = 0.0, strict: bool = False, detail: str = "mismatch",
                    save: bool = False, progress=None) -> results.Divergences:
        """What :meth:`diverge` returns, as records with their tolerance;
        ``progress(description, done, total)`` hears of each stage."""
        return requests.diverge(self.db, ref, cand, pixels, rtol, atol, strict, detail, save,
                                progress)

    def diverge(self, ref: str | None = None, cand: str | None = None,
                pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
                atol: float = 0.0, strict: bool = False, detail: str = "mismatch",
                save: bool = False):
        """First divergence per pixel pair; one row per pair (a pandas DataFrame).

        ``df.attrs["set_id"]`` names the comparison set; with the default
        ``detail='mismatch'`` it holds the taps that did not match (enough for
        every count and divergence); ``detail='all'`` stores every tap. The set is
        this session's own (a negative id; its rows are in the temporary tables
        ``comparison_set``, ``comparison``, ``tap_result`` that :meth:`sql` and
        :meth:`query` read) unless ``save`` keeps it in the warehouse.
        """
        found = self.divergences(ref, cand, pixels, rtol, atol, strict, detail, save)
        return _frame(found.rows, None, found.attrs)

    def diff(self, set_id: int, strict: bool = False):
        """Every tap of every comparison in a set, side by side, with statuses."""
        return _frame(requests.diff(self.db, set_id, strict))

    def diff_runs(self, run_a: int, run_b: int, rtol: float = 1e-12, atol: float = 0.0,
                  strict: bool = False, save: bool = False):
        """Two runs side by side: every tap with its status (``taps RUN --diff RUN``)."""
        return _frame(requests.diff_runs(self.db, run_a, run_b, rtol, atol, strict, save))

    def timeline(self, pixel: tuple[int, int], ref: str | None = None,
                 cand: str | None = None, rtol: float = 1e-12, atol: float = 0.0,
                 strict: bool = False, save: bool = False):
        """A fixed reference run against each candidate run of one pixel, in stamp order.

        Returns (summaries, changes): the first divergence and counts per candidate,
        and the taps fixed or newly diverged since the previous candidate.
        """
        found, changes = requests.timeline(self.db, pixel, ref, cand, rtol, atol, strict,
                                           save)
        return (_frame(found.rows, None, {**found.attrs, "unstamped": found.unstamped}),
                _frame(changes))

    def regress(self, base: str, head: str, ref: str | None = None,
                pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
                atol: float = 0.0, strict: bool = False, save: bool = False):
        """Per pixel: taps that matched at base and diverge at head, and the reverse.

        Returns (summaries, changes) like :meth:`timeline`; ordinal 1 is base, 2 head.
        """
        found, changes = requests.regress(self.db, base, head, ref, pixels, rtol, atol,
                                          strict, save)
        return (_frame(found.rows, None, found.attrs),
                _frame(changes))

    # -- user data: aliases, accepted divergences, factor models ----------------------
    def add_alias(self, name: str, canonical: str, channel: str = "*",
                  note: str | None = None) -> None:
        """Pair taps named ``name`` with taps named ``canonical``."""
        curate.add_alias(self.db, name, canonical, channel, note)

    def add_channel_alias(self, channel: str, canonical: str,
                          note: str | None = None) -> None:
        """Pair every tap written on ``channel`` on channel ``canonical`` (and rekey)."""
        curate.add_channel_alias(self.db, channel, canonical, note)

    def rekey(self) -> None:
        """Recompute every tap's pairing key from tap_alias (after editing it by SQL)."""
        with self.db.store.write_connection(self.engine) as conn, conn.begin():
            curate.rekey(conn, None)

    def accept(self, name: str, reason: str, channel: str = "*",
               loop_key: str | None = None, run_id: int | None = None) -> int:
        """Record a known, accepted divergence of tap ``name`` (optionally for one run)."""
        if run_id is not None and reason.strip():
            self.run(run_id)
        return curate.accept(self.db, name, reason, utcnow(), channel, loop_key, run_id)

    def alias_rows(self) -> list[dict]:
        """The aliases (kind, name, canonical, channel, note) as records."""
        return curate.alias_rows(self.db)

    def aliases(self):
        """The aliases (kind, name, canonical, channel, note); a pandas DataFrame."""
        return _frame(self.alias_rows())

    def remove_alias(self, name: str, channel: str = "*") -> None:
        """Remove the alias of ``name`` on ``channel``; its taps pair by name again."""
        curate.remove_alias(self.db, name, channel)

    def remove_channel_alias(self, channel: str) -> None:
        """Remove the alias of channel ``channel``; its taps pair on it again."""
        curate.remove_channel_alias(self.db, channel)

    def accepted_rows(self) -> list[dict]:
        """The accepted divergences (id, tap, channel, loop_key, run_id, reason,
        created_at) as records."""
        return curate.accepted_rows(self.db)

    def accepted(self):
        """The accepted divergences; a pandas DataFrame."""
        return _frame(self.accepted_rows())

    def remove_accepted(self, accepted_id: int) -> None:
        """Remove an accepted divergence (by id): that divergence counts again."""
        curate.remove_accepted(self.db, accepted_id)

    def export_curation(self) -> str:
        """Aliases, accepted divergences, factor models and dependency graphs as one
        TOML document (see ``curate.export_curation``)."""
        return curate.export_curation(self.db)

    def import_curation(self, text: str, origin: str = "curation") -> dict[str, int]:
        """Replace each kind of curation ``text`` (TOML, as :meth:`export_curation`
        writes it) has a section for; returns how many of each were loaded."""
        return curate.import_curation(self.db, text, origin, utcnow())

    def factor_model(self, model: str | None = None):
        """The factor model rows (all models when ``model`` is None)."""
        keys, rows = curate.factor_models(self.db, model)
        return _frame(queries.records(keys, rows), keys)

    def set_factor_model(self, model: str, formula: str) -> list[tuple[str, float]]:
        """Define (or replace) ``model`` from 'target = a * b^2 / c'."""
        return curate.set_factor_model(self.db, model, formula)

    def graph_rows(self, graph: str = causes.DEFAULT_GRAPH) -> list[dict]:
        """The dependency graph's edges (target, source, basis) as records."""
        return curate.graph_edges(self.db, graph)

    def graph(self, graph: str = causes.DEFAULT_GRAPH):
        """The dependency graph's edges: which tap (target) is computed from which
        (source), and what the edge rests on (basis); a pandas DataFrame."""
        return _frame(self.graph_rows(graph), ["target", "source", "basis"])

    def set_inputs(self, target: str, sources: list[str], basis: str | None = None,
                   graph: str = causes.DEFAULT_GRAPH) -> None:
        """Make ``sources`` the inputs of ``target`` (an empty list removes them)."""
        curate.set_inputs(self.db, graph, target, sources, basis)

    def import_graph(self, text: str, graph: str = causes.DEFAULT_GRAPH,
                     origin: str = "graph") -> int:
        """Replace the graph with the edges of ``text`` (the form :meth:`export_graph`
        writes); returns the number of edges."""
        return curate.import_graph(self.db, graph, text, origin)

    def export_graph(self, graph: str = causes.DEFAULT_GRAPH) -> str:
        """The graph as text: ``TARGET <- SOURCE, ...  # basis`` per line."""
        return curate.export_graph(self.db, graph)

    # -- reports ------------------------------------------------------------------------
    def report(self, outdir: str | Path, *, ref: str | None = None, cand: str | None = None,
               pixels: list[tuple[int, int]] | None = None, rtol: float = 1e-12,
               atol: float = 0.0, strict: bool = False, unicode: bool = False,
               force: bool = False, model: str = "nanoBragg", save: bool = False,
               plots: bool = True, argv: list[str] | None = None, progress=None):
        """Write the evidence set (Markdown, diffs, provenance, plots) to ``outdir``
        (``plots=False``: no plots, the rest the same).

        The warehouse is only read, unless ``save``: then the comparison is kept in it
        and the report recorded in its command_log. ``progress(description, done,
        total)`` hears of each stage."""
        from .present.report import prepare_outdir, write_report

        outdir = Path(outdir)
        if argv is None:
            argv = report_argv(self.url, outdir, ref=ref, cand=cand, pixels=pixels,
                               rtol=rtol, atol=atol, strict=strict, unicode=unicode,
                               force=force, model=model, save=save, plots=plots)
        argv = mask_argv(argv)
        command = health.Command(self.db, "report", argv, __version__) if save else None
        if command:
            command.start()
        try:
            found = self.divergences(ref, cand, pixels, rtol, atol, strict, detail="all",
                                     save=save, progress=progress)
            prepare_outdir(outdir, force)
            if progress:
                progress("reading what the report shows", 0, None)
            rep = write_report(outdir, _report_data(self.db, found, model), utcnow(),
                               unicode=unicode, argv=argv, plots=plots,
                               progress=progress)
        except Exception:
            if command:
                command.finish("error", {})
            raise
        if command:
            command.finish("ok", {"files": len(rep.files), "set_id": rep.set_id})
        return rep

    # -- browsing -------------------------------------------------------------------
    def browse_metadata(self) -> dict:
        """The Datasette metadata ``tracedb browse`` serves this warehouse with."""
        from . import browse

        return browse.metadata(browse.sqlite_file(self.url).stem)

    def browse(self, host: str = "127.0.0.1", port: int = 8001,
               open_browser: bool = False) -> None:
        """Serve this warehouse (a SQLite file) in Datasette, read-only, until
        interrupted (the ``browse`` extra)."""
        from . import browse

        browse.serve(self.db, host=host, port=port, open_browser=open_browser)

    # -- health ---------------------------------------------------------------------
    def check_rows(self) -> tuple[list[dict], list[str]]:
        """Consistency checks (orphans, counts, every TRACE line accounted for) and the
        engine's own: (check_name, problems, detail) records, and notes about
        interrupted commands."""
        from .compare.images import stored_image_problems
        from .ingest.rows import digest

        rows, notes = health.check(self.db)
        with self.engine.connect() as conn:
            bad = stored_image_problems(conn)
            stale = health.stale_digests(conn, digest)
        rows.append({"check_name": "images whose stored file does not match its hash, "
                                   "size or shape", "problems": len(bad),
                     "detail": "; ".join(bad[:5])})
        rows.append({"check_name": "taps whose digest is not their values' "
                                   "(run tracedb db rekey)", "problems": len(stale),
                     "detail": "; ".join(f"run {d['run_id']} key {d['key_id']}"
                                         for d in stale[:5])})
        return rows, notes

    def check(self):
        """:meth:`check_rows` as a DataFrame of (check_name, problems, detail), the notes
        in ``attrs["interrupted"]``."""
        rows, notes = self.check_rows()
        return _frame(rows, ["check_name", "problems", "detail"], {"interrupted": notes})

    # -- ad-hoc SQL --------------------------------------------------------------------
    def sql_rows(self, statement: str, timeout: float | None = None
                 ) -> tuple[list[str], list[tuple]]:
        """Run one statement that only reads, within ``timeout`` seconds (default
        ``store.queries.SQL_TIMEOUT``, 60): (columns, rows). Anything else (writes,
        several statements, functions that change the server's state or reach outside
        the warehouse) is refused."""
        return queries.run_sql(self.db.reads(), statement, timeout)

    def sql(self, statement: str, timeout: float | None = None):
        """:meth:`sql_rows` as a pandas DataFrame."""
        import pandas as pd

        cols, rows = self.sql_rows(statement, timeout)
        # by position (a name may repeat); missing values NA and NaN NaN, as in every frame
        df = pd.DataFrame({i: _floats([r[i] for r in rows]) for i in range(len(cols))},
                          columns=range(len(cols))).convert_dtypes()
        df.columns = cols
        return df


def _report_data(db, found: results.Divergences, model: str):
    """What a report says: the named queries' answers for a complete comparison set."""
    from .present.report import ReportData

    def rows(name: str, **params) -> list[dict]:
        return queries.records(*queries.fetch(db.reads(found.set_id), name,
                                              set_id=found.set_id, **params))

    with db.engine.connect() as conn:
        version = db.store.server_version(conn)
    from .compare import images as im

    image_rows = im.comparisons(db.reads(), worst=20)
    maps = {r["id"]: im.divergence_map(db.reads(), r) for r in image_rows}
    return ReportData(
        images=image_rows, image_maps=maps, traced=im.traced_pixels(db.reads()),
        map_floor=im.MAP_FLOOR,
        found=found, diff=requests.diff(db, found.set_id, found.strict),
        rollup=rows("divergence_rollup", strict=int(found.strict)),
        components=rows("first_components", strict=int(found.strict)),
        gap=rows("factor_gap", model=model), provenance=rows("provenance"),
        loads=[_masked_load(r) for r in rows("load_commands")], model=model,
        database={"dialect": db.engine.dialect.name, "version": version,
                  "url": mask_secrets(absolute_url(db.url))})


def _masked_load(row: dict) -> dict:
    """A command_log row without secrets (an older tracedb recorded them in clear)."""
    import json

    return {**row, "argv": json.dumps(mask_argv(json.loads(row["argv"]))),
            "cwd": mask_secrets(row["cwd"]) if row.get("cwd") else row.get("cwd")}


def report_argv(url: str, outdir, *, ref=None, cand=None, pixels=None, rtol=1e-12, atol=0.0,
                strict=False, unicode=False, force=False, model="nanoBragg", save=False,
                plots=True) -> list[str]:
    """The full `tracedb report` command line (every option explicit, the warehouse
    URL absolute, secrets masked) for commands.txt."""
    argv = ["tracedb", "--db", absolute_url(url), "report", Path(outdir).as_posix()]
    for opt, val in (("--ref", ref), ("--cand", cand)):
        if val is not None:
            argv += [opt, val]
    for p in pixels or []:
        argv += ["--pixel", f"{p[0]},{p[1]}"]
    argv += ["--rtol", repr(float(rtol)), "--atol", repr(float(atol)), "--model", model]
    argv += [flag for flag, on in (("--strict", strict), ("--unicode", unicode),
                                   ("--force", force), ("--save", save),
                                   ("--no-plots", not plots)) if on]
    return mask_argv(argv)


def connect(url: str | None = None) -> Warehouse:
    """Open (creating at the current schema if new) the warehouse at ``url``.

    ``url`` is a SQLAlchemy URL; default ``$TRACEDB_URL`` or ``sqlite:///tracedb.sqlite``.
    """
    return Warehouse(url)


def example_tree() -> Path:
    """The small example reports tree shipped with tracedb (nanoBragg-shaped, synthetic)."""
    return Path(__file__).resolve().parent / "examples" / "reports"
