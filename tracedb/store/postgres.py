"""PostgreSQL: bulk writes with COPY, sequences, per-bundle locks, statistics, tuning,
read-only SQL.

The PostgreSQL half of every dialect difference (``store.sqlite`` is the other;
``store.engine.backend`` picks one). Ids come from each table's sequence (never
rolled back: an unused id is only a gap), pairing keys are registered on an
autocommit connection, and a transaction-scoped advisory lock per bundle makes
concurrent writers of one bundle take turns.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

from sqlalchemy.engine import Connection, Engine

from ..errors import TracedbError
from .layout import PAIRING_KEY_COLS
from .writer import BulkWriter, PairingKey


def configure(engine: Engine) -> None:
    """Nothing to add to SQLAlchemy's defaults."""


def write_connection(engine: Engine) -> Connection:
    """A connection for writes (row locks and advisory locks do the serialising)."""
    return engine.connect()


#: pg_advisory_xact_lock key of schema upgrades (any constant: "tracedb" as bytes)
SCHEMA_LOCK = 0x7472616365646200


def schema_lock(conn) -> None:
    """Held while a schema is read and upgraded, to the transaction's end, so that
    processes that start together on an empty database make its schema once."""
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")


def lock_for_update(query):
    """A SELECT whose rows stay locked to the transaction's end (one writer at a time)."""
    return query.with_for_update()


def after_bulk_load(engine: Engine) -> None:
    """After an ingest added rows (best effort): the planner's statistics (ANALYZE),
    and a VACUUM of ``tap``, which marks its new pages all-visible so that the
    comparison's index-only scans of ``tap`` read no table rows (without it, and
    where autovacuum is off or has not come round yet, they fetched every tap's row:
    2.0 -> 1.5 s of the large benchmark's ``compare_flag``). The value rows are read
    with their table anyway; VACUUM skips pages already all-visible, so a small
    ingest into a large warehouse costs little (large benchmark, 10 M values: 1.1 s
    in all, against 0.6 s for ANALYZE alone and 1.5 s to VACUUM every table)."""
    from sqlalchemy.exc import OperationalError

    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) tap")
            conn.exec_driver_sql("ANALYZE run, value, pixel, source_file")
    except OperationalError:
        pass


def prepare_scratch(conn) -> None:
    """Before the session's first temporary table (it cannot change afterwards): room
    for its comparison results in memory, as the comparison's sorts have
    (``tune_for_comparison``), instead of the default 8 MB of temporary buffers."""
    conn.exec_driver_sql("SET temp_buffers = '256MB'")
    conn.commit()


