"""SQLite: engine settings, bulk writes, staged groups, WAL handling, read-only SQL.

The SQLite half of every dialect difference (``store.postgres`` is the other;
``store.engine.backend`` picks one). Writers take the write lock up front
(``BEGIN IMMEDIATE``, busy timeout 60 s), draw ids from ``MAX(id)`` under it, and
copy staged tap and value rows from an attached stage database with one
``INSERT ... SELECT`` per table.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..errors import TracedbError
from .writer import BulkWriter

#: UPDATE ... FROM (3.33), DROP COLUMN and AS MATERIALIZED (3.35) are used.
MIN_SQLITE = (3, 35, 0)
PAGE_SIZE = 16384
#: How long a connection waits for another's lock before "database is locked".
BUSY_SECONDS = 60


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")
    # a new, empty warehouse gets 16 KiB pages (SQLite's default is 4 KiB): a third
    # fewer pages for a tap and its values, a quarter of the WAL and checkpoint
    # system calls on a bulk load; an existing file keeps the size it was made with
    cur.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    _set_wal(cur)
    # once a checkpoint lets the WAL start over, cut the file back (a bulk load can
    # leave it at hundreds of MB)
    cur.execute("PRAGMA journal_size_limit = 67108864")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA case_sensitive_like = ON")  # LIKE as on PostgreSQL
    try:  # named queries use LOG10; older SQLite builds lack the math functions
        cur.execute("SELECT log10(10)")
    except Exception:  # noqa: BLE001 - sqlite3.OperationalError: no such function
        import math

        dbapi_conn.create_function(
            "log10", 1, lambda x: math.log10(x) if x is not None and x > 0 else None,
            deterministic=True)
    cur.close()


def _set_wal(cur) -> None:
    """``PRAGMA journal_mode = WAL``, waiting out a concurrent first writer. On a new,
    empty file the switch writes the header, and SQLite answers "database is locked"
    at once, without its busy handler (it would deadlock), when another process is
    making the same file: several ingests started together on no warehouse (the
    concurrent-writer fault test met this about one start in twenty)."""
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _file_of(database: str) -> Path:
    """The file a SQLite URL's database names (a path, or a ``file:`` URI)."""
    from urllib.parse import unquote, urlsplit

    return Path(unquote(urlsplit(database).path) if database.startswith("file:")
                else database)


def engine_kwargs(parsed, *, create: bool = True) -> dict:
    """create_engine arguments for a SQLite URL; refuses a too old SQLite, a file in
    a directory that does not exist, and (``create`` False) a file that does not
    exist, before SQLite would make it."""
    import sqlite3

    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise TracedbError(
            f"SQLite {sqlite3.sqlite_version} is too old: tracedb needs "
            f"{'.'.join(map(str, MIN_SQLITE))} or newer (the library Python's sqlite3 "
            "module is linked with; python.org and conda builds bring a recent one)")
    database = parsed.database or ""
    if not create and database not in ("", ":memory:"):
        from .engine import missing_warehouse

        path = _file_of(database)
        if not path.is_file():
            raise TracedbError(missing_warehouse(f"no warehouse at {path.as_posix()}:",
                                                 "the file does not exist"))
    if database and database != ":memory:" and not database.startswith("file:"):
        parent = Path(database).parent
        if not parent.is_dir():
            raise TracedbError(f"cannot create warehouse {database}: directory "
                               f"{parent} does not exist")
    return {"connect_args": {"timeout": BUSY_SECONDS}}


def read_only_media(parsed):
    """``parsed`` (a SQLite URL) as tracedb opens it. A warehouse that neither its
    file nor its directory lets this process write (read-only media), with no
    ``-shm`` file beside it, cannot be read in WAL mode: SQLite must make that file.
    It is opened ``immutable`` then (nothing can change it), read as it is."""
    import os
    from urllib.parse import quote

    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("immutable"):
        return parsed
    path = Path(database[5:] if database.startswith("file:") else database)
    if not path.is_file() or os.access(path, os.W_OK) or os.access(path.parent, os.W_OK) \
            or Path(f"{path}-shm").exists():
        return parsed
    if not database.startswith("file:"):
        parsed = parsed.set(database=f"file:{quote(str(path))}")
    return parsed.update_query_dict({"uri": "true", "immutable": "1"})


