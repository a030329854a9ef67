"""The warehouse's health: ``tracedb db check``'s findings (the named ``check`` query,
the engine's own integrity checks, stale run shapes, interrupted commands) and the
command log every ingest and report writes."""

from __future__ import annotations

import json
import os

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .layout import digest_list, shape_signature
from .queries import fetch, records


def run_shapes(conn: Connection):
    """(run id, shape signature, digest list) of every run as its taps give them
    (``layout.shape_signature``, ``layout.digest_list``), in run id order.

    Streams the taps in key order from the index on (run, key, length, digest), so
    memory holds one run's taps at a time; a run without taps comes too.
    """
    runs = [r for (r,) in conn.exec_driver_sql("SELECT id FROM run ORDER BY id")]
    taps = conn.exec_driver_sql(
        "SELECT run_id, key_id, n_components, digest FROM tap ORDER BY run_id, key_id",
        execution_options={"stream_results": True})
    tap = next(taps, None)
    for run_id in runs:
        keys, digests = [], []
        while tap is not None and tap[0] <= run_id:
            if tap[0] == run_id:
                keys.append((tap[1], tap[2]))
                digests.append(tap[3])
            tap = next(taps, None)
        yield run_id, shape_signature(keys), digest_list(digests)


def stale_shapes(conn: Connection) -> list[dict]:
    """Runs whose stored shape signature or digest list (``run.tap_digests``)
    differs from their taps: [{id, sig, digests}], as their taps give them."""
    stored = {i: (sig, None if d is None else bytes(d)) for i, sig, d in
              conn.exec_driver_sql("SELECT id, shape_sig, tap_digests FROM run")}
    return [{"id": i, "sig": sig, "digests": d} for i, sig, d in run_shapes(conn)
            if stored.get(i) != (sig, d)]


#: Runs whose values :func:`value_digests` reads per query.
RUNS_PER_PASS = 500


def run_ranges(conn: Connection, runs_per_pass: int = RUNS_PER_PASS):
    """[low, high) ranges of run ids that cover every run, ``runs_per_pass`` wide."""
    top = conn.exec_driver_sql("SELECT MAX(id) FROM run").scalar() or 0
    return [(low, low + runs_per_pass) for low in range(0, top + 1, runs_per_pass)]


def value_digests(conn: Connection, digest, low: int, high: int) -> list[tuple]:
    """(run_id, key_id, digest) of every tap of the runs low <= id < high that has
    value rows, as its values give it (``digest``: ``ingest.rows.digest``)."""
    out: list[tuple] = []
    comps: list[tuple] = []
    at = None
    for run_id, key_id, label, num, txt, kind in conn.execute(text(
            "SELECT run_id, key_id, label, num, text, kind FROM value "
            "WHERE run_id >= :a AND run_id < :b ORDER BY run_id, key_id, idx"),
            {"a": low, "b": high}):
        if (run_id, key_id) != at:
            if comps:
                out.append((*at, digest(comps)))
            comps, at = [], (run_id, key_id)
        comps.append((label, num, txt, kind))
    if comps:
        out.append((*at, digest(comps)))
    return out


def _stale_in(conn: Connection, digest, low: int, high: int) -> list[tuple]:
    """(run_id, key_id, digest its values give) of the taps of the runs low <= id <
    high whose stored digest is another; a NULL digest is never stale."""
    stored = dict(((r, k), d) for r, k, d in conn.execute(text(
        "SELECT run_id, key_id, digest FROM tap WHERE run_id >= :a AND run_id < :b "
        "AND digest IS NOT NULL"), {"a": low, "b": high}))
    return [(r, k, d) for r, k, d in value_digests(conn, digest, low, high)
            if (r, k) in stored and stored[(r, k)] != d]


def stale_digests(conn: Connection, digest) -> list[dict]:
    """Taps whose stored digest is not their values' (a value row changed by hand):
    [{run_id, key_id, digest}], the digest their values give. A NULL digest is never
    stale: it only makes the comparison read that tap's values."""
    return [{"run_id": r, "key_id": k, "digest": d}
            for low, high in run_ranges(conn) for r, k, d in _stale_in(conn, digest, low, high)]


def restamp_digests(conn: Connection, digest) -> int:
    """Give each tap whose stored digest is not the one ``digest`` computes from its
    values that one, :data:`RUNS_PER_PASS` runs at a time (``tracedb db rekey``, and
    the migrations that change the digest); how many changed. The runs' digest lists
    (``run.tap_digests``) are then stale: refresh them from :func:`stale_shapes`, as
    ``curate.rekey`` does, or the comparison would settle pairs by the old digests."""
    update = text("UPDATE tap SET digest = :d WHERE run_id = :r AND key_id = :k")
    changed = 0
    for low, high in run_ranges(conn):
        params = [{"r": r, "k": k, "d": d} for r, k, d in _stale_in(conn, digest, low, high)]
        if params:
            conn.execute(update, params)
            changed += len(params)
    return changed


def check(db) -> tuple[list[dict], list[str]]:
    """(check_name, problems, detail) records, and notes on interrupted commands."""
    rows = [{**r, "detail": ""} for r in records(*fetch(db.engine, "check"))]
    with db.engine.connect() as conn:
        extra = db.store.integrity_checks(conn)
        stale = stale_shapes(conn)
        extra.append(("runs whose shape signature or digest list is stale (run tracedb db rekey)",
                      len(stale), "; ".join(f"run {r['id']}" for r in stale[:5])))
        running = conn.exec_driver_sql(
            "SELECT id, started_at, command FROM command_log WHERE status = 'running'"
        ).fetchall()
    rows += [{"check_name": n, "problems": p, "detail": d} for n, p, d in extra]
    for r in rows:
        r["problems"] = int(r["problems"])
    notes = [f"command {r[0]} ({r[2]}, started {r[1]}) never finished: it was "
             "interrupted and its open bundle rolled back; run it again to complete it"
             for r in running]
    return rows, notes


class Command:
    """One command's row in command_log: :meth:`start` records it as running (its
    argv and directory, secrets masked, and tracedb version), :meth:`finish` its
    status and counts."""

    def __init__(self, db, command: str, argv: list[str] | None, version: str):
        from .engine import mask_argv

        self.db, self.command, self.version = db, command, version
        self.argv = mask_argv(argv if argv is not None else ["tracedb", command])
        self.id: int | None = None

    def start(self) -> int:
        from .engine import mask_secrets, utcnow

        t = self.db.tables["command_log"]
        with self.db.store.write_connection(self.db.engine) as conn, conn.begin():
            self.id = conn.execute(t.insert().returning(t.c.id), dict(
                started_at=utcnow(), command=self.command, argv=json.dumps(self.argv),
                cwd=mask_secrets(os.getcwd()), tracedb_version=self.version,
                status="running")).scalar_one()
        return self.id

    def finish(self, status: str, stats: dict) -> None:
        from .engine import utcnow

        t = self.db.tables["command_log"]
        with self.db.store.write_connection(self.db.engine) as conn, conn.begin():
            conn.execute(t.update().where(t.c.id == self.id).values(
                finished_at=utcnow(), status=status, stats_json=json.dumps(stats)))
