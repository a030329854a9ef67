"""Which runs to compare: selectors, the newest-run rule, and the pairings of
``diverge``, ``timeline``, ``regress`` and reports.

A selector is one or more terms separated by spaces or commas; every term must hold:

    c  py                  side
    @064547Z               stamp: full, or a suffix that names one stamp
    c@20251010T053711Z     side and stamp together
    path:phase_d           substring of the run's trace file path
    run:42                 one run id

``path:A path:B`` means both substrings. Quotes hold spaces and commas in a term
(``path:"my dir/x"``, ``path:'a,b'``); quoted and bare pieces join as in a shell, so
``"``, quoted with ``'``, is a literal one (``path_term`` writes such a term).

Selection works on run records (dicts with ``id``, ``side``, ``stamp``, ``pixel``,
``path``, ``file_version``: the ``pairing_runs`` query); it decides which runs to
compare, never how they compare (that is SQL's job). A pair is ``(grp, ordinal,
ref_run, cand_run, pairing)``; a run id is None where that run is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import TracedbError

_TERM = re.compile(r"^(?:(c|py))?(?:@([0-9A-Za-z_]+))?$")
# a bare piece, a "quoted" or 'quoted' piece, a run of separators, or a lone quote
_PIECE = re.compile(r"""[^\s,"']+|"([^"]*)"|'([^']*)'|([\s,]+)|(["'])""")
Pixel = tuple[int, int]


@dataclass(frozen=True)
class Selector:
    text: str
    side: str | None = None
    stamps: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    run_id: int | None = None


def _terms(text: str) -> list[str]:
    """The terms of a selector: separated by blanks or commas outside quotes, each
    with its quotes taken off."""
    terms: list[str] = []
    term: str | None = None
    for m in _PIECE.finditer(text):
        dq, sq, sep, lone = m.groups()
        if lone:
            raise TracedbError(f"selector {text!r}: a {lone} quote is not closed")
        if sep is not None:
            if term is not None:
                terms.append(term)
            term = None
            continue
        term = (term or "") + (dq if dq is not None else sq if sq is not None else m.group(0))
    if term is not None:
        terms.append(term)
    return terms


def path_term(path: str) -> str:
    """A ``path:`` term that matches ``path`` literally, whatever it holds."""
    return 'path:"' + path.replace('"', '"\'"\'"') + '"'


def parse_selector(text: str) -> Selector:
    sides: list[str] = []
    stamps: list[str] = []
    paths: list[str] = []
    run_ids: list[int] = []
    terms = _terms(text)
    if not terms:
        raise TracedbError("empty run selector; use e.g. c, py, @064547Z, path:phase_d, run:42")
    for term in terms:
        if term.startswith("path:"):
            if not term[5:]:
                raise TracedbError(f"selector {text!r}: path: needs a substring")
            paths.append(term[5:])
            continue
        if term.startswith("run:"):
            if not term[4:].isdigit():
                raise TracedbError(f"selector {text!r}: run: needs a numeric run id")
            run_ids.append(int(term[4:]))
            continue
        m = _TERM.match(term)
        if not m or not (m.group(1) or m.group(2)):
            raise TracedbError(f"cannot read selector term {term!r} in {text!r}; use c, py, "
                               "@STAMP, c@STAMP, path:SUBSTRING or run:ID")
        sides += [m.group(1)] if m.group(1) else []
        stamps += [m.group(2)] if m.group(2) else []
    for what, values in (("sides", sides), ("run ids", run_ids)):
        if len(set(values)) > 1:
            raise TracedbError(f"selector {text!r} names two {what} "
                               f"({', '.join(map(str, dict.fromkeys(values)))}); every term "
                               "must hold, so no run can match")
    return Selector(text=text, side=sides[0] if sides else None, stamps=tuple(stamps),
                    paths=tuple(paths), run_id=run_ids[0] if run_ids else None)


def maybe_selector(text: str | None) -> Selector | None:
    return None if text is None else parse_selector(text)


# --------------------------------------------------------------------------- the rules


def newest_versions(runs: list[dict]) -> list[dict]:
    """Drop runs of a trace file that was loaded again with new content (the newest
    version of each path stays; ``run:ID`` still reaches the older ones)."""
    newest: dict[str, int] = {}
    for r in runs:
        if r["file_version"] > newest.get(r["path"], 0):
            newest[r["path"]] = r["file_version"]
    return [r for r in runs if r["file_version"] == newest[r["path"]]]


def age(run: dict) -> tuple[str, int]:
    """The newest-run order: latest stamp (runs without one are oldest), then highest id."""
    stamp = run["stamp"]
    return (stamp if isinstance(stamp, str) else "", int(run["id"]))


def newest(runs: list[dict]) -> dict:
    return max(runs, key=age)


def _describe(run: dict) -> str:
    pix = "?" if run["pixel"] is None else f"{run['pixel'][0]},{run['pixel'][1]}"
    side = run["side"] if isinstance(run["side"], str) else "?"
    stamp = run["stamp"] if isinstance(run["stamp"], str) else "-"
    version = run.get("file_version", 1)
    ver = f" (version {int(version)})" if version and int(version) > 1 else ""
    return f"run:{run['id']} {side}@{stamp} pixel {pix} {run['path']}{ver}"


def candidates_text(runs: list[dict], limit: int = 8) -> str:
    more = f"; ... {len(runs) - limit} more" if len(runs) > limit else ""
    return "; ".join(_describe(r) for r in runs[:limit]) + more


def apply(runs: list[dict], sel: Selector) -> list[dict]:
    """The runs matched by every term of ``sel`` (their newest versions unless it names
    a run id); its stamp suffixes must name one stamp, and it must match something."""
    out = [r for r in runs if (not sel.side or r["side"] == sel.side)
           and (sel.run_id is None or r["id"] == sel.run_id)
           and all(p in r["path"] for p in sel.paths)]
    if sel.stamps:
        stamps = sorted({r["stamp"] for r in out if isinstance(r["stamp"], str)
                         and all(r["stamp"].endswith(s) for s in sel.stamps)})
        if len(stamps) > 1:
            suffix = " and ".join(repr(s) for s in sel.stamps)
            raise TracedbError(f"selector {sel.text!r}: stamp suffix {suffix} matches "
                               f"{len(stamps)} stamps: {', '.join(stamps)}")
        out = [r for r in out if stamps and r["stamp"] == stamps[0]]
    if not out:
        raise TracedbError(f"selector {sel.text!r} matches no run (every term must hold); "
                           "list runs with `tracedb runs`")
    return newest_versions(out) if sel.run_id is None else out


def chosen(runs: list[dict], sel: Selector | None, side: str) -> list[dict]:
    """The runs a selector picks, or without one the newest versions of one side."""
    return apply(runs, sel) if sel else newest_versions([r for r in runs if r["side"] == side])


def one_per_pixel(runs: list[dict], sel: Selector | None, role: str) -> dict:
    """{pixel: run}; without a selector the newest run of each pixel, with one a pixel
    may match only one run."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(r["pixel"], []).append(r)
    out = {}
    for pix, group in groups.items():
        if sel is not None and len(group) > 1:
            raise TracedbError(
                f"--{role} {sel.text!r} matches {len(group)} runs of pixel "
                f"{'?' if pix is None else f'{pix[0]},{pix[1]}'}; narrow it (e.g. add @STAMP "
                f"or path:...). Candidates: {candidates_text(group)}")
        out[pix] = newest(group)
    return out


