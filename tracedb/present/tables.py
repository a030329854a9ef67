"""What the command line prints: records as a Rich table, JSON, CSV or Markdown, and the
shapes of ``diverge``, ``timeline``, ``regress`` and ``taps --diff`` output. Rendering
only: every function is handed its records."""

from __future__ import annotations

import json
import sys

from ..compare.results import Divergences, divergence_record
from .text import MISSING_RUN_TEXT, num, pixel_text, short_run


def json_lines(records: list[dict]) -> str:
    """A JSON array with one object per line (the C encoder: fast for 10^5 rows)."""
    if not records:
        return "[]"
    return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]"


def _plain(v):
    """A value as JSON can carry it: a float NaN (PostgreSQL's float8 has one) is null."""
    return None if isinstance(v, float) and v != v else v


def _cell(v, sep: str) -> str:
    if _plain(v) is None:
        return ""
    if isinstance(v, list):
        return sep.join(map(str, v))
    return str(v)


def emit(records: list[dict], columns: list[str], fmt: str, title: str | None = None) -> None:
    """Render rows as a Rich table, a JSON list or CSV (stable column order)."""
    out = sys.stdout
    if fmt == "json":
        out.write(json_lines([{c: _plain(r.get(c)) for c in columns} for r in records]) + "\n")
        return
    if fmt == "csv":
        import csv

        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in records:
            w.writerow([json.dumps(r[c]) if isinstance(r.get(c), list | dict)
                        else _cell(r.get(c), ",") for c in columns])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in records:
        table.add_row(*[_cell(r.get(c), ",") for c in columns])
    Console(width=max(160, Console().width)).print(table)


def echo(text: str) -> None:
    sys.stdout.write(text + "\n")


# --------------------------------------------------------------------------- ingest

