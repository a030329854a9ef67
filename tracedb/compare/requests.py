"""The comparisons a user asks for, end to end: pick the runs (``select``), compare
them (``engine``) and read what was found (``results``). The CLI and the API call
these; each returns plain records."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..errors import TracedbError
from ..store.engine import utcnow
from ..store.queries import fetch, records
from . import config, engine, results, select
from .results import Divergences


def pairing_runs(db) -> list[dict]:
    """Every run with what pairing looks at (the ``pairing_runs`` query); ``pixel`` is
    (slow, fast) or None."""
    runs = records(*fetch(db.engine, "pairing_runs"))
    for r in runs:
        slow, fast = r.pop("pixel_slow"), r.pop("pixel_fast")
        r["pixel"] = None if slow is None else (int(slow), int(fast))
    return runs


def _compare(db, pairs, rtol, atol, strict, description, detail="all", save=False,
             progress=None) -> Divergences:
    """Compare ``pairs`` and read the set's divergences.

    The runs' recorded options (``config.run_options_of``: a query and their
    parsing, 0.3-0.45 s for a campaign of 28,800 pairs) are read beside the
    comparison, on a connection and a thread of their own, started as the first
    step that compares begins: each step is one SQL statement, which leaves the
    interpreter free while it runs. Started earlier, the thread would only take
    turns with the Python work and the row-by-row reads before the steps. Where
    that thread cannot be had, or fails, the options are read after the comparison,
    where a real error recurs."""
    runs = [r for p in pairs for r in p[2:4] if r is not None]
    started: list[Future] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        def beside() -> None:
            # no second connection to the same database: a pool of one per thread
            # (in memory, each its own database) or of one for every thread
            if isinstance(db.engine.pool, SingletonThreadPool | StaticPool):
                return
            try:
                started.append(pool.submit(config.run_options_of, db.engine, runs))
            except RuntimeError:  # no thread to be had: read after the comparison
                pass

        set_id = engine.create(db, pairs, rtol, atol, description, utcnow(), detail, save,
                               progress, beside)
        try:
            options = started[0].result() if started else None
        except Exception:  # noqa: BLE001 - read again below, where a real error recurs
            options = None
    if progress:
        progress(f"reading the results of {len(pairs)} pair(s)", 0, None)
    return results.divergences(db, set_id, rtol, atol, strict, options)


def diverge(db, ref=None, cand=None, pixels=None, rtol=1e-12, atol=0.0, strict=False,
            detail="mismatch", save=False, progress=None) -> Divergences:
    """First divergence per pixel pair (see ``select.pair_runs`` for the pairing).
    Every request here compares into the session's own results unless ``save`` (see
    ``engine.create``). ``progress(description, done, total)`` hears of each stage."""
    if progress:
        progress("pairing runs", 0, None)
    pairs = select.pair_runs(pairing_runs(db), ref, cand, pixels)
    return _compare(db, pairs, rtol, atol, strict, "diverge", detail, save, progress)


def diff(db, set_id: int, strict: bool = False) -> list[dict]:
    """Every tap of every comparison in a set, side by side, with statuses."""
    engine.complete(db, set_id)
    return results.diff(db, set_id, strict)


def check_run(db, run_id: int) -> None:
    if not fetch(db.engine, "runs", run_id=run_id, side=None, stamp=None, slow=None,
                 fast=None, path=None)[1]:
        raise TracedbError(f"no run with id {run_id}; list them with `tracedb runs`")


def diff_runs(db, run_a: int, run_b: int, rtol=1e-12, atol=0.0, strict=False, save=False
              ) -> list[dict]:
    """Two runs side by side: every tap with its status (``taps RUN --diff RUN``)."""
    check_run(db, run_a)
    check_run(db, run_b)
    set_id = engine.create(db, [(0, 1, run_a, run_b, "run vs run")], rtol, atol, "diff",
                           utcnow(), save=save)
    return diff(db, set_id, strict)


def timeline(db, pixel, ref=None, cand=None, rtol=1e-12, atol=0.0, strict=False, save=False
             ) -> tuple[Divergences, list[dict]]:
    """A fixed reference run against each candidate run of one pixel, in stamp order;
    and the taps fixed or newly diverged since the previous candidate."""
    pairs, unstamped = select.timeline_pairs(pairing_runs(db), pixel, ref, cand)
    found = _compare(db, pairs, rtol, atol, strict, "timeline", save=save)
    found.unstamped = unstamped
    return found, results.changes(db, found.set_id, strict)


def regress(db, base: str, head: str, ref=None, pixels=None, rtol=1e-12, atol=0.0,
            strict=False, save=False) -> tuple[Divergences, list[dict]]:
    """Per pixel: taps that matched at base and diverge at head, and the reverse
    (ordinal 1 is base, 2 head)."""
    pairs = select.regress_pairs(pairing_runs(db), base, head, ref, pixels)
    found = _compare(db, pairs, rtol, atol, strict, "regress", save=save)
    return found, results.changes(db, found.set_id, strict)
