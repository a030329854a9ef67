"""What a comparison set found, as plain records: per-pair summaries with their first
divergence, the tap-by-tap diff, the changes between stamps, and the documented
JSON objects of ``diverge``, ``timeline`` and ``regress``.

A :class:`Divergences` carries its tolerance with its rows (like Polygraphy's
comparison results), and is true when every pair matched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import TracedbError
from ..store.queries import fetch, records
from . import causes, config

SIDE_LABEL = {"c": "C", "py": "PyTorch"}
#: The tolerance rule, as every output states it.
TOLERANCE_RULE = "|a-b| <= atol + rtol*max(|a|,|b|)"


def tolerance_text(rtol: float, atol: float, strict: bool) -> str:
    extra = ", strict (print_precision counts as diverged)" if strict else ""
    return f"tolerance: {TOLERANCE_RULE}, rtol={rtol:g}, atol={atol:g}{extra}"


def factor_text(factor: float) -> str:
    """A conversion factor as a hint writes it: 1e3, 1e-10, 57.2958."""
    exp = round(math.log10(factor))
    if abs(factor / 10.0 ** exp - 1) <= 1e-6:
        return f"1e{exp}"
    return f"{factor:.6g}"


def suspect_side(suspect, ref_side, cand_side):
    """The side (``c``, ``py``) of the run a unit hint puts off (``suspect``: 'ref' or
    'cand'), None when the data did not decide."""
    return ref_side if suspect == "ref" else cand_side if suspect == "cand" else None


def unit_hint_text(ref_side, cand_side, ref_unit, cand_unit, ratio, suspect, basis
                   ) -> str | None:
    """What a unit hint says: 'C is off by x1e-3 (m <-> mm; PyTorch's value agrees
    with Fbeam_m on both sides)' when the data names the side that is off
    (``suspect`` 'ref' or 'cand', ``basis`` the tap that decided), else 'one side is
    off by x1e3 (m <-> mm)'. ``ratio`` is ref/cand."""
    if not isinstance(ref_unit, str) or not isinstance(cand_unit, str) or not ratio:
        return None
    units = f"{ref_unit} <-> {cand_unit}"
    if suspect not in ("ref", "cand"):
        return f"one side is off by x{factor_text(max(abs(ratio), 1 / abs(ratio)))} ({units})"
    rl = SIDE_LABEL.get(ref_side, "reference")
    cl = SIDE_LABEL.get(cand_side, "candidate")
    if rl == cl:
        rl, cl = f"reference {rl}", f"candidate {cl}"
    off, right, factor = (rl, cl, ratio) if suspect == "ref" else (cl, rl, 1 / ratio)
    return (f"{off} is off by x{factor_text(abs(factor))} ({units}; {right}'s value agrees "
            f"with {basis} on both sides)")


def pixel_of(slow, fast) -> list[int] | None:
    return None if slow is None else [int(slow), int(fast)]


@dataclass
class Divergences:
    """One summary record per compared pair of runs (``divergence`` query, plus
    ``pixel``, ``status``, ``first_unit_hint`` and ``first_suspect_side``), with the
    request's tolerance."""

    set_id: int
    rtol: float
    atol: float
    strict: bool
    rows: list[dict]
    unstamped: list[int] = field(default_factory=list)  # timeline: runs left out

    def __bool__(self) -> bool:
        return bool(self.rows) and all(r["status"] == "match" for r in self.rows)

    @property
    def attrs(self) -> dict:
        return {"set_id": self.set_id, "rtol": self.rtol, "atol": self.atol,
                "strict": self.strict}

    @property
    def tolerance(self) -> str:
        return tolerance_text(self.rtol, self.atol, self.strict)


#: A pair's status when one of its runs is missing (the pixel was traced on one side
#: only); the same words as a tap missing on one side.
MISSING_RUN = ("missing_ref", "missing_cand")


def pair_status(r: dict) -> str:
    """A summary's verdict: a missing run, nothing compared, diverged or match."""
    if r["ref_run"] is None:
        return "missing_ref"
    if r["cand_run"] is None:
        return "missing_cand"
    return "nothing compared" if r["compared"] == 0 \
        else "diverged" if r["diverged"] > 0 else "match"


