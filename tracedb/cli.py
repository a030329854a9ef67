"""The ``tracedb`` command line: options -> a core call -> ``present``.

Each command parses its options, calls the library (the :class:`tracedb.api.Warehouse`
or the core it wraps, which return plain records) and hands the result to
:mod:`tracedb.present.tables`; no command imports pandas.

Errors a user can cause end in one line on stderr and exit code 2. Heavy
imports happen inside commands so that ``tracedb --help`` stays fast.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from .cli_options import (
    CandOpt,
    DivergeFmt,
    Fmt,
    FormatOpt,
    PixelOpt,
    RefOpt,
    SaveOpt,
    emit,
    list_rows,
    parse_age,
    parse_param,
    parse_pixel,
    parse_pixels,
    tolerance_options,
)
from .compare.causes import DEFAULT_GRAPH
from .errors import TracedbError


def _flags_show_no_type() -> None:
    """Help lists a flag (``--strict``) without a type: Typer's rich help shows
    ``<bool>`` beside it, as if it took a value (its plain help does not)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_tracedb", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._tracedb = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

app = typer.Typer(
    help="A SQL warehouse for numerical parity traces (nanoBragg C vs PyTorch).",
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="Warehouse upkeep: upgrade, check, rekey, revision.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

EXAMPLE_DIR = "tracedb-example"


class State:
    url: str | None = None


state = State()


def _version(value: bool) -> None:
    if value:
        from . import __version__
        from .ingest import rows

        loader = "C accelerator" if rows.IMPLEMENTATION == "c" else f"pure Python; {rows.REASON}"
        typer.echo(f"tracedb {__version__} (loader: {loader})")
        raise typer.Exit()


@app.callback()
def _main(
    db: Annotated[str | None, typer.Option(
        "--db", envvar="TRACEDB_URL", metavar="URL", help="SQLAlchemy URL of the warehouse.",
        show_default="sqlite:///tracedb.sqlite in the current directory")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    state.url = db


def _open(*, writes: bool = False):
    """The warehouse. Only a command that ``writes`` (loads or curates) creates one
    that does not exist; the others say so in one line (exit 2) and leave no file."""
    from .api import Warehouse

    return Warehouse(state.url, create=writes)


def _err(message: str) -> None:
    """One line on stderr, secrets masked (see store.engine.mask_secrets)."""
    from .store.engine import mask_secrets

    typer.echo(f"tracedb: {mask_secrets(message)}", err=True)


# --------------------------------------------------------------------------- commands


@contextmanager
def _progress(show: bool):
    """A progress bar on stderr while the block runs (only where ``show``, a terminal;
    it is gone afterwards): yields ``progress(description, done, total)``. It is
    drawn at each call, with no thread of its own to start and stop (a quick command
    stays quick)."""
    if not show:
        yield lambda desc, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True, auto_refresh=False, console=Console(stderr=True)) as bar:
        task = bar.add_task("", total=None)

        def progress(desc: str, done: int, total: int | None) -> None:
            bar.update(task, description=desc[-50:], completed=done, total=total,
                       refresh=True)

        yield progress


def _do_ingest(wh, paths: list[str], fmt: str, argv: list[str], workers: int | None = None,
               follow_links: bool = True):
    with _progress(fmt == "table" and sys.stderr.isatty()) as progress:
        result = wh.ingest(paths, progress=progress, argv=argv, workers=workers,
                           follow_links=follow_links)
    from .present.tables import emit_ingest

    emit_ingest(result, fmt, _err)
    return result


def _ingest_code(result, fail_on_quarantine: bool) -> int:
    """2 when a path is missing or a file or bundle failed; 1 with
    --fail-on-quarantine when a line or JSON item was quarantined; else 0."""
    if not result.ok:
        return 2
    quarantined = result.stats.get("quarantined_lines", 0) \
        + result.stats.get("json_quarantined", 0)
    if fail_on_quarantine and quarantined:
        _err(f"error: {quarantined} line(s) or item(s) quarantined "
             "(`tracedb quarantine` lists them with file, line and reason)")
        return 1
    return 0


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Report trees or trace files to load.")],
    fmt: FormatOpt = Fmt.table,
    workers: Annotated[int | None, typer.Option(
        envvar="TRACEDB_WORKERS", min=0,
        help="read, parse and stage in this many worker processes, for 300+ files "
             "(0: all in this process)", show_default="one per CPU, at most 4")] = None,
    follow_links: Annotated[bool, typer.Option(
        "--follow-links/--no-follow-links",
        help="follow symbolic links that lead out of the trees (either way each link "
             "not followed is named)")] = True,
    fail_on_quarantine: Annotated[bool, typer.Option(
        "--fail-on-quarantine",
        help="exit 1 when this ingest quarantined any line or JSON item (what it loaded "
             "stays loaded)")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="keep watching the PATHS (directories) and load what is written "
                        "there, until interrupted (Ctrl-C)")] = False,
    debounce: Annotated[float, typer.Option(
        metavar="SECONDS", help="with --watch: load once nothing under PATHS changed for "
                                "this long, so a bundle being written is not loaded half")
    ] = 2.0,
) -> None:
    """Find every trace file under PATHS and load it with its bundle metadata.

    Re-running loads only what is new; a file whose content changed is loaded as a
    new version. Exit code 2 when a path is missing or a file or bundle failed.
    """
    argv = ["tracedb"] + (["--db", state.url] if state.url else []) + ["ingest", *paths] \
        + (["--format", fmt.value] if fmt != Fmt.table else []) \
        + ([] if follow_links else ["--no-follow-links"]) \
        + (["--fail-on-quarantine"] if fail_on_quarantine else []) \
        + (["--watch", "--debounce", f"{debounce:g}"] if watch else [])
    with _open(writes=True) as wh:
        if not watch:
            raise typer.Exit(_ingest_code(_do_ingest(wh, paths, fmt.value, argv, workers,
                                                     follow_links), fail_on_quarantine))
        codes: list[int] = []

        def load(roots: list[str]) -> None:
            codes.append(_ingest_code(_do_ingest(wh, roots, fmt.value, argv, workers,
                                                 follow_links), fail_on_quarantine))

        try:
            wh.watch(paths, load, debounce=debounce)
        except KeyboardInterrupt:
            _err(f"stopped watching after {len(codes)} load(s)")
    raise typer.Exit(max(codes, default=0))


