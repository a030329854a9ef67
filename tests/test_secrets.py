"""No secret of the warehouse URL or the environment is kept or shown.

The PostgreSQL test server trusts every connection, so a URL may carry any password:
in its user part, as ``?password=`` and ``?sslpassword=`` parameters, and in
$PGPASSWORD. Every command a user runs with it, a report included, leaves no trace of
any of them in the report's files, in any text column of the warehouse, or in what
the commands print (errors too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from tracedb.api import example_tree
from tracedb.store.engine import mask_secrets

PASSWORD, QUERY_PASSWORD, SSL_PASSWORD, ENV_PASSWORD = (
    "s3cr3t-pw", "other-s3cr3t", "ssl-s3cr3t", "env-s3cr3t")
SECRETS = (PASSWORD, QUERY_PASSWORD, SSL_PASSWORD, ENV_PASSWORD)


def with_secrets(url: str) -> str:
    """``url`` with a password in its user part and in two query parameters."""
    parsed = make_url(url).set(password=PASSWORD).update_query_dict(
        {"password": QUERY_PASSWORD, "sslpassword": SSL_PASSWORD})
    text = parsed.render_as_string(hide_password=False)
    assert all(s in text for s in SECRETS[:3])
    return text


def run(*args, db: str | None = None, env_url: str | None = None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    env["PGPASSWORD"] = ENV_PASSWORD
    if env_url:
        env["TRACEDB_URL"] = env_url
    argv = [sys.executable, "-m", "tracedb"] + (["--db", db] if db else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env,
                          cwd=cwd)


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


def warehouse_text(url: str) -> str:
    """Every row of every table of the warehouse, as text."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(repr(row) for t in inspect(conn).get_table_names()
                             for row in conn.exec_driver_sql(f'SELECT * FROM "{t}"'))
    finally:
        engine.dispose()


def test_no_secret_in_the_warehouse_a_report_or_any_output(pg_url, tmp_path):
    url = with_secrets(pg_url)
    out = tmp_path / "report"
    procs = [
        run("ingest", str(example_tree()), db=url, cwd=tmp_path),
        run("ingest", str(example_tree()), "--format", "json", env_url=url, cwd=tmp_path),
        run("runs", db=url),
        run("diverge", db=url),
        run("diverge", "--format", "json", env_url=url),
        run("report", str(out), db=url, cwd=tmp_path),
        run("report", str(tmp_path / "again"), env_url=url, cwd=tmp_path),
        run("sql", "SELECT argv, cwd FROM command_log", "--format", "json", db=url),
        run("query", "load_commands", "--param", "set_id=1", db=url),
        run("db", "check", db=url),
        run("db", "revision", db=url),
        run("db", "upgrade", db=url),
        run("--version", db=url),
        run("demo", "--dir", str(tmp_path / "demo"), db=url, cwd=tmp_path),
    ]
    for p in procs:
        assert p.returncode in (0, 1), (p.args, p.stderr)
    # errors a user can cause, each naming the warehouse or the command
    unreachable = with_secrets(pg_url.replace("127.0.0.1:5432", "127.0.0.1:1"))
    errors = [
        run("diverge", "--cand", "@999Z", db=url),
        run("sql", "DELETE FROM command_log", db=url),
        run("report", str(out), db=url),  # not empty
        run("runs", db=unreachable),
        run("runs", env_url=unreachable),
        run("runs", db=url.replace("postgresql+psycopg", "postgresql+nosuchdriver")),
        run("runs", db=url.replace("://", ":/")),
    ]
    for p in errors:
        assert p.returncode == 2 and "Traceback" not in p.stderr, (p.args, p.stderr)
        assert p.stderr.strip().count("\n") == 0, p.stderr
    assert "127.0.0.1:1" in errors[3].stderr and "***" in errors[3].stderr
    for p in procs + errors:
        assert not leaks(p.stdout + p.stderr), (p.args, p.stdout, p.stderr)

    files = [f for f in out.rglob("*") if f.is_file()]
    assert {"commands.txt", "trace_env.json", "first_divergence.md"} <= {f.name for f in files}
    for f in files:
        assert not leaks(f.read_bytes()), f
    commands = (out / "commands.txt").read_text()
    assert "--db 'postgresql+psycopg://postgres:***@127.0.0.1:5432/test?" in commands
    assert "password=***" in commands and "sslpassword=***" in commands
    env = json.loads((out / "env" / "trace_env.json").read_text())
    assert env["database"]["url"].startswith("postgresql+psycopg://postgres:***@")

    stored = warehouse_text(pg_url)
    assert not leaks(stored)
    assert "postgres:***@127.0.0.1" in stored  # the commands are there, masked


def test_a_report_masks_what_an_older_tracedb_recorded_in_clear(pg_url, tmp_path):
    url = with_secrets(pg_url)
    assert run("ingest", str(example_tree()), db=url, cwd=tmp_path).returncode == 0
    engine = create_engine(pg_url)
    with engine.begin() as conn:  # as tracedb 0.x wrote it
        conn.exec_driver_sql("UPDATE command_log SET argv = %s",
                             (json.dumps(["tracedb", "--db", url, "ingest", "reports/"]),))
    engine.dispose()
    out = tmp_path / "report"
    proc = run("report", str(out), db=url)
    assert proc.returncode == 0, proc.stderr
    for f in (p for p in out.rglob("*") if p.is_file()):
        assert not leaks(f.read_bytes()), f
    assert "postgres:***@" in (out / "commands.txt").read_text()


@pytest.mark.parametrize("text, masked", [
    ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
    ("postgresql+psycopg://u:p%40ss@h:5432/db?sslmode=require&password=x",
     "postgresql+psycopg://u:***@h:5432/db?sslmode=require&password=***"),
    ("postgresql://u@h/db?sslpassword=a&passfile=.pgpass&api_token=t&x=1",
     "postgresql://u@h/db?sslpassword=***&passfile=***&api_token=***&x=1"),
    ("--db=postgresql://a:b@c/d", "--db=postgresql://a:***@c/d"),
    ("host=h password='a b' user=u", "host=h password=*** user=u"),
    ("sqlite:///reports/passing/x.sqlite", "sqlite:///reports/passing/x.sqlite"),
    ("postgresql://u@h/db?options=-csearch_path%3Dx", "postgresql://u@h/db?options=-csearch_path%3Dx"),
])
def test_mask_secrets(text, masked):
    assert mask_secrets(text) == masked


def test_a_known_secret_is_masked_anywhere(monkeypatch):
    from tracedb.store.engine import make_engine

    make_engine("postgresql+psycopg://u:w0rd-of-pass@h/db").dispose()
    assert mask_secrets("failed near w0rd-of-pass here") == "failed near *** here"
    monkeypatch.setenv("PGPASSWORD", "from-the-env")
    assert mask_secrets("echo from-the-env") == "echo ***"
    make_engine("postgresql+psycopg://u:pw@h/db?password=abc").dispose()
    assert mask_secrets("pwd: /abc/x") == "pwd: /abc/x"  # too short to be searched for
    assert mask_secrets("postgresql:/u:pw@h/db") == "postgresql:/u:***@h/db"