def summaries(db, set_id: int, strict: bool, options: dict | None = None) -> list[dict]:
    """The divergence summary of a set: one record per comparison. ``options``: the
    compared runs' ``config.run_options_of`` where already read (while the set was
    compared), else they are read here."""
    keys, rows = fetch(db.reads(set_id), "divergence", set_id=set_id, strict=int(strict))
    if not rows:
        raise TracedbError(f"comparison set {set_id} has no results (removed while "
                           "reading?); run the command again")
    out = records(keys, rows)
    pairs = {r["comparison_id"]: (r["ref_run"], r["cand_run"]) for r in out}
    differ = config.differences(db.reads(set_id), pairs, options)
    placed, differ = causes.explain(db, set_id, strict, rtol=out[0]["rtol"],
                                    atol=out[0]["atol"], differ=differ)
    for r in out:
        r["config_diff"] = differ.get(r["comparison_id"])
        taps = placed.get(r["comparison_id"], [])
        for t in taps:
            t["suspect_side"] = suspect_side(t["suspect"], r["ref_side"], r["cand_side"])
        r["roots"] = [{k: t[k] for k in ROOT_FIELDS} for t in taps if t["role"] == "root"]
        r["inherited_taps"] = [{k: t[k] for k in INHERITED_FIELDS} for t in taps
                               if t["role"] == "inherited"]
        r["inherited"] = len(r["inherited_taps"])
        r["unknown"] = sum(t["role"] == "unknown" for t in taps)
        first = next((t for t in taps if (t["channel"], t["tap"], t["loop_key"],
                                          t["occurrence"]) == (
            r["first_channel"], r["first_tap"], r["first_loop_key"], r["first_occurrence"])),
            None)
        for k in ("role", "inherited_from", "verdict"):
            r[f"first_{k}"] = first[k] if first else None
        r["pixel"] = pixel_of(r["ref_slow"], r["ref_fast"]) \
            or pixel_of(r["cand_slow"], r["cand_fast"])
        r["status"] = pair_status(r)
        r["first_unit_hint"] = unit_hint_text(
            r["ref_side"], r["cand_side"], r["first_hint_ref_unit"], r["first_hint_cand_unit"],
            r["first_ratio"], r["first_suspect"], r["first_suspect_basis"])
        r["first_suspect_side"] = suspect_side(r["first_suspect"], r["ref_side"],
                                               r["cand_side"])
    out.columns += ["config_diff", "roots", "inherited_taps", "inherited", "unknown",
                    "first_role",
                    "first_inherited_from", "first_verdict", "pixel", "status",
                    "first_unit_hint", "first_suspect_side"]
    return out


def divergences(db, set_id: int, rtol: float, atol: float, strict: bool,
                options: dict | None = None) -> Divergences:
    return Divergences(set_id, rtol, atol, strict, summaries(db, set_id, strict, options))


def diff(db, set_id: int, strict: bool) -> list[dict]:
    """Every tap of every comparison of a (complete) set, with statuses and unit hints."""
    keys, rows = fetch(db.reads(set_id), "tap_diff", set_id=set_id, strict=int(strict))
    sides = {r["comparison_id"]: (r["ref_side"], r["cand_side"])
             for r in summaries(db, set_id, strict)}
    out = records(keys, rows)
    for r in out:
        r["ref_side"], r["cand_side"] = sides.get(r["comparison_id"], (None, None))
        r["unit_hint"] = unit_hint_text(r["ref_side"], r["cand_side"], r["hint_ref_unit"],
                                        r["hint_cand_unit"], r["ratio"], r["suspect"],
                                        r["suspect_basis"])
        r["suspect_side"] = suspect_side(r["suspect"], r["ref_side"], r["cand_side"])
    out.columns += ["ref_side", "cand_side", "unit_hint", "suspect_side"]
    return out


def by_comparison(diff: list[dict]) -> dict[int, list[dict]]:
    """tap_diff rows by comparison id, each list in the query's order."""
    out: dict[int, list[dict]] = {}
    for r in diff:
        out.setdefault(r["comparison_id"], []).append(r)
    return out


def changes(db, set_id: int, strict: bool) -> list[dict]:
    """Taps fixed or newly diverged since the previous comparison of their group."""
    return records(*fetch(db.reads(set_id), "tap_changes", set_id=set_id, strict=int(strict)))


