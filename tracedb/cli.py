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
db_app = typer.Typer(help="Warehouse schema: upgrade, revision.", no_args_is_help=True)
app.add_typer(db_app, name="db")

EXAMPLE_DIR = "tracedb-example"


class Fmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class IngestFmt(StrEnum):
    table = "table"
    json = "json"


class State:
    url: str | None = None


state = State()


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"tracedb {__version__}")
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
    if v is None:
        return None
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def emit(records: list[dict], columns: list[str], fmt: str, title: str | None = None) -> None:
    """Render rows as a Rich table, a JSON list or CSV (stable column order)."""
    if fmt == "json":
        out = [{c: _jsonable(r.get(c)) for c in columns} for r in records]
        typer.echo(json.dumps(out, indent=2))
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


def _do_ingest(paths: list[str], fmt: str, argv: list[str]) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    wh = _open()
    show = fmt == "table" and sys.stderr.isatty()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True, disable=not show) as bar:
        task = bar.add_task("ingest", total=None)

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, description=desc[-50:], completed=done, total=total)

        result = wh.ingest(paths, progress=progress, argv=argv)
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
) -> None:
    """Find every trace file under PATHS and load it with its bundle metadata.

    Re-running loads only what is new; a file whose content changed is loaded as a
    new version. Exit code 2 when a path is missing or a file or bundle failed.
    """
    argv = ["tracedb"] + (["--db", state.url] if state.url else []) + ["ingest", *paths] \
        + (["--format", fmt.value] if fmt != IngestFmt.table else [])
    raise typer.Exit(_do_ingest(paths, fmt.value, argv))


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
    fmt: Annotated[Fmt, typer.Option("--format")] = Fmt.table,
) -> None:
    """Show the taps of one run in trace order, values as written."""
    with _open() as wh:
        df = wh.taps(run)
    cols = ["seq", "line", "channel", "name", "loop_key", "occurrence", "unit", "shape",
            "value"]
    if fmt == Fmt.json:
        cols = cols + ["components"]
    emit(df.to_dict("records"), cols, fmt.value)


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
    emit(df.to_dict("records"), ["id", "side", "stamp", "pixel", "taps", "path"], "table",
         title="runs loaded from the example tree")
    raise typer.Exit(code)


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