def release_scratch(conn) -> None:
    """Drop the session's temporary tables and views before its connection closes
    (best effort). The server otherwise drops them after the client has gone, and a
    DROP of the warehouse's schema right after ``close`` could deadlock with that
    clean-up (the views' rules lock the tables they read)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.exec_driver_sql("DISCARD TEMP")
        conn.commit()
    except Exception:  # noqa: BLE001 - a broken connection takes them with it anyway
        pass


def view_definitions(conn) -> list[tuple[str, str]]:
    """Every view of the warehouse's schema (the first of the search path) as (name,
    its SELECT)."""
    return [tuple(r) for r in conn.exec_driver_sql(
        "SELECT c.relname, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c "
        "WHERE c.relkind = 'v' AND c.relnamespace = current_schema()::regnamespace "
        "ORDER BY c.oid")]


def server_version(conn) -> str:
    return conn.exec_driver_sql("SHOW server_version").scalar()


def integrity_checks(conn) -> list[tuple[str, int, str]]:
    """PostgreSQL enforces its constraints itself; the named check query covers the rest."""
    return []


# --------------------------------------------------------------------------- read-only SQL
#
# A statement a user hands tracedb (``tracedb sql``, a named query) runs only when the
# server's own parse of it is a plain read, inside a read-only transaction with local
# timeouts, which is rolled back:
#
# - the statement is sent in one Parse message (a protocol-level prepared statement),
#   which the server refuses to hold several commands; quoting tricks that hide a
#   ``;`` from a client-side check change nothing here;
# - while it parses, ``debug_print_rewritten`` sends tracedb the rewritten parse tree
#   (views expanded) as a LOG message; every query in it must be a SELECT, with no
#   utility statement (SET, COMMIT, COPY, DO, CALL, LOCK, ...), no data-modifying
#   CTE and no row locks (FOR UPDATE/SHARE);
# - every function the tree calls (directly, as an operator, an aggregate, a window
#   or a sampling method) must be a built-in one (an OID below FirstNormalObjectId)
#   that is not VOLATILE, or one of the few volatile ones that only read; extensions
#   (dblink, ...) and user functions are refused, and so are set_config, nextval,
#   advisory locks, lo_*, pg_read_file, pg_terminate_backend, pg_sleep, ...;
# - only then is the prepared statement executed (``EXECUTE``, not parsed again).
#
# The tree is checked for what it contains, so text a user puts into it (an alias)
# can only add to what is checked, never hide a part of the statement.

#: Objects with an OID below this are PostgreSQL's own (FirstNormalObjectId).
FIRST_USER_OID = 16384

#: Volatile built-in functions that only read, which a query may call.
VOLATILE_READS = frozenset({
    "random", "clock_timestamp", "timeofday", "gen_random_uuid", "pg_is_in_recovery",
    "pg_relation_size", "pg_table_size", "pg_indexes_size", "pg_total_relation_size",
    "pg_database_size", "pg_tablespace_size", "pg_lock_status", "pg_blocking_pids",
    "pg_sequence_last_value", "bernoulli", "system"})  # the last two: TABLESAMPLE

#: Built-in functions not marked volatile that change something: each assigns the
#: transaction an id.
STABLE_EFFECTS = frozenset({"txid_current", "pg_current_xact_id"})

#: Fields of the parse tree that hold a function's OID, and those that hold an
#: operator's (whose function is then checked).
TREE_FUNCTIONS = ("funcid", "opfuncid", "hashfuncid", "negfuncid", "aggfnoid",
                  "winfnoid", "tsmhandler", "startInRangeFunc", "endInRangeFunc")
TREE_OPERATORS = ("opno", "eqop", "sortop", "cycle_mark_neop")

#: A leading EXPLAIN and its options, written plainly (no comments, no quotes): the
#: statement after it is checked on its own.
_EXPLAIN = re.compile(
    r"\s*explain\b(?:\s*\((?!\s*(?:select|values|with|table)\b)\s*\w+(?:\s+\w+)?"
    r"(?:\s*,\s*\w+(?:\s+\w+)?)*\s*\)|(?:\s+(?:analy[sz]e|verbose)\b)*)\s*",
    re.IGNORECASE)

#: The names of the prepared statements (checked, and run).
_CHECKED, _RUN = b"tracedb_checked", b"tracedb_run"

REFUSED_KIND = ("is read-only: only SELECT, WITH, VALUES, TABLE and EXPLAIN of one of "
                "them run")


def bind_dialect(conn: Connection):
    """The dialect a named query is compiled with for :func:`run_read_only`: its
    parameters as ``$1, $2, ...``, as a prepared statement takes them."""
    return _numbered_dialect()


@cache
def _numbered_dialect():
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return PGDialect_psycopg(paramstyle="numeric_dollar")


def run_read_only(conn: Connection, statement: str, args: tuple = (), *, label: str,
                  check: bool = True, timeout: float | None = None
                  ) -> tuple[list[str], list[tuple]]:
    """Run one statement that cannot change anything: (column names, rows).

    ``args`` bind ``$1, $2, ...``. With ``check`` the statement must be a plain read
    (see above); without it (tracedb's own queries) the read-only transaction and the
    one-statement Parse still hold. ``timeout`` (seconds) bounds the statement, the
    locks it waits for and the transaction. Errors are one line naming ``label``.
    """
    import psycopg

    raw = conn.connection.dbapi_connection
    prepared: list[bytes] = []
    try:
        with raw.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            if not check:
                # tracedb's own reads, as its comparison steps (tune_for_comparison):
                # JIT compiling cost a quarter of a second per query, more than most
                # of them run, whenever an estimate put the plan above jit_above_cost
                cur.execute("SET LOCAL jit = off")
            if timeout is not None:
                ms = max(1, round(timeout * 1000))
                for setting in ("statement_timeout", "lock_timeout",
                                "idle_in_transaction_session_timeout"):
                    cur.execute(f"SET LOCAL {setting} = {ms}")
            header = _EXPLAIN.match(statement) if check else None
            target = statement[header.end():] if header else statement
            if check:
                _check_tree(cur, _parse_tree(raw, cur, target, label, prepared), label)
            else:
                _prepare(raw, _CHECKED, target, label, prepared)
            if header:
                _prepare(raw, _RUN, statement, label, prepared)
            with psycopg.ClientCursor(raw) as run:  # the arguments as literals
                marks = f" ({', '.join(['%s'] * len(args))})" if args else ""
                run.execute(f"EXECUTE {prepared[-1].decode()}{marks}", args or None)
                keys = [d.name for d in run.description or ()]
                rows = run.fetchall() if run.description else []
    except psycopg.Error as exc:
        raise TracedbError(_failure(exc.sqlstate, str(exc), label, timeout)) from None
    finally:
        if not raw.closed:
            raw.rollback()
            for name in prepared:  # they outlive the transaction
                raw.pgconn.exec_(b"DEALLOCATE " + name)
    return keys, rows


def _prepare(raw, name: bytes, statement: str, label: str, prepared: list[bytes]) -> None:
    """Parse ``statement`` as the prepared statement ``name`` (one command only) and
    add ``name`` to ``prepared``."""
    from psycopg import pq

    res = raw.pgconn.prepare(name, statement.encode(raw.info.encoding))
    if res.status != pq.ExecStatus.COMMAND_OK:
        state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(
            raw.info.encoding, "replace")
        raise TracedbError(_failure(state, message, label, None))
    prepared.append(name)


def _parse_tree(raw, cur, statement: str, label: str, prepared: list[bytes]) -> str:
    """Prepare ``statement`` and return the server's rewritten parse tree of it."""
    trees: list[str] = []

    def keep(diag) -> None:
        if diag.severity_nonlocalized == "LOG" and diag.message_detail:
            trees.append(diag.message_detail)

    for setting, value in (("debug_pretty_print", "off"), ("client_min_messages", "log"),
                           ("debug_print_rewritten", "on")):
        cur.execute(f"SET LOCAL {setting} = {value}")
    raw.add_notice_handler(keep)
    try:
        _prepare(raw, _CHECKED, statement, label, prepared)
        found = list(trees)
    finally:
        raw.remove_notice_handler(keep)
    cur.execute("SET LOCAL debug_print_rewritten = off")
    cur.execute("RESET client_min_messages")
    if not found:  # nothing but blanks, comments or semicolons
        raise TracedbError(f"{label}: empty SQL statement")
    if len(found) > 1:
        raise TracedbError(f"{label} runs one statement at a time")
    return found[0]


def _check_tree(cur, tree: str, label: str) -> None:
    """Refuse anything in the parse tree that is not a plain read (see above)."""
    kinds = set(re.findall(r":commandType\s+(\d+)", tree))
    utility = set(re.findall(r":utilityStmt\s+(\S+)", tree))
    if kinds != {"1"} or utility != {"<>"} \
            or re.search(r":(?:hasModifyingCTE|hasForUpdate)\s+true\b", tree) \
            or re.search(r":rowMarks\s+(?!<>)", tree):
        raise TracedbError(f"{label} {REFUSED_KIND}")

    def oids(*patterns: str) -> list[int]:  # each pattern's group: OIDs
        found = {int(o) for p in patterns for group in re.findall(p, tree)
                 for o in group.split()}
        return sorted(found - {0})

    funcs = set(oids(rf":(?:{'|'.join(TREE_FUNCTIONS)})\s+(\d+)"))
    operators = oids(rf":(?:{'|'.join(TREE_OPERATORS)})\s+(\d+)",
                     r":opnos\s+\(o([\d\s]*)\)")
    if operators:
        cur.execute("SELECT oprcode::oid FROM pg_catalog.pg_operator "
                    "WHERE oid = ANY(%s::oid[])", (operators,))
        codes = [r[0] for r in cur.fetchall()]
        if len(codes) != len(operators):
            raise TracedbError(f"{label} {REFUSED_KIND}")
        funcs.update(codes)
    if not funcs:
        return
    cur.execute("SELECT p.oid, n.nspname, p.proname, p.provolatile FROM pg_catalog.pg_proc p "
                "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.oid = ANY(%s::oid[]) ORDER BY p.oid", (sorted(funcs),))
    known = cur.fetchall()
    for oid, schema, name, volatility in known:
        builtin = oid < FIRST_USER_OID
        harmless = (volatility != "v" and name not in STABLE_EFFECTS) \
            or name in VOLATILE_READS
        if not (builtin and harmless):
            why = "changes the server's state or reaches outside the warehouse" \
                if builtin else "is not one of PostgreSQL's built-in functions"
            raise TracedbError(f"{label} is read-only: it refuses {schema}.{name}(), which "
                               f"{why}; only built-in functions that change nothing run")
    if len(known) != len(funcs):
        raise TracedbError(f"{label} {REFUSED_KIND}")


def _failure(sqlstate: str | None, message: str, label: str, timeout: float | None) -> str:
    """One line for a PostgreSQL error of a read-only statement."""
    first = (message.strip().splitlines() or ["(no message)"])[0]
    first = re.sub(r"^(?:ERROR|FATAL):\s+", "", first)
    if sqlstate == "42601" and "multiple commands" in first:
        return f"{label} runs one statement at a time"
    if sqlstate == "42601":  # syntax_error: 'syntax error at or near "SELEC"'
        return f"{label}: {first}"
    if sqlstate in ("57014", "55P03", "25P03") and timeout is not None:
        return (f"{label} took longer than {timeout:g} s ({first}); "
                "give it more with --timeout")
    if sqlstate == "25006":  # read_only_sql_transaction
        return f"{label} is read-only: {first}"
    return f"{label} failed: {first}"


def bulk_context(engine: Engine) -> tuple[bool, str | None]:
    """How an ingest stages its groups: (staged, URL for the stagers). Every ingest
    stages its groups as COPY text; the stagers register keys and draw ids on a
    connection of their own, so they need the URL (with its password: it never
    leaves this machine's processes)."""
    return True, engine.url.render_as_string(hide_password=False)


def local_files(engine: Engine) -> list:
    """The server keeps the warehouse: no file of it on this machine."""
    return []


def wal_flusher(engine: Engine):
    """The server manages its own write-ahead log."""
    return None


def bundle_session(conn: Connection, staged: bool, flusher):
    from contextlib import nullcontext

    return nullcontext()


# --------------------------------------------------------------------------- tuning

#: How long ANALYZE may wait for its lock (another transaction analyzing the table
#: holds it to its end); past that the statistics stay as they were.
ANALYZE_LOCK_TIMEOUT = "200ms"


def refresh_statistics(conn, table: str) -> bool:
    """PostgreSQL: ANALYZE a table inside the caller's transaction (it counts the
    transaction's own new rows), so that the next statement is planned for them;
    True when it did. A role that may not analyze the table gets a warning, not an
    error. The lock ANALYZE takes lasts to the end of the transaction, so a
    concurrent comparison does not wait for it: after ANALYZE_LOCK_TIMEOUT it goes
    on with the statistics as they are (slower plans, same rows)."""
    from sqlalchemy.exc import DBAPIError

    previous = conn.exec_driver_sql("SHOW lock_timeout").scalar()
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{ANALYZE_LOCK_TIMEOUT}'")
        conn.exec_driver_sql(f"ANALYZE {table}")
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        savepoint.rollback()
        return False
    savepoint.commit()
    conn.exec_driver_sql("SELECT set_config('lock_timeout', %s, true)", (previous,))
    return True


def may_skip_row_triggers(conn) -> bool:
    """PostgreSQL: whether this role may set ``session_replication_role`` (a
    superuser, or a role granted SET on it, PostgreSQL 15+)."""
    allowed, version = conn.exec_driver_sql(
        "SELECT current_setting('is_superuser') = 'on', "
        "current_setting('server_version_num')::int").one()
    if not allowed and version >= 150000:  # GRANT SET ON PARAMETER is new in 15
        allowed = conn.exec_driver_sql(
            "SELECT has_parameter_privilege('session_replication_role', 'SET')").scalar()
    return bool(allowed)


def skip_row_triggers(conn, allowed: bool | None = None) -> bool:
    """PostgreSQL: ``SET LOCAL session_replication_role = replica`` where the role
    may (``allowed``, else asked), which skips per-row foreign-key triggers until
    it is set back to ``origin`` or the transaction ends; True when it did. It
    would skip any trigger a site added too; the warehouse has none of its own.
    Callers only write rows that refer to rows the same transaction wrote or
    locked."""
    if allowed is None:
        allowed = may_skip_row_triggers(conn)
    if allowed:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    return allowed


def tune_for_comparison(conn) -> None:
    """Settings for the comparison statements of a request (its transaction only).

    PostgreSQL: sorts and hashes of a whole campaign stay in memory; the statements
    are too short-lived for JIT compilation to pay off; the warehouse's hot pages
    are cached, so an index probe costs little more than a sequential read (the
    default random_page_cost of 4 sends the flagged-tap join to whole-table scans).
    The result rows written next (tap_flag, tap_result) refer to a comparison set
    that this transaction wrote, or locked (``complete``), so their foreign-key
    triggers are skipped where allowed.
    """
    conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
    conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
    skip_row_triggers(conn)


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


def pg_register_tap_keys(cur, keys: list[PairingKey]) -> dict[PairingKey, int]:
    """On an autocommit cursor: add pairing keys (if absent), their ids.

    Each key is committed at once, so writers never wait on (or deadlock over) a key
    another added; a key that a failed bundle leaves unused is harmless.
    """
    if not keys:
        return {}
    out = _pg_key_ids(cur, keys)  # known ones first: a conflicting insert uses up an id
    missing = [k for k in keys if k not in out]
    if missing:  # one statement (and transaction) per key, in the order given
        cols = ", ".join(PAIRING_KEY_COLS)
        cur.executemany(f"INSERT INTO tap_key ({cols}) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING", missing)
        out.update(_pg_key_ids(cur, missing))
    return out


def _pg_key_ids(cur, keys: list[PairingKey]) -> dict[PairingKey, int]:
    """The registered ones among ``keys``: one query."""
    cur.execute("SELECT k.channel, k.key_name, k.loop_key, k.key_occurrence, k.id "
                "FROM tap_key k JOIN unnest(%s::text[], %s::text[], %s::text[], %s::int[]) "
                "AS w(channel, key_name, loop_key, key_occurrence) "
                "USING (channel, key_name, loop_key, key_occurrence)",
                [list(col) for col in zip(*keys, strict=True)])
    return {tuple(r[:4]): r[4] for r in cur.fetchall()}  # type: ignore[misc]


#: Connections that PostgreSQL stagers use for keys and ids: {(pid, url): DBAPI conn}
_COPY_CONNECTIONS: dict[tuple[int, str], object] = {}


def stager_cursor(url: str):
    """A cursor on this process's autocommit connection to ``url`` (made once)."""
    import os

    raw = _COPY_CONNECTIONS.get((os.getpid(), url))
    if raw is not None and (raw.driver_connection.closed or raw.driver_connection.broken):
        _COPY_CONNECTIONS.pop((os.getpid(), url), None)  # dropped by the server: again
        raw = None
    if raw is None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        # keep the pool's wrapper: dropping it would close the connection
        raw = create_engine(url, poolclass=NullPool).raw_connection()
        raw.driver_connection.autocommit = True
        _COPY_CONNECTIONS[(os.getpid(), url)] = raw
    return raw.driver_connection.cursor()


def close_stagers() -> None:
    """Close this process's stager connections (an ingest's end, in the writer)."""
    import os

    for key in [k for k in _COPY_CONNECTIONS if k[0] == os.getpid()]:
        try:
            _COPY_CONNECTIONS.pop(key).close()
        except Exception:  # already gone with the server: nothing to release
            pass


class Writer(BulkWriter):
    """Bulk rows through COPY; staged groups arrive as COPY text."""

    MARK = "%s"

    def __init__(self, conn: Connection):
        super().__init__(conn)
        self._seq: dict[str, str] = {}
        self._may_skip: bool | None = None  # may skip row triggers

    def ids(self, table: str, n: int) -> list[int]:
        if n == 0:
            return []
        seq = self._seq.get(table)
        if seq is None:
            seq = self._seq[table] = pg_sequence(self.cur, table)
        return pg_nextvals(self.cur, seq, n)

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if rows:
            with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def register_tap_keys(self, keys: list[PairingKey]) -> dict[PairingKey, int]:
        """Add pairing keys in a separate, immediately committed transaction, so that
        writers of other bundles never wait on (or deadlock over) a key this one added;
        a key left unused by a failed bundle is harmless."""
        with self.conn.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT") as other:
            return pg_register_tap_keys(other.connection.dbapi_connection.cursor(), keys)

    def copy_text(self, table: str, columns: tuple[str, ...], data: bytes) -> None:
        """Stream rows already written as COPY text (see ingest.staging)."""
        if not data:
            return
        view = memoryview(data)
        with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN "
                           "WITH (ENCODING 'UTF8')") as copy:
            for i in range(0, len(view), COPY_CHUNK):
                copy.write(view[i:i + COPY_CHUNK])

    def copy_staged(self, taps: bytes, values: bytes) -> None:
        """Stream a staged group's tap and value rows (COPY text).

        Without their per-row foreign-key triggers where the role may (see
        :func:`skip_row_triggers`): row-by-row checks cost more than the rest of the
        COPY together. Every one of these rows refers to a run the same transaction
        wrote just before (no other session can see, let alone delete, it before the
        commit) and to a unit of the unit table, which nothing deletes; SQLite's
        staged bundles likewise turn foreign keys off, and ``tracedb db check``
        looks for taps without their run or unit and values without their tap.
        """
        from .layout import TAP_COLS, VALUE_COLS

        if self._may_skip is None:
            self._may_skip = may_skip_row_triggers(self.conn)
        skipped = skip_row_triggers(self.conn, self._may_skip)
        self.copy_text("tap", TAP_COLS, taps)
        self.copy_text("value", VALUE_COLS, values)
        if skipped:
            self.cur.execute("SET LOCAL session_replication_role = origin")

    def lock_bundle(self, directory: str) -> None:
        """Serialise writers of one bundle: a transaction-scoped advisory lock."""
        key = int.from_bytes(hashlib.sha256(directory.encode()).digest()[:8], "big",
                             signed=True)
        self.cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
