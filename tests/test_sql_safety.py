"""`tracedb sql` and named queries can only read, on both backends.

Each statement below tries a way around that (several statements behind quoting
tricks, writes, data-modifying CTEs, row locks, utility commands, functions with side
effects in every position, objects a writer planted) through the command line as a
user runs it: one error line, exit code 2, no traceback, and the warehouse (every
table's rows, the list of tables, views, sequences and functions) exactly as before.
Ordinary reads keep working.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from unittest import mock

import pytest
from sqlalchemy import create_engine, inspect

import tracedb
from tracedb.api import example_tree
from tracedb.errors import TracedbError

from .conftest import pg_schema_url

#: Objects a writer could have left in the warehouse, each calling something a read
#: must not reach. Created before the attempts, so that using them is one.
PLANTED = {
    "sqlite": [
        "CREATE VIEW planted_view AS SELECT sqlite_log(1, 'planted') AS p",
        "CREATE VIEW planted_pointer AS SELECT fts3_tokenizer('simple') AS p",
    ],
    "postgresql": [
        "CREATE VIEW planted_view AS SELECT pg_try_advisory_lock(42) AS p",
        "CREATE FUNCTION planted_fn() RETURNS int LANGUAGE sql VOLATILE "
        "AS 'DELETE FROM tap_alias RETURNING 1'",
        "CREATE FUNCTION planted_stable() RETURNS int LANGUAGE plpgsql STABLE "
        "AS 'BEGIN PERFORM pg_advisory_lock(7); RETURN 1; END'",
        "CREATE FUNCTION planted_eq(int, int) RETURNS bool LANGUAGE sql IMMUTABLE "
        "AS 'SELECT $1 = $2'",
        "CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = planted_eq)",
        "CREATE AGGREGATE planted_agg(int) (SFUNC = int4pl, STYPE = int)",
        "CREATE PROCEDURE planted_proc() LANGUAGE sql AS 'DELETE FROM tap_alias'",
    ],
}


def _prepare(url: str, dialect: str, folder):
    """The example tree loaded and compared (saved, so other sessions' SQL sees it), plus
    the planted objects."""
    wh = tracedb.connect(url)
    wh.ingest([example_tree()])
    wh.diverge(save=True)
    wh.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        for ddl in PLANTED[dialect]:
            conn.exec_driver_sql(ddl)
    engine.dispose()
    return url, dialect, folder


@pytest.fixture(scope="module")
def sqlite_warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sqlsafety")
    return _prepare(f"sqlite:///{(folder / 'wh.sqlite').as_posix()}", "sqlite", folder)


@pytest.fixture(scope="module")
def postgresql_warehouse(tmp_path_factory):
    with pg_schema_url() as url:
        yield _prepare(url, "postgresql", tmp_path_factory.mktemp("sqlsafety"))


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request):
    """(url, dialect, directory) of a warehouse shared by this module's tests, on each
    backend."""
    return request.getfixturevalue(f"{request.param}_warehouse")


def snapshot(url: str) -> dict:
    """Everything a write could change: names of tables, views, sequences and
    functions, a digest of every table's rows, sequence positions, large objects."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            tables = sorted(insp.get_table_names())
            out: dict = {"tables": tables, "views": sorted(insp.get_view_names()),
                         "temp": sorted(insp.get_temp_table_names())
                         if conn.dialect.name == "sqlite" else []}
            for t in tables:
                rows = conn.exec_driver_sql(f'SELECT * FROM "{t}"').fetchall()
                out[t] = (len(rows), hashlib.sha256(
                    "\n".join(sorted(map(repr, rows))).encode()).hexdigest())
            if conn.dialect.name == "postgresql":
                seqs = sorted(insp.get_sequence_names())
                out["sequences"] = [(s, conn.exec_driver_sql(
                    f'SELECT last_value, is_called FROM "{s}"').one()) for s in seqs]
                out["functions"] = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_proc WHERE pronamespace = "
                    "current_schema()::regnamespace").scalar()
                out["large objects"] = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_largeobject_metadata").scalar()
                # any session's (analysis makes temporary tables of its own names)
                out["temp"] = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_class WHERE relpersistence = 't' "
                    "AND relname LIKE 'planted%%'").scalar()
            else:
                out["user_version"] = conn.exec_driver_sql("PRAGMA user_version").scalar()
                out["journal_mode"] = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        engine.dispose()
    return out


