"""The ``tracedb`` command line: a thin shell over :mod:`tracedb.api`.

Errors a user can cause end in one line on stderr and exit code 2. Heavy
imports happen inside commands so that ``tracedb --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .errors import TracedbError

app = typer.Typer(
    help="A SQL warehouse for numerical parity traces (nanoBragg C vs PyTorch).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="Warehouse upkeep: upgrade, check, rekey, revision.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")

EXAMPLE_DIR = "tracedb-example"


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class IngestFmt(StrEnum):
    table = "table"
    json = "json"


class ReportFmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


class State:
    url: str | None = None


state = State()


def _version(value: bool) -> None:
    if value:
        from . import __version__, stage

        loader = "C accelerator" if stage.IMPLEMENTATION == "c" else "pure Python"
        typer.echo(f"tracedb {__version__} (loader: {loader})")
        raise typer.Exit()


@app.callback()
def _main(
    db: Annotated[str | None, typer.Option(
        "--db", envvar="TRACEDB_URL", metavar="URL",
        help="SQLAlchemy URL of the warehouse [default: sqlite:///tracedb.sqlite "
             "in the current directory].")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    state.url = db


def _open():
    from .api import Warehouse

    return Warehouse(state.url)


def _pixel(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise typer.BadParameter(f"expected SLOW,FAST (two integers), got {value!r}")
    return int(parts[0]), int(parts[1])


def _err(message: str) -> None:
    typer.echo(f"tracedb: {message}", err=True)


# --------------------------------------------------------------------------- output


def _jsonable(v):
    if v is None or type(v) is str or type(v) is int:
        return v
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def json_lines(records: list[dict]) -> str:
    """A JSON array with one object per line (the C encoder: fast for 10^5 rows)."""
    if not records:
        return "[]"
    return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]"


def emit(records: list[dict], columns: list[str], fmt: str, title: str | None = None) -> None:
    """Render rows as a Rich table, a JSON list or CSV (stable column order)."""
    if fmt == "json":
        typer.echo(json_lines([{c: _jsonable(r.get(c)) for c in columns} for r in records]))
        return
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        for r in records:
            w.writerow(["" if _jsonable(r.get(c)) is None else
                        (json.dumps(r[c]) if isinstance(r.get(c), list | dict) else r[c])
                        for c in columns])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in records:
        table.add_row(*["" if _jsonable(r.get(c)) is None else
                        (",".join(map(str, r[c])) if isinstance(r.get(c), list) else str(r[c]))
                        for c in columns])
    Console(width=max(160, Console().width)).print(table)


def _summary_table(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="ingest summary")
    t.add_column("what")
    t.add_column("count", justify="right")
    for key in ("files", "trace_files", "new_trace_files", "unchanged_files", "bundles",
                "bundles_updated", "runs", "pixels", "taps", "values", "trace_lines",
                "parsed_lines", "quarantined_lines", "skipped_files", "failed_bundles",
                "errors", "seconds"):
        t.add_row(key, str(stats[key]))
    Console().print(t)


def _print_notes(notes, limit: int = 10) -> None:
    important = [n for n in notes if n.level != "note"]
    skipped = [n for n in notes if n.level == "note"]
    for n in important:
        _err(f"{n.level}: {n}")
    for n in skipped[:limit]:
        _err(f"note: {n}")
    if len(skipped) > limit:
        _err(f"note: ... and {len(skipped) - limit} more skipped files "
             "(all are listed by --format json)")


# --------------------------------------------------------------------------- commands


def _do_ingest(paths: list[str], fmt: str, argv: list[str], workers: int | None = None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    wh = _open()
    show = fmt == "table" and sys.stderr.isatty()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True, disable=not show) as bar:
        task = bar.add_task("ingest", total=None)

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc[-50:], completed=done, total=total)

        result = wh.ingest(paths, progress=progress, argv=argv, workers=workers)
    for m in result.missing:
        _err(f"error: path not found: {m}")
    _print_notes(result.notes)
    s = result.stats
    if fmt == "json":
        typer.echo(json.dumps(s, indent=2))
    else:
        _summary_table(s)
        if s["new_trace_files"] == 0 and s["unchanged_files"] and not s["bundles_updated"]:
            typer.echo(f"nothing new: {s['unchanged_files']} trace file(s) already loaded")
    return 0 if result.ok else 2


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Report trees or trace files to load.")],
    fmt: Annotated[IngestFmt, typer.Option("--format", help="table or json")] = IngestFmt.table,
    workers: Annotated[int | None, typer.Option(
        help="read, parse and stage in this many worker processes, for 300+ files "
             "[default: $TRACEDB_WORKERS, else one per CPU, at most 4]")
    ] = None,
) -> None:
    """Find every trace file under PATHS and load it with its bundle metadata.

    Re-running loads only what is new; a file whose content changed is loaded as a
    new version. Exit code 2 when a path is missing or a file or bundle failed.
    """
    argv = ["tracedb"] + (["--db", state.url] if state.url else []) + ["ingest", *paths] \
        + (["--format", fmt.value] if fmt != IngestFmt.table else [])
    raise typer.Exit(_do_ingest(paths, fmt.value, argv, workers))


RUN_COLUMNS = ["id", "side", "stamp", "pixel", "path", "taps", "segment", "first_line",
               "last_line", "path_stamp", "meta_stamp", "pixel_source", "bundle_id"]


@app.command()
def runs(
    side: Annotated[str | None, typer.Option(help="c or py")] = None,
    stamp: Annotated[str | None, typer.Option(help="full stamp or a suffix")] = None,
    pixel: Annotated[str | None, typer.Option(help="SLOW,FAST")] = None,
    path: Annotated[str | None, typer.Option(help="substring of the trace file path")] = None,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """List loaded runs (one side of one trace capture for one pixel)."""
    with _open() as wh:
        df = wh.runs(side=side, stamp=stamp, pixel=_pixel(pixel), path=path)
    cols = RUN_COLUMNS if fmt != Fmt.table else ["id", "side", "stamp", "pixel", "taps",
                                                   "path"]
    emit(df.to_dict("records"), cols, fmt.value)


@app.command()
def taps(
    run: Annotated[int, typer.Argument(help="run id (see `tracedb runs`)")],
    diff: Annotated[int | None, typer.Option(
        "--diff", metavar="RUN", help="show this run side by side with RUN, with statuses")
    ] = None,
    rtol: Annotated[float, typer.Option(help="relative tolerance (with --diff)")] = 1e-12,
    atol: Annotated[float, typer.Option(help="absolute tolerance (with --diff)")] = 0.0,
    strict: Annotated[bool, typer.Option(help="count print_precision as diverged")] = False,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Show the taps of one run in trace order, values as written (or two runs, --diff)."""
    with _open() as wh:
        if diff is not None:
            df = wh.diff_runs(run, diff, rtol=rtol, atol=atol, strict=strict)
            _emit_diff(df, fmt.value, f"run {run} (ref) vs run {diff} (cand), "
                                      f"rtol={rtol:g} atol={atol:g}")
            return
        df = wh.taps(run)
    cols = ["seq", "line", "channel", "name", "loop_key", "occurrence", "unit", "shape",
            "value"]
    if fmt == Fmt.json:
        cols = cols + ["components"]
    emit(df.to_dict("records"), cols, fmt.value)