def local_files(engine: Engine) -> list[Path]:
    """The warehouse file and the files SQLite keeps beside it (none in memory)."""
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        return []
    path = _file_of(database)
    return [path] + [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal")]


def configure(engine: Engine) -> None:
    """Pragmas on every connection; SQLAlchemy, not pysqlite, manages transactions so
    that BEGIN is emitted explicitly (BEGIN IMMEDIATE for writers, see
    :func:`write_connection`)."""
    event.listen(engine, "connect", _sqlite_pragmas)

    @event.listens_for(engine, "connect")
    def _no_autobegin(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        conn.exec_driver_sql(mode)


def write_connection(engine: Engine) -> Connection:
    """A connection whose transactions take the write lock up front: a deferred
    transaction that starts reading and then writes can fail at once with
    SQLITE_BUSY under a concurrent writer."""
    return engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE")


def schema_lock(conn: Connection) -> None:
    """Held while a schema is read and upgraded: the write lock that BEGIN IMMEDIATE
    (:func:`write_connection`) already took."""


def lock_for_update(query):
    """A SELECT that must keep its rows to the transaction's end: the write lock,
    taken at BEGIN IMMEDIATE, already does."""
    return query


def after_bulk_load(engine: Engine) -> None:
    """Refresh planner statistics after an ingest added rows (best effort: another
    writer holding the lock only means the statistics wait for the next ingest)."""
    from sqlalchemy.exc import OperationalError

    try:
        with write_connection(engine) as conn, conn.begin():
            conn.exec_driver_sql("PRAGMA optimize")
    except OperationalError:
        pass


def tune_for_comparison(conn) -> None:
    """SQLite plans the comparison statements well as they are."""


def refresh_statistics(conn, table: str) -> bool:
    """SQLite plans the comparison statements well without fresh statistics."""
    return False


def prepare_scratch(conn) -> None:
    """SQLite keeps a session's temporary tables in its temp database as they are."""


def release_scratch(conn) -> None:
    """A session's temporary objects go with its connection as it closes."""


def view_definitions(conn) -> list[tuple[str, str]]:
    """Every view of the warehouse as (name, its SELECT)."""
    import re

    head = re.compile(r"\s*CREATE\s+VIEW\s+\S+\s+AS\s", re.IGNORECASE)
    return [(name, head.sub("", sql, count=1)) for name, sql in conn.exec_driver_sql(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'view' ORDER BY rowid")]


def server_version(conn) -> str:
    return conn.exec_driver_sql("SELECT sqlite_version()").scalar()


def integrity_checks(conn) -> list[tuple[str, int, str]]:
    """SQLite's own checks as (check_name, problems, detail) rows."""
    rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
    fk = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    return [("sqlite integrity_check", 0 if rows == ["ok"] else len(rows), "; ".join(rows[:5])),
            ("foreign keys (PRAGMA foreign_key_check)", len(fk),
             "; ".join(str(r) for r in fk[:5]))]


# --------------------------------------------------------------------------- read-only SQL
#
# A statement a user hands tracedb (``tracedb sql``, a named query) runs as one
# statement (Python's sqlite3 refuses a second one) with ``PRAGMA query_only`` on (the
# engine refuses to change any database file) and, when it is checked, an authorizer
# that denies by default: the statement must begin as a SELECT does (SQLite reports
# SQLITE_SELECT first), and may then only read tables and call the functions below.
# ATTACH (and so VACUUM INTO), PRAGMA, transactions, temporary objects,
# load_extension, fts3_tokenizer and fts5 (which hand out pointers) are refused.

#: SQLite's own functions that compute from their arguments, which a read may call
#: (with tracedb's log10 where SQLite lacks it).
SAFE_FUNCTIONS = frozenset("""
    -> ->> abs acos acosh asin asinh atan atan2 atanh avg ceil ceiling changes char
    coalesce concat concat_ws cos cosh count cume_dist current_date current_time
    current_timestamp date datetime degrees dense_rank exp first_value floor format glob
    group_concat hex ifnull iif instr json json_array json_array_length json_error_position
    json_extract json_group_array json_group_object json_insert json_object json_patch
    json_pretty json_quote json_remove json_replace json_set json_type json_valid julianday
    lag last_insert_rowid last_value lead length like likelihood likely ln log log10 log2
    lower ltrim max min mod nth_value ntile nullif octet_length percent_rank pi pow power
    printf quote radians random randomblob rank replace round row_number rtrim sign sin
    sinh soundex sqlite_compileoption_get sqlite_compileoption_used sqlite_source_id
    sqlite_version sqrt strftime string_agg substr substring subtype sum tan tanh time
    timediff total total_changes trim trunc typeof unhex unicode unixepoch unlikely upper
    zeroblob""".split())

REFUSED_KIND = ("is read-only: only SELECT, WITH, VALUES and EXPLAIN of one of them run")


def bind_dialect(conn: Connection):
    """The dialect a named query is compiled with for :func:`run_read_only` (``?``)."""
    return conn.dialect


def run_read_only(conn: Connection, statement: str, args: tuple = (), *, label: str,
                  check: bool = True, timeout: float | None = None
                  ) -> tuple[list[str], list[tuple]]:
    """Run one statement that cannot change anything: (column names, rows).

    ``args`` bind ``?``. With ``check`` the authorizer above holds the statement to a
    read; without it (tracedb's own queries) ``query_only`` still refuses writes.
    ``timeout`` (seconds) interrupts a statement that runs longer. The transaction is
    rolled back and the connection put back as it was. Errors are one line naming
    ``label``.
    """
    import sqlite3
    import time

    raw = conn.connection.dbapi_connection
    seen: list[int] = []
    refused: list[str] = []

    def authorize(action, arg1, arg2, _db, _source):
        seen.append(action)
        if seen[0] != sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in SAFE_FUNCTIONS:
            return sqlite3.SQLITE_OK
        refused.append(f"{arg2}()" if action == sqlite3.SQLITE_FUNCTION
                       else f"PRAGMA {arg1}" if action == sqlite3.SQLITE_PRAGMA else "")
        return sqlite3.SQLITE_DENY

    deadline = None if timeout is None else time.monotonic() + timeout
    raw.execute("PRAGMA query_only = ON")
    try:
        raw.execute("BEGIN")
        if check:
            raw.set_authorizer(authorize)
        if deadline is not None:
            raw.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        try:
            cur = raw.execute(statement, args)
            keys = [d[0] for d in cur.description or ()]
            rows = cur.fetchall() if cur.description else []
        finally:
            raw.set_authorizer(None)
            raw.set_progress_handler(None, 0)
            if raw.in_transaction:
                raw.execute("ROLLBACK")
    except (sqlite3.Error, sqlite3.Warning) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "one statement at a time" in first:
            message = f"{label} runs one statement at a time"
        elif first.endswith("syntax error") or first == "incomplete input":
            # SQLite's 'near "SELEC": syntax error', said as PostgreSQL says it
            message = f"{label}: syntax error " + (
                first.removesuffix(": syntax error") if first.startswith("near ")
                else "at end of input")
        elif check and (not seen or seen[0] != sqlite3.SQLITE_SELECT):
            message = f"{label} {REFUSED_KIND}"
        elif check and refused and refused[0].endswith("()"):
            message = (f"{label} is read-only: it refuses {refused[0]}, which is not one "
                       "of SQLite's functions that only compute")
        elif check and refused and refused[0]:
            message = f"{label} is read-only: it refuses {refused[0]}"
        elif first == "interrupted" and deadline is not None:
            message = f"{label} took longer than {timeout:g} s; give it more with --timeout"
        elif "readonly" in first or refused:
            message = f"{label} is read-only: {first}"
        else:
            message = f"{label} failed: {first}"
        raise TracedbError(message) from None
    finally:
        raw.execute("PRAGMA query_only = OFF")
    if check and not seen and not keys:
        raise TracedbError(f"{label}: empty SQL statement")
    return keys, rows


# --------------------------------------------------------------------------- staged ingest


def can_stage() -> bool:
    """Staging needs sqlite3's serialize/deserialize (Python 3.11 on SQLite 3.36+)."""
    import sqlite3

    return hasattr(sqlite3.Connection, "deserialize") \
        and sqlite3.sqlite_version_info >= (3, 36, 0)


def bulk_context(engine: Engine) -> tuple[bool, str | None]:
    """How an ingest stages its groups: (staged, URL for the stagers). Staged groups
    need :func:`can_stage`; the stagers need no connection of their own."""
    return can_stage(), None


def close_stagers() -> None:
    """SQLite's stagers hold no connection of their own."""


def wal_flusher(engine: Engine):
    """A :class:`WalFlusher` for a warehouse file (not an in-memory or URI database)
    that worker processes feed; None otherwise."""
    path = engine.url.database
    if path and path != ":memory:" and not path.startswith("file:"):
        return WalFlusher(path)
    return None


def bundle_session(conn: Connection, staged: bool, flusher):
    """Around one bundle's transaction (see :func:`bulk_session`)."""
    raw = conn.connection.dbapi_connection
    if flusher is not None:
        flusher.bound(raw)
    return bulk_session(raw, flusher is not None) if staged else nullcontext()


#: The schema name under which a writer's SQLite connection attaches staged rows.
STAGE = "tracedb_stage"


#: Page cache of a staged ingest's connection (KiB; SQLite's default is 2 MB): a
#: bundle's transaction spills fewer pages to the WAL before it commits. The cache
#: fills, so it counts in the ingest's peak RSS whole: 64 MB held one large file's
#: streamed load at 303-330 MB; at 32 MB the large campaign's ingest took no longer
#: side by side (68.7, 75.4 s against 82.9 s at 48 MB and 69.6-87.9 s at 64 MB).
BULK_CACHE_KIB = 32768


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


class Writer(BulkWriter):
    """Bulk rows through ``executemany``; staged groups through the attached stage."""

    MARK = "?"

    def __init__(self, conn: Connection):
        super().__init__(conn)
        self._next: dict[str, int] = {}

    def ids(self, table: str, n: int) -> list[int]:
        """``n`` new ids of ``table`` (the caller holds the write lock)."""
        if n == 0:
            return []
        start = self._next.get(table)
        if start is None:
            self.cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
            start = self.cur.fetchone()[0]
        self._next[table] = start + n
        return list(range(start, start + n))

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if rows:
            self.cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                 f"({self.marks(len(columns))})", rows)

    def register_tap_keys(self, keys):
        """Add pairing keys to ``tap_key`` (if absent) inside the bundle's transaction
        (its write lock serialises writers) and return their ids."""
        from .layout import PAIRING_KEY_COLS

        cols = ", ".join(PAIRING_KEY_COLS)
        self.cur.executemany(f"INSERT INTO tap_key ({cols}) VALUES ({self.marks(4)}) "
                             "ON CONFLICT DO NOTHING", keys)
        out = {}
        for k in keys:
            self.cur.execute("SELECT id FROM tap_key WHERE channel = ? AND key_name = ? "
                             "AND loop_key = ? AND key_occurrence = ?", k)
            out[k] = self.cur.fetchone()[0]
        return out

    def stage(self, image: bytes) -> None:
        """Put a stage database image (see ingest.staging) in the attached stage schema."""
        self.raw.deserialize(image, name=STAGE)

    def remap_stage_keys(self, mapping: list[tuple[int, int]]
                         ) -> dict[int, list[tuple[int, int, int | None]]]:
        """Replace provisional key ids by registered ones; each run's (key id, length,
        digest) in key order."""
        self.cur.executemany(f"UPDATE {STAGE}.new_key SET gid = ? WHERE lid = ?",
                             [(gid, lid) for lid, gid in mapping])
        for table in ("tap", "value"):
            self.cur.execute(f"UPDATE {STAGE}.{table} SET key_id = (SELECT gid FROM "
                             f"{STAGE}.new_key WHERE lid = key_id) WHERE key_id < 0")
        shapes: dict[int, list[tuple[int, int, int | None]]] = {}
        for run, key_id, n, digest in self.query(
                f"SELECT run_id, key_id, n_components, digest FROM {STAGE}.tap "
                "ORDER BY run_id, key_id"):
            shapes.setdefault(run, []).append((key_id, n, digest))
        return shapes

    def copy_stage(self, first_run: int, in_order: bool) -> None:
        """Copy the staged taps and values, local run ids shifted to start at ``first_run``.

        One INSERT ... SELECT per table: the engine moves the rows, not Python. Values
        are staged in primary-key order unless keys were remapped (``in_order`` False).
        """
        from .layout import TAP_BITS, TAP_COLS, VALUE_COLS

        shift = {"id": f"id + {first_run << TAP_BITS}", "run_id": f"run_id + {first_run}"}
        tap_sel = ", ".join(shift.get(c, c) for c in TAP_COLS)
        self.cur.execute(f"INSERT INTO tap ({', '.join(TAP_COLS)}) SELECT {tap_sel} "
                         f"FROM {STAGE}.tap ORDER BY id")
        value_sel = ", ".join(shift.get(c, c) for c in VALUE_COLS)
        order = "" if in_order else " ORDER BY run_id, key_id, idx"
        self.cur.execute(f"INSERT INTO value ({', '.join(VALUE_COLS)}) SELECT {value_sel} "
                         f"FROM {STAGE}.value{order}")
