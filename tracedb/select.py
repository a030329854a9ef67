"""Run selectors, shared by every command that picks runs.

A selector is one or more terms separated by spaces or commas; all must hold:

    c  py                  side
    @064547Z               stamp: full, or a suffix that names one stamp
    c@20251010T053711Z     side and stamp together
    path:phase_d           substring of the run's trace file path
    run:42                 one run id

Selection works on the DataFrame of ``Warehouse.runs()``; it decides which runs
to compare, never how they compare (that is SQL's job).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TracedbError

_TERM = re.compile(r"^(?:(c|py))?(?:@([0-9A-Za-z_]+))?$")


@dataclass(frozen=True)
class Selector:
    text: str
    side: str | None = None
    stamp: str | None = None
    path: str | None = None
    run_id: int | None = None


def parse_selector(text: str) -> Selector:
    side = stamp = path = None
    run_id = None
    terms = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not terms:
        raise TracedbError("empty run selector; use e.g. c, py, @064547Z, path:phase_d, run:42")
    for term in terms:
        if term.startswith("path:"):
            path = term[5:]
            if not path:
                raise TracedbError(f"selector {text!r}: path: needs a substring")
            continue
        if term.startswith("run:"):
            if not term[4:].isdigit():
                raise TracedbError(f"selector {text!r}: run: needs a numeric run id")
            run_id = int(term[4:])
            continue
        m = _TERM.match(term)
        if not m or not (m.group(1) or m.group(2)):
            raise TracedbError(f"cannot read selector term {term!r} in {text!r}; use c, py, "
                               "@STAMP, c@STAMP, path:SUBSTRING or run:ID")
        side = m.group(1) or side
        stamp = m.group(2) or stamp
    return Selector(text=text, side=side, stamp=stamp, path=path, run_id=run_id)


def _describe(row) -> str:
    pix = "?" if row["pixel"] is None else f"{row['pixel'][0]},{row['pixel'][1]}"
    side = row["side"] if isinstance(row["side"], str) else "?"
    stamp = row["stamp"] if isinstance(row["stamp"], str) else "-"
    version = row.get("file_version", 1)
    ver = f" (version {int(version)})" if version and int(version) > 1 else ""
    return f"run:{row['id']} {side}@{stamp} pixel {pix} {row['path']}{ver}"


def candidates_text(df, limit: int = 8) -> str:
    rows = [_describe(r) for r in df.to_dict("records")[:limit]]
    more = f"; ... {len(df) - limit} more" if len(df) > limit else ""
    return "; ".join(rows) + more


def apply(df, sel: Selector):
    """Rows of ``df`` (runs) matched by ``sel``; a stamp suffix must name one stamp."""
    out = df
    if sel.side:
        out = out[out["side"] == sel.side]
    if sel.run_id is not None:
        out = out[out["id"] == sel.run_id]
    if sel.path:
        out = out[out["path"].str.contains(sel.path, regex=False)]
    if sel.stamp:
        stamps = sorted({s for s in out["stamp"].dropna() if str(s).endswith(sel.stamp)})
        if len(stamps) > 1:
            raise TracedbError(f"selector {sel.text!r}: stamp suffix {sel.stamp!r} matches "
                               f"{len(stamps)} stamps: {', '.join(stamps)}")
        out = out[out["stamp"] == (stamps[0] if stamps else None)] if stamps else out.iloc[0:0]
    if out.empty:
        raise TracedbError(f"selector {sel.text!r} matches no run; list runs with "
                           "`tracedb runs`")
    return latest_versions(out) if sel.run_id is None else out


def latest_versions(df):
    """Drop runs of a trace file that was loaded again with new content (the newest
    version of each path stays; `run:ID` still reaches the older ones)."""
    if "file_version" not in df or df.empty:
        return df
    newest = df.groupby("path")["file_version"].transform("max")
    return df[df["file_version"] == newest]


def pixel_key(pixel) -> tuple[int, int] | None:
    return None if pixel is None else (int(pixel[0]), int(pixel[1]))


def records(df) -> list[dict]:
    """Rows of a DataFrame as dicts of plain Python values (a fast ``to_dict("records")``)."""
    cols = list(df.columns)
    return [dict(zip(cols, row, strict=True))
            for row in zip(*(df[c].tolist() for c in cols), strict=True)]


def _order(rec: dict) -> tuple[str, int]:
    stamp = rec["stamp"]
    return (stamp if isinstance(stamp, str) else "", int(rec["id"]))


def newest(df):
    """The newest run: latest stamp (runs without a stamp are oldest), then highest id."""
    rows = records(df) if hasattr(df, "to_dict") else list(df)
    return max(rows, key=_order)


def one_per_pixel(df, sel: Selector | None, role: str) -> dict:
    """{pixel: run record}; with an explicit selector a pixel may match only one run."""
    import pandas as pd

    if sel is None:  # the newest run of each pixel (no ambiguity to report)
        cols = list(df.columns)
        values = [df[c].tolist() for c in cols]
        ids, stamps, pixels = (values[cols.index(c)] for c in ("id", "stamp", "pixel"))
        best: dict = {}
        for i, (run_id, stamp, pixel) in enumerate(zip(ids, stamps, pixels, strict=True)):
            pix = pixel_key(pixel)
            order = (stamp if isinstance(stamp, str) else "", int(run_id))
            if pix not in best or order > best[pix][0]:
                best[pix] = (order, i)
        return {pix: dict(zip(cols, (v[i] for v in values), strict=True))
                for pix, (_order_key, i) in best.items()}
    groups: dict = {}
    for rec in records(df):
        groups.setdefault(pixel_key(rec["pixel"]), []).append(rec)
    out = {}
    for pix, recs in groups.items():
        if sel is not None and len(recs) > 1:
            raise TracedbError(
                f"--{role} {sel.text!r} matches {len(recs)} runs of pixel "
                f"{'?' if pix is None else f'{pix[0]},{pix[1]}'}; narrow it (e.g. add @STAMP "
                f"or path:...). Candidates: {candidates_text(pd.DataFrame(recs))}")
        out[pix] = max(recs, key=_order)
    return out