DIFF_COLUMNS = ["channel", "tap", "loop_key", "occurrence", "unit", "ref_line", "cand_line",
                "ref_value", "cand_value", "status", "abs_delta", "rel_delta", "ratio",
                "unit_hint", "accepted_reason"]


def _emit_diff(df, fmt: str, title: str) -> None:
    cols = DIFF_COLUMNS if fmt != "table" else ["tap", "loop_key", "ref_line", "cand_line",
                                                 "ref_value", "cand_value", "status",
                                                 "rel_delta", "ratio", "unit_hint"]
    records = df.to_dict("records")
    if fmt == "table":
        for r in records:
            for k in ("rel_delta", "ratio", "abs_delta"):
                v = _jsonable(r.get(k))
                r[k] = None if v is None else f"{v:.3g}"
    emit(records, cols, "csv" if fmt == "md" else fmt, title=title)


@app.command()
def quarantine(
    path: Annotated[str | None, typer.Option(help="substring of the file path")] = None,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """List TRACE lines that could not be parsed, with file, line and reason."""
    with _open() as wh:
        df = wh.quarantine(path)
    emit(df.to_dict("records"), ["path", "line", "reason", "text"], fmt.value)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", help="where to write the example reports tree")] = Path(EXAMPLE_DIR),
) -> None:
    """Write the bundled example reports tree and ingest it (the README's main job)."""
    import shutil

    from .api import example_tree

    src = example_tree()
    target = directory / "reports"
    if not target.exists():
        shutil.copytree(src, target)
        typer.echo(f"wrote example reports tree to {target.as_posix()}")
    argv = ["tracedb"] + (["--db", state.url] if state.url else []) + [
        "ingest", target.as_posix()]
    code = _do_ingest([target.as_posix()], "table", argv)
    with _open() as wh:
        df = wh.runs(path=target.as_posix())
        typer.echo(f"warehouse: {wh.display_url}")
        emit(df.to_dict("records"), ["id", "side", "stamp", "pixel", "taps", "path"],
             "table", title="runs loaded from the example tree")
        c_stamp = df[df["side"] == "c"]["stamp"].max()
        py_stamp = df[df["side"] == "py"]["stamp"].max()
        div = wh.diverge(ref=f"c@{c_stamp} path:{target.as_posix()}",
                         cand=f"py@{py_stamp} path:{target.as_posix()}")
    typer.echo("\nfirst divergences (the same as: tracedb diverge "
               f"--ref 'c@{c_stamp}' --cand 'py@{py_stamp}'):")
    _emit_divergences(div, "table")
    out = directory / "report"
    with _open() as wh:
        rep = wh.report(out, ref=f"c@{c_stamp} path:{target.as_posix()}",
                        cand=f"py@{py_stamp} path:{target.as_posix()}", force=True)
    for n in rep.notes:
        _err(f"note: {n}")
    typer.echo(f"\nreport written to {out.as_posix()}/: first_divergence.md, summary.md, "
               f"{sum(1 for p in rep.files if p.name.startswith('diff_'))} diff files, "
               "commands.txt, env/trace_env.json"
               + (", plots/" if any(p.suffix == ".png" for p in rep.files) else ""))
    raise typer.Exit(code)


