"""What the command line prints: records as a Rich table, JSON, CSV or Markdown, and the
shapes of ``diverge``, ``timeline``, ``regress`` and ``taps --diff`` output. Rendering
only: every function is handed its records."""

from __future__ import annotations

import json
import math
import numbers
import sys

import orjson

from ..compare.results import FIRST_FIELDS, Divergences, divergence_record, pixel_of
from .text import MISSING_RUN_TEXT, md_cell, num, pixel_text, short_run


def _json_ready(v, pixels: bool = True):
    """A value as every JSON output carries it: a non-finite float (PostgreSQL's float8
    has NaN) is null, and (unless ``pixels`` is false: columns as a user's SQL named
    them) an object's ``slow`` and ``fast`` are one ``pixel`` [slow, fast], as
    everywhere else."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        if pixels and "slow" in v and "fast" in v and "pixel" not in v:
            out = {}
            for k, x in v.items():
                if k == "slow":
                    out["pixel"] = pixel_of(x, v["fast"])
                elif k != "fast":
                    out[k] = _json_ready(x)
            return out
        return {k: _json_ready(x, pixels) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_ready(x, pixels) for x in v]
    return v


def _number(v):
    """orjson's ``default``: a number type it does not know (NumPy's scalars) as the
    int or float it stands for, a non-finite one as null."""
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        x = float(v)
        return x if math.isfinite(x) else None
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def _dumps(v) -> str:
    """Compact strict JSON in ASCII (a non-finite float null, as :func:`_json_ready`
    makes it; other characters as \\u escapes, as the standard library writes them),
    by orjson, several times faster than the standard library on ``diverge``'s
    records. What orjson refuses (an integer beyond 64 bits, a lone surrogate) or
    writes beyond ASCII goes through the standard library: the same values and
    style."""
    try:
        text = orjson.dumps(v, default=_number, option=orjson.OPT_NON_STR_KEYS).decode()
        if text.isascii():
            return text
    except orjson.JSONEncodeError:
        pass
    return json.dumps(_json_ready(v, pixels=False), allow_nan=False, default=_number,
                      separators=(",", ":"))


def _dumps_ready(v, pixels: bool = True) -> str:
    """``_dumps(_json_ready(v, pixels))``, without walking ``v`` in Python when its
    text names no ``slow`` (which an object to rewrite as ``pixel`` would have): a
    large diverge's records hold over a million values."""
    text = _dumps(v)
    return _dumps(_json_ready(v, pixels)) if pixels and '"slow"' in text else text


def json_text(value, pixels: bool = True) -> str:
    """Every ``--format json`` output in one style: an array holds one element per
    line, an object one member per line (each compact, :func:`_dumps`); strict
    JSON (no NaN); ``pixels``: see :func:`_json_ready`."""
    if isinstance(value, list | tuple):
        return "[\n" + ",\n".join(_dumps_ready(v, pixels) for v in value) + "\n]" \
            if value else "[]"
    value = _json_ready(value, pixels)
    if isinstance(value, dict):
        return "{\n" + ",\n".join(f"{_dumps(k)}: {_dumps(v)}" for k, v in value.items()) \
            + "\n}" if value else "{}"
    return _dumps(value)


def _plain(v):
    """A value as JSON can carry it: a float NaN (PostgreSQL's float8 has one) is null."""
    return None if isinstance(v, float) and v != v else v


def _cell(v, sep: str) -> str:
    if _plain(v) is None:
        return ""
    if isinstance(v, list):
        return sep.join(map(str, v))
    return str(v)


def _pixel_pair(v) -> tuple:
    """A pixel as the two CSV columns (``[s, f]``, ``(s, f)`` or ``"s,f"``)."""
    if isinstance(v, str) and "," in v:
        v = v.split(",")
    if isinstance(v, list | tuple) and len(v) == 2:
        return tuple(int(x) for x in v)
    return (None, None)


def csv_columns(records: list[dict], columns: list[str]) -> tuple[list[str], list[dict]]:
    """CSV's columns and rows: a pixel is the two integer columns ``pixel_slow,
    pixel_fast`` everywhere (a ``pixel`` column, or ``slow`` and ``fast``)."""
    if "pixel" in columns:
        i = columns.index("pixel")
        cols = columns[:i] + ["pixel_slow", "pixel_fast"] + columns[i + 1:]
        rows = []
        for r in records:
            s, f = _pixel_pair(r.get("pixel"))
            rows.append({**r, "pixel_slow": s, "pixel_fast": f})
        return cols, rows
    if "slow" in columns and "fast" in columns:
        names = {"slow": "pixel_slow", "fast": "pixel_fast"}
        return ([names.get(c, c) for c in columns],
                [{names.get(k, k): v for k, v in r.items()} for r in records])
    return columns, records