def for_pixels(runs: list[dict], pixels: list[Pixel] | None) -> list[dict]:
    """The runs of the given pixels (all runs when None); none is an error."""
    if not pixels:
        return runs
    wanted = {(int(s), int(f)) for s, f in pixels}
    out = [r for r in runs if r["pixel"] in wanted]
    if not out:
        raise TracedbError("no runs for pixel(s) " + ", ".join(
            f"{s},{f}" for s, f in sorted(wanted)))
    return out


def _pixels_text(by: dict) -> str:
    return ", ".join(f"{p[0]},{p[1]}" for p in by if p is not None) or "none"


def _run_id(run: dict | None) -> int | None:
    return None if run is None else int(run["id"])


def _known_pixels(*sides: dict) -> list[Pixel]:
    """Every known pixel that has a run on any of the sides ({pixel: run}); a pixel
    without a run on some side is paired with None there (an unpaired pixel is listed,
    never dropped)."""
    return sorted({p for by in sides for p in by if p is not None})


# --------------------------------------------------------------------------- pairings


def pair_runs(runs: list[dict], ref: str | None = None, cand: str | None = None,
              pixels: list[Pixel] | None = None) -> list[tuple]:
    """Which runs to compare. Default: per pixel, the newest C run against the newest
    PyTorch run. Explicit selectors must name one run per pixel; two single runs
    pair even when their pixel is unknown. A pixel with a run on one side only is
    paired with None on the other (its run is missing)."""
    runs = for_pixels(runs, pixels)
    rsel, csel = maybe_selector(ref), maybe_selector(cand)
    rruns, cruns = chosen(runs, rsel, "c"), chosen(runs, csel, "py")
    if rsel and csel and len(rruns) == 1 and len(cruns) == 1:
        return [(0, 1, int(rruns[0]["id"]), int(cruns[0]["id"]),
                 f"{rsel.text} vs {csel.text}")]
    rby, cby = one_per_pixel(rruns, rsel, "ref"), one_per_pixel(cruns, csel, "cand")
    known = _known_pixels(rby, cby)
    if not known:
        raise TracedbError("no run of a known pixel to compare (reference pixels: "
                           f"{_pixels_text(rby)}; candidate pixels: {_pixels_text(cby)}); "
                           "load some, or name one run each with --ref/--cand")
    if rsel or csel:
        how = (f"{rsel.text if rsel else 'newest C run'} vs "
               f"{csel.text if csel else 'newest PyTorch run'} of each pixel")
    else:
        how = "newest C run vs newest PyTorch run of each pixel"
    return [(i, 1, _run_id(rby.get(p)), _run_id(cby.get(p)), how)
            for i, p in enumerate(known)]