# --------------------------------------------------------------------------- divergence

RtolOpt = Annotated[float, typer.Option("--rtol", help="relative tolerance")]
AtolOpt = Annotated[float, typer.Option("--atol", help="absolute tolerance")]
StrictOpt = Annotated[bool, typer.Option("--strict",
                                         help="count print_precision as diverged")]
RefOpt = Annotated[str | None, typer.Option(
    help="reference run selector [default: newest C run of each pixel]")]
CandOpt = Annotated[str | None, typer.Option(
    help="candidate run selector [default: newest PyTorch run of each pixel]")]
PixelOpt = Annotated[list[str] | None, typer.Option(
    "--pixel", metavar="S,F", help="only this pixel (repeatable)")]


def _pixels(values: list[str] | None) -> list[tuple[int, int]] | None:
    return [p for p in (_pixel(v) for v in values) if p] if values else None


def _fmt_num(v) -> str:
    v = _jsonable(v)
    return "" if v is None else f"{v:.6g}"


def _int(v):
    v = _jsonable(v)
    return None if v is None else int(v)


DIVERGENCE_FIELDS = ("ref_run", "cand_run", "ref_side", "cand_side", "ref_stamp", "cand_stamp",
                     "ref_path", "cand_path", "pairing", "rtol", "atol", "compared", "matched",
                     "diverged", "print_precision", "accepted", "missing_ref", "missing_cand")


_FIRST_FIELDS = ("tap", "channel", "loop_key", "occurrence", "unit", "ref_line", "cand_line",
                 "ref_value", "cand_value", "abs_delta", "rel_delta", "ratio", "unit_hint")
_FIRST_INTS = {"occurrence", "ref_line", "cand_line"}