def cli(capsys, *args):
    """Run the tracedb command line in this process: (exit code, stdout, stderr)."""
    from tracedb import cli as module

    with mock.patch.object(sys, "argv", ["tracedb", *args]):
        try:
            module.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(capsys, url: str, statement: str, *fragments: str, command=("sql",)) -> str:
    code, out, err = cli(capsys, "--db", url, *command, statement)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and out == "", (statement, out, err)
    assert len(lines) == 1 and lines[0].startswith("tracedb: error: "), err
    assert any(f in lines[0] for f in fragments), (statement, lines[0])
    return lines[0]


ONE = "runs one statement at a time"
KIND = "only SELECT, WITH, VALUES"
FUNCTION = "it refuses"
READ_ONLY = "read-only"

#: (statement, what the error says): on both backends.
BOTH = [
    # several statements, however the separator is hidden from a reader of the text
    ("SELECT 1; DELETE FROM tap_alias", ONE),
    ("SELECT ';'; DELETE FROM tap_alias", ONE),
    ("SELECT 1 /* ; */; DELETE FROM tap_alias", ONE),
    ("SELECT 1 -- ;\n; DELETE FROM tap_alias", ONE),
    ("SELECT \"a;b\" FROM (SELECT 1 AS \"a;b\") s; DELETE FROM tap_alias", ONE),
    ("SELECT 1; COMMIT; CREATE TABLE planted(i int); SELECT 1", ONE),
    # writes and schema changes
    ("DELETE FROM tap_alias", KIND),
    ("INSERT INTO pixel (slow, fast) VALUES (1, 2)", KIND),
    ("UPDATE unit SET factor_to_si = 2", KIND),
    ("INSERT INTO tap_alias (channel, name, canonical) SELECT channel, name, canonical "
     "FROM tap_alias", KIND),
    ("DROP TABLE tap_alias", KIND),
    ("DROP VIEW planted_view", KIND),
    ("CREATE TABLE planted (i int)", KIND),
    ("CREATE TEMP TABLE planted (i int)", KIND),
    ("CREATE TABLE planted AS SELECT 1 AS i", KIND),
    ("CREATE INDEX planted ON tap_alias (name)", KIND),
    ("ALTER TABLE tap_alias ADD COLUMN planted int", KIND),
    ("WITH d AS (SELECT 1) DELETE FROM tap_alias", KIND),
    ("EXPLAIN DELETE FROM tap_alias", KIND),
    # transactions: none to end, change or start
    ("COMMIT", KIND),
    ("ROLLBACK", KIND),
    ("BEGIN", KIND),
    ("SAVEPOINT s", KIND),
    ("ANALYZE", KIND),
    ("VACUUM", KIND),
    # objects a writer planted
    ("SELECT * FROM planted_view", FUNCTION),
]

SQLITE = [
    ("REINDEX tap_alias", KIND),
    ("SELECT * FROM planted_pointer", ("unsafe use of fts3_tokenizer", FUNCTION)),
    ("SELECT fts3_tokenizer('simple')", FUNCTION),
    ("SELECT hex(fts3_tokenizer('simple'))", FUNCTION),
    ("SELECT 1 FROM tap_alias WHERE fts3_tokenizer('porter') IS NOT NULL", FUNCTION),
    ("SELECT fts5(NULL)", FUNCTION),
    ("SELECT load_extension('mod_spatialite')", FUNCTION),
    ("SELECT name FROM tap_alias ORDER BY load_extension('x')", FUNCTION),
    ("SELECT sqlite_log(1, 'x')", FUNCTION),
    # not in Python's SQLite; refused by name where a build has them
    ("SELECT writefile('planted', 'x')", ("no such function", FUNCTION)),
    ("SELECT readfile('/etc/passwd')", ("no such function", FUNCTION)),
    ("ATTACH DATABASE 'planted.db' AS planted", KIND),
    ("DETACH DATABASE main", KIND),
    ("VACUUM INTO 'planted.db'", KIND),
    ("PRAGMA query_only = OFF", KIND),
    ("PRAGMA user_version = 5", KIND),
    ("PRAGMA journal_mode = DELETE", KIND),
    ("PRAGMA writable_schema = ON", KIND),
    ("SELECT * FROM pragma_user_version(5)", READ_ONLY),
    ("SELECT * FROM pragma_journal_mode('delete')", READ_ONLY),
    ("CREATE VIRTUAL TABLE planted USING fts5(x)", KIND),
    ("REPLACE INTO unit SELECT * FROM unit", KIND),
    ("INSERT INTO tap_alias DEFAULT VALUES RETURNING *", KIND),
]

