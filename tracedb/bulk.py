"""Bulk writes inside one transaction: the one place the dialects differ for loading.

SQLite: ``executemany`` of plain tuples on the DBAPI cursor, ids allocated from
``MAX(id)`` (the caller holds the write lock: ``BEGIN IMMEDIATE``), staged tap and
value rows copied from an attached stage database.
PostgreSQL: ``COPY ... FROM STDIN`` through psycopg (staged tap and value rows
arrive as COPY text), ids drawn from each table's sequence, and a
transaction-scoped advisory lock per bundle so that concurrent writers of the
same bundle take turns.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

from sqlalchemy.engine import Connection

#: The schema name under which a writer's SQLite connection attaches staged rows.
STAGE = "tracedb_stage"


#: Page cache of a staged ingest's connection (KiB; SQLite's default is 2 MB): a
#: bundle's transaction spills fewer pages to the WAL before it commits.
BULK_CACHE_KIB = 65536


@contextmanager
def bulk_session(dbapi_conn, defer_checkpoint: bool = False):
    """Set a SQLite connection up for staged bundle transactions, then put it back.

    Outside any transaction (SQLite cannot ATTACH, or switch foreign keys, inside
    one): attaches the in-memory stage schema, enlarges the page cache and turns
    foreign-key enforcement off. Every row a staged bundle writes refers to rows
    the same transaction wrote just before (runs to their file, taps and values to
    their run, units to the unit table, as unit_suffix does), so the per-row look-ups
    would only cost time; ``tracedb db check`` runs SQLite's foreign_key_check.
    """
    names = [r[1] for r in dbapi_conn.execute("PRAGMA database_list")]
    if STAGE not in names:
        dbapi_conn.execute(f"ATTACH DATABASE ':memory:' AS {STAGE}")
    saved = {p: dbapi_conn.execute(f"PRAGMA {p}").fetchone()[0]
             for p in ("foreign_keys", "cache_size", "wal_autocheckpoint")}
    dbapi_conn.execute("PRAGMA foreign_keys = OFF")
    dbapi_conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    if defer_checkpoint:  # a WalFlusher checkpoints the commit in the background
        dbapi_conn.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        yield
    finally:
        for pragma, value in saved.items():
            dbapi_conn.execute(f"PRAGMA {pragma} = {int(value)}")
        dbapi_conn.execute(f"DETACH DATABASE {STAGE}")


class WalFlusher:
    """Background disk work for a bulk load into a SQLite file in WAL mode.

    A bundle's transaction appends hundreds of MB to the WAL, which the kernel keeps
    in memory until the checkpoint at commit flushes it and then writes and flushes
    the database file, while the loader waits. This thread flushes the WAL as it
    grows and, after each committed bundle, runs a PASSIVE checkpoint on its own
    connection (it never blocks the writer), so that disk work overlaps loading.

    SQLite starts the WAL over only when a write transaction begins with every frame
    copied back, which a writer that never pauses does not see; so before a bundle
    :meth:`bound` waits for that checkpoint and completes it once the WAL has grown
    past ``limit`` bytes. The WAL thus stays under about ``limit`` plus one bundle.
    """

    def __init__(self, path: str, interval: float = 1.0, limit: int = 1 << 30):
        import threading

        self.path, self.wal, self.interval, self.limit = path, path + "-wal", interval, limit
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._checkpoint = False
        self.thread = threading.Thread(target=self._run, name="tracedb-wal-flusher",
                                       daemon=True)
        self.thread.start()

    def committed(self) -> None:
        """A bundle was committed: checkpoint it soon."""
        self._idle.clear()
        self._checkpoint = True
        self._wake.set()

    def bound(self, dbapi_conn) -> None:
        """Before a bundle (outside any transaction): once the WAL is past the limit,
        let the background checkpoint finish and complete it, so that the bundle's
        transaction starts the WAL over."""
        import os

        try:
            size = os.path.getsize(self.wal)
        except OSError:
            return
        if size > self.limit:
            self._idle.wait()
            dbapi_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self.thread.join()
        self._idle.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._checkpoint:
                self._checkpoint = False
                self._run_checkpoint()
                self._idle.set()
            self._flush_wal()

    def _flush_wal(self) -> None:
        import os

        try:
            fd = os.open(self.wal, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _run_checkpoint(self) -> None:
        import sqlite3

        try:
            con = sqlite3.connect(self.path, timeout=1, isolation_level=None)
            try:
                con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                con.close()
        except sqlite3.Error:  # busy or gone: the writer's own checkpoint does it later
            pass


#: Bytes handed to psycopg per COPY write.
COPY_CHUNK = 1 << 20


def pg_sequence(cur, table: str) -> str:
    """The sequence behind a PostgreSQL table's ``id`` column."""
    cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
    return cur.fetchone()[0]