def emit_ingest(result, fmt: str, err, limit: int = 10) -> None:
    """``tracedb ingest`` output: missing paths and notes through ``err`` (one line
    each; at most ``limit`` skipped files), then the counts as JSON or a table."""
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
        echo(json.dumps(s, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="ingest summary")
    t.add_column("what")
    t.add_column("count", justify="right")
    for key, count in s.items():
        if key not in ("notes", "missing"):
            t.add_row(key, str(count))
    Console().print(t)
    if s["new_trace_files"] == 0 and s["unchanged_files"] and not s["bundles_updated"]:
        echo(f"nothing new: {s['unchanged_files']} trace file(s) already loaded")


# --------------------------------------------------------------------------- divergences

_FLAT_FIRST = ("tap", "loop_key", "ref_line", "cand_line", "ref_pointer", "cand_pointer",
               "ref_value", "cand_value",
               "abs_delta", "rel_delta", "ratio", "unit_hint", "suspect_side")
_MD_HEAD = ("| pixel | ref | cand | compared | diverged | print precision | missing "
            "(ref/cand) | first divergence | lines (ref/cand) | ref value | cand value "
            "| ratio | unit hint |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _flat(rec: dict) -> dict:
    row = {k: v for k, v in rec.items() if k != "first"}
    row["pixel"] = pixel_text(rec["pixel"])
    f = rec["first"] or {}
    for k in _FLAT_FIRST:
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
    """``tracedb diverge`` output: the JSON objects, flat CSV, Markdown or a table."""
    records = [divergence_record(r) for r in found.rows]
    if fmt == "json":
        echo(json_lines(records))
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
            echo(f"| {r['pixel']} | {_run_cell(r, 'ref')} | {_run_cell(r, 'cand')} "
                 f"| {r['compared']} | {r['diverged']} | {r['print_precision']} "
                 f"| {r['missing_ref']}/{r['missing_cand']} | {first} "
                 f"| {_where(r, 'ref') or ''}/{_where(r, 'cand') or ''} "
                 f"| {r['first_ref_value'] or ''} | {r['first_cand_value'] or ''} "
                 f"| {num(r['first_ratio'])} | {r['first_unit_hint'] or ''} |")
        return
    rows = []
    for r in flat:
        first = _first_text(r, upper=True)
        if r["first_loop_key"]:
            first += f" [{r['first_loop_key']}]"
        rows.append({
            "pixel": r["pixel"], "ref": short_run(r["ref_side"], r["ref_run"], r["ref_stamp"]),
            "cand": short_run(r["cand_side"], r["cand_run"], r["cand_stamp"]),
            "compared": r["compared"], "diverged": r["diverged"],
            "print prec.": r["print_precision"],
            "missing r/c": f"{r['missing_ref']}/{r['missing_cand']}",
            "first divergence": first,
            "lines r/c": "" if not r["first_tap"] else
            f"{_where(r, 'ref')}/{_where(r, 'cand')}",
            "ratio": num(r["first_ratio"]), "unit hint": r["first_unit_hint"] or "",
        })
    emit(rows, list(rows[0]) if rows else ["pixel"], "table", title=found.tolerance)


DIFF_COLUMNS = ["channel", "tap", "loop_key", "occurrence", "unit", "ref_line", "cand_line",
                "ref_pointer", "cand_pointer",
                "ref_value", "cand_value", "status", "abs_delta", "rel_delta", "ratio",
                "unit_hint", "suspect_side", "accepted_reason"]
DIFF_TABLE = ["tap", "loop_key", "ref_line", "cand_line", "ref_value", "cand_value", "status",
              "rel_delta", "ratio", "unit_hint"]


def emit_diff(rows: list[dict], fmt: str, title: str) -> None:
    """``tracedb taps RUN --diff RUN`` output (Markdown is CSV)."""
    if fmt == "table":
        rows = [{**r, **{k: None if r[k] is None else f"{r[k]:.3g}"
                         for k in ("rel_delta", "ratio", "abs_delta")},
                 # a JSON tap's place is its pointer (its line is 0)
                 **{f"{s}_line": r[f"{s}_pointer"] for s in ("ref", "cand")
                    if r.get(f"{s}_pointer")}} for r in rows]
        emit(rows, DIFF_TABLE, "table", title=title)
        return
    emit(rows, DIFF_COLUMNS, "csv" if fmt == "md" else fmt, title=title)


def emit_timeline(found: Divergences, records: list[dict], pixel, fmt: str) -> None:
    """``tracedb timeline`` output: JSON with the tolerance, CSV or a table."""
    if fmt == "json":
        echo(json.dumps({"pixel": list(pixel), "rtol": found.rtol, "atol": found.atol,
                         "strict": found.strict, "unstamped_runs_left_out": found.unstamped,
                         "timeline": records}, indent=2))
        return
    rows = [{
        "#": r["ordinal"], "cand": short_run(r["cand_side"], r["cand_run"], r["cand_stamp"]),
        "path": r["cand_path"], "compared": r["compared"], "diverged": r["diverged"],
        "first divergence": _first_text({**r, "first_tap": (r["first"] or {}).get("tap")},
                                        upper=True),
        "fixed since previous": ", ".join(r["fixed"]),
        "newly diverged": ", ".join(r["newly_diverged"]),
    } for r in records]
    if fmt == "csv":
        emit(rows, list(rows[0]), "csv")
        return
    ref_desc = "" if not records else "no ref run" if records[0]["ref_run"] is None \
        else "ref " + _run_cell(records[0], "ref")
    emit(rows, list(rows[0]) if rows else ["#"], "table",
         title=f"pixel {pixel[0]},{pixel[1]}: {ref_desc}; {found.tolerance}")


def emit_regress(found: Divergences, records: list[dict], fmt: str) -> None:
    """``tracedb regress`` output."""
    if fmt == "json":
        echo(json.dumps(records, indent=2))
        return
    rows = [{**o, "pixel": pixel_text(o["pixel"]), "regressions": ", ".join(o["regressions"]),
             "fixes": ", ".join(o["fixes"])} for o in records]
    columns = list(rows[0]) if rows else ["pixel"]
    if fmt == "table":  # runs, verdicts and changes; stamps and counts are in csv and json
        columns = ["pixel", "ref_run", "base_run", "base_status", "head_run", "head_status",
                   "base_first", "head_first", "regressions", "fixes"]
        rows = [{**r, **{k: "none" for k in ("ref_run", "base_run", "head_run")
                         if r[k] is None}} for r in rows]
    emit(rows, columns, fmt, title=found.tolerance)