PG = [
    # the holes of issue 13: a ';' hidden in dollar quotes and E'' strings
    ("SELECT $$'$$; COMMIT; CREATE TABLE planted(i int); SELECT $$'$$", ONE),
    ("SELECT $$'$$; COMMIT; DELETE FROM tap_alias; SELECT $$'$$", ONE),
    ("SELECT E'\\''; COMMIT; CREATE TABLE planted(i int); SELECT E'\\''", ONE),
    ("SELECT $a$ $b$ ' $b$ $a$; COMMIT; DELETE FROM tap_alias; SELECT $a$ ' $a$", ONE),
    ("SELECT U&'\\0027'; COMMIT; DELETE FROM tap_alias; SELECT U&'\\0027'", ONE),
    ("SELECT 1 /* /* nested */ ; */; DELETE FROM tap_alias", ONE),
    ("SELECT 1; COPY (SELECT 1) TO PROGRAM 'touch planted'", ONE),
    # data-modifying CTEs, row locks, writes behind EXPLAIN ANALYZE
    ("WITH d AS (DELETE FROM tap_alias RETURNING *) SELECT * FROM d", KIND),
    ("WITH u AS (UPDATE unit SET factor_to_si = 2 RETURNING 1) SELECT count(*) FROM u", KIND),
    ("WITH i AS (INSERT INTO pixel (slow, fast) VALUES (1, 2) RETURNING 1) TABLE i", KIND),
    ("SELECT * FROM tap_alias FOR UPDATE", KIND),
    ("SELECT * FROM tap_alias FOR SHARE", KIND),
    ("SELECT * FROM tap_alias FOR KEY SHARE SKIP LOCKED", KIND),
    ("SELECT * FROM (SELECT * FROM tap_alias FOR UPDATE) s", KIND),
    ("EXPLAIN ANALYZE DELETE FROM tap_alias", KIND),
    ("EXPLAIN (ANALYZE, FORMAT JSON) WITH d AS (DELETE FROM tap_alias RETURNING 1) "
     "SELECT * FROM d", KIND),
    ("EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", FUNCTION),
    ("EXPLAIN ANALYZE EXPLAIN SELECT 1", KIND),
    ("SELECT 1 INTO planted", KIND),
    ("SELECT 1 INTO TEMP planted", KIND),
    ("MERGE INTO tap_alias t USING tap_alias s ON false WHEN NOT MATCHED THEN "
     "DO NOTHING", KIND),
    ("TRUNCATE tap_alias", KIND),
    ("INSERT INTO tap_alias SELECT * FROM tap_alias RETURNING 1", KIND),
    # utility commands
    ("COPY (SELECT 1) TO PROGRAM 'touch planted'", KIND),
    ("COPY tap_alias FROM PROGRAM 'true'", KIND),
    ("COPY tap_alias TO STDOUT", KIND),
    ("DO $$ BEGIN DELETE FROM tap_alias; END $$", KIND),
    ("CALL planted_proc()", KIND),
    ("SET ROLE postgres", KIND),
    ("SET SESSION AUTHORIZATION postgres", KIND),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", KIND),
    ("SET TRANSACTION READ WRITE", KIND),
    ("SET search_path = public", KIND),
    ("RESET ALL", KIND),
    ("LISTEN planted", KIND),
    ("NOTIFY planted", KIND),
    ("PREPARE planted AS DELETE FROM tap_alias", KIND),
    ("EXECUTE tracedb_checked", KIND),
    ("DEALLOCATE ALL", KIND),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", KIND),
    ("LOCK TABLE tap_alias IN ACCESS EXCLUSIVE MODE", KIND),
    ("VACUUM FULL tap_alias", KIND),
    ("REINDEX TABLE tap_alias", KIND),
    ("CLUSTER tap_alias", KIND),
    ("CHECKPOINT", KIND),
    ("LOAD 'plpgsql'", KIND),
    ("DISCARD ALL", KIND),
    ("SHOW search_path", KIND),
    ("CREATE EXTENSION dblink", KIND),
    ("GRANT ALL ON tap_alias TO PUBLIC", KIND),
    ("COMMENT ON TABLE tap_alias IS 'planted'", KIND),
    ("REFRESH MATERIALIZED VIEW planted_view", KIND),
    ("ALTER SYSTEM SET work_mem = '1GB'", KIND),
    # functions with side effects, wherever they are called
    ("SELECT pg_read_file('/etc/passwd')", FUNCTION),
    ("SELECT pg_read_binary_file('/etc/passwd')", FUNCTION),
    ("SELECT pg_ls_dir('.')", FUNCTION),
    ("SELECT pg_stat_file('/etc/passwd')", FUNCTION),
    ("SELECT lo_import('/etc/passwd')", FUNCTION),
    ("SELECT lo_export(1, '/tmp/planted')", FUNCTION),
    ("SELECT lo_create(0)", FUNCTION),
    ("SELECT set_config('role', 'postgres', false)", FUNCTION),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", FUNCTION),
    ("SELECT set_config('transaction_read_only', 'off', true)", FUNCTION),
    ("SELECT pg_terminate_backend(pg_backend_pid())", FUNCTION),
    ("SELECT pg_cancel_backend(pg_backend_pid())", FUNCTION),
    ("SELECT pg_reload_conf()", FUNCTION),
    ("SELECT pg_rotate_logfile()", FUNCTION),
    ("SELECT pg_switch_wal()", FUNCTION),
    ("SELECT pg_advisory_lock(1)", FUNCTION),
    ("SELECT pg_try_advisory_lock(1)", FUNCTION),
    ("SELECT pg_advisory_xact_lock(1)", FUNCTION),
    ("SELECT pg_sleep(3600)", FUNCTION),
    ("SELECT txid_current()", FUNCTION),
    ("SELECT pg_current_xact_id()", FUNCTION),
    ("SELECT nextval(pg_get_serial_sequence('run', 'id'))", FUNCTION),
    ("SELECT setval(pg_get_serial_sequence('run', 'id'), 1)", FUNCTION),
    ("SELECT pg_notify('planted', 'x')", FUNCTION),
    ("SELECT query_to_xml('DELETE FROM tap_alias RETURNING 1', true, true, '')", FUNCTION),
    ("SELECT ts_stat('SELECT 1')", FUNCTION),
    ("SELECT pg_logical_emit_message(true, 'x', 'y')", FUNCTION),
    ("SELECT pg_stat_reset()", FUNCTION),
    ("SELECT pg_create_restore_point('planted')", FUNCTION),
    ("SELECT setseed(0.5)", FUNCTION),
    ("SELECT name FROM tap_alias WHERE pg_advisory_lock(2) IS NOT NULL", FUNCTION),
    ("SELECT name FROM tap_alias ORDER BY pg_try_advisory_lock(3)", FUNCTION),
    ("SELECT name FROM tap_alias GROUP BY name HAVING pg_try_advisory_lock(4)", FUNCTION),
    ("SELECT (SELECT pg_advisory_lock(5))", FUNCTION),
    ("SELECT * FROM tap_alias, LATERAL pg_advisory_lock(6) AS l", FUNCTION),
    ("SELECT CASE WHEN false THEN pg_advisory_lock(7) END", FUNCTION),
    ("WITH x AS MATERIALIZED (SELECT pg_advisory_lock(8)) SELECT 1", FUNCTION),
    ("SELECT row_number() OVER (ORDER BY pg_try_advisory_lock(9))", FUNCTION),
    ("SELECT 1 = ANY(ARRAY[pg_advisory_lock(10)::text::int])", FUNCTION),
    ("VALUES (pg_advisory_lock(11))", FUNCTION),
    ("SELECT * FROM tap_alias TABLESAMPLE BERNOULLI (pg_advisory_lock(12)::text::int)",
     FUNCTION),
    # functions, operators and aggregates that are not PostgreSQL's own
    ("SELECT planted_fn()", FUNCTION),
    ("SELECT planted_stable()", FUNCTION),
    ("SELECT 1 === 1", FUNCTION),
    ("SELECT planted_agg(1)", FUNCTION),
    ("SELECT name FROM tap_alias WHERE planted_fn() = 1", FUNCTION),
]