def divergence_records(df) -> list[dict]:
    """The documented JSON object of every compared pixel pair (built column-wise:
    a summary can have hundreds of thousands of rows)."""
    n = len(df)

    def column(name: str) -> list:
        if name not in df:
            return [None] * n
        values = df.column(name) if hasattr(df, "column") else df[name].tolist()
        return [None if type(v) is float and v != v else v for v in values]

    def ints(values: list) -> list:
        return [None if v is None else int(v) for v in values]

    keys = ("pixel", "status", *DIVERGENCE_FIELDS)
    base = zip(*(column(k) for k in keys), strict=True)
    first = zip(*(ints(column(f"first_{k}")) if k in _FIRST_INTS else column(f"first_{k}")
                  for k in _FIRST_FIELDS), strict=True)
    out = []
    for row, f in zip(base, first, strict=True):
        rec = dict(zip(keys, row, strict=True))
        rec["first"] = None if f[0] is None else dict(zip(_FIRST_FIELDS, f, strict=True))
        out.append(rec)
    return out


def _tolerance_line(df) -> str:
    a = df.attrs
    strict = ", strict (print_precision counts as diverged)" if a["strict"] else ""
    return (f"tolerance: |a-b| <= atol + rtol*max(|a|,|b|), rtol={a['rtol']:g}, "
            f"atol={a['atol']:g}{strict}")


