"""Opening a warehouse: URL, engine settings, schema version, reflected tables.

The schema is made only by the Alembic migrations in ``migrations/``; this
module runs them and reflects the result, so there is one definition of every
table. :func:`backend` names the module that holds a dialect's differences
(``store.sqlite`` or ``store.postgres``); no module outside ``store/`` branches
on the dialect.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from ..errors import TracedbError

DEFAULT_URL = "sqlite:///tracedb.sqlite"
ENV_URL = "TRACEDB_URL"

_PACKAGE = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """``migrations`` or ``queries``: inside the installed wheel, else the checkout."""
    packaged = _PACKAGE / f"_{name}"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise TracedbError(f"tracedb installation is missing its {name}/ directory")


def backend(bind):
    """The module that holds the differences of ``bind``'s dialect (an engine or a
    connection): :mod:`tracedb.store.sqlite` or :mod:`tracedb.store.postgres`. Both
    define the same functions (``configure``, ``write_connection``, ``writer``,
    ``run_read_only``, ``integrity_checks``, ``server_version``, ...)."""
    if bind.dialect.name == "sqlite":
        from . import sqlite as module
    elif bind.dialect.name == "postgresql":
        from . import postgres as module
    else:
        raise TracedbError(f"tracedb supports SQLite and PostgreSQL, not {bind.dialect.name}")
    return module


def resolve_url(url: str | None) -> str:
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def absolute_url(url: str) -> str:
    """``url`` with a relative SQLite file made absolute, so that a command naming it
    runs from any directory (``sqlite:///w.sqlite`` run in /data is
    ``sqlite:////data/w.sqlite``); an in-memory database, a ``file:`` URI and every
    other backend's URL are returned as they are."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or database.startswith("file:") or os.path.isabs(database):
        return url
    return parsed.set(database=os.path.abspath(database)).render_as_string(
        hide_password=False)


# --------------------------------------------------------------------------- secrets

#: What tracedb writes in place of a secret.
MASK = "***"

#: A URL parameter or connection keyword whose name holds one of these is a secret
#: (password, sslpassword, passfile, passphrase, token, client_secret, ...).
SECRET_WORDS = ("pass", "secret", "token")

#: Environment variables that hold a secret tracedb's drivers read.
SECRET_ENV = ("PGPASSWORD",)

#: ``scheme://user:password@`` (also with fewer slashes, as a mistyped URL has them).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*:/*[^\s:/?#@]*):[^\s/?#]*@")
_SECRET_PARAM = re.compile(
    rf"(?P<key>(?<![\w.-])[\w.-]*(?:{'|'.join(SECRET_WORDS)})[\w.-]*=)"
    r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"]*)", re.IGNORECASE)

#: Secret values of the URLs tracedb opened in this process (see :func:`make_engine`).
_SECRETS: set[str] = set()

#: A secret shorter than this is masked where it has a place (after ``user:`` in a
#: URL, as a ``password=`` value) but not searched for in other text, where it would
#: mask ordinary words.
MIN_SEARCHED = 4


def _remember_secrets(url) -> None:
    """Keep the secret values of a parsed URL, as written and URL-encoded."""
    from urllib.parse import quote, quote_plus

    values = [url.password] if url.password else []
    for key, value in url.query.items():
        if any(w in key.lower() for w in SECRET_WORDS):
            values += [value] if isinstance(value, str) else list(value)
    for v in values:
        _SECRETS.update({str(v), quote(str(v), safe=""), quote_plus(str(v))})


def mask_secrets(text: str) -> str:
    """``text`` (a URL, a command-line word, a message) with every secret as ``***``:
    the password of a URL (``scheme://user:***@host``), the value of any parameter or
    connection keyword whose name holds pass, secret or token (``?password=***``,
    ``sslpassword='***'``), and anywhere else the secret values of the URLs tracedb
    opened and of $PGPASSWORD. Whatever tracedb writes to the warehouse, a report or
    a message about a URL or a command line goes through here."""
    out = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    out = _SECRET_PARAM.sub(lambda m: m["key"] + MASK, out)
    secrets = set(_SECRETS) | {os.environ.get(k) or "" for k in SECRET_ENV}
    for secret in sorted((s for s in secrets if len(s) >= MIN_SEARCHED), key=len,
                         reverse=True):
        out = out.replace(secret, MASK)
    return out


def mask_argv(argv: list[str]) -> list[str]:
    """A command line with every word passed through :func:`mask_secrets`."""
    return [mask_secrets(str(a)) for a in argv]


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``. ``create`` False: a warehouse that does not exist yet (a
    SQLite file that is not there) is an error, and nothing is created."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TracedbError(f"not a database URL: {mask_secrets(url)!r} (e.g. "
                           "sqlite:///tracedb.sqlite, postgresql+psycopg://user@host/db)"
                           ) from None
    _remember_secrets(parsed)
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        from . import sqlite

        kwargs = sqlite.engine_kwargs(parsed, create=create)
        parsed = sqlite.read_only_media(parsed)
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (pip install 'tracedb[postgres]')" if "postgres" in url else ""
        raise TracedbError(mask_secrets(f"no driver for {url}: {exc}{hint}")) from None
    backend(engine).configure(engine)
    return engine


# --------------------------------------------------------------------------- migrations


#: The module the migrations share (migrations/tracedb_status_rules.py).
SHARED_MODULE = "tracedb_status_rules"


def _config():
    """Alembic's configuration. The versions import the module they share by its
    name; it is loaded here from the migrations folder, once, so that nothing else of
    that folder becomes importable."""
    import importlib.util
    import sys

    from alembic.config import Config

    folder = resource_dir("migrations")
    if SHARED_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(SHARED_MODULE,
                                                      folder / f"{SHARED_MODULE}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        sys.modules[SHARED_MODULE] = module
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    return cfg


def _alembic_config(connection):
    cfg = _config()
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def known_revisions() -> tuple[str, ...]:
    return tuple(s.revision for s in _script().walk_revisions())


#: The newest migration (migrations/versions); a test keeps it equal to Alembic's head,
#: so that opening a warehouse at head needs no Alembic import.
HEAD = "0019"


def current_revision(engine: Engine) -> str | None:
    """The warehouse's schema revision (alembic_version), None for a new database."""
    with engine.connect() as conn:
        return _revision_on(conn)


def _revision_on(conn) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(engine: Engine, revision: str = "head", *, new_only: str | None = None
            ) -> tuple[str | None, str]:
    """Bring the warehouse to ``revision``; returns (before, after).

    One process at a time: the upgrade holds the warehouse's write lock (SQLite) or a
    transaction-scoped advisory lock (PostgreSQL) from before it reads the revision
    to its commit, so processes that start together on a new warehouse wait for the
    first one's schema instead of creating it twice. ``new_only`` (the warehouse's
    URL, for messages): make the schema only if the database has none by the time the
    lock is held, and refuse a database with tracedb-like tables but no revision.
    """
    from alembic import command

    store = backend(engine)
    with store.write_connection(engine) as conn, conn.begin():
        store.schema_lock(conn)
        before = _revision_on(conn)
        if new_only is not None and before is None \
                and set(inspect(conn).get_table_names()) & {"bundle", "tap", "run"}:
            raise TracedbError(f"{mask_secrets(new_only)} has tracedb-like tables but no "
                               "schema version; it was not made by tracedb")
        if before is None or new_only is None:
            command.upgrade(_alembic_config(conn), revision)
        after = _revision_on(conn)
    return before, after or ""


def ensure_schema(engine: Engine, url: str, *, create: bool = True) -> None:
    """Create a new warehouse at head (``create`` False: refuse a database without a
    warehouse); refuse one at an older or unknown revision."""
    try:
        rev = current_revision(engine)
    except OperationalError as exc:
        raise TracedbError(mask_secrets(f"cannot open warehouse {url}: "
                                        f"{str(exc.orig).strip().splitlines()[0]}")) from None
    if rev == HEAD:
        return
    head = head_revision()
    if rev is None and not create:
        raise TracedbError(missing_warehouse(mask_secrets(url), "holds no warehouse"))
    if rev is None:
        upgrade(engine, new_only=url)
        ensure_schema(engine, url)  # at head now, or made by an older or newer tracedb
        return
    if rev in known_revisions():
        raise TracedbError(f"warehouse {mask_secrets(url)} is at schema revision {rev}, older "
                           f"than this tracedb ({head}); run `tracedb db upgrade`")
    raise TracedbError(f"warehouse {mask_secrets(url)} is at schema revision {rev}, unknown to "
                       f"this tracedb (head {head}); it was written by a newer tracedb")


def missing_warehouse(where: str, what: str) -> str:
    """The message for a command that only reads a warehouse that is not there."""
    return (f"{where} {what}; this command only reads one: load traces first with "
            "`tracedb ingest PATH`, or name the warehouse with --db URL or $TRACEDB_URL")


class Tables(dict):
    """The warehouse's tables by name, each reflected when first asked for: the
    whole schema would cost a command that uses four tables a twentieth of a second
    (``tracedb diverge`` answers within 0.6 s). Foreign keys are not followed (no
    caller builds joins from them)."""

    def __init__(self, engine: Engine):
        super().__init__()
        self._engine, self._metadata = engine, MetaData()

    def __missing__(self, name: str) -> Table:
        from sqlalchemy.exc import NoSuchTableError

        try:
            table = Table(name, self._metadata, autoload_with=self._engine,
                          resolve_fks=False)
        except NoSuchTableError:
            raise KeyError(name) from None
        self[name] = table
        return table


def utcnow() -> str:
    """Now, as every timestamp column stores it."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Handle:
    """An open warehouse: its URL, engine, (reflected on first use) tables and the
    session's own comparison results (:meth:`scratch`). The core modules (ingest,
    compare, curate) take one; ``api.Warehouse`` holds one. ``create`` False opens
    only a warehouse that exists (see :func:`make_engine`, :func:`ensure_schema`)."""

    def __init__(self, url: str | None = None, *, check_schema: bool = True,
                 create: bool = True):
        self.url = resolve_url(url)
        self.engine: Engine = make_engine(self.url, create=create)
        if check_schema:
            ensure_schema(self.engine, self.url, create=create)
        self._tables: dict[str, Table] | None = None
        self._scratch = None

    def scratch(self):
        """The connection that holds this session's comparison results, made on first
        use (``store.scratch``: temporary tables, so only reads reach the warehouse)."""
        if self._scratch is None:
            from .scratch import open_scratch

            self._scratch = open_scratch(self.engine, self.tables)
        return self._scratch

    def reads(self, set_id: int | None = None):
        """Where to read: a comparison set's results (``set_id``: the session's own are
        negative, saved ones positive), or anything else (None: the session's
        connection once it has results, so a person's SQL sees them)."""
        if self._scratch is not None and (set_id is None or set_id < 0):
            return self._scratch
        return self.engine

    @property
    def tables(self) -> dict[str, Table]:
        if self._tables is None:
            self._tables = Tables(self.engine)
        return self._tables

    @property
    def display_url(self) -> str:
        return mask_secrets(self.url)

    def local_files(self) -> list[Path]:
        """The files this warehouse keeps on this machine (none for a server's)."""
        return self.store.local_files(self.engine)

    @property
    def store(self):
        """This warehouse's dialect module (see :func:`backend`)."""
        return backend(self.engine)

    def close(self) -> None:
        if self._scratch is not None:
            self.store.release_scratch(self._scratch)
            # discarded, not pooled: its temporary tables would shadow the
            # warehouse's for the connection's next user
            self._scratch.invalidate()
            self._scratch.close()
            self._scratch = None
        self.engine.dispose()
