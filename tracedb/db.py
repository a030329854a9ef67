"""Opening a warehouse: URL, engine settings, schema version, reflected tables.

The schema is made only by the Alembic migrations in ``migrations/``; this
module runs them and reflects the result, so there is one definition of every
table.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from .errors import TracedbError

DEFAULT_URL = "sqlite:///tracedb.sqlite"
ENV_URL = "TRACEDB_URL"

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``migrations`` or ``queries``: inside the installed wheel, else the checkout."""
    packaged = _PACKAGE / f"_{name}"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise TracedbError(f"tracedb installation is missing its {name}/ directory")


def resolve_url(url: str | None) -> str:
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def mask_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


PAGE_SIZE = 16384


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout = 60000")
    # a new, empty warehouse gets 16 KiB pages (SQLite's default is 4 KiB): a third
    # fewer pages for a tap and its values, a quarter of the WAL and checkpoint
    # system calls on a bulk load; an existing file keeps the size it was made with
    cur.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    cur.execute("PRAGMA journal_mode = WAL")
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


#: UPDATE ... FROM (3.33), DROP COLUMN and AS MATERIALIZED (3.35) are used.
MIN_SQLITE = (3, 35, 0)


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TracedbError(f"not a database URL: {url!r} (e.g. sqlite:///tracedb.sqlite, "
                           "postgresql+psycopg://user@host/db)") from None
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise TracedbError(
                f"SQLite {sqlite3.sqlite_version} is too old: tracedb needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer (the library Python's sqlite3 "
                "module is linked with; python.org and conda builds bring a recent one)")
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).parent
            if not parent.is_dir():
                raise TracedbError(f"cannot create warehouse {database}: directory "
                                   f"{parent} does not exist")
        kwargs["connect_args"] = {"timeout": 60}
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (pip install 'tracedb[postgres]')" if "postgres" in url else ""
        raise TracedbError(f"no driver for {mask_url(url)}: {exc}{hint}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy, not pysqlite, manage transactions so that BEGIN is
        # emitted explicitly (BEGIN IMMEDIATE for writers, see Warehouse.write).
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):
            mode = conn.get_execution_options().get("sqlite_begin", "BEGIN")
            conn.exec_driver_sql(mode)
    return engine


# --------------------------------------------------------------------------- migrations


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    return ScriptDirectory.from_config(cfg)


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def known_revisions() -> tuple[str, ...]:
    return tuple(s.revision for s in _script().walk_revisions())


#: The newest migration (migrations/versions); a test keeps it equal to Alembic's head,
#: so that opening a warehouse at head needs no Alembic import.
HEAD = "0005"


def current_revision(engine: Engine) -> str | None:
    """The warehouse's schema revision (alembic_version), None for a new database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the warehouse to ``revision``; returns (before, after)."""
    from alembic import command

    before = current_revision(engine)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)
    return before, current_revision(engine) or ""


def ensure_schema(engine: Engine, url: str) -> None:
    """Create a new warehouse at head; refuse one at an older or unknown revision."""
    try:
        rev = current_revision(engine)
    except OperationalError as exc:
        raise TracedbError(f"cannot open warehouse {mask_url(url)}: "
                           f"{str(exc.orig).strip().splitlines()[0]}") from None
    if rev == HEAD:
        return
    head = head_revision()
    if rev is None:
        tables = set(inspect(engine).get_table_names())
        if tables & {"bundle", "tap", "run"}:
            raise TracedbError(f"{mask_url(url)} has tracedb-like tables but no schema "
                               "version; it was not made by tracedb")
        upgrade(engine)
        return
    if rev in known_revisions():
        raise TracedbError(f"warehouse {mask_url(url)} is at schema revision {rev}, older "
                           f"than this tracedb ({head}); run `tracedb db upgrade`")
    raise TracedbError(f"warehouse {mask_url(url)} is at schema revision {rev}, unknown to "
                       f"this tracedb (head {head}); it was written by a newer tracedb")


def reflect(engine: Engine) -> dict[str, Table]:
    md = MetaData()
    md.reflect(bind=engine)
    return dict(md.tables)


# --------------------------------------------------------------------------- tuning


def after_bulk_load(engine: Engine) -> None:
    """Refresh planner statistics after an ingest added rows (best effort: another
    writer holding the lock only means the statistics wait for the next ingest)."""
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        # take the write lock up front: a deferred transaction that starts reading
        # and then writes can fail at once with SQLITE_BUSY under a concurrent writer
        conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    try:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE run, tap, value, pixel, source_file")
            else:
                conn.exec_driver_sql("PRAGMA optimize")
    except OperationalError:
        pass
    finally:
        conn.close()


#: How long ANALYZE may wait for its lock (another transaction analyzing the table
#: holds it to its end); past that the statistics stay as they were.
ANALYZE_LOCK_TIMEOUT = "200ms"


def refresh_statistics(conn, table: str) -> bool:
    """PostgreSQL: ANALYZE a table inside the caller's transaction (it counts the
    transaction's own new rows), so that the next statement is planned for them;
    True when it did. A role that may not analyze the table gets a warning, not an
    error. The lock ANALYZE takes lasts to the end of the transaction, so a
    concurrent comparison does not wait for it: after ANALYZE_LOCK_TIMEOUT it goes
    on with the statistics as they are (slower plans, same rows). SQLite plans these
    statements well without."""
    if conn.dialect.name != "postgresql":
        return False
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
    if conn.dialect.name != "postgresql":
        return False
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
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")
        skip_row_triggers(conn)