def _emit_divergences(df, fmt: str) -> None:
    records = divergence_records(df)
    if fmt == "json":
        typer.echo(json_lines(records))
        return
    flat = []
    for rec in records:
        row = {k: v for k, v in rec.items() if k != "first"}
        row["pixel"] = "?" if rec["pixel"] is None else f"{rec['pixel'][0]},{rec['pixel'][1]}"
        f = rec["first"] or {}
        for k in ("tap", "loop_key", "ref_line", "cand_line", "ref_value", "cand_value",
                  "abs_delta", "rel_delta", "ratio", "unit_hint"):
            row[f"first_{k}"] = f.get(k)
        flat.append(row)
    if fmt == "csv":
        emit(flat, list(flat[0]) if flat else ["pixel"], "csv")
        return
    if fmt == "md":
        typer.echo(f"{_tolerance_line(df)}\n")
        typer.echo("| pixel | ref | cand | compared | diverged | print precision | missing "
                   "(ref/cand) | first divergence | lines (ref/cand) | ref value | cand value "
                   "| ratio | unit hint |")
        typer.echo("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in flat:
            first = r["first_tap"] or ("nothing compared" if r["compared"] == 0 else "none")
            typer.echo(
                f"| {r['pixel']} | run {r['ref_run']} {r['ref_side']}@{r['ref_stamp'] or '-'} "
                f"| run {r['cand_run']} {r['cand_side']}@{r['cand_stamp'] or '-'} "
                f"| {r['compared']} | {r['diverged']} | {r['print_precision']} "
                f"| {r['missing_ref']}/{r['missing_cand']} | {first} "
                f"| {r['first_ref_line'] or ''}/{r['first_cand_line'] or ''} "
                f"| {r['first_ref_value'] or ''} | {r['first_cand_value'] or ''} "
                f"| {_fmt_num(r['first_ratio'])} | {r['first_unit_hint'] or ''} |")
        return
    rows = []
    for r in flat:
        first = r["first_tap"] or ("NOTHING COMPARED" if r["compared"] == 0 else "-")
        if r["first_loop_key"]:
            first += f" [{r['first_loop_key']}]"
        rows.append({
            "pixel": r["pixel"], "ref": f"{r['ref_run']} {r['ref_side']}@{r['ref_stamp'] or '-'}",
            "cand": f"{r['cand_run']} {r['cand_side']}@{r['cand_stamp'] or '-'}",
            "compared": r["compared"], "diverged": r["diverged"],
            "print prec.": r["print_precision"],
            "missing r/c": f"{r['missing_ref']}/{r['missing_cand']}",
            "first divergence": first,
            "lines r/c": "" if not r["first_tap"] else
            f"{r['first_ref_line']}/{r['first_cand_line']}",
            "ratio": _fmt_num(r["first_ratio"]), "unit hint": r["first_unit_hint"] or "",
        })
    emit(rows, list(rows[0]) if rows else ["pixel"], "table", title=_tolerance_line(df))


@app.command()
def diverge(
    ref: RefOpt = None,
    cand: CandOpt = None,
    pixel: PixelOpt = None,
    rtol: RtolOpt = 1e-12,
    atol: AtolOpt = 0.0,
    strict: StrictOpt = False,
    fmt: Annotated[ReportFmt, typer.Option("--format")] = ReportFmt.table,
    fail_on_divergence: Annotated[bool, typer.Option(
        "--fail-on-divergence", help="exit 1 when any pixel diverges or nothing compared")
    ] = False,
) -> None:
    """First divergence per pixel between reference and candidate runs.

    Selectors: c, py, @STAMP (or a unique suffix), c@STAMP, path:SUBSTRING, run:ID,
    combined with spaces or commas.
    """
    with _open() as wh:
        df = wh._diverge_columns(ref=ref, cand=cand, pixels=_pixels(pixel), rtol=rtol,
                                 atol=atol, strict=strict)
    _emit_divergences(df, fmt.value)
    if fail_on_divergence and any(s != "match" for s in df["status"]):
        raise typer.Exit(1)


def _emit_changes(changes, fmt: str, title: str) -> None:
    cols = ["ordinal", "tap", "loop_key", "occurrence", "change", "before_status",
            "after_status", "before_value", "after_value"]
    emit(changes.to_dict("records"), cols, "csv" if fmt == "md" else fmt, title=title)


@app.command()
def timeline(
    pixel: Annotated[str, typer.Option("--pixel", metavar="S,F", help="the pixel")],
    ref: Annotated[str | None, typer.Option(help="reference run selector [default: newest C "
                                                 "run of the pixel]")] = None,
    cand: Annotated[str | None, typer.Option(help="candidate runs [default: every run of "
                                                  "the other side]")] = None,
    rtol: RtolOpt = 1e-12,
    atol: AtolOpt = 0.0,
    strict: StrictOpt = False,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """How one pixel's first divergence moved across candidate stamps (after each fix)."""
    pix = _pixel(pixel)
    assert pix is not None
    with _open() as wh:
        summaries, changes = wh.timeline(pix, ref=ref, cand=cand, rtol=rtol, atol=atol,
                                         strict=strict)
    fixed: dict = {}
    broke: dict = {}
    for c in changes.to_dict("records"):
        (fixed if c["change"] == "fixed" else broke).setdefault(c["ordinal"], []).append(
            c["tap"] + (f"[{c['loop_key']}]" if c["loop_key"] else ""))
    records = []
    for r, rec in zip(summaries.to_dict("records"), divergence_records(summaries), strict=True):
        rec["ordinal"] = int(r["ordinal"])
        rec["fixed"] = fixed.get(r["ordinal"], [])
        rec["newly_diverged"] = broke.get(r["ordinal"], [])
        records.append(rec)
    if fmt == Fmt.json:
        typer.echo(json.dumps({"pixel": list(pix), "rtol": rtol, "atol": atol,
                               "strict": strict, "unstamped_runs_left_out":
                               summaries.attrs.get("unstamped", []), "timeline": records},
                              indent=2))
        return
    rows = [{
        "#": r["ordinal"], "cand": f"{r['cand_run']} {r['cand_side']}@{r['cand_stamp']}",
        "path": r["cand_path"], "compared": r["compared"], "diverged": r["diverged"],
        "first divergence": (r["first"] or {}).get("tap") or
        ("NOTHING COMPARED" if r["compared"] == 0 else "-"),
        "fixed since previous": ", ".join(r["fixed"]),
        "newly diverged": ", ".join(r["newly_diverged"]),
    } for r in records]
    if fmt == Fmt.csv:
        emit(rows, list(rows[0]), "csv")
        return
    ref_desc = (f"ref run {records[0]['ref_run']} {records[0]['ref_side']}@"
                f"{records[0]['ref_stamp']}") if records else ""
    emit(rows, list(rows[0]) if rows else ["#"], "table",
         title=f"pixel {pix[0]},{pix[1]}: {ref_desc}; {_tolerance_line(summaries)}")
    if summaries.attrs.get("unstamped"):
        _err(f"note: {len(summaries.attrs['unstamped'])} candidate run(s) without a stamp left "
             f"out: " + ", ".join(f"run:{i}" for i in summaries.attrs["unstamped"]))


@app.command()
def regress(
    base: Annotated[str, typer.Option(help="candidate runs before (selector)")],
    head: Annotated[str, typer.Option(help="candidate runs after (selector)")],
    ref: Annotated[str | None, typer.Option(help="reference run selector [default: newest C "
                                                 "run of each pixel]")] = None,
    pixel: PixelOpt = None,
    rtol: RtolOpt = 1e-12,
    atol: AtolOpt = 0.0,
    strict: StrictOpt = False,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Taps that matched at BASE and diverge at HEAD (regressions), and the reverse (fixes)."""
    with _open() as wh:
        summaries, changes = wh.regress(base, head, ref=ref, pixels=_pixels(pixel),
                                        rtol=rtol, atol=atol, strict=strict)
    by_grp: dict = {}
    for r in summaries.to_dict("records"):
        by_grp.setdefault(r["grp"], {})[int(r["ordinal"])] = r
    out = []
    for grp, pair in sorted(by_grp.items()):
        ch = changes[changes["grp"] == grp]
        b, h = pair[1], pair[2]
        out.append({
            "pixel": b["pixel"], "ref_run": int(b["ref_run"]), "base_run": int(b["cand_run"]),
            "head_run": int(h["cand_run"]), "base_stamp": _jsonable(b["cand_stamp"]),
            "head_stamp": _jsonable(h["cand_stamp"]),
            "base_first": _jsonable(b["first_tap"]), "head_first": _jsonable(h["first_tap"]),
            "base_diverged": int(b["diverged"]), "head_diverged": int(h["diverged"]),
            "regressions": [t for t, c in zip(ch["tap"], ch["change"], strict=True)
                            if c == "broke"],
            "fixes": [t for t, c in zip(ch["tap"], ch["change"], strict=True) if c == "fixed"],
        })
    if fmt == Fmt.json:
        typer.echo(json.dumps(out, indent=2))
        return
    rows = [{**o, "pixel": "?" if o["pixel"] is None else f"{o['pixel'][0]},{o['pixel'][1]}",
             "regressions": ", ".join(o["regressions"]), "fixes": ", ".join(o["fixes"])}
            for o in out]
    emit(rows, list(rows[0]) if rows else ["pixel"], fmt.value,
         title=_tolerance_line(summaries))


@app.command()
def report(
    outdir: Annotated[Path, typer.Argument(help="directory to write the report into")],
    ref: RefOpt = None,
    cand: CandOpt = None,
    pixel: PixelOpt = None,
    rtol: RtolOpt = 1e-12,
    atol: AtolOpt = 0.0,
    strict: StrictOpt = False,
    unicode: Annotated[bool, typer.Option("--unicode", help="allow non-ASCII output")] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite a non-empty OUTDIR")
                     ] = False,
    model: Annotated[str, typer.Option(help="factor model that explains the final gap")
                     ] = "nanoBragg",
) -> None:
    """Write first_divergence.md, summary.md, per-pixel diffs, commands.txt, provenance
    and plots, all rendered from warehouse queries."""
    from . import db as dbmod
    from .api import report_argv

    argv = report_argv(dbmod.mask_url(dbmod.resolve_url(state.url)), outdir, ref=ref,
                       cand=cand, pixels=_pixels(pixel), rtol=rtol, atol=atol, strict=strict,
                       unicode=unicode, force=force, model=model)
    with _open() as wh:
        rep = wh.report(outdir, ref=ref, cand=cand, pixels=_pixels(pixel), rtol=rtol,
                        atol=atol, strict=strict, unicode=unicode, force=force, model=model,
                        argv=argv)
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
    model: Annotated[str | None, typer.Argument(help="model name [default: all]")] = None,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Show factor models (target = product of factor^exponent)."""
    with _open() as wh:
        df = wh.factor_model(model)
    if df.empty:
        raise TracedbError(f"no factor model {model!r}" if model else "no factor models")
    emit(df.to_dict("records"), list(df.columns), fmt.value)


@fm_app.command("set")
def fm_set(
    model: Annotated[str, typer.Argument(help="model name")],
    formula: Annotated[str, typer.Argument(help="e.g. 'I_pixel_final = r_e_sqr * "
                                                "F_cell^2 / steps'")],
) -> None:
    """Define or replace a factor model."""
    with _open() as wh:
        factors = wh.set_factor_model(model, formula)
    typer.echo(f"factor model {model}: {len(factors)} factors")


def _param(value: str) -> tuple[str, object]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected k=v, got {value!r}")
    v: object = raw
    if raw == "":
        v = None
    else:
        try:
            v = int(raw)
        except ValueError:
            try:
                v = float(raw)
            except ValueError:
                v = raw
    return key, v


@app.command()
def query(
    name: Annotated[str | None, typer.Argument(help="named query (queries/NAME.sql); "
                                                    "omit to list them")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="K=V", help="bind a parameter (K= binds NULL)")] = None,
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Run a named query from queries/ with bound parameters."""
    from .api import query_names

    if name is None:
        for n in query_names():
            typer.echo(n)
        return
    params = dict(_param(p) for p in (param or []))
    with _open() as wh:
        df = wh.query(name, **params)
    emit(df.to_dict("records"), list(df.columns), fmt.value)


@app.command("sql")
def sql_cmd(
    statement: Annotated[str, typer.Argument(help="one read-only SQL statement")],
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Run read-only SQL against the warehouse (writes are refused)."""
    with _open() as wh:
        df = wh.sql(statement)
    emit(df.to_dict("records"), list(df.columns), fmt.value)


@app.command()
def accept(
    tap: Annotated[str, typer.Argument(help="tap name")],
    reason: Annotated[str, typer.Option(help="why this divergence is accepted")],
    channel: Annotated[str, typer.Option(help="channel (PHI, TAP5, ...); * = any")] = "*",
    loop_key: Annotated[str | None, typer.Option(help="only this loop index")] = None,
    run: Annotated[int | None, typer.Option(help="only comparisons involving this run")] = None,
) -> None:
    """Record a known, accepted divergence; reports show it apart from new ones."""
    with _open() as wh:
        aid = wh.accept(tap, reason, channel=channel, loop_key=loop_key, run_id=run)
    typer.echo(f"accepted divergence {aid}: {tap} ({reason})")


@app.command()
def alias(
    name: Annotated[str, typer.Argument(help="tap name as one side writes it")],
    canonical: Annotated[str, typer.Argument(help="the name to pair it under")],
    channel: Annotated[str, typer.Option(help="channel; * = any")] = "*",
    note: Annotated[str | None, typer.Option(help="why")] = None,
) -> None:
    """Pair taps named NAME with taps named CANONICAL."""
    with _open() as wh:
        wh.add_alias(name, canonical, channel=channel, note=note)
    typer.echo(f"alias: {name} -> {canonical} (channel {channel})")


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
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Check the warehouse: integrity, orphans, counts, every TRACE line accounted for.
    Exit 1 when a check finds problems."""
    with _open() as wh:
        df = wh.check()
    emit(df.to_dict("records"), ["check_name", "problems", "detail"], fmt.value)
    for note in df.attrs.get("interrupted", []):
        _err(f"note: {note}")
    bad = int((df["problems"] > 0).sum())
    if bad:
        _err(f"error: {bad} check(s) found problems")
        raise typer.Exit(1)


@db_app.command("rekey")
def db_rekey() -> None:
    """Recompute tap pairing keys after tap_alias was edited outside tracedb."""
    with _open() as wh:
        wh.rekey()
    typer.echo("pairing keys recomputed from tap_alias")


@db_app.command("revision")
def db_revision() -> None:
    """Print the warehouse's schema revision and this tracedb's head revision."""
    from . import db
    from .api import Warehouse

    wh = Warehouse(state.url, check_schema=False)
    typer.echo(f"warehouse {wh.revision() or '(none)'}; tracedb head {db.head_revision()}")


def main() -> None:
    try:
        app()
    except TracedbError as exc:
        _err(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except Exception as exc:  # a database refusing us is still one line, not a traceback
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()
            _err(f"error: database: {first[0] if first else type(exc).__name__}")
            sys.exit(2)
        raise