def pg_nextvals(cur, seq: str, n: int) -> list[int]:
    """``n`` ids from a sequence (never rolled back: an unused id is only a gap)."""
    if n <= 0:
        return []
    cur.execute("SELECT nextval(%s) FROM generate_series(1, %s)", (seq, n))
    return [r[0] for r in cur.fetchall()]


def pg_register_tap_keys(cur, keys: list[tuple[str, str, str, int]]
                         ) -> dict[tuple[str, str, str, int], int]:
    """On an autocommit PostgreSQL cursor: add pairing keys (if absent), their ids.

    Each key is committed at once, so writers never wait on (or deadlock over) a key
    another added; a key that a failed bundle leaves unused is harmless.
    """
    if not keys:
        return {}
    out = _pg_key_ids(cur, keys)  # known ones first: a conflicting insert uses up an id
    missing = [k for k in keys if k not in out]
    if missing:  # one statement (and transaction) per key, in the order given
        cols = "channel, key_name, loop_key, key_occurrence"
        cur.executemany(f"INSERT INTO tap_key ({cols}) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING", missing)
        out.update(_pg_key_ids(cur, missing))
    return out


def _pg_key_ids(cur, keys: list[tuple[str, str, str, int]]
                ) -> dict[tuple[str, str, str, int], int]:
    """The registered ones among ``keys``: one query."""
    cur.execute("SELECT k.channel, k.key_name, k.loop_key, k.key_occurrence, k.id "
                "FROM tap_key k JOIN unnest(%s::text[], %s::text[], %s::text[], %s::int[]) "
                "AS w(channel, key_name, loop_key, key_occurrence) "
                "USING (channel, key_name, loop_key, key_occurrence)",
                [list(col) for col in zip(*keys, strict=True)])
    return {tuple(r[:4]): r[4] for r in cur.fetchall()}  # type: ignore[misc]


