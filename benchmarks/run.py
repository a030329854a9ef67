"""Benchmark tracedb against the database engine's own limits, side by side.

    python -m benchmarks.run --size small                 # seconds; CI-friendly
    python -m benchmarks.run --size large --backend both  # about 10 million values
    python -m benchmarks.run --large-files only --large-size huge --backend both

For each backend it generates (once) a synthetic campaign with planted
divergences (benchmarks/generate.py) and measures, in the same run:

- ingest: wall time, values/s, peak RSS of the `tracedb ingest` process;
- two baselines of the engine's own bulk load, from CSV flattened by this harness,
  each with its bytes per value: `sqlite3 .import` of the value rows tracedb stores
  (its value table, primary key included), and of the minimal rows (MINIMAL_DDL: a
  value's key, component and number; no index), the floor of issue 17; the ratios;
  on PostgreSQL also `psql \\copy` of those value rows, and of the tap and value
  rows, into tables with the warehouse's indexes (PostgreSQL's own limit for what
  an ingest writes);
- the first divergence of every pixel pair (`tracedb diverge`, run three times,
  the median compared, each answer checked against the planted truth) and its
  ratios to one full scan (the median of three) of the minimal rows (`sqlite3`)
  and of the warehouse's own value rows (`sqlite3` / `psql`);
- `tracedb report` for 100 pixels; warehouse bytes per value; `tracedb --help`;
- one large file alone (``LARGE_FILES``: a C trace of many pixels, per-phi records
  of one pixel; generate.write_large_files): ingest wall time and the peak RSS of
  the ingest's own process and of its worker processes, separately
  (getrusage RUSAGE_SELF and RUSAGE_CHILDREN inside the measured process).

Only ratios measured in the same run mean anything on a shared machine. Each timed
load starts with the disk settled (see ``settle``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tracedb.store.layout import VALUE_COLS

from .generate import write_campaign, write_large_files

SIZES = {"small": dict(pixels=200, stamps=1), "large": dict(pixels=28_800, stamps=1)}
#: Lines of the one-large-file cases per size: (C trace, per-phi records); "huge" is
#: measured only with ``--large-size huge`` (a file of any size stays under the bound)
LARGE_FILES = {"small": (80_000, 50_000), "large": (1_000_000, 200_000),
               "huge": (2_000_000, 1_000_000)}
PG_URL = os.environ.get("TRACEDB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TRACEDB = [sys.executable, "-m", "tracedb"]


def measure_rss(cmd: list[str], env=None, stdout=None) -> dict:
    """Wall seconds and peak RSS (MB, from wait4) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    out_chunks = []
    if stdout is None:
        out_chunks.append(proc.stdout.read())
    err = proc.stderr.read()
    _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": wall, "rc": proc.returncode, "rss_mb": ru.ru_maxrss / 1024,
            "out": b"".join(out_chunks).decode(), "err": err.decode()}


#: Runs tracedb's CLI in this process and, at exit, writes to stderr the peak RSS (KB)
#: of this process and of its (reaped) worker processes.
_RSS_WRAPPER = (
    "import atexit, json, resource, runpy, sys\n"
    "def _rss():\n"
    "    sys.stderr.write('\\nTRACEDB_RSS ' + json.dumps({\n"
    "        'self_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
    "        'children_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}) + '\\n')\n"
    "atexit.register(_rss)\n"
    "sys.argv = ['tracedb'] + sys.argv[1:]\n"
    "runpy.run_module('tracedb', run_name='__main__')\n")


def measure_ingest_rss(args: list[str], env=None) -> dict:
    """measure_rss of ``tracedb ARGS``, with the peak RSS (MB) of the ingest's process
    (``parent_rss_mb``) and of its largest worker process (``workers_rss_mb``; 0 when
    it started none)."""
    r = measure_rss([sys.executable, "-c", _RSS_WRAPPER, *args], env=env)
    line = [ln for ln in r["err"].splitlines() if ln.startswith("TRACEDB_RSS ")]
    if line:
        got = json.loads(line[-1].split(" ", 1)[1])
        r["parent_rss_mb"] = got["self_kb"] / 1024
        r["workers_rss_mb"] = got["children_kb"] / 1024
    return r


