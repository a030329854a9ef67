"""Comparison sets: record a request, run the SQL steps that fill ``tap_result``,
complete a mismatch-only set.

A request is a ``comparison_set`` (tolerance, ``detail``) with one ``comparison``
row per run pair. ``detail='all'`` materialises the ``tap_status`` view of every
tap into ``tap_result`` (``queries/steps/compare.sql``); ``'mismatch'`` keeps only
the taps that do not match (``compare_flag`` and ``compare_flag_shapes``: the tap
pairs whose digests do not settle them, those of two runs of one shape found by
their digest lists (:func:`listed_pairs`), and the taps missing per pair of run
shapes, then ``compare_flagged``: the full rules for the flagged taps), which is
what a divergence summary needs; :func:`complete` adds the rest. The unit hints
follow (``unit_hints``), then the side each hinted tap puts off (``unit_suspects``).
Every request is compared afresh, so aliases or accepted divergences recorded
since count. A set is the session's own (``store.scratch``: negative ids, nothing
written to the warehouse) unless it is saved; saving a request removes saved results
of the same request older than an hour, and :func:`prune` saved sets by age.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, select

from ..errors import TracedbError
from ..store.engine import backend
from ..store.layout import digests_settle
from ..store.queries import run_step

#: Results of an identical request are kept this long for readers that still use them.
KEEP_HOURS = 1


def check_tolerance(rtol: float, atol: float) -> None:
    if not (math.isfinite(rtol) and math.isfinite(atol)) or rtol < 0 or atol < 0:
        raise TracedbError("--rtol and --atol must be finite numbers >= 0")


def _hours_ago(stamp: str, hours: float) -> str:
    t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") - timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def request_key(pairs: list[tuple], rtol: float, atol: float, detail: str) -> str:
    return hashlib.sha256(json.dumps(
        {"rtol": repr(float(rtol)), "atol": repr(float(atol)), "detail": detail,
         "pairs": [list(p[:4]) for p in pairs]}).encode()).hexdigest()


@contextmanager
def _results(db, saved: bool):
    """A transaction on the connection that holds a set's results: the warehouse's
    (``saved``; on SQLite it takes the write lock) or the session's (``store.scratch``,
    which only reads the warehouse)."""
    if saved:
        with db.store.write_connection(db.engine) as conn, conn.begin():
            yield conn
    else:
        conn = db.scratch()
        with conn.begin():
            yield conn


def create(db, pairs: list[tuple], rtol: float, atol: float, description: str,
           now: str, detail: str = "all", save: bool = False, progress=None,
           beside=None) -> int:
    """Compare (grp, ordinal, ref, cand, pairing) run pairs; returns the set id.

    The results are the session's own (a negative id, nothing written to the
    warehouse) unless ``save``: then they are kept in the warehouse (a positive id)
    until ``tracedb db prune`` removes them. ``progress(description, done, total)``
    hears of each SQL step (each compares every pair at once). ``beside()`` is called
    as the steps that compare begin (see :func:`_compare`)."""
    check_tolerance(rtol, atol)
    if detail not in ("all", "mismatch"):
        raise ValueError(f"detail must be 'all' or 'mismatch', not {detail!r}")
    key = request_key(pairs, rtol, atol, detail)
    t_set, t_cmp = db.tables["comparison_set"], db.tables["comparison"]
    row = dict(request_key=key, rtol=float(rtol), atol=float(atol), detail=detail,
               description=description, created_at=now)
    with _results(db, save) as conn:
        if save:
            # Earlier results of the same request go once they are an hour old (a
            # reader of a result made moments ago by another process keeps it).
            for old in conn.execute(select(t_set.c.id).where(
                    (t_set.c.request_key == key)
                    & (t_set.c.created_at < _hours_ago(now, KEEP_HOURS)))).scalars().all():
                _drop_results(conn, db.tables, old, with_set=True)
            first = {}
        else:  # the session's own sets and comparisons count down from -1
            set_low, cmp_low = conn.execute(select(
                select(func.min(t_set.c.id)).scalar_subquery(),
                select(func.min(t_cmp.c.id)).scalar_subquery())).one()
            row["id"] = min(set_low or 0, 0) - 1
            first = {"id": min(cmp_low or 0, 0) - 1}
        set_id = conn.execute(t_set.insert().returning(t_set.c.id), row).scalar_one()
        # the bulk path (COPY on PostgreSQL: 0.5 s -> 0.05 s for 28,800 pairs)
        columns = ("set_id", "grp", "ordinal", "ref_run_id", "cand_run_id", "pairing")
        rows = [(set_id, g, o, r, c, how) for g, o, r, c, how in pairs]
        if first:
            columns += ("id",)
            rows = [(*row, first["id"] - i) for i, row in enumerate(rows)]
        db.store.Writer(conn).insert("comparison", columns, rows)
        db.store.tune_for_comparison(conn)
        _compare(conn, set_id, detail, progress, len(pairs),
                 digests=digests_settle(row["rtol"], row["atol"]), beside=beside)
    return set_id


def _drop_results(conn, tables, set_id: int, with_set: bool) -> None:
    names = ("tap_result", "tap_flag", "comparison") if with_set else ("tap_result", "tap_flag")
    for name in names:
        t = tables[name]
        conn.execute(t.delete().where(t.c.set_id == set_id))
    if with_set:
        t = tables["comparison_set"]
        conn.execute(t.delete().where(t.c.id == set_id))


def prune(db, older_than: timedelta, now: str) -> int:
    """Remove the saved comparison sets made more than ``older_than`` before ``now``
    (``tracedb db prune``); returns how many."""
    cutoff = (datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ") - older_than
              ).strftime("%Y-%m-%dT%H:%M:%SZ")
    t_set = db.tables["comparison_set"]
    with _results(db, saved=True) as conn:
        old = conn.execute(select(t_set.c.id).where(
            t_set.c.created_at < cutoff)).scalars().all()
        for set_id in old:
            _drop_results(conn, db.tables, set_id, with_set=True)
    return len(old)


def complete(db, set_id: int) -> None:
    """Make a 'mismatch' comparison set hold every tap (a no-op for 'all' sets).

    Per-tap queries (``tap_diff``, ``tap_changes``, ``factor_gap``) need every tap.
    The set is compared again in full (not topped up), so aliases or accepted
    divergences recorded since its comparison cannot leave it half old, half new.
    """
    t_set = db.tables["comparison_set"]
    with _results(db, saved=set_id > 0) as conn:
        # one completer at a time
        query = db.store.lock_for_update(select(t_set.c.detail).where(t_set.c.id == set_id))
        detail = conn.execute(query).scalar_one_or_none()
        if detail is None:
            raise TracedbError(f"no comparison set {set_id}")
        if detail == "all":
            return
        _drop_results(conn, db.tables, set_id, with_set=False)
        db.store.tune_for_comparison(conn)
        _compare(conn, set_id, "all")
        conn.execute(t_set.update().where(t_set.c.id == set_id).values(detail="all"))


#: The SQL steps that compare a set, by detail (see the module's docstring).
STEPS = {"all": ("compare", "unit_hints", "unit_suspects"),
         "mismatch": ("compare_flag", "compare_flag_shapes", "compare_flagged", "unit_hints",
                      "unit_suspects")}


def _compare(conn, set_id: int, detail: str, progress=None, pairs: int | None = None,
             digests: bool = False, beside=None) -> None:
    """Fill tap_result for a comparison set, then add the unit hints. ``digests``: the
    set's tolerance lets equal tap digests settle a pair (``layout.digests_settle``;
    without it every pair's values are read). ``beside()``: a hook called as the
    first step that compares begins (``compare.requests`` starts a thread there)."""
    store = backend(conn)
    # PostgreSQL plans each step by table statistics, which know nothing yet of
    # the rows just added (it would take a set's 28,800 comparisons for one)
    store.refresh_statistics(conn, "comparison")
    steps = STEPS[detail]
    what = f"comparing {pairs} pair(s)" if pairs is not None else "comparing"
    for done, step in enumerate(steps):
        if progress:
            progress(f"{what}: {step.replace('_', ' ')}", done, len(steps))
        if step == "compare_flagged":
            store.refresh_statistics(conn, "tap_flag")
        elif step == "unit_hints":
            # and of the results, which the unit steps and every reading query
            # (tap_roles: its sub-queries planned for one diverged tap ran once per
            # tap) join
            store.refresh_statistics(conn, "tap_result")
        if step == "compare_flag":
            listed, others = listed_pairs(conn, set_id, digests)
            params = dict(digests=int(digests), pairs=json.dumps(listed),
                          others=json.dumps(others))
        else:
            params = {}
        if done == 0 and beside is not None:
            beside()
        run_step(conn, step, set_id=set_id, **params)
    if progress:
        progress(f"{what}: done", len(steps), len(steps))


#: Comparisons of runs of one shape, fewer than this many, have their tap pairs
#: looked up (compare_flag's :others) rather than listed: a shape's key ids cost a query.
LISTED_MIN = 4


def listed_pairs(conn, set_id: int, digests: bool) -> tuple[list[list[int]], list[int]]:
    """compare_flag's inputs: ([comparison id, key id] of the tap pairs of runs of one
    shape whose digests do not settle them, the other comparisons' ids).

    Two runs of one shape hold the same keys in the same order, so their digest lists
    (``run.tap_digests``, ``layout.digest_list``) pair their taps by position: a pair
    is listed where the two digests differ or are 0 (none); the rest plainly match,
    since the set's tolerance lets digests settle a pair (``digests``; without it
    there are no lists). A comparison without lists, of runs of two shapes or of a
    shape fewer than :data:`LISTED_MIN` comparisons share has its taps looked up by
    key in compare_flag (the others)."""
    by_shape: dict[str, list] = {}
    others = []
    for cid, ref_run, shape, ref_list, cand_list in run_step(
            conn, "digest_lists", set_id=set_id, digests=int(digests)):
        if ref_list is None or cand_list is None or len(ref_list) != len(cand_list):
            others.append(cid)
        else:
            by_shape.setdefault(shape, []).append((cid, ref_run, bytes(ref_list),
                                                   bytes(cand_list)))
    pairs: list[np.ndarray] = []
    for group in by_shape.values():
        width = len(group[0][2])
        keys = np.array([k for (k,) in run_step(conn, "run_keys", run_id=group[0][1])],
                        dtype=np.int64) if len(group) >= LISTED_MIN else None
        # (a list of another length than its run's keys: db check reports it)
        if keys is None or any(len(g[2]) != width for g in group) or 8 * len(keys) != width:
            others.extend(g[0] for g in group)
            continue
        ref = np.frombuffer(b"".join(g[2] for g in group), ">i8").reshape(len(group), len(keys))
        cand = np.frombuffer(b"".join(g[3] for g in group), ">i8").reshape(len(group), len(keys))
        row, col = np.nonzero((ref != cand) | (ref == 0))
        cids = np.array([g[0] for g in group], dtype=np.int64)
        pairs.append(np.column_stack([cids[row], keys[col]]))
    return (np.concatenate(pairs).tolist() if pairs else []), others
