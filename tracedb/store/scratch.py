"""Comparison results that need no write access: the session's own result tables.

``diverge``, ``timeline``, ``regress``, ``taps --diff`` and ``report`` compare on one
connection that holds temporary copies of the result tables (:data:`RESULT_TABLES`)
and of every view that reads them. The temporary objects have the warehouse's names,
so the comparison steps, the named queries and ``tracedb sql`` on that connection
read and write them as they would the warehouse's own, while the warehouse itself
is only read: analysis works on a read-only SQLite file (``chmod a-w``, a
``mode=ro`` URL) and through a PostgreSQL role with only SELECT (and the TEMPORARY
privilege every role has by default), and never waits for an ingest's write lock.
The session's comparison sets have negative ids; saved ones (``--save``) are
written to the warehouse with positive ids.
"""

from __future__ import annotations

import re

from sqlalchemy import CheckConstraint, Column, Index, MetaData, Table
from sqlalchemy.engine import Connection, Engine

from .engine import backend

#: The tables a comparison writes, foreign keys first.
RESULT_TABLES = ("comparison_set", "comparison", "tap_flag", "tap_result")


def temporary_copy(table: Table, metadata: MetaData) -> Table:
    """``table``'s columns, keys, checks and indexes as a temporary table of the same
    name, without foreign keys (a temporary table may not refer to the warehouse's)
    and without defaults (the ids are given)."""
    copy = Table(table.name, metadata,
                 *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                          autoincrement=False) for c in table.columns),
                 *(CheckConstraint(ck.sqltext, name=ck.name) for ck in table.constraints
                   if isinstance(ck, CheckConstraint)),
                 prefixes=["TEMPORARY"])
    for index in table.indexes:
        Index(index.name, *(copy.c[c.name] for c in index.columns), unique=index.unique)
    return copy


def dependent_views(views: list[tuple[str, str]], names=RESULT_TABLES
                    ) -> list[tuple[str, str]]:
    """The views (``(name, definition)`` pairs) that read any of ``names`` directly or
    through another such view, each after the views it reads."""
    def reads(sql: str, targets) -> set[str]:
        return {t for t in targets if re.search(rf"\b{re.escape(t)}\b", sql)}

    wanted = set(names)
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, sql in views:
            if name not in found and reads(sql, wanted):
                found[name] = sql
                wanted.add(name)
                changed = True
    ordered: list[tuple[str, str]] = []
    done: set[str] = set()
    while len(ordered) < len(found):
        ready = [(name, sql) for name, sql in found.items()
                 if name not in done and reads(sql, set(found) - {name}) <= done]
        if not ready:
            raise RuntimeError(f"views that read each other: {sorted(set(found) - done)}")
        ordered += ready
        done.update(name for name, _ in ready)
    return ordered


def open_scratch(engine: Engine, tables: dict[str, Table]) -> Connection:
    """A connection with the session's result tables and views made (see above)."""
    conn = engine.connect()
    store = backend(conn)
    try:
        store.prepare_scratch(conn)
        with conn.begin():
            # read before the temporary tables exist, so the texts name the
            # warehouse's objects without a schema and so bind to the copies
            views = dependent_views(store.view_definitions(conn))
            metadata = MetaData()
            for name in RESULT_TABLES:
                temporary_copy(tables[name], metadata).create(conn)
            for name, select in views:
                conn.exec_driver_sql(f"CREATE TEMPORARY VIEW {name} AS {select}")
    except BaseException:
        conn.close()
        raise
    return conn