class BulkWriter:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.raw = conn.connection.dbapi_connection
        self.cur = self.raw.cursor()
        self._next: dict[str, int] = {}
        self._seq: dict[str, str] = {}
        self._may_skip: bool | None = None  # may skip row triggers (PostgreSQL)

    # -- ids -------------------------------------------------------------------------
    def ids(self, table: str, n: int) -> list[int]:
        if n == 0:
            return []
        if self.dialect == "sqlite":
            start = self._next.get(table)
            if start is None:
                self.cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
                start = self.cur.fetchone()[0]
            self._next[table] = start + n
            return list(range(start, start + n))
        seq = self._seq.get(table)
        if seq is None:
            seq = self._seq[table] = pg_sequence(self.cur, table)
        return pg_nextvals(self.cur, seq, n)

    # -- rows ------------------------------------------------------------------------
    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        cols = ", ".join(columns)
        if self.dialect == "postgresql":
            with self.cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(columns))
        self.cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def insert_ignore(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING (both dialects spell it the same)."""
        if not rows:
            return
        cols = ", ".join(columns)
        mark = "?" if self.dialect == "sqlite" else "%s"
        marks = ", ".join([mark] * len(columns))
        self.cur.executemany(
            f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        self.cur.execute(sql, params)
        return self.cur.fetchall()

    # -- pairing keys ------------------------------------------------------------------
    def tap_keys(self) -> dict[tuple[str, str, str, int], int]:
        """Every registered pairing key: (channel, key_name, loop_key, occurrence) -> id."""
        self.cur.execute("SELECT channel, key_name, loop_key, key_occurrence, id FROM tap_key")
        return {tuple(r[:4]): r[4] for r in self.cur.fetchall()}  # type: ignore[misc]

    def register_tap_keys(self, keys: list[tuple[str, str, str, int]]
                          ) -> dict[tuple[str, str, str, int], int]:
        """Add pairing keys to ``tap_key`` (if absent) and return their ids.

        SQLite: inside the bundle's transaction (its write lock serialises writers).
        PostgreSQL: in a separate, immediately committed transaction, so that writers
        of other bundles never wait on (or deadlock over) a key this one added; a key
        left unused by a failed bundle is harmless.
        """
        cols = "channel, key_name, loop_key, key_occurrence"
        if self.dialect == "sqlite":
            self.cur.executemany(f"INSERT INTO tap_key ({cols}) VALUES (?, ?, ?, ?) "
                                 "ON CONFLICT DO NOTHING", keys)
            return {k: self._key_id(self.cur, "?", k) for k in keys}
        with self.conn.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT") as other:
            return pg_register_tap_keys(other.connection.dbapi_connection.cursor(), keys)

    @staticmethod
    def _key_id(cur, mark: str, key: tuple) -> int:
        cur.execute(f"SELECT id FROM tap_key WHERE channel = {mark} AND key_name = {mark} "
                    f"AND loop_key = {mark} AND key_occurrence = {mark}", key)
        return cur.fetchone()[0]

    # -- COPY text (PostgreSQL) ----------------------------------------------------------
    def copy_text(self, table: str, columns: tuple[str, ...], data: bytes) -> None:
        """Stream rows already written as COPY text (see load.stage_files)."""
        if not data:
            return
        view = memoryview(data)
        with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN "
                           "WITH (ENCODING 'UTF8')") as copy:
            for i in range(0, len(view), COPY_CHUNK):
                copy.write(view[i:i + COPY_CHUNK])

    # -- staged rows (SQLite) ------------------------------------------------------------
    def stage(self, image: bytes) -> None:
        """Put a stage database image (see load.stage_files) in the attached stage schema."""
        self.raw.deserialize(image, name=STAGE)

    def remap_stage_keys(self, mapping: list[tuple[int, int]]
                         ) -> dict[int, list[tuple[int, int]]]:
        """Replace provisional key ids by registered ones; each run's (key id, length)."""
        self.cur.executemany(f"UPDATE {STAGE}.new_key SET gid = ? WHERE lid = ?",
                             [(gid, lid) for lid, gid in mapping])
        for table in ("tap", "value"):
            self.cur.execute(f"UPDATE {STAGE}.{table} SET key_id = (SELECT gid FROM "
                             f"{STAGE}.new_key WHERE lid = key_id) WHERE key_id < 0")
        shapes: dict[int, list[tuple[int, int]]] = {}
        for run, key_id, n in self.query(f"SELECT run_id, key_id, n_components "
                                         f"FROM {STAGE}.tap ORDER BY id"):
            shapes.setdefault(run, []).append((key_id, n))
        return shapes

    def copy_stage(self, first_run: int, tap_cols: tuple[str, ...],
                   value_cols: tuple[str, ...], tap_bits: int, in_order: bool) -> None:
        """Copy the staged taps and values, local run ids shifted to start at ``first_run``.

        One INSERT ... SELECT per table: the engine moves the rows, not Python. Values
        are staged in primary-key order unless keys were remapped (``in_order`` False).
        """
        shift = {"id": f"id + {first_run << tap_bits}", "run_id": f"run_id + {first_run}"}
        tap_sel = ", ".join(shift.get(c, c) for c in tap_cols)
        self.cur.execute(f"INSERT INTO tap ({', '.join(tap_cols)}) SELECT {tap_sel} "
                         f"FROM {STAGE}.tap ORDER BY id")
        value_sel = ", ".join(shift.get(c, c) for c in value_cols)
        order = "" if in_order else " ORDER BY run_id, key_id, idx"
        self.cur.execute(f"INSERT INTO value ({', '.join(value_cols)}) SELECT {value_sel} "
                         f"FROM {STAGE}.value{order}")

    def copy_staged(self, tap_cols: tuple[str, ...], value_cols: tuple[str, ...],
                    taps: bytes, values: bytes) -> None:
        """PostgreSQL: stream a staged group's tap and value rows (COPY text).

        Without their per-row foreign-key triggers where the role may (see
        db.skip_row_triggers): row-by-row checks cost more than the rest of the
        COPY together. Every one of these rows refers to a run the same transaction
        wrote just before (no other session can see, let alone delete, it before the
        commit) and to a unit of the unit table, which nothing deletes; SQLite's
        staged bundles likewise turn foreign keys off, and ``tracedb db check``
        looks for taps without their run or unit and values without their tap.
        """
        from .db import may_skip_row_triggers, skip_row_triggers

        if self._may_skip is None:
            self._may_skip = may_skip_row_triggers(self.conn)
        skipped = skip_row_triggers(self.conn, self._may_skip)
        self.copy_text("tap", tap_cols, taps)
        self.copy_text("value", value_cols, values)
        if skipped:
            self.cur.execute("SET LOCAL session_replication_role = origin")

    def lock_bundle(self, directory: str) -> None:
        """Serialise writers of one bundle (SQLite's write lock already does)."""
        if self.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(directory.encode()).digest()[:8], "big",
                                 signed=True)
            self.cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
