"""Named SQL: the user's queries (``queries/*.sql``) and the engine's own write steps
(``queries/steps/*.sql``), found, bound and run here.

A query answers one question with bound ``:parameters`` and returns plain rows (a
tuple per row, with the column names); a step writes (comparison results, rekeys).
``NAME.<dialect>.sql`` beside either is the same SQL written for that engine's
planner; it is not a name of its own. Steps may name a column list of
``store/layout.py`` as ``{tap_result_columns}``, and the test that a tap pair's
digests settle it as ``{digest_settles}`` (``layout.DIGEST_SETTLES``, which holds
the loader's digest constants), so each is written once.
"""

from __future__ import annotations

import operator
import re
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..errors import TracedbError
from .engine import backend, resource_dir
from .layout import DIGEST_SETTLES, INT_MAX, TAP_RESULT_COLS

#: What a step may name in braces: column lists kept in store/layout.py.
STEP_TOKENS = {"{tap_result_columns}": ", ".join(TAP_RESULT_COLS),
               "{digest_settles}": DIGEST_SETTLES}


def _folder(step: bool) -> Path:
    base = resource_dir("queries")
    return base / "steps" if step else base


#: Queries that are tracedb's own inner steps (what pairing, causes and reports read),
#: not questions a user asks: runnable by name, listed apart from the user's.
INTERNAL = frozenset({"bundle_commands", "first_components", "image_content", "load_commands",
                      "loop_values", "pairing_runs", "run_config", "tap_roles"})


def all_names() -> list[str]:
    """Every named query: the user's and tracedb's own (:data:`INTERNAL`)."""
    return sorted(p.stem for p in _folder(False).glob("*.sql") if "." not in p.stem)


def names() -> list[str]:
    """The named queries a user asks (neither tracedb's own inner queries nor its
    write steps are among them)."""
    return [n for n in all_names() if n not in INTERNAL]


def step_names() -> list[str]:
    return sorted(p.stem for p in _folder(True).glob("*.sql") if "." not in p.stem)


@cache
def sql_text(name: str, dialect: str | None = None, step: bool = False) -> str:
    """A query's or step's SQL; ``<name>.<dialect>.sql`` when that exists."""
    folder = _folder(step)
    path = folder / f"{name}.sql"
    if dialect and (folder / f"{name}.{dialect}.sql").is_file():
        path = folder / f"{name}.{dialect}.sql"
    if "." in name or "/" in name or "\\" in name or not path.is_file():
        if not step and name in step_names():
            raise TracedbError(f"{name!r} is one of tracedb's own write steps, not a query; "
                               f"available: {', '.join(names())}")
        raise TracedbError(f"no named query {name!r}; available: {', '.join(names())}")
    # Whole-line comments document the parameters (":side"); drop them so the
    # binder does not mistake those names for placeholders.
    lines = path.read_text(encoding="utf-8").splitlines()
    sql = "\n".join(ln for ln in lines if not ln.lstrip().startswith("--"))
    if step:
        for token, value in STEP_TOKENS.items():
            sql = sql.replace(token, value)
    return sql


@contextmanager
def connection(bind):
    """A connection for ``bind``: a new one from an engine (closed afterwards), or the
    given connection itself (a session's, which keeps its temporary tables; a
    transaction its use began is rolled back afterwards)."""
    if isinstance(bind, Connection):
        try:
            yield bind
        finally:
            if bind.in_transaction():
                bind.rollback()
    else:
        with bind.connect() as conn:
            yield conn


def fetch(bind, name: str, /, *, check: bool = False, **params
          ) -> tuple[list[str], list[tuple]]:
    """Run the named query on ``bind`` (an engine or a connection); its column names
    and rows (plain tuples).

    Every parameter the query takes is bound (None when not given); one it does not
    take is an error that lists those it does. The query runs the read-only way of
    ``tracedb sql`` (one statement, a read-only transaction, rolled back); ``check``
    (a query a user asked for by name) also holds it to a plain read, as ``tracedb
    sql`` does.
    """
    source = sql_text(name, bind.dialect.name)
    sql = text(source)
    wanted = set(sql.compile().params)
    unknown = set(params) - wanted
    if unknown:
        raise TracedbError(f"query {name!r} has no parameter(s) {', '.join(sorted(unknown))}"
                           f"; it takes: {', '.join(sorted(wanted)) or 'none'}")
    if check:
        missing = sorted(required_params(name) - set(params))
        if missing:
            raise TracedbError(f"query {name!r} needs a value for parameter(s) "
                               f"{', '.join(missing)} (--param {missing[0]}=VALUE)")
    types = param_types(source)
    bound = {k: bind_value(name, k, types.get(k), params.get(k)) for k in wanted}
    with connection(bind) as conn:
        store = backend(conn)
        # straight through the driver: SQLAlchemy's row objects cost more than the
        # query itself for the 10^5-row answers of a large warehouse
        compiled = sql.compile(dialect=store.bind_dialect(conn))
        args = compiled.construct_params(bound)
        return store.run_read_only(conn, compiled.string,
                                   tuple(args[k] for k in compiled.positiontup or ()),
                                   label=f"query {name!r}", check=check)


