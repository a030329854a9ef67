"""The command line's shared options, defined once for every command (as Polygraphy
builds its comparison options once for every tool): output formats, selectors,
pixels, the tolerance options, and how listings are emitted."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from .ingest.names import PIXEL_MAX


class Fmt(StrEnum):
    """The output choices of every command that lists things."""
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


class DivergeFmt(StrEnum):
    """``diverge``'s: the listing choices and two for CI jobs."""
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"
    junit = "junit"
    github = "github"


def parse_pixel(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 10
                                  and int(p) <= PIXEL_MAX for p in parts):
        raise typer.BadParameter(f"expected SLOW,FAST (two integers from 0 to {PIXEL_MAX}), "
                                 f"got {value!r}")
    return int(parts[0]), int(parts[1])



FormatOpt = Annotated[Fmt, typer.Option(
    "--format", help="table (fits the terminal), json (see `tracedb schema`), csv or md "
                     "(Markdown)")]


def emit(records: list[dict], columns: list[str], fmt: str, title: str | None = None,
         as_written: bool = False) -> None:
    from .present.tables import emit as render

    render(records, columns, fmt, title, as_written=as_written)


def list_rows(records: list[dict], columns: list[str] | None, fmt: Fmt,
              as_written: bool = False) -> None:
    """The listing commands' output: every column of the records unless named
    (``as_written``: see ``present.tables.emit``)."""
    emit(records, columns if columns is not None else list(getattr(records, "columns", [])),
         fmt.value, as_written=as_written)


RtolOpt = Annotated[float, typer.Option("--rtol", help="relative tolerance")]
AtolOpt = Annotated[float, typer.Option("--atol", help="absolute tolerance")]
StrictOpt = Annotated[bool, typer.Option("--strict",
                                         help="count print_precision as diverged")]
SaveOpt = Annotated[bool, typer.Option(
    "--save", help="keep the comparison in the warehouse (needs write access; "
                   "`tracedb db prune` removes it); without it nothing is written")]


def tolerance_options(command):
    """Give a command the comparison options, defined once for every command that
    compares: --rtol, --atol, --strict and --save arrive as one ``tol`` dict of
    keywords (rtol, atol, strict, save) for the core's comparison calls."""
    import functools
    import inspect

    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "tol"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=annotation)
             for name, default, annotation in (("rtol", 1e-12, RtolOpt), ("atol", 0.0, AtolOpt),
                                               ("strict", False, StrictOpt),
                                               ("save", False, SaveOpt))]

    @functools.wraps(command)
    def wrapper(*args, rtol: float, atol: float, strict: bool, save: bool, **kwargs):
        return command(*args, tol={"rtol": rtol, "atol": atol, "strict": strict, "save": save},
                       **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + added)  # type: ignore
    return wrapper

RefOpt = Annotated[str | None, typer.Option(
    help="reference run selector", show_default="newest C run of each pixel")]
CandOpt = Annotated[str | None, typer.Option(
    help="candidate run selector", show_default="newest PyTorch run of each pixel")]
PixelOpt = Annotated[list[str] | None, typer.Option(
    "--pixel", metavar="S,F", help="only this pixel (repeatable)")]


def parse_pixels(values: list[str] | None) -> list[tuple[int, int]] | None:
    return [p for p in (parse_pixel(v) for v in values) if p] if values else None



_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(value: str):
    """'30d', '12h', '1.5w': a timedelta (a number and one of s, m, h, d, w)."""
    import re
    from datetime import timedelta

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if not m:
        raise typer.BadParameter(f"expected an age such as 30d, 12h or 90m, got {value!r}",
                                 param_hint="--older-than")
    return timedelta(seconds=float(m.group(1)) * _AGE_UNITS[m.group(2)])


def parse_param(value: str) -> tuple[str, str | None]:
    """K=V: the text V, which the query reads as the type it casts K to
    (``store.queries.bind_value``); ``K=`` binds NULL."""
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected k=v, got {value!r}")
    return key, raw or None
