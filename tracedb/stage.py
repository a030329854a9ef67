"""The loader's per-line and per-value work: in C when ``tracedb._cstage`` is built.

``hatch_build.py`` compiles ``_cstage.c`` when tracedb is installed (it needs a C
compiler and SQLite's headers); without it, or with ``TRACEDB_PURE_PYTHON=1``,
the Python below does the same work, slower. Both give identical rows
(tests/test_cstage.py).

- :data:`scan`: a file's text -> common-shape lines as tuples, the other lines.
- :data:`components`: a common-shape value text -> its components.
- :data:`Stager`: rows into a private in-memory SQLite database whose image the
  writer attaches and copies (see ``load.stage_files``).
"""

from __future__ import annotations

import os
import sqlite3

from . import parse

_cstage = None
if os.environ.get("TRACEDB_PURE_PYTHON", "") in ("", "0"):
    try:
        from . import _cstage  # type: ignore[no-redef]
    except ImportError:  # not built: the Python below
        _cstage = None


def value_rows(run_id: int, entries, components=parse.fast_components) -> list[tuple]:
    """Value rows of one run from (key id, value text or components) entries."""
    rows: list[tuple] = []
    for key_id, payload in entries:
        comps = components(payload) if isinstance(payload, str) else payload
        rows.extend([(run_id, key_id, idx) + c for idx, c in enumerate(comps)])
    return rows


class PyStager:
    """The Python twin of ``_cstage.Stager``: the same tables, through sqlite3."""

    def __init__(self, ddl, tap_sql: str, value_sql: str, key_sql: str):
        self.con = sqlite3.connect(":memory:", isolation_level=None)
        for sql in ddl:
            self.con.execute(sql)
        self.con.execute("BEGIN")
        self.sql = tap_sql, value_sql, key_sql

    def taps(self, rows) -> None:
        self.con.executemany(self.sql[0], rows)

    def values(self, run_id: int, entries) -> None:
        self.con.executemany(self.sql[1], value_rows(run_id, entries))

    def new_keys(self, rows) -> None:
        self.con.executemany(self.sql[2], rows)

    def image(self) -> bytes:
        self.con.execute("COMMIT")
        try:
            return self.con.serialize()
        finally:
            self.con.close()


if _cstage is not None:
    scan = _cstage.scan
    components = _cstage.components
    Stager = _cstage.Stager
else:
    scan = parse.scan_lines
    components = parse.fast_components
    Stager = PyStager  # type: ignore[assignment,misc]

#: "c" when the C accelerator is in use, "python" otherwise (shown by `tracedb db info`)
IMPLEMENTATION = "c" if _cstage is not None else "python"