@cache
def required_params(name: str) -> frozenset[str]:
    """The parameters ``queries/<name>.sql`` cannot do without, as its header comment
    documents them: those under ``Parameters:`` whose line does not say what NULL
    means (``Parameters (NULL = no filter):`` makes every one optional)."""
    folder = _folder(False)
    lines = (folder / f"{name}.sql").read_text(encoding="utf-8").splitlines()
    wanted = set(text(sql_text(name)).compile().params)
    required: set[str] = set()
    heading, optional_all = False, False
    for line in lines:
        if not line.lstrip().startswith("--"):
            break
        head = re.match(r"--\s*Parameters\b(.*)", line)
        if head:
            heading, optional_all = True, "NULL" in head.group(1)
            rest = head.group(1)
            line = f"-- {rest[1:]}" if rest.startswith(":") else ""  # "Parameters: :x"
        if not heading or optional_all or "NULL" in line:
            continue
        found = re.match(r"--\s+((?::?\w+\s*,\s*)*:?\w+)", line)
        if found:
            required |= {w.lstrip(":").strip() for w in found.group(1).split(",")} & wanted
    return frozenset(required)


#: A parameter's type is the one it is cast to in the query: ``CAST(:run_id AS INTEGER)``.
_CAST = re.compile(r"CAST\(\s*:(\w+)\s+AS\s+([A-Za-z]+)", re.I)
_INTEGER_TEXT = re.compile(r"\s*[-+]?[0-9]+\s*\Z")
_INTEGER_TYPES = frozenset({"INTEGER", "INT", "BIGINT", "SMALLINT"})
_REAL_TYPES = frozenset({"REAL", "FLOAT", "DOUBLE", "NUMERIC"})


def param_types(sql: str) -> dict[str, str]:
    """Each parameter's type as the query casts it (upper case); others are not named."""
    return {m.group(1): m.group(2).upper() for m in _CAST.finditer(sql)}


def bind_value(query: str, key: str, kind: str | None, value: object) -> object:
    """``value`` as parameter ``key`` of ``query`` takes it: text (as ``--param k=v``
    gives) read as an integer or number where the query casts the parameter to one, a
    value the type cannot hold refused in one line. An integer holds what both
    backends' INTEGER does (PostgreSQL's 32 bits). NULL stays NULL; a parameter the
    query does not cast binds as given."""
    if value is None or kind is None:
        return value
    if kind in _INTEGER_TYPES:
        number = None
        if isinstance(value, str):
            if _INTEGER_TEXT.match(value):
                number = int(value)
        elif not isinstance(value, float):
            try:
                number = operator.index(value)  # int, bool, numpy integers
            except TypeError:
                pass
        if number is None or not -INT_MAX - 1 <= number <= INT_MAX:
            raise TracedbError(f"query {query!r}: parameter {key} takes an integer from "
                               f"{-INT_MAX - 1} to {INT_MAX}, not {value!r}")
        return number
    if kind in _REAL_TYPES:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TracedbError(f"query {query!r}: parameter {key} takes a number, "
                               f"not {value!r}") from None
    return value if isinstance(value, str) else str(value)


class Rows(list):
    """Records (dicts by column name) that know their columns, in order, even when
    there are none."""

    def __init__(self, records=(), columns: list[str] | None = None):
        super().__init__(records)
        self.columns = list(columns or [])


def records(keys: list[str], rows: list[tuple]) -> Rows:
    """Rows as dicts by column name."""
    return Rows((dict(zip(keys, r, strict=True)) for r in rows), keys)


def run_step(conn, name: str, /, **params) -> list[tuple]:
    """Run one of the engine's steps inside the caller's transaction; the rows of a
    step that reads (``digest_lists``), else none."""
    result = conn.execute(text(sql_text(name, conn.dialect.name, step=True)), params)
    return [tuple(r) for r in result] if result.returns_rows else []


# --------------------------------------------------------------------------- ad-hoc SQL

#: How long ``tracedb sql`` lets a statement run, in seconds, unless told otherwise.
SQL_TIMEOUT = 60.0


def run_sql(bind, statement: str, timeout: float | None = None
            ) -> tuple[list[str], list[tuple]]:
    """``tracedb sql``: one statement that can only read, within ``timeout`` seconds
    (None: :data:`SQL_TIMEOUT`).

    The dialect's ``run_read_only`` decides by the engine's own parse of the statement,
    not by its text (see ``store.sqlite`` and ``store.postgres``).
    """
    timeout = SQL_TIMEOUT if timeout is None else timeout
    if not timeout > 0:
        raise TracedbError(f"--timeout must be a positive number of seconds, not {timeout}")
    with connection(bind) as conn:
        return backend(conn).run_read_only(conn, statement, label="tracedb sql",
                                           check=True, timeout=timeout)