def run_large_files(backend: str, work: Path, size: str) -> list[dict]:
    """One large file alone, per case: ingest seconds and peak RSS (see the module)."""
    c_lines, phi_lines = LARGE_FILES[size]
    cases = work / f"large_files_{size}"
    if not (cases / "done").exists():
        write_large_files(cases, c_lines, phi_lines)
        (cases / "done").write_text("")
    lines = {"one_c_file": c_lines, "one_phi_file": phi_lines}
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    schema = f"bench_{uuid.uuid4().hex[:8]}" if backend != "sqlite" else None
    out = []
    try:
        for case in ("one_c_file", "one_phi_file"):
            root = cases / case.split("_")[1] / "reports"
            f = next(root.rglob("*.log"))
            url = fresh_warehouse(backend, work, schema)
            settle()
            ing = measure_ingest_rss(["--db", url, "ingest", str(root), "--format", "json"],
                                     env=env)
            assert ing["rc"] == 0, ing["err"]
            stats = json.loads(ing["out"])
            out.append({"case": case, "lines": lines[case], "mb": f.stat().st_size / 1e6,
                        "values": stats["values"], "seconds": ing["seconds"],
                        "rss_mb": ing["rss_mb"], "parent_rss_mb": ing.get("parent_rss_mb"),
                        "workers_rss_mb": ing.get("workers_rss_mb")})
    finally:
        if schema:
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    return out


def sqlite_shell(db: Path, *commands: str) -> dict:
    return measure_rss(["sqlite3", str(db), *commands])


def psql(url: str, sql: str, schema: str | None = None) -> dict:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    args = ["psql", "-X", "-q", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
            "-U", u.username or "postgres", "-d", u.database or "test", "-v",
            "ON_ERROR_STOP=1", "-c", (f"SET search_path TO {schema}; " if schema else "") + sql]
    return measure_rss(args)


def scanned(run: dict) -> float:
    """A timed scan's seconds; a scan that failed stops the benchmark."""
    assert run["rc"] == 0, run["err"]
    return run["seconds"]


def check_truth(diverge_json: str, truth: dict) -> tuple[int, int]:
    got = json.loads(diverge_json)
    expected = next(iter(truth.values()))
    bad = 0
    for o in got:
        f = o["first"]
        name = None
        if f:
            name = f["tap"] if not f["channel"] else f"{f['channel']}:{f['tap']}"
            if f["loop_key"]:
                name += f"[{f['loop_key']}]"
            if f["occurrence"] and f["occurrence"] > 1:
                name += f"#{f['occurrence']}"
        if expected.get(f"{o['pixel'][0]},{o['pixel'][1]}") != name:
            bad += 1
    return len(got), bad


def export_values_csv(url: str, path: Path, minimal_path: Path) -> int:
    """Flatten the warehouse's value rows to CSV (what the engine baseline loads), and
    the same values as minimal rows (MINIMAL_DDL: the value's key, which is its tap's
    id, naming run and tap; component; number) to ``minimal_path``."""
    import csv

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    n = 0
    cols = ", ".join(f"v.{c}" for c in VALUE_COLUMNS)
    num = VALUE_COLUMNS.index("num")
    with engine.connect() as conn, open(path, "w", newline="") as fh, \
            open(minimal_path, "w", newline="") as mh:
        w, m = csv.writer(fh), csv.writer(mh)
        res = conn.execution_options(stream_results=True).execute(text(
            f"SELECT {cols}, t.id FROM value v "
            "JOIN tap t ON t.run_id = v.run_id AND t.key_id = v.key_id"))
        for rows in iter(lambda: res.fetchmany(50_000), []):
            w.writerows(row[:-1] for row in rows)
            m.writerows((row[-1], row[2], row[num]) for row in rows)
            n += len(rows)
    engine.dispose()
    return n


# the warehouse's value table: its columns in the loader's order (store/layout.py)
VALUE_COLUMNS = VALUE_COLS