def timeline_pairs(runs: list[dict], pixel: Pixel, ref: str | None = None,
                   cand: str | None = None) -> tuple[list[tuple], list[int]]:
    """A fixed reference run against each candidate run of one pixel, in stamp order;
    also the ids of candidate runs left out for want of a stamp. Without a reference
    run each candidate is paired with None; without a candidate run the reference is
    (one pair, its candidate missing)."""
    runs = for_pixels(runs, [pixel])
    rsel = maybe_selector(ref)
    rruns = chosen(runs, rsel, "c")
    if rsel and len(rruns) > 1:
        raise TracedbError(f"--ref {rsel.text!r} matches {len(rruns)} runs of pixel "
                           f"{pixel[0]},{pixel[1]}; narrow it. Candidates: "
                           f"{candidates_text(rruns)}")
    r = newest(rruns) if rruns else None
    other = "c" if r is not None and r["side"] == "py" else "py"
    cruns = [c for c in chosen(runs, maybe_selector(cand), other)
             if r is None or c["id"] != r["id"]]
    unstamped = [int(c["id"]) for c in cruns if not isinstance(c["stamp"], str)]
    cruns = sorted((c for c in cruns if isinstance(c["stamp"], str)), key=age)
    if r is None and not cruns:
        raise TracedbError(f"no C run and no candidate run with a stamp for pixel "
                           f"{pixel[0]},{pixel[1]}"
                           + (f" ({len(unstamped)} without a stamp)" if unstamped else ""))
    if not cruns:
        return [(0, 1, _run_id(r), None, "timeline")], unstamped
    return [(0, i, _run_id(r), int(c["id"]), "timeline")
            for i, c in enumerate(cruns, start=1)], unstamped


def regress_pairs(runs: list[dict], base: str, head: str, ref: str | None = None,
                  pixels: list[Pixel] | None = None) -> list[tuple]:
    """Per pixel: the reference run against the base run (ordinal 1) and the head run
    (ordinal 2). The pixels are those of the base and head runs (and of an explicit
    ``ref``); a run missing there is None in its pairs (a pixel with neither a
    reference nor a base run has no base pair, and likewise for head)."""
    runs = for_pixels(runs, pixels)
    rsel, bsel, hsel = maybe_selector(ref), parse_selector(base), parse_selector(head)
    rby = one_per_pixel(chosen(runs, rsel, "c"), rsel, "ref")
    bby = one_per_pixel(apply(runs, bsel), bsel, "base")
    hby = one_per_pixel(apply(runs, hsel), hsel, "head")
    known = _known_pixels(bby, hby, rby if rsel else {})
    if not known:
        raise TracedbError("no base or head run of a known pixel "
                           f"(base pixels: {_pixels_text(bby)}; head pixels: "
                           f"{_pixels_text(hby)})")
    pairs = []
    for g, p in enumerate(known):
        ref_id = _run_id(rby.get(p))
        for ordinal, by, how in ((1, bby, "base"), (2, hby, "head")):
            cand_id = _run_id(by.get(p))
            if ref_id is not None or cand_id is not None:  # neither run: nothing to record
                pairs.append((g, ordinal, ref_id, cand_id, how))
    return pairs