RUN_COLUMNS = ["id", "side", "stamp", "pixel", "path", "taps", "segment", "first_line",
               "last_line", "path_stamp", "meta_stamp", "pixel_source", "bundle_id"]
RUN_TABLE = ["id", "side", "stamp", "pixel", "taps", "path"]


@app.command()
def runs(
    side: Annotated[str | None, typer.Option(
        help="c, py, or unknown (runs whose side no prefix, file name, folder or "
             "metadata names; compare them with run:ID selectors)")] = None,
    stamp: Annotated[str | None, typer.Option(help="full stamp or a suffix")] = None,
    pixel: Annotated[str | None, typer.Option(help="SLOW,FAST")] = None,
    path: Annotated[str | None, typer.Option(help="substring of the trace file path")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """List loaded runs (one side of one trace capture for one pixel)."""
    with _open() as wh:
        rows = wh.run_rows(side=side, stamp=stamp, pixel=parse_pixel(pixel), path=path)
    if fmt in (Fmt.table, Fmt.md):  # JSON and CSV keep null: no side is named
        for r in rows:
            r["side"] = r["side"] or "unknown"
    list_rows(rows, RUN_TABLE if fmt in (Fmt.table, Fmt.md) else RUN_COLUMNS, fmt)


@app.command()
def taps(
    run: Annotated[int, typer.Argument(help="run id (see `tracedb runs`)")],
    diff: Annotated[int | None, typer.Option(
        "--diff", metavar="RUN", help="show this run side by side with RUN, with statuses")
    ] = None,
    rtol: Annotated[float, typer.Option(help="relative tolerance (with --diff)")] = 1e-12,
    atol: Annotated[float, typer.Option(help="absolute tolerance (with --diff)")] = 0.0,
    strict: Annotated[bool, typer.Option(help="count print_precision as diverged")] = False,
    save: SaveOpt = False,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Show the taps of one run in trace order, values as written (or two runs, --diff)."""
    from .api import TAP_COLUMNS
    from .compare import requests

    with _open() as wh:
        if diff is not None:
            from .present.tables import emit_diff

            rows = requests.diff_runs(wh.db, run, diff, rtol=rtol, atol=atol, strict=strict,
                                      save=save)
            emit_diff(rows, fmt.value, f"run {run} (ref) vs run {diff} (cand), "
                                       f"rtol={rtol:g} atol={atol:g}")
            return
        rows = wh.tap_rows(run)
    list_rows(rows, [c for c in TAP_COLUMNS if c != "components" or fmt == Fmt.json], fmt)


@app.command()
def images(
    case: Annotated[str | None, typer.Option(help="only this case (exact name)")] = None,
    stamp: Annotated[str | None, typer.Option(help="full stamp or a suffix")] = None,
    path: Annotated[str | None, typer.Option(help="substring of the bundle path")] = None,
    worst: Annotated[int, typer.Option(
        help="worst pixels per comparison in JSON and CSV (0: none)", min=0)] = 10,
    timeline: Annotated[bool, typer.Option(
        "--timeline", help="one line per stamp of each case: how its figures moved")] = False,
    next_pixels: Annotated[int | None, typer.Option(
        "--next-pixels", metavar="N", min=1,
        help="the N worst pixels of each comparison that no run traces yet")] = None,
    rtol: Annotated[float | None, typer.Option(
        "--rtol", help="count the pixels outside this relative tolerance (default: "
                       "ingest's count, at 1e-12)")] = None,
    atol: Annotated[float | None, typer.Option(
        "--atol", help="count the pixels outside this absolute tolerance (default: "
                       "ingest's count, at 0)")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """List whole-image comparisons (C image = reference, PyTorch = candidate): figures
    computed in float64 at ingest, checked against the recorded metrics beside them."""
    from .compare import images as im
    from .compare.results import TOLERANCE_RULE
    from .present.tables import emit

    if next_pixels is not None and (rtol is not None or atol is not None or timeline):
        raise TracedbError("--next-pixels ranks pixels by their difference, at no "
                           "tolerance: it takes no --rtol, --atol or --timeline")
    with _open() as wh:
        if next_pixels is not None:
            list_rows(wh.next_pixel_rows(next_pixels, case=case, stamp=stamp), None, fmt)
            return
        rows = wh.image_rows(case=case, stamp=stamp, path=path, worst=worst, rtol=rtol,
                             atol=atol)
    tols = sorted({(r["rtol"], r["atol"]) for r in rows})
    title = f"outside_tolerance: {TOLERANCE_RULE}, " + "; ".join(
        f"rtol={r:g}, atol={a:g}" for r, a in tols) if tols else None
    if timeline:
        emit(rows, im.TIMELINE_COLUMNS, fmt.value, title)
        return
    if fmt in (Fmt.table, Fmt.md):
        for r in rows:
            r["shape"] = "x".join(map(str, r["shape"]))
        emit(rows, im.TABLE_COLUMNS, fmt.value, title)
        return
    list_rows(rows, im.JSON_COLUMNS, fmt)


@app.command()
def quarantine(
    path: Annotated[str | None, typer.Option(help="substring of the file path")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """List TRACE lines that could not be parsed, with file, line and reason."""
    with _open() as wh:
        rows = wh.rows("quarantine", path=path)
    list_rows(rows, ["path", "line", "pointer", "reason", "text"], fmt)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", help="where to write the example reports tree")] = Path(EXAMPLE_DIR),
) -> None:
    """Write the bundled example reports tree and ingest it (the README's main job)."""
    import shutil

    from .api import example_tree
    from .compare.select import path_term

    src = example_tree()
    target = directory / "reports"
    if not target.exists():
        shutil.copytree(src, target)
        typer.echo(f"wrote example reports tree to {target.as_posix()}")
    argv = ["tracedb"] + (["--db", state.url] if state.url else []) + [
        "ingest", target.as_posix()]
    with _open(writes=True) as wh:
        code = 0 if _do_ingest(wh, [target.as_posix()], "table", argv).ok else 2
    from .present.tables import emit_divergences

    with _open() as wh:
        rows = wh.run_rows(path=target.as_posix())
        typer.echo(f"warehouse: {wh.display_url}")
        emit(rows, RUN_TABLE, "table", title="runs loaded from the example tree")
        c_stamp, py_stamp = (max((r["stamp"] for r in rows if r["side"] == side
                                  and r["stamp"]), default="-") for side in ("c", "py"))
        where = path_term(target.as_posix())
        found = wh.divergences(ref=f"c@{c_stamp} {where}", cand=f"py@{py_stamp} {where}")
    typer.echo("\nfirst divergences (the same as: tracedb diverge "
               f"--ref 'c@{c_stamp}' --cand 'py@{py_stamp}'):")
    emit_divergences(found, "table")
    out = directory / "report"
    with _open() as wh:
        rep = wh.report(out, ref=f"c@{c_stamp} {where}", cand=f"py@{py_stamp} {where}",
                        force=True)
    for n in rep.notes:
        _err(f"note: {n}")
    typer.echo(f"\nreport written to {out.as_posix()}/: first_divergence.md, summary.md, "
               f"{sum(1 for p in rep.files if p.name.startswith('diff_'))} diff files, "
               "commands.txt, env/trace_env.json"
               + (", plots/" if any(p.suffix == ".png" for p in rep.files) else ""))
    raise typer.Exit(code)


# --------------------------------------------------------------------------- divergence

@app.command()
@tolerance_options
def diverge(
    tol: dict,
    ref: RefOpt = None,
    cand: CandOpt = None,
    pixel: PixelOpt = None,
    fmt: Annotated[DivergeFmt, typer.Option(
        "--format", help="table (fits the terminal), json (see `tracedb schema`), csv, md "
                         "(Markdown), junit (JUnit XML: one testcase per pixel) or github "
                         "(GitHub Actions annotations at the trace file and line)")
    ] = DivergeFmt.table,
    fail_on_divergence: Annotated[bool, typer.Option(
        "--fail-on-divergence",
        help="exit 1 when any pixel diverges, compares nothing or lacks a run on one side")
    ] = False,
) -> None:
    """First divergence per pixel between reference and candidate runs (a pixel with a
    run on one side only is listed as missing_ref / missing_cand).

    Selectors: c, py, @STAMP (or a unique suffix), c@STAMP, path:SUBSTRING, run:ID,
    combined with spaces or commas; every term must hold; quotes hold spaces or
    commas in a term (path:"my dir").
    """
    from .present.tables import emit_divergences

    with _open() as wh, _progress(sys.stderr.isatty()) as progress:
        found = wh.divergences(ref=ref, cand=cand, pixels=parse_pixels(pixel),
                               progress=progress, **tol)
    emit_divergences(found, fmt.value)
    if fail_on_divergence and not found:
        raise typer.Exit(1)


@app.command()
@tolerance_options
def timeline(
    tol: dict,
    pixel: Annotated[str, typer.Option("--pixel", metavar="S,F", help="the pixel")],
    ref: Annotated[str | None, typer.Option(help="reference run selector",
                                            show_default="newest C run of the pixel")] = None,
    cand: Annotated[str | None, typer.Option(help="candidate runs",
                                             show_default="every run of the other side")
                    ] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """How one pixel's first divergence moved across candidate stamps (after each fix)."""
    from .compare import requests
    from .compare.results import timeline_records
    from .present.tables import emit_timeline

    pix = parse_pixel(pixel)
    assert pix is not None
    with _open() as wh:
        found, changes = requests.timeline(wh.db, pix, ref=ref, cand=cand, **tol)
    emit_timeline(found, timeline_records(found, changes), pix, fmt.value)
    if found.unstamped:
        _err(f"note: {len(found.unstamped)} candidate run(s) without a stamp left "
             f"out: " + ", ".join(f"run:{i}" for i in found.unstamped))


@app.command()
@tolerance_options
def regress(
    tol: dict,
    base: Annotated[str, typer.Option(help="candidate runs before (selector)")],
    head: Annotated[str, typer.Option(help="candidate runs after (selector)")],
    ref: Annotated[str | None, typer.Option(help="reference run selector",
                                            show_default="newest C run of each pixel")] = None,
    pixel: PixelOpt = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Taps that matched at BASE and diverge at HEAD (regressions), and the reverse (fixes)."""
    from .compare import requests
    from .compare.results import regress_records
    from .present.tables import emit_regress

    with _open() as wh:
        found, changes = requests.regress(wh.db, base, head, ref=ref, pixels=parse_pixels(pixel),
                                          **tol)
    emit_regress(found, regress_records(found, changes), fmt.value)


@app.command()
@tolerance_options
def report(
    tol: dict,
    outdir: Annotated[Path, typer.Argument(help="directory to write the report into")],
    ref: RefOpt = None,
    cand: CandOpt = None,
    pixel: PixelOpt = None,
    unicode: Annotated[bool, typer.Option("--unicode", help="allow non-ASCII output")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite a non-empty OUTDIR")
                     ] = False,
    model: Annotated[str, typer.Option(help="factor model that explains the final gap")
                     ] = "nanoBragg",
    no_plots: Annotated[bool, typer.Option("--no-plots", help="write no plots (no "
                                           "matplotlib needed; the rest the same)")] = False,
) -> None:
    """Write first_divergence.md, summary.md, per-pixel diffs, commands.txt, provenance
    and plots, all rendered from warehouse queries."""
    from .api import report_argv
    from .store.engine import resolve_url

    options = dict(ref=ref, cand=cand, pixels=parse_pixels(pixel), unicode=unicode, force=force,
                   model=model, plots=not no_plots, **tol)
    argv = report_argv(resolve_url(state.url), outdir, **options)
    with _open() as wh, _progress(sys.stderr.isatty()) as progress:
        rep = wh.report(outdir, argv=argv, progress=progress, **options)
    for n in rep.notes:
        _err(f"note: {n}")
    names = [p.relative_to(outdir).as_posix() for p in rep.files]
    diffs = sum(1 for n in names if n.startswith("diff_"))
    pngs = sum(1 for n in names if n.endswith(".png"))
    typer.echo(f"report written to {outdir.as_posix()}/: first_divergence.md, summary.md, "
               f"{diffs} diff file(s), commands.txt, env/trace_env.json"
               + (f", {pngs} plot(s) in plots/" if pngs else ""))


fm_app = typer.Typer(help="Factor models that explain a final-value gap.",
                     no_args_is_help=True)
app.add_typer(fm_app, name="factor-model")


@fm_app.command("show")
def fm_show(
    model: Annotated[str | None, typer.Argument(help="model name",
                                                      show_default="all")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Show factor models (target = product of factor^exponent)."""
    from .curate import factor_models
    from .store.queries import records

    with _open() as wh:
        rows = records(*factor_models(wh.db, model))
    if not rows:
        raise TracedbError(f"no factor model {model!r}" if model else "no factor models")
    list_rows(rows, None, fmt)


@fm_app.command("set")
def fm_set(
    model: Annotated[str, typer.Argument(help="model name")],
    formula: Annotated[str, typer.Argument(help="e.g. 'I_pixel_final = r_e_sqr * "
                                                "F_cell^2 / steps'")],
) -> None:
    """Define or replace a factor model."""
    with _open(writes=True) as wh:
        factors = wh.set_factor_model(model, formula)
    typer.echo(f"factor model {model}: {len(factors)} factors")


graph_app = typer.Typer(help="The dependency graph of taps (which tap is computed from "
                             "which), which tells root causes from their consequences.",
                        no_args_is_help=True)
app.add_typer(graph_app, name="graph")
GraphOpt = Annotated[str, typer.Option("--graph", help="graph name")]


@graph_app.command("show")
def graph_show(graph: GraphOpt = DEFAULT_GRAPH, fmt: FormatOpt = Fmt.table) -> None:
    """List the graph's edges: target, source and what the edge rests on."""
    with _open() as wh:
        rows = wh.graph_rows(graph)
    if not rows:
        raise TracedbError(f"graph {graph!r} has no edges")
    list_rows(rows, ["target", "source", "basis"], fmt)


@graph_app.command("set")
def graph_set(
    target: Annotated[str, typer.Argument(help="the tap computed")],
    sources: Annotated[list[str] | None, typer.Argument(
        help="the taps it is computed from (none: remove its inputs)")] = None,
    basis: Annotated[str | None, typer.Option(help="what the edges rest on")] = None,
    graph: GraphOpt = DEFAULT_GRAPH,
) -> None:
    """Make SOURCES the inputs of TARGET (replacing the ones it had)."""
    with _open(writes=True) as wh:
        wh.set_inputs(target, sources or [], basis=basis, graph=graph)
    typer.echo(f"graph {graph}: {target} <- {', '.join(sources or []) or '(no inputs)'}")


@graph_app.command("export")
def graph_export(
    file: Annotated[Path | None, typer.Argument(help="where to write",
                                                              show_default="stdout")
                    ] = None,
    graph: GraphOpt = DEFAULT_GRAPH,
) -> None:
    """Write the graph as text (TARGET <- SOURCE, ...  # basis), for a team's repository."""
    with _open() as wh:
        out = wh.export_graph(graph)
    if file is None:
        typer.echo(out, nl=False)
    else:
        file.write_text(out, encoding="utf-8")
        typer.echo(f"graph {graph}: {out.count(chr(10)) - 1} line(s) written to "
                   f"{file.as_posix()}")


@graph_app.command("import")
def graph_import(
    file: Annotated[Path, typer.Argument(help="a graph as `graph export` writes it")],
    graph: GraphOpt = DEFAULT_GRAPH,
) -> None:
    """Replace the graph with the edges of FILE."""
    try:
        content = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TracedbError(f"cannot read {file.as_posix()}: {exc}") from None
    with _open(writes=True) as wh:
        n = wh.import_graph(content, graph=graph, origin=file.as_posix())
    typer.echo(f"graph {graph}: {n} edge(s) from {file.as_posix()}")


@app.command()
def query(
    name: Annotated[str | None, typer.Argument(help="named query (queries/NAME.sql); "
                                                    "omit to list them")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="K=V", help="bind a parameter (K= binds NULL)")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Run a named query from queries/ with bound parameters."""
    from .store import queries

    if name is None:
        for n in queries.names():
            typer.echo(n)
        return
    params = dict(parse_param(p) for p in (param or []))
    with _open() as wh:
        rows = wh.rows(name, **params)
    list_rows(rows, None, fmt)


@app.command("sql")
def sql_cmd(
    statement: Annotated[str, typer.Argument(help="one SELECT, WITH, VALUES or EXPLAIN")],
    timeout: Annotated[float | None, typer.Option(
        help="seconds the statement may run", show_default="60")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Run one statement that only reads: anything else (writes, several statements,
    functions that change the server or reach outside the warehouse) is refused."""
    from .store.queries import records

    with _open() as wh:
        rows = records(*wh.sql_rows(statement, timeout))
    # the columns the statement names, as it names them
    list_rows(rows, None, fmt, as_written=True)


@app.command()
def schema(
    name: Annotated[str | None, typer.Argument(
        help="schema name (an output's, e.g. diverge, taps_diff, or common); omit to "
             "list which output follows which")] = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) that an output of --format json follows."""
    from . import schemas

    if name is None:
        for output, file in schemas.OUTPUTS.items():
            typer.echo(f"{file:<20} tracedb {output} --format json")
        typer.echo(f"{'common':<20} shared definitions")
        return
    typer.echo(schemas.text(name), nl=False)


class _AddByDefault(TyperGroup):
    """A group whose first word, when it is no subcommand, belongs to ``add``:
    ``tracedb alias omega omega_pixel`` is ``tracedb alias add omega omega_pixel``,
    beside ``tracedb alias list`` and ``tracedb alias remove``."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["add", *args]
        return super().resolve_command(ctx, args)


accept_app = typer.Typer(cls=_AddByDefault, no_args_is_help=True,
                         help="Accepted divergences: add (the default), list, remove.")
app.add_typer(accept_app, name="accept")
alias_app = typer.Typer(cls=_AddByDefault, no_args_is_help=True,
                        help="Tap aliases (pair differently named taps): add (the "
                             "default), list, remove.")
app.add_typer(alias_app, name="alias")


@accept_app.command("add")
def accept(
    tap: Annotated[str, typer.Argument(help="tap name")],
    reason: Annotated[str, typer.Option(help="why this divergence is accepted")],
    channel: Annotated[str, typer.Option(help="channel (PHI, TAP5, ...); * = any")] = "*",
    loop_key: Annotated[str | None, typer.Option(help="only this loop index")] = None,
    run: Annotated[int | None, typer.Option(help="only comparisons involving this run")] = None,
) -> None:
    """Record a known, accepted divergence; reports show it apart from new ones."""
    with _open(writes=True) as wh:
        aid = wh.accept(tap, reason, channel=channel, loop_key=loop_key, run_id=run)
    typer.echo(f"accepted divergence {aid}: {tap} ({reason})")


@accept_app.command("list")
def accept_list(fmt: FormatOpt = Fmt.table) -> None:
    """List the accepted divergences with their ids."""
    with _open() as wh:
        rows = wh.accepted_rows()
    list_rows(rows, None, fmt)


@accept_app.command("remove")
def accept_remove(
    accepted_id: Annotated[int, typer.Argument(metavar="ID",
                                               help="its id (see `tracedb accept list`)")],
) -> None:
    """Remove an accepted divergence: it counts as a divergence again."""
    with _open() as wh:
        wh.remove_accepted(accepted_id)
    typer.echo(f"removed accepted divergence {accepted_id}")


@alias_app.command("add")
def alias(
    name: Annotated[str, typer.Argument(help="tap name as one side writes it")],
    canonical: Annotated[str, typer.Argument(help="the name to pair it under")],
    channel: Annotated[str, typer.Option(help="channel; * = any")] = "*",
    note: Annotated[str | None, typer.Option(help="why")] = None,
    channels: Annotated[bool, typer.Option(
        "--channels", help="NAME and CANONICAL are channels: every tap written on "
                           "channel NAME pairs on channel CANONICAL")] = False,
) -> None:
    """Pair taps named NAME with taps named CANONICAL (with --channels: the taps of
    channel NAME with those of channel CANONICAL)."""
    if channels and channel != "*":
        raise TracedbError("--channel names the channel of a name alias; with --channels, "
                           "NAME is the channel whose taps pair on channel CANONICAL")
    with _open(writes=True) as wh:
        if channels:
            wh.add_channel_alias(name, canonical, note=note)
            typer.echo(f"alias: channel {name} -> channel {canonical}")
            return
        wh.add_alias(name, canonical, channel=channel, note=note)
    typer.echo(f"alias: {name} -> {canonical} (channel {channel})")


@alias_app.command("list")
def alias_list(fmt: FormatOpt = Fmt.table) -> None:
    """List the aliases: NAME pairs as CANONICAL on CHANNEL."""
    with _open() as wh:
        rows = wh.alias_rows()
    list_rows(rows, None, fmt)


@alias_app.command("remove")
def alias_remove(
    name: Annotated[str, typer.Argument(help="the aliased tap name (with --channels: the "
                                             "aliased channel)")],
    channel: Annotated[str, typer.Option(help="channel; * = any")] = "*",
    channels: Annotated[bool, typer.Option(
        "--channels", help="NAME is a channel whose alias goes")] = False,
) -> None:
    """Remove an alias: taps named NAME (with --channels: written on channel NAME)
    pair under their own name (channel) again."""
    with _open() as wh:
        if channels:
            wh.remove_channel_alias(name)
            typer.echo(f"removed alias of channel {name}")
            return
        wh.remove_alias(name, channel)
    typer.echo(f"removed alias {name} (channel {channel})")


curation_app = typer.Typer(no_args_is_help=True, help=(
    "Everything curated (aliases, accepted divergences, factor models, dependency "
    "graphs) in one TOML file a team keeps beside its reports."))
app.add_typer(curation_app, name="curation")


@curation_app.command("export")
def curation_export(
    file: Annotated[Path | None, typer.Argument(help="where to write", show_default="stdout")
                    ] = None,
) -> None:
    """Write the warehouse's curation as TOML."""
    with _open() as wh:
        out = wh.export_curation()
    if file is None:
        typer.echo(out, nl=False)
        return
    try:
        file.write_text(out, encoding="utf-8")
    except OSError as exc:
        raise TracedbError(f"cannot write {file.as_posix()}: {exc.strerror}") from None
    typer.echo(f"curation written to {file.as_posix()}")


@curation_app.command("import")
def curation_import(
    file: Annotated[Path, typer.Argument(help="a curation file as `curation export` "
                                              "writes it")],
) -> None:
    """Replace each kind of curation FILE has a section for (aliases, accepted,
    factor_models, graphs) with FILE's, in one transaction; the others stay."""
    try:
        content = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TracedbError(f"cannot read {file.as_posix()}: {exc}") from None
    with _open(writes=True) as wh:
        counts = wh.import_curation(content, origin=file.as_posix())
    typer.echo(f"curation from {file.as_posix()}: " + (", ".join(
        f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) or "no sections"))


@app.command()
def browse(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8001,
    open_browser: Annotated[bool, typer.Option(
        "--open", help="open the page in the system's web browser")] = False,
) -> None:
    """Browse the warehouse (a SQLite file) in Datasette, read-only, until Ctrl-C:
    described tables, facets, and every named query as a canned query. Needs
    Datasette: the browse extra of tracedb."""
    from .browse import sqlite_file
    from .store.engine import resolve_url

    sqlite_file(resolve_url(state.url))  # before opening: never create one
    with _open() as wh:
        wh.browse(host=host, port=port, open_browser=open_browser)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the warehouse schema to the current revision (creating it if new)."""
    from .api import Warehouse

    wh = Warehouse(state.url, check_schema=False)
    before, after = wh.upgrade()
    if before == after:
        typer.echo(f"{wh.display_url}: already at revision {after}")
    else:
        typer.echo(f"{wh.display_url}: upgraded {before or '(new)'} -> {after}")


@db_app.command("check")
def db_check(
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Check the warehouse: integrity, orphans, counts, every TRACE line accounted for.
    Exit 1 when a check finds problems."""
    with _open() as wh:
        rows, notes = wh.check_rows()
    list_rows(rows, ["check_name", "problems", "detail"], fmt)
    for note in notes:
        _err(f"note: {note}")
    bad = sum(1 for r in rows if r["problems"] > 0)
    if bad:
        _err(f"error: {bad} check(s) found problems")
        raise typer.Exit(1)


@db_app.command("prune")
def db_prune(
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="AGE",
        help="remove saved comparisons made longer ago than AGE: a number and a unit, "
             "s, m, h, d or w (30d, 12h); 0s removes every saved comparison")],
) -> None:
    """Remove comparisons kept in the warehouse with --save, by age."""
    from .compare.engine import prune
    from .store.engine import utcnow

    with _open() as wh:
        removed = prune(wh.db, parse_age(older_than), utcnow())
    typer.echo(f"removed {removed} saved comparison set(s) older than {older_than}")


@db_app.command("rekey")
def db_rekey() -> None:
    """Recompute tap pairing keys after tap_alias was edited outside tracedb."""
    with _open() as wh:
        wh.rekey()
    typer.echo("pairing keys recomputed from tap_alias")


@db_app.command("revision")
def db_revision() -> None:
    """Print the warehouse's schema revision and this tracedb's head revision."""
    from .api import Warehouse
    from .store.engine import head_revision

    wh = Warehouse(state.url, check_schema=False, create=False)
    typer.echo(f"warehouse {wh.revision() or '(none)'}; tracedb head {head_revision()}")


# --------------------------------------------------------------------------- environment

#: The environment variables tracedb reads, and what for; each command's help names
#: those it reads (every command opens a warehouse).
ENVIRONMENT = {
    "TRACEDB_URL": "the warehouse's URL when --db is not given",
    "PGPASSWORD": "the password of a PostgreSQL warehouse (read by libpq, with its "
                  "other PG* variables; never written anywhere)",
    "TRACEDB_WORKERS": "how many worker processes read trace files and draw plots "
                       "(default one per CPU, at most 4; 0 keeps it all in one process)",
    "TRACEDB_STREAM_BYTES": "the size from which a trace file is loaded in chunks "
                            "rather than read whole (default 4 MiB)",
    "TRACEDB_PURE_PYTHON": "1 loads with the pure-Python loader instead of the C "
                           "accelerator",
    "COLUMNS": "the width tables are fitted to (else the terminal's)",
}
_INGEST_ENV = ("TRACEDB_WORKERS", "TRACEDB_STREAM_BYTES", "TRACEDB_PURE_PYTHON")
#: Beyond the warehouse's: the variables a command reads.
COMMAND_ENVIRONMENT = {"ingest": _INGEST_ENV, "demo": (*_INGEST_ENV, "COLUMNS"),
                       "report": ("TRACEDB_WORKERS",)}
_OPEN_ENV = ("TRACEDB_URL", "PGPASSWORD")
_LISTING_ENV = ("COLUMNS",)
#: Commands that open no warehouse and read no environment variable.
NO_ENVIRONMENT = frozenset({"schema"})


def _environment_in_help() -> None:
    """Give every command an 'Environment:' paragraph naming what it reads."""
    apps = [(app, "")] + [(g.typer_instance, f"{g.name} ") for g in app.registered_groups]
    for typer_app, prefix in apps:
        for info in typer_app.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            if prefix + name in NO_ENVIRONMENT:
                continue
            names = [*_OPEN_ENV, *COMMAND_ENVIRONMENT.get(prefix + name, _LISTING_ENV)]
            info.epilog = "Environment: " + "; ".join(
                f"{n}: {ENVIRONMENT[n]}" for n in dict.fromkeys(names)) + "."
    app.info.epilog = "Environment: " + "; ".join(f"{n}: {w}" for n, w in ENVIRONMENT.items()) \
        + "."


_environment_in_help()


#: The cyclic garbage collector's thresholds while a command runs.
GC_THRESHOLDS = (50_000, 20, 20)


@contextmanager
def _few_collections():
    """A command's records are a few million small objects that all live until it
    ends; at Python's default thresholds (700, 10, 10) the cyclic collector walked
    them again and again: 1.34 s of a 15 s ``diverge`` of 28,800 pairs (Python 3.11,
    timed by gc.callbacks), 0.40 s with the objects of the start-up imports frozen
    and these thresholds. Cycles are still collected: a young collection every
    50,000 new objects, a full one (as before) once the objects that survived since
    the last make a quarter of those it kept. Both are undone when the command
    returns (tests call ``main`` in their own process)."""
    import gc

    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def main() -> None:
    try:
        try:
            with _few_collections():
                app(prog_name="tracedb")  # also under `python -m tracedb`
        finally:  # output a full device refuses fails here, not in Python's exit
            sys.stdout.flush()
    except TracedbError as exc:
        _err(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except OSError as exc:
        _os_error(exc)
    except Exception as exc:  # a database refusing us is still one line, not a traceback
        if _database_error(exc):
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()
            _err(f"error: database: {first[0] if first else type(exc).__name__}")
            sys.exit(2)
        raise


def _database_error(exc: Exception) -> bool:
    """An error of SQLAlchemy's, or of a driver's own (the bulk writers use the
    driver's cursor: COPY, executemany)."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError | sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")  # only a PostgreSQL warehouse loads it
    return psycopg is not None and isinstance(exc, psycopg.Error)


def _os_error(exc: OSError) -> None:
    """A reader that went away (``| head -1``) ends the command quietly, exit 1 as
    Typer's own handling does; any other failure to read or write (a full device,
    a path that is a file) is one line, exit 2."""
    import errno
    import os

    if exc.errno == errno.EPIPE:
        # nothing more can reach the reader; Python's own flush at exit must not fail
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    where = f" ({exc.filename})" if exc.filename else " (writing the output)" \
        if exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT) else ""
    try:
        _err(f"error: {exc.strerror or exc}{where}")
    except OSError:
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)  # what stdout still holds is lost
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    sys.exit(2)