def emit(records: list[dict], columns: list[str], fmt: str, title: str | None = None,
         drop: list[str] = (), as_written: bool = False) -> None:
    """Render rows as a table for the terminal, a JSON array, CSV or Markdown (stable
    column order; a Markdown table has the table's title above it). ``drop``: the
    columns a narrow terminal loses first (see ``present.terminal``). ``as_written``:
    the columns as a user's SQL named them (``slow`` and ``fast`` stay two columns)."""
    out = sys.stdout
    if fmt == "json":
        out.write(json_text([{c: r.get(c) for c in columns} for r in records],
                            pixels=not as_written) + "\n")
        return
    if fmt == "csv":
        import csv

        if not as_written:
            columns, records = csv_columns(records, columns)
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in records:
            w.writerow([_dumps(_json_ready(r[c], not as_written))
                        if isinstance(r.get(c), list | dict)
                        else _cell(r.get(c), ",") for c in columns])
        return
    if fmt == "md":
        out.write(markdown(records, columns, title))
        return
    from .terminal import print_table

    print_table([[_cell(r.get(c), ",") for c in columns] for r in records], columns, title,
                drop)


def markdown(records: list[dict], columns: list[str], title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (cells escaped), its title as a line above."""
    lines = [title, ""] if title else []
    lines.append("| " + " | ".join(md_cell(c) for c in columns) + " |")
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(md_cell(_cell(r.get(c), ",")) for c in columns) + " |"
              for r in records]
    return "\n".join(lines) + "\n"


def echo(text: str) -> None:
    sys.stdout.write(text + "\n")


# --------------------------------------------------------------------------- ingest

def emit_ingest(result, fmt: str, err, limit: int = 10) -> None:
    """``tracedb ingest`` output: missing paths and notes through ``err`` (one line
    each; at most ``limit`` skipped files), then the counts: one JSON object (with
    every note), or rows of ``what,count`` as a table, CSV or Markdown."""
    for m in result.missing:
        err(f"error: path not found: {m}")
    skipped = [n for n in result.notes if n.level == "note"]
    for n in result.notes:
        if n.level != "note":
            err(f"{n.level}: {n}")
    for n in skipped[:limit]:
        err(f"note: {n}")
    if len(skipped) > limit:
        err(f"note: ... and {len(skipped) - limit} more skipped files "
            "(all are listed by --format json)")
    s = result.stats
    if fmt == "json":
        echo(json_text(s))
        return
    emit([{"what": k, "count": v} for k, v in s.items() if k not in ("notes", "missing")],
         ["what", "count"], fmt, title="ingest summary")
    if fmt == "table" and s["new_trace_files"] == 0 and s["unchanged_files"] \
            and not s["bundles_updated"]:
        echo(f"nothing new: {s['unchanged_files']} trace file(s) already loaded")


# --------------------------------------------------------------------------- divergences

_MD_HEAD = ("| pixel | ref | cand | compared | diverged | print precision | missing "
            "(ref/cand) | first divergence | lines (ref/cand) | ref value | cand value "
            "| ratio | unit hint |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _flat(rec: dict) -> dict:
    """A divergence record as one flat row (CSV): ``first.tap`` is ``first_tap``, and
    nested lists and objects (``config_diff``, ``roots``) stay whole."""
    row = {k: v for k, v in rec.items() if k != "first"}
    f = rec["first"] or {}
    for k in FIRST_FIELDS:
        row[f"first_{k}"] = f.get(k)
    return row


def _where(r: dict, role: str):
    """Where the first divergence is written on one side: its line, or the JSON
    pointer of a tap from a JSON trace (whose line is 0)."""
    return r.get(f"first_{role}_pointer") or r[f"first_{role}_line"]


def _first_text(r: dict, upper: bool) -> str:
    """The first divergence's cell: the tap, or why there is none (a missing run,
    nothing compared, or no divergence)."""
    if r["first_tap"]:
        return r["first_tap"]
    text = MISSING_RUN_TEXT.get(r["status"]) or (
        "nothing compared" if r["compared"] == 0 else None)
    if text is None:
        return "-" if upper else "none"
    return text.upper() if upper else text


def _run_cell(r: dict, role: str) -> str:
    """``run 12 c@STAMP``, or ``none`` for a missing run (role ``ref`` or ``cand``)."""
    run = r[f"{role}_run"]
    return "none" if run is None else f"run {short_run(r[f'{role}_side'], run, r[f'{role}_stamp'])}"


def emit_divergences(found: Divergences, fmt: str) -> None:
    """``tracedb diverge`` output: the JSON objects, flat CSV, Markdown, a table, or
    for CI JUnit XML or GitHub annotations (``present.ci``)."""
    records = [divergence_record(r, found.strict) for r in found.rows]
    if fmt in ("junit", "github"):
        from . import ci

        sys.stdout.write(ci.junit(records, found.tolerance) if fmt == "junit"
                         else ci.github(records, found.tolerance))
        return
    if fmt == "json":
        echo(json_text(records))
        return
    flat = [_flat(rec) for rec in records]
    if fmt == "csv":
        emit(flat, list(flat[0]) if flat else ["pixel"], "csv")
        return
    if fmt == "md":
        echo(f"{found.tolerance}\n")
        echo(_MD_HEAD)
        for r in flat:
            first = _first_text(r, upper=False)
            echo(f"| {pixel_text(r['pixel'])} | {_run_cell(r, 'ref')} | {_run_cell(r, 'cand')} "
                 f"| {r['compared']} | {r['diverged']} | {r['print_precision']} "
                 f"| {r['missing_ref']}/{r['missing_cand']} | {md_cell(first)} "
                 f"| {_where(r, 'ref') or ''}/{_where(r, 'cand') or ''} "
                 f"| {md_cell(r['first_ref_value'])} | {md_cell(r['first_cand_value'])} "
                 f"| {num(r['first_ratio'])} | {md_cell(r['first_unit_hint'])} |")
        return
    rows = []
    for r in flat:
        first = _first_text(r, upper=True)
        if r["first_loop_key"]:
            first += f" [{r['first_loop_key']}]"
        rows.append({
            "pixel": pixel_text(r["pixel"]),
            "ref": short_run(r["ref_side"], r["ref_run"], r["ref_stamp"]),
            "cand": short_run(r["cand_side"], r["cand_run"], r["cand_stamp"]),
            "compared": r["compared"], "diverged": r["diverged"],
            "print prec.": r["print_precision"],
            "missing r/c": f"{r['missing_ref']}/{r['missing_cand']}",
            "first divergence": first,
            "lines r/c": "" if not r["first_tap"] else
            f"{_where(r, 'ref')}/{_where(r, 'cand')}",
            "ratio": num(r["first_ratio"]), "unit hint": r["first_unit_hint"] or "",
        })
    emit(rows, list(rows[0]) if rows else ["pixel"], "table", title=found.tolerance,
         drop=["print prec.", "lines r/c", "missing r/c", "ratio", "compared", "unit hint",
               "ref"])


DIFF_COLUMNS = ["channel", "tap", "loop_key", "occurrence", "unit", "ref_line", "cand_line",
                "ref_pointer", "cand_pointer",
                "ref_value", "cand_value", "status", "abs_delta", "rel_delta", "ratio",
                "unit_hint", "suspect_side", "accepted_reason"]
DIFF_TABLE = ["tap", "loop_key", "status", "ref_line", "cand_line", "ref_value", "cand_value",
              "rel_delta", "ratio", "unit_hint"]


def emit_diff(rows: list[dict], fmt: str, title: str) -> None:
    """``tracedb taps RUN --diff RUN`` output: every field in JSON and CSV, the
    table's columns in a table or Markdown."""
    if fmt in ("table", "md"):
        rows = [{**r, **{k: None if r[k] is None else f"{r[k]:.3g}"
                         for k in ("rel_delta", "ratio", "abs_delta")},
                 # a JSON tap's place is its pointer (its line is 0)
                 **{f"{s}_line": r[f"{s}_pointer"] for s in ("ref", "cand")
                    if r.get(f"{s}_pointer")}} for r in rows]
        emit(rows, DIFF_TABLE, fmt, title=title,
             drop=["ratio", "rel_delta", "unit_hint", "loop_key"])
        return
    emit(rows, DIFF_COLUMNS, fmt, title=title)