# --------------------------------------------------------------------------- JSON objects

DIVERGENCE_FIELDS = ("ref_run", "cand_run", "ref_side", "cand_side", "ref_stamp", "cand_stamp",
                     "ref_path", "cand_path", "pairing", "rtol", "atol", "compared", "matched",
                     "diverged", "print_precision", "accepted", "missing_ref", "missing_cand")
FIRST_FIELDS = ("tap", "channel", "loop_key", "occurrence", "unit", "ref_line", "cand_line",
                "ref_pointer", "cand_pointer",
                "ref_value", "cand_value", "abs_delta", "rel_delta", "ratio", "unit_hint",
                "suspect_side", "role", "inherited_from", "verdict")
#: An inherited tap's fields (``inherited_taps`` of a summary).
INHERITED_FIELDS = ("tap", "channel", "loop_key", "occurrence", "ref_line", "cand_line",
                    "inherited_from")
#: A root cause's fields (``roots`` of a divergence record).
ROOT_FIELDS = ("tap", "channel", "loop_key", "occurrence", "ref_line", "cand_line",
               "verdict", "evidence", "suspect_side", "contained", "consequences")


def divergence_record(r: dict, strict: bool) -> dict:
    """The documented JSON object of one compared pair of runs (``strict``: whether
    print_precision counted as diverged)."""
    rec = {k: r[k] for k in ("pixel", "status", *DIVERGENCE_FIELDS)}
    rec["strict"] = bool(strict)
    rec["first"] = None if r["first_tap"] is None else {
        k: r[f"first_{k}"] for k in FIRST_FIELDS}
    rec["config_diff"] = r["config_diff"]
    rec["roots"] = r["roots"]
    return rec


def timeline_records(found: Divergences, tap_changes: list[dict]) -> list[dict]:
    """Per candidate: its divergence record, ordinal, and the taps fixed and newly
    diverged since the previous candidate."""
    fixed: dict = {}
    broke: dict = {}
    for c in tap_changes:
        (fixed if c["change"] == "fixed" else broke).setdefault(c["ordinal"], []).append(
            c["tap"] + (f"[{c['loop_key']}]" if c["loop_key"] else ""))
    out = []
    for r in found.rows:
        rec = divergence_record(r, found.strict)
        rec["ordinal"] = int(r["ordinal"])
        rec["fixed"] = fixed.get(r["ordinal"], [])
        rec["newly_diverged"] = broke.get(r["ordinal"], [])
        out.append(rec)
    return out


def _run(v) -> int | None:
    return None if v is None else int(v)


def regress_records(found: Divergences, tap_changes: list[dict]) -> list[dict]:
    """Per pixel: base and head runs, their statuses and first divergences, regressions
    and fixes. A missing run is None; a pixel with neither a reference nor a base
    (head) run has no base (head) pair, and its status there is ``missing_ref``."""
    by_grp: dict = {}
    for r in found.rows:
        by_grp.setdefault(r["grp"], {})[int(r["ordinal"])] = r
    changed: dict = {}
    for c in tap_changes:
        changed.setdefault(c["grp"], []).append(c)
    out = []
    for grp, pair in sorted(by_grp.items()):
        ch = changed.get(grp, [])
        b, h = pair.get(1, {}), pair.get(2, {})
        either = b or h
        out.append({
            "pixel": either["pixel"], "ref_run": _run(either["ref_run"]),
            "base_run": _run(b.get("cand_run")), "head_run": _run(h.get("cand_run")),
            "base_stamp": b.get("cand_stamp"), "head_stamp": h.get("cand_stamp"),
            "base_status": b.get("status", MISSING_RUN[0]),
            "head_status": h.get("status", MISSING_RUN[0]),
            "base_first": b.get("first_tap"), "head_first": h.get("first_tap"),
            "base_diverged": int(b.get("diverged", 0)),
            "head_diverged": int(h.get("diverged", 0)),
            "regressions": [c["tap"] for c in ch if c["change"] == "broke"],
            "fixes": [c["tap"] for c in ch if c["change"] == "fixed"],
            "rtol": found.rtol, "atol": found.atol, "strict": found.strict,
        })
    return out
