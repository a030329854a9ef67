"""CLI conventions a user of Typer/Click tools takes for granted: read-only commands
leave a missing warehouse missing, no traceback on output that cannot be written,
named queries that say what they need, SQL syntax errors called so, help that shows
defaults and environment variables, shell completion."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import assert_one_line_error, tracedb

PACKAGE = Path(__file__).resolve().parent.parent / "tracedb"

READ_ONLY = [
    ["runs"],
    ["diverge"],
    ["query", "runs"],
    ["sql", "SELECT 1"],
    ["db", "check"],
    ["db", "revision"],
    ["report", "out"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a))
def test_read_only_command_on_a_missing_sqlite_warehouse(tmp_path, args):
    proc = tracedb(*args, cwd=tmp_path)
    assert_one_line_error(proc, "no warehouse at tracedb.sqlite", "tracedb ingest")
    assert list(tmp_path.iterdir()) == []  # no empty warehouse, no report directory


def test_read_only_command_on_an_empty_postgresql_database(pg_url):
    from sqlalchemy import create_engine, inspect

    proc = tracedb("runs", db=pg_url)
    assert_one_line_error(proc, "holds no warehouse", "tracedb ingest")
    engine = create_engine(pg_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert tracedb("ingest", str(PACKAGE / "examples" / "reports"), db=pg_url).returncode == 0
    assert tracedb("runs", db=pg_url).returncode == 0


def test_writing_commands_still_create_the_warehouse(tmp_path):
    proc = tracedb("alias", "omega", "omega_pixel", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tracedb.sqlite").is_file()


@pytest.fixture
def empty_wh(sqlite_url):
    assert tracedb("db", "upgrade", db=sqlite_url).returncode == 0
    return sqlite_url


def test_report_into_a_file_is_one_line(sqlite_url, tmp_path):
    assert tracedb("ingest", str(PACKAGE / "examples" / "reports"), db=sqlite_url
                   ).returncode == 0
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(tracedb("report", str(tmp_path / "afile"), db=sqlite_url),
                          "is a file")
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_output_to_a_full_device_is_one_line(empty_wh, fmt):
    argv = [sys.executable, "-m", "tracedb", "--db", empty_wh, "sql",
            "SELECT 1 AS one", "--format", fmt]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert_one_line_error(proc, "No space left on device")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_closed_pipe_ends_quietly(empty_wh):
    many = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 300000) SELECT i FROM n")
    proc = subprocess.Popen([sys.executable, "-m", "tracedb", "--db", empty_wh, "sql", many,
                             "--format", "csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "i\n"  # then the reader goes away, as `| head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert err == ""


def test_query_lists_only_user_queries_and_names_a_missing_parameter(empty_wh):
    listed = tracedb("query").stdout.split()
    assert {"runs", "taps", "divergence", "metric_timeline", "quarantine"} <= set(listed)
    assert not {"pairing_runs", "tap_roles", "run_config", "compare"} & set(listed)
    assert_one_line_error(tracedb("query", "taps", db=empty_wh),
                          "query 'taps' needs a value for parameter(s) run_id")
    assert_one_line_error(tracedb("query", "metric_timeline", "-p", "case=x", db=empty_wh),
                          "parameter(s) name")
    # a parameter that may be NULL is not required; K= binds NULL on purpose
    assert tracedb("query", "runs", db=empty_wh).returncode == 0
    assert tracedb("query", "taps", "-p", "run_id=", db=empty_wh).returncode == 0


@pytest.mark.parametrize("statement, said", [
    ("SELEC 1", 'syntax error at or near "SELEC"'),
    ("SELECT (1", "syntax error at end of input"),
])
def test_sql_syntax_error_is_called_one(url, statement, said):
    assert tracedb("db", "upgrade", db=url).returncode == 0
    proc = tracedb("sql", statement, db=url)
    # SQLite says 'near', PostgreSQL 'at or near'
    assert_one_line_error(proc, "tracedb sql: syntax error")
    line = proc.stderr.strip()
    assert said.replace("at or near", "near") in line.replace("at or near", "near")
    assert "read-only" not in line


# --------------------------------------------------------------------------- help


def _commands() -> list[list[str]]:
    from tracedb.cli import app

    out = [[c.name or c.callback.__name__.replace("_", "-")] for c in app.registered_commands]
    for group in app.registered_groups:
        out += [[group.name, c.name or c.callback.__name__.replace("_", "-")]
                for c in group.typer_instance.registered_commands]
    return out


def _help(*args: str) -> str:
    from typer.testing import CliRunner

    from tracedb.cli import app

    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_help_shows_defaults_and_no_bool_metavar():
    main = _help()
    assert "[default: (sqlite:///tracedb.sqlite in the current directory)]" in main
    assert "[env var: TRACEDB_URL]" in main
    assert "[default: (newest C run of the pixel)]" in _help("timeline")
    assert "[default: (newest PyTorch run of each pixel)]" in _help("diverge")
    assert "[default: (60)]" in _help("sql")
    assert "[default: (one per CPU, at most 4)]" in _help("ingest")
    for args in [[], *_commands()]:
        text = _help(*args)
        assert "<bool>" not in text, args
    assert re.search(r"--strict\s+count print_precision", _help("diverge"))


def test_every_environment_variable_is_in_help():
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    read = set(re.findall(r'"(TRACEDB_[A-Z_]+)"', source)) | {"PGPASSWORD"}
    assert {"TRACEDB_URL", "TRACEDB_WORKERS", "TRACEDB_STREAM_BYTES",
            "TRACEDB_PURE_PYTHON"} <= read
    main = _help()
    assert all(name in main for name in read), read
    from tracedb.cli import NO_ENVIRONMENT

    for args in _commands():  # every command but `schema` opens a warehouse
        text = _help(*args)
        if " ".join(args) in NO_ENVIRONMENT:
            assert "Environment:" not in text
            continue
        assert "TRACEDB_URL" in text and "PGPASSWORD" in text, args
    ingest = _help("ingest")
    assert all(n in ingest for n in ("TRACEDB_WORKERS", "TRACEDB_STREAM_BYTES",
                                     "TRACEDB_PURE_PYTHON"))
    assert "TRACEDB_WORKERS" in _help("report")


def test_shell_completion_can_be_installed(tmp_path):
    main = _help()
    assert "--install-completion" in main and "--show-completion" in main
    # Typer finds the user's shell from its parent processes; here the shell is named
    # (Typer's own switch for that), and HOME is a scratch directory
    env = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1", "HOME": str(tmp_path),
           "SHELL": "/bin/bash"}
    script = tracedb("--show-completion", "bash", env=env)
    assert script.returncode == 0, script.stderr
    assert "_TRACEDB_COMPLETE=complete_bash" in script.stdout
    installed = tracedb("--install-completion", "bash", env=env)
    assert installed.returncode == 0, installed.stderr
    assert "bash completion installed in" in installed.stdout
    assert "_TRACEDB_COMPLETE=complete_bash" in "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert ".bash_completions/tracedb.sh" in (tmp_path / ".bashrc").read_text()
    env = {"_TRACEDB_COMPLETE": "complete_bash", "COMP_WORDS": "tracedb diverge --format cs",
           "COMP_CWORD": "3"}
    assert tracedb(env=env).stdout.split() == ["csv"]
    env.update(COMP_WORDS="tracedb ru", COMP_CWORD="1")
    assert tracedb(env=env).stdout.split() == ["runs"]


# --------------------------------------------------------------------------- progress


def _with_tty_stderr(argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` with stderr on a pseudo-terminal (a user's terminal), stdout piped."""
    import os
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    env.pop("TRACEDB_URL", None)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other side closed
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode()
    code = proc.wait(timeout=300)
    os.close(master)
    return code, out, seen.decode(errors="replace")


def test_diverge_and_report_show_progress_on_a_terminal_only(sqlite_url, tree, tmp_path):
    assert tracedb("ingest", str(tree), db=sqlite_url).returncode == 0
    base = [sys.executable, "-m", "tracedb", "--db", sqlite_url]
    code, out, tty = _with_tty_stderr(base + ["diverge"])
    assert code == 0 and "beam_center_m" in out
    # the bar is drawn a few times a second, and once more at the end: its last stage
    assert "reading the results of 2 pair(s)" in tty
    plain = tracedb("diverge", db=sqlite_url)
    assert "beam_center_m" in plain.stdout and "comparing" not in plain.stderr  # no terminal
    assert "reading the results" not in plain.stdout + plain.stderr

    code, out, tty = _with_tty_stderr(base + ["report", str(tmp_path / "rep")])
    assert code == 0, tty
    assert "writing diff files" in tty
    assert "report written to" in out
    piped = tracedb("report", str(tmp_path / "rep2"), db=sqlite_url)
    assert piped.returncode == 0 and "comparing" not in piped.stderr