def emit_timeline(found: Divergences, records: list[dict], pixel, fmt: str) -> None:
    """``tracedb timeline`` output: the records (JSON: ``diverge``'s objects with
    ``ordinal``, ``fixed`` and ``newly_diverged``; CSV flat), or a table."""
    if fmt == "json":
        echo(json_text(records))
        return
    if fmt == "csv":
        flat = [_flat(r) for r in records]
        emit(flat, list(flat[0]) if flat else ["pixel"], "csv")
        return
    rows = [{
        "#": r["ordinal"], "cand": short_run(r["cand_side"], r["cand_run"], r["cand_stamp"]),
        "path": r["cand_path"], "compared": r["compared"], "diverged": r["diverged"],
        "first divergence": _first_text({**r, "first_tap": (r["first"] or {}).get("tap")},
                                        upper=True),
        "fixed since previous": ", ".join(r["fixed"]),
        "newly diverged": ", ".join(r["newly_diverged"]),
    } for r in records]
    ref_desc = "" if not records else "no ref run" if records[0]["ref_run"] is None \
        else "ref " + _run_cell(records[0], "ref")
    emit(rows, list(rows[0]) if rows else ["#"], fmt,
         title=f"pixel {pixel[0]},{pixel[1]}: {ref_desc}; {found.tolerance}",
         drop=["path", "compared"])


REGRESS_TABLE = ["pixel", "ref_run", "base_run", "base_status", "head_run", "head_status",
                 "base_first", "head_first", "regressions", "fixes"]


def emit_regress(found: Divergences, records: list[dict], fmt: str) -> None:
    """``tracedb regress`` output: the records (JSON, CSV), or runs, verdicts and
    changes as a table (stamps and counts are in CSV and JSON)."""
    if fmt in ("json", "csv"):
        emit(records, list(records[0]) if records else ["pixel"], fmt)
        return
    rows = [{**o, "pixel": pixel_text(o["pixel"]), "regressions": ", ".join(o["regressions"]),
             "fixes": ", ".join(o["fixes"]),
             **{k: "none" for k in ("ref_run", "base_run", "head_run") if o[k] is None}}
            for o in records]
    emit(rows, REGRESS_TABLE, fmt, title=found.tolerance, drop=["ref_run"])