CASES = [(d, s, f) for s, f in BOTH for d in ("sqlite", "postgresql")] \
    + [("sqlite", s, f) for s, f in SQLITE] + [("postgresql", s, f) for s, f in PG]


@pytest.mark.parametrize("dialect, statement, what", CASES,
                         ids=[f"{d}-{i}" for i, (d, _, _) in enumerate(CASES)])
def test_a_bypass_is_refused_and_changes_nothing(request, capsys, monkeypatch, dialect,
                                                 statement, what):
    url, _, folder = request.getfixturevalue(f"{dialect}_warehouse")
    monkeypatch.chdir(folder)  # where a planted file would land
    before = snapshot(url)
    refused(capsys, url, statement, *(what if isinstance(what, tuple) else (what,)))
    assert snapshot(url) == before
    assert not list(folder.glob("planted*"))


def test_the_headline_bypass_as_a_real_process(warehouse):
    # issue 13: dollar quoting hid the ';' from the old statement check
    url, dialect, _ = warehouse
    statement = {"postgresql": "SELECT $$'$$; COMMIT; CREATE TABLE x(i int); SELECT $$'$$",
                 "sqlite": "SELECT ';'; COMMIT; CREATE TABLE x(i int); SELECT ';'"}[dialect]
    before = snapshot(url)
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "sql", statement],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"tracedb: error: tracedb sql {ONE}"
    assert snapshot(url) == before