def value_ddl(work: Path) -> str:
    """The value table exactly as tracedb's migrations make it on SQLite (from a new,
    empty warehouse), for the sqlite3 shell's import of the same rows."""
    import sqlite3

    import tracedb

    path = work / "ddl.sqlite"
    path.unlink(missing_ok=True)
    tracedb.connect(f"sqlite:///{path.as_posix()}").close()
    with sqlite3.connect(path) as con:
        (ddl,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'value'").fetchone()
    return ddl


SCAN_SQL = "SELECT count(*), sum(num), sum(length(text)), max(half_ulp) FROM value"
#: The information a trace holds, one row per value and no index: the value's key
#: (its tap's id: run and tap), its component and its number. NULL for a value that
#: is not a number (text, nan): the minimal rows of issue 17's floor.
MINIMAL_DDL = "CREATE TABLE value_min (key INTEGER, idx INTEGER, num REAL)"
#: total(), not sum(): sum() of integers stops with "integer overflow" (a float total
#: cannot), and a scan that fails in a few milliseconds must not pass for a fast one
MINIMAL_SCAN_SQL = "SELECT count(*), total(key), total(idx), total(num) FROM value_min"


#: Whether this run uses PostgreSQL (its checkpoints then settle before each load).
USES_POSTGRESQL: list[bool] = [False]


def settle() -> None:
    """Before a timed load: write out what earlier steps left in memory (the kernel's
    dirty pages and, when the run uses PostgreSQL, the server's, with a CHECKPOINT,
    which otherwise trickles out during the next steps), so that no step pays for
    the disk writes of the one before it. Best effort: a role that may not
    CHECKPOINT only skips that part."""
    os.sync()
    if USES_POSTGRESQL[0]:
        psql(PG_URL, "CHECKPOINT")
        os.sync()


def fresh_warehouse(backend: str, work: Path, schema: str | None) -> str:
    """An empty warehouse (schema migrated); its URL."""
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    if backend == "sqlite":
        db = work / "bench.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{db.as_posix()}"
    else:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    subprocess.run([*TRACEDB, "--db", url, "db", "upgrade"], check=True,
                   capture_output=True, env=env)
    return url


def run_backend(backend: str, campaign: Path, work: Path, truth: dict,
                repeat: int = 1) -> dict:
    r: dict = {"backend": backend, "repeat": repeat}
    schema = f"bench_{uuid.uuid4().hex[:8]}" if backend != "sqlite" else None
    db = work / "bench.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    try:
        # ingest and the engine's import of the same rows, alternating, `repeat` times
        # each: the machine is shared, so the fastest of each is compared
        ingests, imports, minimal_imports = [], [], []
        csv_path, minimal_path = work / "values.csv", work / "values_min.csv"
        imp_db, min_db = work / "import.sqlite", work / "import_min.sqlite"
        for _ in range(repeat):
            url = fresh_warehouse(backend, work, schema)
            settle()
            ing = measure_rss([*TRACEDB, "--db", url, "ingest", str(campaign), "--format",
                               "json"], env=env)
            assert ing["rc"] == 0, ing["err"]
            ingests.append(ing)
            if not imports:
                n = export_values_csv(url, csv_path, minimal_path)
            for db_path, ddl, path, table, times in (
                    (imp_db, value_ddl(work), csv_path, "value", imports),
                    (min_db, MINIMAL_DDL, minimal_path, "value_min", minimal_imports)):
                db_path.unlink(missing_ok=True)
                sqlite_shell(db_path, ddl)
                settle()
                imp = sqlite_shell(db_path, ".mode csv", f".import {path} {table}")
                assert imp["rc"] == 0, imp["err"]
                times.append(imp["seconds"])
        ing = min(ingests, key=lambda x: x["seconds"])
        stats = json.loads(ing["out"])
        r["values"] = stats["values"]
        r["ingest_s"] = ing["seconds"]
        r["ingest_all_s"] = [x["seconds"] for x in ingests]
        r["ingest_values_per_s"] = stats["values"] / ing["seconds"]
        r["ingest_rss_mb"] = max(x["rss_mb"] for x in ingests)
        r["sqlite_import_s"] = min(imports)
        r["sqlite_import_all_s"] = imports
        r["ingest_vs_sqlite_import"] = ing["seconds"] / min(imports)
        r["sqlite_import_bytes_per_value"] = imp_db.stat().st_size / max(1, n)
        r["minimal_import_s"] = min(minimal_imports)
        r["minimal_import_all_s"] = minimal_imports
        r["ingest_vs_minimal_import"] = ing["seconds"] / min(minimal_imports)
        r["minimal_bytes_per_value"] = min_db.stat().st_size / max(1, n)
        r["csv_rows"] = n
        r["minimal_scan_s"] = statistics.median(
            scanned(sqlite_shell(min_db, MINIMAL_SCAN_SQL)) for _ in range(3))

        if backend == "sqlite":
            scans = [scanned(sqlite_shell(db, SCAN_SQL)) for _ in range(3)]
        else:
            # PostgreSQL's own bulk load of the same rows: the value rows (as for
            # sqlite3 .import, with their primary key), then the tap rows too, into
            # tables with the warehouse's indexes (no foreign keys)
            tap_path = work / "taps.csv"
            out = psql(PG_URL, f"\\copy {schema}.tap TO '{tap_path}' WITH (FORMAT csv)")
            assert out["rc"] == 0, out["err"]
            copies = {}
            for table, path in (("value", csv_path), ("tap", tap_path)):
                made = psql(PG_URL, f"CREATE TABLE {schema}.{table}_copy "
                                    f"(LIKE {schema}.{table} INCLUDING INDEXES)")
                assert made["rc"] == 0, made["err"]
                settle()
                cp = psql(PG_URL, f"\\copy {schema}.{table}_copy FROM '{path}' "
                                  "WITH (FORMAT csv)")
                assert cp["rc"] == 0, cp["err"]
                copies[table] = cp["seconds"]
            tap_path.unlink()
            r["psql_copy_s"] = copies["value"]
            r["ingest_vs_psql_copy"] = ing["seconds"] / copies["value"]
            r["psql_copy_all_s"] = copies["value"] + copies["tap"]
            r["ingest_vs_psql_copy_all"] = ing["seconds"] / r["psql_copy_all_s"]
            scans = [scanned(psql(PG_URL, SCAN_SQL, schema)) for _ in range(3)]
        r["full_scan_s"] = statistics.median(scans)

        # three runs, the median compared, as for the scans it is set against (the
        # first run after the loads reads a colder cache than the next two)
        divs = [measure_rss([*TRACEDB, "--db", url, "diverge", "--format", "json"], env=env)
                for _ in range(3)]
        for div in divs:
            assert div["rc"] == 0, div["err"]
        div = sorted(divs, key=lambda d: d["seconds"])[1]
        pairs, bad = check_truth(div["out"], truth)
        r["diverge_s"] = div["seconds"]
        r["diverge_all_s"] = [d["seconds"] for d in divs]
        assert all(d["out"] == div["out"] for d in divs), "diverge answered differently"
        r["diverge_pairs"] = pairs
        r["diverge_truth_mismatches"] = bad
        r["diverge_vs_full_scan"] = div["seconds"] / r["full_scan_s"]
        r["diverge_vs_minimal_scan"] = div["seconds"] / r["minimal_scan_s"]
        r["diverge_rss_mb"] = max(d["rss_mb"] for d in divs)

        pix = [f"{o['pixel'][0]},{o['pixel'][1]}" for o in json.loads(div["out"])][:100]
        out = work / f"report_{backend}"
        shutil.rmtree(out, ignore_errors=True)
        rep = measure_rss([*TRACEDB, "--db", url, "report", str(out),
                           *[a for p in pix for a in ("--pixel", p)]], env=env)
        assert rep["rc"] == 0, rep["err"]
        r["report_100_s"] = rep["seconds"]
        r["report_rss_mb"] = rep["rss_mb"]

        if backend == "sqlite":
            sqlite_shell(db, "PRAGMA wal_checkpoint(TRUNCATE)")
            size = db.stat().st_size
        else:
            res = psql(PG_URL, "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                               f"JOIN pg_namespace n ON n.oid = c.relnamespace "
                               f"WHERE n.nspname = '{schema}' AND c.relkind = 'r' "
                               "AND c.relname NOT IN ('value_copy', 'tap_copy')")
            size = int([ln for ln in res["out"].split() if ln.strip().isdigit()][0]) \
                if res["out"].strip() else 0
        r["bytes_per_value"] = size / max(1, r["values"])
    finally:
        if schema:
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    return r


def help_time() -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([*TRACEDB, "--help"], capture_output=True, check=True)
        runs.append(time.perf_counter() - t0)
    return min(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description="tracedb benchmark (ratios in one run)")
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--workdir", type=Path, help="keep the campaign and warehouses here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1,
                    help="ingest and import this many times each (alternating); the "
                         "fastest of each is compared")
    ap.add_argument("--large-files", choices=["yes", "no", "only"], default="yes",
                    help="also ingest one large file alone per case (LARGE_FILES lines); "
                         "only: that and nothing else")
    ap.add_argument("--large-size", choices=sorted(LARGE_FILES),
                    help="the LARGE_FILES size of those files (default: --size)")
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="tracedb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgresql"] if a.backend == "both" else [a.backend]
    USES_POSTGRESQL[0] = "postgresql" in backends
    large_size = a.large_size or a.size
    if a.large_files == "only":
        results = {"size": a.size, "help_s": help_time(), "backends": [
            {"backend": b, "large_files": run_large_files(b, work, large_size)}
            for b in backends]}
        print(json.dumps(results, indent=2))
        print(render(results))
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
        return
    campaign = work / f"campaign_{a.size}_{a.seed}"
    if not (campaign / "truth.json").exists():
        t0 = time.perf_counter()
        info = write_campaign(campaign, seed=a.seed, **SIZES[a.size])
        print(f"generated {info} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    truth = json.loads((campaign / "truth.json").read_text())
    results = {"size": a.size, "help_s": help_time(),
               "backends": [run_backend(b, campaign, work, truth, a.repeat) for b in backends]}
    if a.large_files != "no":
        for r in results["backends"]:
            r["large_files"] = run_large_files(r["backend"], work, large_size)
    print(json.dumps(results, indent=2))
    print(render(results))
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


def render(res: dict) -> str:
    lines = [f"tracedb benchmark, size {res['size']}; tracedb --help {res['help_s']:.3f} s", ""]
    for r in res["backends"]:
        if "values" not in r:  # --large-files only
            lines.append(f"[{r['backend']}]")
            lines += [_large_line(c) for c in r["large_files"]]
            lines.append("")
            continue
        sqlite = r["backend"] == "sqlite"
        lines += [
            f"[{r['backend']}] {r['values']:,} values",
            f"  ingest              {r['ingest_s']:8.2f} s  {r['ingest_values_per_s']:10,.0f} "
            f"values/s  peak RSS {r['ingest_rss_mb']:.0f} MB",
            f"  sqlite3 .import     {r['sqlite_import_s']:8.2f} s  -> ingest / import = "
            f"{r['ingest_vs_sqlite_import']:.2f}x; tracedb's value rows and key, "
            f"{r['sqlite_import_bytes_per_value']:.1f} bytes/value",
            f"  minimal .import     {r['minimal_import_s']:8.2f} s  -> ingest / minimal = "
            f"{r['ingest_vs_minimal_import']:.2f}x"
            + (" (floor <= 2.5x, aim 2x)" if sqlite else "")
            + f"; (key, component, number), no index, "
            f"{r['minimal_bytes_per_value']:.1f} bytes/value",
        ]
        if r.get("repeat", 1) > 1:
            lines.append("  (fastest of " + str(r["repeat"]) + "; ingest " + ", ".join(
                f"{x:.2f}" for x in r["ingest_all_s"]) + " s; import " + ", ".join(
                f"{x:.2f}" for x in r["sqlite_import_all_s"]) + " s; minimal " + ", ".join(
                f"{x:.2f}" for x in r["minimal_import_all_s"]) + " s)")
        if "psql_copy_s" in r:
            lines.append(f"  psql \\copy values    {r['psql_copy_s']:8.2f} s  -> ingest / "
                         f"copy = {r['ingest_vs_psql_copy']:.2f}x (value rows, primary key)")
            lines.append(f"  psql \\copy all       {r['psql_copy_all_s']:8.2f} s  -> ingest / "
                         f"copy = {r['ingest_vs_psql_copy_all']:.2f}x (floor <= 1.3x; tap and "
                         "value rows, their indexes)")
        lines += [
            f"  scan, minimal rows  {r['minimal_scan_s']:8.3f} s  (sqlite3)",
            f"  scan, value rows    {r['full_scan_s']:8.3f} s  ({'sqlite3' if sqlite else 'psql'}"
            ", tracedb's own)",
            f"  diverge, all pairs  {r['diverge_s']:8.2f} s  -> / minimal scan = "
            f"{r['diverge_vs_minimal_scan']:.1f}x" + (" (floor <= 5x, aim 3x)" if sqlite else "")
            + f"; / value-row scan = {r['diverge_vs_full_scan']:.1f}x"
            + ("" if sqlite else " (floor <= 5x)"),
            "                      median of " + ", ".join(
                f"{x:.2f}" for x in r["diverge_all_s"]) + " s",
            f"                      {r['diverge_pairs']} pairs, "
            f"{r['diverge_truth_mismatches']} differ from the planted truth; "
            f"peak RSS {r['diverge_rss_mb']:.0f} MB",
            f"  report, 100 pixels  {r['report_100_s']:8.2f} s  peak RSS "
            f"{r['report_rss_mb']:.0f} MB",
            f"  bytes per value     {r['bytes_per_value']:8.1f}  (the warehouse)",
        ]
        lines += [_large_line(c) for c in r.get("large_files", [])]
        lines.append("")
    return "\n".join(lines)


def _large_line(c: dict) -> str:
    return (f"  {c['case']:<18}  {c['seconds']:8.2f} s  {c['lines']:,} lines "
            f"({c['mb']:.0f} MB, {c['values']:,} values); peak RSS: ingest process "
            f"{c['parent_rss_mb']:.0f} MB, workers {c['workers_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
