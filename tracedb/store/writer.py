"""What both bulk writers share: the rows of one bundle, inside its transaction.

``store.sqlite.Writer`` and ``store.postgres.Writer`` add how ids are drawn, how
rows and staged groups travel, how pairing keys are registered and how writers of
one bundle take turns; ``store.engine.backend(conn).Writer(conn)`` picks one.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from .layout import PAIRING_KEY_COLS

PairingKey = tuple[str, str, str, int]


class BulkWriter:
    #: the DBAPI driver's parameter mark
    MARK = "?"

    def __init__(self, conn: Connection):
        self.conn = conn
        self.raw = conn.connection.dbapi_connection
        self.cur = self.raw.cursor()

    def marks(self, n: int) -> str:
        return ", ".join([self.MARK] * n)

    def insert_ignore(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        """INSERT ... ON CONFLICT DO NOTHING (both dialects spell it the same)."""
        if rows:
            self.cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                 f"({self.marks(len(columns))}) ON CONFLICT DO NOTHING", rows)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """A read inside the bundle's transaction; ``?`` marks the parameters."""
        self.cur.execute(sql.replace("?", self.MARK), params)
        return self.cur.fetchall()

    def tap_keys(self, limit: int) -> dict[PairingKey, int]:
        """The newest ``limit`` registered pairing keys (all when there are no more):
        (channel, key_name, loop_key, occurrence) -> id."""
        self.cur.execute(f"SELECT {', '.join(PAIRING_KEY_COLS)}, id FROM tap_key "
                         f"ORDER BY id DESC LIMIT {int(limit)}")
        return {tuple(r[:4]): r[4] for r in self.cur.fetchall()}  # type: ignore[misc]

    def lock_bundle(self, directory: str) -> None:
        """Serialise writers of one bundle (a no-op where the write lock already does)."""