def test_dblink_is_refused(pg_url, capsys):
    # an extension's functions are not PostgreSQL's own: dblink could write through a
    # connection of its own, outside the read-only transaction
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        if conn.exec_driver_sql("SELECT count(*) FROM pg_available_extensions "
                                "WHERE name = 'dblink'").scalar() == 0:
            pytest.skip("the PostgreSQL server has no dblink extension (contrib)")
    tracedb.connect(pg_url).close()
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS dblink")
        schema = conn.exec_driver_sql(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
            "ON n.oid = e.extnamespace WHERE e.extname = 'dblink'").scalar()
    engine.dispose()
    before = snapshot(pg_url)
    refused(capsys, pg_url, f"SELECT {schema}.dblink_exec('dbname=test', "
                            "'DELETE FROM tap_alias')", FUNCTION)
    refused(capsys, pg_url, f"SELECT * FROM {schema}.dblink('dbname=test', 'SELECT 1') "
                            "AS t(i int)", FUNCTION)
    assert snapshot(pg_url) == before


# --------------------------------------------------------------------------- what still runs


def rows(capsys, url: str, statement: str, *options: str) -> list:
    code, out, err = cli(capsys, "--db", url, "sql", statement, "--format", "json",
                         *options)
    assert code == 0, err
    return json.loads(out)


def test_ordinary_reads_still_run(warehouse, capsys):
    url, dialect, _ = warehouse
    # the example tree: two C and two PyTorch runs, pixels 10,20 and 30,40
    assert rows(capsys, url, "SELECT side, count(*) AS n FROM run GROUP BY side "
                             "ORDER BY side") == [{"side": "c", "n": 2}, {"side": "py", "n": 2}]
    joined = rows(capsys, url, "SELECT p.slow, p.fast, count(*) AS runs FROM run r "
                               "JOIN pixel p ON p.id = r.pixel_id GROUP BY p.slow, p.fast "
                               "ORDER BY p.slow")
    assert joined == [{"slow": 10, "fast": 20, "runs": 2}, {"slow": 30, "fast": 40, "runs": 2}]
    cte = rows(capsys, url, "WITH c AS (SELECT id FROM run WHERE side = 'c') "
                            "SELECT count(*) AS n FROM c")
    assert cte == [{"n": 2}]
    recursive = rows(capsys, url, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                                  "FROM n WHERE i < 5) SELECT sum(i) AS s FROM n")
    assert recursive == [{"s": 15}]
    window = rows(capsys, url, "SELECT side, row_number() OVER (PARTITION BY side ORDER BY "
                               "id) AS k FROM run ORDER BY side, k")
    assert [(r["side"], r["k"]) for r in window] == [("c", 1), ("c", 2), ("py", 1), ("py", 2)]
    agg = rows(capsys, url, "SELECT count(DISTINCT run_id) AS runs, max(seq) >= min(seq) "
                            "AS ordered, lower('AB') || upper('cd') AS s, abs(-2) AS a, "
                            "coalesce(NULL, 3) AS c, CASE WHEN 1 < 2 THEN 'y' END AS w "
                            "FROM tap")
    assert agg[0]["runs"] == 4 and agg[0]["ordered"] in (1, True)
    assert (agg[0]["s"], agg[0]["a"], agg[0]["c"], agg[0]["w"]) == ("abCD", 2, 3, "y")
    # the views made by the migrations (the comparison above filled tap_status)
    view = rows(capsys, url, "SELECT count(*) AS n FROM tap_status WHERE status = "
                             "'diverged' AND key_name = 'beam_center_m'")
    assert view == [{"n": 2}]
    assert rows(capsys, url, "SELECT ';' AS s, '--' AS d, '/*' AS c") == [
        {"s": ";", "d": "--", "c": "/*"}]
    assert rows(capsys, url, "VALUES (1, 'a')") == [{"column1": 1, "column2": "a"}]
    assert rows(capsys, url, "SELECT random() IS NOT NULL AS r") in ([{"r": 1}], [{"r": True}])
    assert rows(capsys, url, "SELECT 1 AS x;") == [{"x": 1}]
    plan = rows(capsys, url, "EXPLAIN SELECT * FROM run WHERE id = 1")
    assert plan  # the engine's plan, a row or more
    if dialect == "postgresql":
        assert rows(capsys, url, "TABLE pixel ORDER BY slow LIMIT 1")[0]["slow"] == 10
        assert rows(capsys, url, "SELECT count(*) AS n FROM run TABLESAMPLE BERNOULLI "
                                 "(100)") == [{"n": 4}]
        assert rows(capsys, url, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                                 "SELECT 1")
        assert rows(capsys, url, "SELECT '%s' AS a, '%%' AS b, $$;$$ AS c") == [
            {"a": "%s", "b": "%%", "c": ";"}]
        # the transaction is read-only and bounded, as the user asked
        assert rows(capsys, url, "SELECT current_setting('transaction_read_only') AS ro, "
                                 "current_setting('statement_timeout') AS t",
                    "--timeout", "5") == [{"ro": "on", "t": "5s"}]
        assert rows(capsys, url, "SELECT pg_size_pretty(pg_total_relation_size('value')) "
                                 "IS NOT NULL AS sized") == [{"sized": True}]


