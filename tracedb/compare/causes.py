"""Why taps diverge: each diverged tap of a comparison placed in the dependency graph
of taps (``tap_edge``) as a root cause, a consequence of a diverged input, or unknown
to the graph, and given a verdict on what kind of difference it is.

The graph and the comparison are read by SQL (``queries/tap_roles.sql``,
``queries/loop_values.sql``); what is decided here is small: which diverged inputs
explain a tap, what follows from each root, and the verdict, in this order:

- ``inherited``: a declared input diverged (and can explain it, see :func:`_follows`);
- ``print_precision``: the difference is within the printed digits (``--strict``);
- ``unit_factor``: off by a conversion factor between two units (the unit hint);
- ``config``: a setting the traces write as a word (a convention) differs, or a
  command-line option that feeds it (a graph source written ``-N``) was given
  differently to the two runs (``compare.config``);
- ``loop_shift``: a per-loop record whose candidate at step k holds the reference's
  step k-1 (or its last step): the carry-over pattern of phi loops;
- ``constant``: the same value on each side in every comparison of the set that
  traced it, two at least (every pixel and stamp): a definition, such as a
  physical constant or a default, that differs;
- ``genuine``: none of these: the computation differs.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from ..store.queries import fetch, records
from . import config

#: The dependency graph roles are read from unless told otherwise (tap_edge.graph).
DEFAULT_GRAPH = "nanoBragg"
#: A loop key whose value is a step number: ``phi_tic=3``.
_STEP = re.compile(r"(?P<var>[^=]+)=(?P<k>-?\d+)\Z")


def explain(db, set_id: int, strict: bool, graph: str = DEFAULT_GRAPH,
            rtol: float = 1e-12, atol: float = 0.0, differ: dict | None = None
            ) -> tuple[dict[int, list[dict]], dict[int, dict]]:
    """(roles, configuration differences) per comparison id: :func:`roles`' taps, and
    ``compare.config.differences`` (``differ``: the set's, read when not given)."""
    if differ is None:
        differ = config.set_differences(db, set_id)
    placed = roles(db, set_id, strict, graph, rtol, atol, differ)
    for cid, d in differ.items():  # the settings the traces write as words
        d["taps"] = [{"tap": t["tap"], "ref": t["ref_value"], "cand": t["cand_value"]}
                     for t in placed.get(cid, []) if t["text"]]
    return placed, differ


def roles(db, set_id: int, strict: bool, graph: str = DEFAULT_GRAPH,
          rtol: float = 1e-12, atol: float = 0.0, differ: dict | None = None
          ) -> dict[int, list[dict]]:
    """Per comparison id, its diverged taps in trace order, each with its ``role``:
    'unknown' (in no edge of the graph), 'inherited' (``inherited_from``: the diverged
    inputs it follows from), else 'root'; its ``verdict`` (see above) and
    ``evidence`` and ``suspect`` ('ref', 'cand' or None, from the unit hint) (``differ``:
    the set's configuration differences, read when not given); a root also with
    ``contained`` (it has traced consequences and all of them match) and
    ``consequences`` (every diverged tap that follows from it, in trace order)."""
    out: dict[int, list[dict]] = {}
    by_key: dict[tuple, dict] = {}
    # per (pairing key, value on each side): the comparisons whose tap of that key
    # diverged with those values (n_same; one count per comparison and key)
    same: Counter = Counter()
    for r in records(*fetch(db.reads(set_id), "tap_roles", set_id=set_id,
                            strict=int(strict), graph=graph)):
        key = (r["comparison_id"], r["channel"], r["tap"], r["loop_key"], r["occurrence"])
        tap = by_key.get(key)
        if tap is None:
            same[r["key_id"], r["ref_value"], r["cand_value"]] += 1
            tap = by_key[key] = {k: r[k] for k in (
                "tap", "channel", "loop_key", "occurrence", "ref_line", "cand_line",
                "suspect", "ref_value", "cand_value")}
            tap["text"] = r["ref_kind"] == "text"
            tap["inherited_from"] = []
            tap["_facts"] = r
            out.setdefault(r["comparison_id"], []).append(tap)
        if r["input"] is not None and _follows(r["ratio"], r["input_factor"]):
            tap["inherited_from"].append(r["input"])
    shifted = _loop_shifts(db, set_id, rtol, atol) if out else {}
    if differ is None:
        differ = config.set_differences(db, set_id) if out else {}
    options: dict[str, list[str]] = {}
    for e in records(*fetch(db.engine, "graph", graph=graph)):
        if e["source"].startswith("-"):
            options.setdefault(e["target"], []).append(config.option_name(e["source"]))
    for cid, taps in out.items():
        changed = {d["option"]: d for d in differ.get(cid, {}).get("differ", [])}
        for tap in taps:
            facts = tap.pop("_facts")
            facts["n_same"] = same[facts["key_id"], tap["ref_value"], tap["cand_value"]]
            tap["role"] = "unknown" if not facts["in_graph"] else \
                "inherited" if tap["inherited_from"] else "root"
            fed = [changed[o] for o in dict.fromkeys(options.get(tap["tap"], []))
                   if o in changed]
            tap["verdict"], tap["evidence"] = _verdict(
                tap, facts, fed, shifted.get((cid, tap["channel"], tap["tap"],
                                              tap["loop_key"], tap["occurrence"])))
            if tap["role"] == "root":
                tap["contained"] = bool(facts["traced_consequences"]) \
                    and not facts["diverged_consequences"]
        for tap in taps:
            if tap["role"] == "root":
                tap["consequences"] = _downstream(tap, taps)
    return out


def _verdict(tap: dict, facts: dict, options: list[dict], shifted_from: str | None
             ) -> tuple[str, str]:
    """The verdict on one diverged tap and the evidence for it, in one line."""
    if tap["role"] == "inherited":
        return "inherited", "follows from " + ", ".join(tap["inherited_from"])
    if facts["status"] == "print_precision":
        return "print_precision", "within the digits each side printed"
    if facts["unit_factor"]:
        return "unit_factor", "off by a unit conversion factor (see the unit hint)"
    if tap["text"]:
        return "config", (f"a setting written as a word differs: {tap['ref_value']} vs "
                          f"{tap['cand_value']}")
    if options:
        return "config", "; ".join(
            f"-{d['option']} differs: {d['ref'] or '(not given)'} vs "
            f"{d['cand'] or '(not given)'}" for d in options)
    if shifted_from is not None:
        return "loop_shift", f"the candidate's {tap['loop_key']} holds the reference's " \
                             f"{shifted_from}"
    if facts["n_traced"] >= 2 and facts["n_same"] == facts["n_traced"]:
        return "constant", (f"the same value on each side in all {facts['n_traced']} "
                            "comparisons that traced it")
    return "genuine", ("no unit factor, recorded configuration difference, loop shift or "
                       "constant explains it")


def _follows(ratio, input_factor) -> bool:
    """Whether a tap off by ``ratio`` (ref/cand, None when not one ratio) can follow
    from an input off by ``input_factor`` (None: not a unit factor, so any change).
    A unit slip passes on as a power of its factor (x1e-3 in r_e, x1e-6 in r_e^2);
    otherwise it stayed where it was printed."""
    if input_factor is None:
        return True
    if not ratio or ratio <= 0 or input_factor <= 0 or input_factor == 1:
        return False
    power = math.log(ratio) / math.log(input_factor)
    return round(power) != 0 and abs(power - round(power)) <= 1e-6 * max(1, abs(power))


def _downstream(root: dict, taps: list[dict]) -> list[str]:
    """The taps that inherit from ``root``, directly or through others (an input at the
    same loop step or a static one), as ``name`` or ``name[loop key]``."""
    reached, found = {(root["tap"], root["loop_key"])}, []
    for tap in taps:  # trace order: an input comes before what is computed from it
        if tap["role"] == "inherited" and any(
                (i, tap["loop_key"]) in reached or (i, "") in reached
                for i in tap["inherited_from"]):
            reached.add((tap["tap"], tap["loop_key"]))
            found.append(tap["tap"] + (f"[{tap['loop_key']}]" if tap["loop_key"] else ""))
    return found


def _loop_shifts(db, set_id: int, rtol: float, atol: float) -> dict[tuple, str]:
    """The per-loop taps whose candidate values at step k equal, within the
    tolerance, the reference's at step k-1, or at its last step when k is the first,
    while they differ from the reference's at step k: (comparison id, channel, name,
    loop key, occurrence) -> the reference's loop key they hold."""
    steps: dict[tuple, dict[str, dict[int, tuple]]] = {}
    for r in records(*fetch(db.reads(set_id), "loop_values", set_id=set_id)):
        m = _STEP.match(r["loop_key"])
        if not m:
            continue
        key = (r["comparison_id"], r["channel"], r["key_name"], r["occurrence"], m["var"])
        values = steps.setdefault(key, {"ref": {}, "cand": {}})[r["side"]]
        k = int(m["k"])
        values[k] = values.get(k, ()) + ((r["kind"], r["num"], r["text"]),)
    found: dict[tuple, str] = {}
    for (cid, channel, name, occ, var), sides in steps.items():
        ref, cand = sides["ref"], sides["cand"]
        if len(ref) < 2:
            continue
        order = sorted(ref)
        for k, values in cand.items():
            if k not in ref or _same(values, ref[k], rtol, atol):
                continue
            i = order.index(k)
            prev = order[i - 1] if i > 0 else order[-1]
            if _same(values, ref[prev], rtol, atol):
                found[(cid, channel, name, f"{var}={k}", occ)] = f"{var}={prev}"
    return found


def _same(a: tuple, b: tuple, rtol: float, atol: float) -> bool:
    """Two taps' components equal under the comparison's rule (numbers within
    atol + rtol*max(|a|,|b|), anything else as written)."""
    if len(a) != len(b):
        return False
    for (ka, na, ta), (kb, nb, tb) in zip(a, b, strict=True):
        if ka == kb == "num":
            if not abs(na - nb) <= atol + rtol * max(abs(na), abs(nb)):
                return False
        elif (ka, ta) != (kb, tb):
            return False
    return True
