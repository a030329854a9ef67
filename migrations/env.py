"""Alembic environment for tracedb.

tracedb runs migrations programmatically (``tracedb db upgrade``); the caller
passes an open connection in ``config.attributes["connection"]``. Running the
``alembic`` command line directly also works: set ``sqlalchemy.url`` or
``TRACEDB_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=None,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "TRACEDB_URL", "sqlite:///tracedb.sqlite")
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = create_engine(url)
        with engine.begin() as conn:
            run_migrations(conn)