def test_empty_and_timed_out_statements_are_one_line(warehouse, capsys):
    url, _, _ = warehouse
    refused(capsys, url, "", "empty SQL statement")
    refused(capsys, url, "  -- only a comment", "empty SQL statement")
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) " \
              "SELECT count(*) FROM n"
    line = refused(capsys, url, endless, "took longer than 0.5 s", command=(
        "sql", "--timeout", "0.5"))
    assert "--timeout" in line
    refused(capsys, url, "SELECT 1", "--timeout must be a positive number", command=(
        "sql", "--timeout", "0"))


def test_the_api_refuses_as_the_command_line_does(warehouse):
    url, _, _ = warehouse
    wh = tracedb.connect(url)
    before = snapshot(url)
    with pytest.raises(TracedbError, match=ONE):
        wh.sql("SELECT 1; DELETE FROM tap_alias")
    with pytest.raises(TracedbError, match=KIND):
        wh.sql_rows("DELETE FROM tap_alias")
    assert snapshot(url) == before
    assert wh.sql("SELECT count(*) AS n FROM run").n.iloc[0] == 4
    wh.close()


SNEAKY = {"sqlite": "SELECT fts3_tokenizer('simple') AS p",
          "postgresql": "SELECT pg_advisory_lock(1) AS p"}


def test_a_named_query_runs_the_same_way(warehouse, capsys, tmp_path, monkeypatch):
    # `tracedb query NAME` reads a file of queries/: held to a plain read as well
    import shutil

    from tracedb.store import engine, queries

    url, dialect, _ = warehouse
    folder = tmp_path / "queries"
    shutil.copytree(engine.resource_dir("queries"), folder)
    (folder / "sneaky_fn.sql").write_text(f"-- calls a function with effects\n"
                                          f"{SNEAKY[dialect]}\n")
    (folder / "sneaky_two.sql").write_text("SELECT 1 AS a; DELETE FROM tap_alias\n")
    (folder / "sneaky_cte.sql").write_text("WITH d AS (DELETE FROM tap_alias RETURNING 1)"
                                           " SELECT count(*) FROM d\n"
                                           if dialect == "postgresql" else
                                           "DELETE FROM tap_alias\n")
    monkeypatch.setattr(queries, "resource_dir", lambda name: folder)
    queries.sql_text.cache_clear()
    before = snapshot(url)
    try:
        for name, what in (("sneaky_fn", FUNCTION), ("sneaky_two", ONE),
                           ("sneaky_cte", KIND)):
            line = refused(capsys, url, name, what, command=("query",))
            assert f"query '{name}'" in line
        code, out, err = cli(capsys, "--db", url, "query", "runs", "--param", "side=c",
                             "--format", "json")
        assert code == 0 and len(json.loads(out)) == 2, err
    finally:
        queries.sql_text.cache_clear()
    assert snapshot(url) == before
