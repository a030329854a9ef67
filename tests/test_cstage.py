"""The C accelerator (tracedb/ingest/_cstage.c) against the Python it replaces.

The loader reads lines, numbers and their precision, and writes staged rows,
through ``tracedb.ingest.rows``: C when it was built, Python otherwise. Both must give
the same warehouse, byte for byte.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys

import pytest

import tracedb
from benchmarks.generate import write_campaign
from tracedb.ingest import files as ingest_files
from tracedb.ingest import parse, runs, staging
from tracedb.ingest import rows as stage
from tracedb.ingest.discover import TraceFile
from tracedb.ingest.runs import UnitRules
from tracedb.store import layout

from .conftest import REPO, pg_schema_url

cstage = pytest.importorskip(
    "tracedb.ingest._cstage", reason="C accelerator not built (no C compiler or SQLite headers "
    "when tracedb was installed); the pure-Python loader is in use")

UNITS = UnitRules((("_m", "m"),), frozenset({"m"}))


def test_ci_builds_the_accelerator():
    # CI installs from a clean clone: setup.py's optional extension must be built there
    if os.environ.get("CI"):
        assert stage.IMPLEMENTATION == "c", stage.REASON


def test_parameter_counts_are_the_layouts():
    # the C binds rows by position: as many values per row as the layout has columns
    assert (cstage.TAP_PARAMS, cstage.VALUE_PARAMS, cstage.KEY_PARAMS) == (
        len(layout.TAP_COLS), len(layout.VALUE_COLS), 1 + len(layout.PAIRING_KEY_COLS))
    assert cstage.ABI == stage.CSTAGE_ABI
    if os.environ.get("TRACEDB_PURE_PYTHON", "") in ("", "0"):  # so rows.py uses it
        assert stage.IMPLEMENTATION == "c" and stage.REASON == ""
        assert stage.Stager is cstage.Stager


def _fewer(sql: str) -> str:  # the last parameter a constant
    head, _, tail = sql.rpartition("?")
    return head + "NULL" + tail


def _more(sql: str) -> str:  # the same values and one more parameter
    return sql.replace(" VALUES (", " SELECT ").removesuffix(")") + " WHERE ? IS NULL"


@pytest.mark.parametrize("which", [0, 1, 2], ids=["tap_sql", "value_sql", "key_sql"])
@pytest.mark.parametrize("change", [_fewer, _more], ids=["fewer", "more"])
def test_stager_refuses_statements_with_other_parameter_counts(which, change):
    sql = list(layout.STAGE_SQL)
    sql[which] = change(sql[which])
    # valid SQL for the stage tables (the Python twin takes it) ...
    stager = stage.PyStager(layout.STAGE_DDL, *sql)
    stager.image()
    # ... that the C stager, which binds a fixed number of values, does not
    name = ("tap_sql", "value_sql", "key_sql")[which]
    with pytest.raises(ValueError, match=f"{name} has \\d+ parameters, the C stager binds"):
        cstage.Stager(layout.STAGE_DDL, *sql)
    cstage.Stager(layout.STAGE_DDL, *layout.STAGE_SQL).image()  # the layout's own


@pytest.mark.parametrize(("fake", "env", "reason"), [
    ({"ABI": stage.CSTAGE_ABI - 1}, {}, "C accelerator is stale (ABI"),
    ({"TAP_PARAMS": len(layout.TAP_COLS) - 1}, {},
     f"C accelerator binds {(len(layout.TAP_COLS) - 1, *stage.LAYOUT_PARAMS[1:])} values"),
    ({"KEY_PARAMS": len(layout.PAIRING_KEY_COLS)}, {},
     f"values per tap, value and new_key row, the layout has {stage.LAYOUT_PARAMS})"),
    (None, {}, "C accelerator not built"),
    ({}, {"TRACEDB_PURE_PYTHON": "1"}, "forced by TRACEDB_PURE_PYTHON"),
    ({}, {"TRACEDB_PURE_PYTHON": ""}, ""),
], ids=["stale-abi", "tap-params", "key-params", "not-built", "forced", "fits"])
def test_dispatch_uses_the_accelerator_only_when_it_fits(fake, env, reason):
    # a stand-in for the built module, as rows.py finds it at import
    code = ("import sys, types\n"
            "import tracedb.ingest._cstage as real\n"
            "fake = types.ModuleType(real.__name__)\n"
            "fake.__dict__.update({k: v for k, v in vars(real).items() if k[:2] != '__'})\n"
            f"fake.__dict__.update({fake or {}!r})\n"
            f"sys.modules[real.__name__] = {'None' if fake is None else 'fake'}\n"
            "from tracedb.cli import main\n"
            "sys.argv = ['tracedb', '--version']\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "TRACEDB_PURE_PYTHON": "", **env})
    assert proc.returncode == 0, proc.stderr
    if reason:
        assert "(loader: pure Python; " in proc.stdout and reason in proc.stdout, proc.stdout
    else:
        assert proc.stdout.strip().endswith("(loader: C accelerator)"), proc.stdout


def both_scans(text: str):
    c, py = cstage.scan(text), stage.scan_lines(text)
    assert c == py, text[:200]
    for _no, _side, _name, raw, n in c[0]:
        comps = cstage.components(raw)
        assert comps == [tuple(x) for x in parse.fast_components(raw)], raw
        assert len(comps) == n
    return c


def test_scan_agrees_with_python_on_every_corpus_file(corpus):
    fast = rest = 0
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        f, r, _n = both_scans(text)
        fast += len(f)
        rest += len(r)
    assert fast > 1000 and rest > 1000  # both paths exercised by real traces


TRICKY = [
    "TRACE_C: a 1", "TRACE_C:a 1", "TRACE_C a 1", "  \tTRACE_PY: a=1", "TRACE_PY:a=-1e-5",
    "TRACE_C: pixel 1 2", "TRACE_C: a = 1", "TRACE_C: a==1", "TRACE_C: a e5", "TRACE_C: a 1e",
    "TRACE_C: a 1.2.3", "TRACE_C: a --1", "TRACE_C: a .", "TRACE_C: a +", "TRACE_C: a 1e999",
    "TRACE_C: a -1e999 1", "TRACE_C: a 1e-400", "TRACE_C: a 0 0.0 -0 +0.000e+00",
    "TRACE_C: a.b_c 1\t2  ", "TRACE_C: 9a 1", "TRACE_CX: a 1", "TRACE_C_PHI: a 1",
    "TRACE_PYTHON: a 1", "TRACE_C:", "TRACE_C: a", "TRACE_C: a 1 x", "TRACE_C: a 1\r",
    "TRACE_C: a 1\x0b", "TRACE_C: é 1", "TRACE_C: a 1é", "tracing pixel (spixel=1, fpixel=2)",
    "xpixel", "Pixel", "TRACE_", "TRACE", " TRACE_C: a 123456789012345678901234567890",
    "TRACE_C: a 0.000000000000000000000000001234500", "TRACE_C: a 1E+05 .5 5. +.5E-3",
    "TRACE_C: a " + "1" * 400, "TRACE_C: a 1" + " 2" * 5000,
    "TRACE: a = 1", "TRACE:x", "TRACEX: a 1", "  h_mean=1 k=2", "\tk=2", "   ", " \r", "\t\t",
    "  pixel (1, 2)", "TRACE_C: a 1\tTRACE_PY: a 1", "=== PIXEL (1, 2) ===", "PIXE", "IXE",
]


def test_scan_agrees_on_tricky_lines():
    for line in TRICKY:
        both_scans(line + "\n")
    both_scans("\n".join(TRICKY))  # no final newline
    both_scans("\r\n".join(TRICKY) + "\r\n")  # CRLF: one trailing CR per line goes
    both_scans("")
    both_scans("\n\n")
    both_scans("TRACE_C: a " + "1 " * 40000)  # longer than MAX_LINE_CHARS


def test_scan_agrees_on_random_lines():
    rng = random.Random(11)
    heads = ["TRACE_C: ", "TRACE_PY:", " TRACE_C ", "", "TRACE_PY ", "\tTRACE_C:\t",
             "TRACE_C_PHI: ", "TRACE_PY", "x TRACE_C: ", "  ", "\t", "TRACE: "]
    names = ["a", "pixel", "x.y", "_k9", "9a", "é", "F_latt", ""]
    seps = [" ", "=", "\t", "  ", ":", " = ", ""]
    noise = ["e", "E", ".", "+", "-", "inf", "nan", "x", ",", "(", "é", "\r", "\t"]

    def number() -> str:
        tok = rng.choice(["", "-", "+"]) + str(rng.randint(0, 10**rng.randint(0, 12)))
        if rng.random() < 0.5:
            tok = tok[:rng.randint(0, len(tok))] + "." + tok[rng.randint(0, len(tok)):]
        if rng.random() < 0.3:
            tok += rng.choice("eE") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 400))
        if rng.random() < 0.05:
            i = rng.randint(0, len(tok))
            tok = tok[:i] + rng.choice(noise) + tok[i:]
        return tok

    lines = [rng.choice(heads) + rng.choice(names) + rng.choice(seps)
             + rng.choice([" ", "\t", "  "]).join(number() for _ in range(rng.randint(0, 6)))
             + rng.choice(["", " ", "\t", "\r"]) for _ in range(30000)]
    f, r, n = both_scans("\n".join(lines))
    assert len(f) > 2000 and len(r) > 5000  # both outcomes, many times


def test_precision_agrees_on_random_numbers():
    rng = random.Random(5)
    for _ in range(50000):
        mant = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22)))
        cut = rng.randint(0, len(mant))
        tok = rng.choice(["", "-", "+"]) + mant[:cut] + rng.choice([".", ""]) + mant[cut:]
        if rng.random() < 0.5:
            tok += rng.choice("eE") + rng.choice(["", "-", "+"]) + str(rng.randint(0, 330))
        try:
            value = float(tok)
        except ValueError:
            continue
        if value in (float("inf"), float("-inf")):
            continue
        assert cstage.precision(tok) == parse._precision(tok), tok


def dump(image: bytes) -> dict:
    con = sqlite3.connect(":memory:")
    con.deserialize(image)
    out = {t: con.execute(f"SELECT *, {', '.join(f'typeof({c})' for c in cols)} FROM {t} "
                          "ORDER BY rowid").fetchall()
           for t, cols in (("tap", layout.TAP_COLS), ("value", layout.VALUE_COLS))}
    con.close()
    return out


def test_c_and_python_stagers_write_the_same_rows(tmp_path):
    write_campaign(tmp_path / "c", pixels=40, stamps=1, seed=3)
    files = sorted(p for p in (tmp_path / "c").rglob("*.log"))
    ctx = staging.StageContext(UNITS, (("*", "F_latt", "Flatt", "name"),), {})
    jobs = [(TraceFile(p, p.name, None), ()) for p in files]
    images = {}
    for impl in ("c", "python"):
        saved = stage.Stager
        stage.Stager = cstage.Stager if impl == "c" else stage.PyStager
        try:
            staged = staging.stage_files((jobs, ctx))
        finally:
            stage.Stager = saved
        assert staged.runs == len(files) and staged.new_keys
        images[impl] = dump(staged.image)
    assert images["c"] == images["python"]
    assert len(images["c"]["value"]) > 10000


def test_a_chunk_scans_and_stages_as_in_its_whole_file():
    # a large file is read in chunks (ingest.stream): lines numbered from the chunk's
    # first, tap orders continuing the run's; C and Python alike
    text = "TRACE_C: a 1 2\nTRACE_C_PHI phi_tic=1 k=2\n  l=3\nTracing pixel (1, 2)\n"
    lines = text.splitlines(keepends=True)
    whole = both_scans(text)
    for impl_scan in (cstage.scan, stage.scan_lines):
        head, tail = impl_scan("".join(lines[:1])), impl_scan("".join(lines[1:]), 1)
        assert (head[0] + tail[0], head[1] + tail[1], head[2] + tail[2]) == whole
    taps = [(7, "c", "a", "1 2", 2), (9, "c", "b", "3", 1)]
    static = [("", "a", "", 1, None, "a", 1, 5), ("", "b", "", 1, None, "b", 1, 4)]
    images = []
    for stager in (cstage.Stager, stage.PyStager):
        st = stager(layout.STAGE_DDL, *layout.STAGE_SQL)
        st.run(3, 3 << layout.TAP_BITS, taps[:1], static[:1], [0])
        st.run(3, 3 << layout.TAP_BITS, taps[1:], static[1:], [0], 1)
        images.append(dump(st.image()))
    one = stage.PyStager(layout.STAGE_DDL, *layout.STAGE_SQL)
    one.run(3, 3 << layout.TAP_BITS, taps, static, [1, 0])
    assert images[0] == images[1]
    assert sorted(images[0]["tap"]) == sorted(dump(one.image())["tap"])
    assert [r[2] for r in sorted(images[0]["tap"])] == [1, 2]  # seq


def copy_rows(data: bytes) -> list[list[str]]:
    return [line.split("\t") for line in data.decode().splitlines()]


def test_c_and_python_write_the_same_copy_text(tmp_path):
    # PostgreSQL's staged rows: the same COPY text from C and Python, and the same
    # rows as the SQLite stage (numbers read back equal, text fields unescaped)
    write_campaign(tmp_path / "c", pixels=40, stamps=1, seed=3)
    files = sorted(p for p in (tmp_path / "c").rglob("*.log"))
    jobs = [(TraceFile(p, p.name, None), ()) for p in files]
    sqlite_ctx = staging.StageContext(UNITS, (("*", "F_latt", "Flatt", "name"),), {})
    staged = staging.stage_files((jobs, sqlite_ctx))
    keys = {k: 1000 + i for i, (_lid, k) in enumerate(staged.new_keys)}
    expected = dump(staging.stage_files(
        (jobs, staging.StageContext(sqlite_ctx.units, sqlite_ctx.aliases, keys))).image)
    # stage each file again with those keys and local run ids, through both stagers
    out, lists = {}, {}
    for impl, stager in (("c", cstage.Stager), ("python", stage.PyStager)):
        st = stager(None)
        templates: dict = {}
        unit_of = runs.unit_lookup(sqlite_ctx.units)
        key_of = runs.alias_lookup(sqlite_ctx.aliases)
        run_id = 0
        for tf, known in jobs:
            for draft in ingest_files.prepare_file((tf, known)).drafts:
                tmpl = runs.run_template(draft, unit_of, key_of, keys.__getitem__, templates)
                _counts, digests = st.run(run_id, run_id << layout.TAP_BITS, draft.taps,
                                          tmpl.static, tmpl.order)
                lists.setdefault(impl, []).append(digests)
                run_id += 1
        out[impl] = st.copy_text()
    assert out["c"] == out["python"]
    # each run's digest list (run.tap_digests): the same from both, its taps' digests
    assert lists["c"] == lists["python"] and len(set(lists["c"])) > 40
    taps, values = (copy_rows(b) for b in out["c"])
    assert len(values) == len(expected["value"]) > 10000
    n = len(layout.VALUE_COLS)
    for got, want in zip(values, expected["value"], strict=True):
        want = want[:n]
        assert [None if f == "\\N" else f for f in got[:3]] == [str(v) for v in want[:3]]
        num = None if got[4] == "\\N" else float(got[4])
        assert num == want[4] and got[5] == want[5] and got[6] == want[6]
        assert (None if got[8] == "\\N" else float(got[8])) == want[8]
    assert len(taps) == len(expected["tap"])


@pytest.mark.parametrize("impl", ["c", "python"])
def test_copy_text_escapes_and_numbers_postgresql_reads_back(impl):
    stager = (cstage.Stager if impl == "c" else stage.PyStager)(None)
    # a tap of the common shape (numbers as written) and one of parsed components
    comps = [("lbl\t", 1.5, "a\\b\nc", "str", None, None), (None, float("nan"), "nan",
                                                              "num", 3, 5e-324)]
    static = [("", "a", "", 1, None, "a", 1, 7)]
    counts, digests = stager.run(3, 3 << 20, [(1, "c", "a", "1.50 -0 1e-400 7E+2 .5", 5)],
                                 static, [0])
    assert counts == (5,)
    assert len(digests) == 8 and digests != bytes(8)  # its one tap's digest
    stager.values(4, [(9, comps)])
    taps, values = stager.copy_text()
    assert taps.decode().split("\t")[:4] == [str((3 << 20) + 1), "3", "1", "1"]
    rows = copy_rows(values)
    # written numbers stay as written unless PostgreSQL would read them otherwise
    # (1e-400 underflows to 0 in float() but is out of range for float8in)
    assert [r[4] for r in rows[:5]] == ["1.50", "-0", "0.0", "7E+2", ".5"]
    assert rows[5][3:] == ["lbl\\t", "1.5", "a\\\\b\\nc", "str", "\\N", "\\N"]
    assert rows[6][4] == "nan" and rows[6][8] == repr(5e-324)
    with pytest.raises(ValueError, match="NUL"):
        (cstage.Stager if impl == "c" else stage.PyStager)(None).values(
            1, [(1, [(None, None, "a\0b", "str", None, None)])])


def test_postgresql_loader_paths_write_the_sqlite_warehouse(big_tree, tmp_path):
    # PostgreSQL stages COPY text in worker processes that register keys and draw
    # run ids themselves, in turn: every path must give SQLite's warehouse, ids and all
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEDB_URL", "TRACEDB_WORKERS")}
    sqlite_url = f"sqlite:///{(tmp_path / 'ref.sqlite').as_posix()}"
    proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", sqlite_url, "ingest",
                           str(big_tree), "--format", "json"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    first = warehouse_rows(sqlite_url)
    for name, extra in (("c-pool", {}), ("python-pool", {"TRACEDB_PURE_PYTHON": "1"}),
                        ("c-one-process", {"TRACEDB_WORKERS": "0"})):
        with pg_schema_url() as url:
            proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "ingest",
                                   str(big_tree), "--format", "json"], cwd=REPO,
                                  env={**env, **extra}, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            other = warehouse_rows(url)
        for table in first:
            assert other[table] == first[table], (name, table)


def warehouse_rows(url: str) -> dict:
    wh = tracedb.connect(url)
    with wh.engine.connect() as conn:
        out = {t: conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY {order}").fetchall()
               for t, order in (("tap", "id"), ("value", "run_id, key_id, idx"),
                                ("run", "id"), ("tap_key", "id"), ("source_file", "id"))}
    wh.close()
    at = out["source_file"][0]._fields.index("loaded_at") if out["source_file"] else 0
    for row in out["source_file"]:
        assert row[at]  # when it was loaded, which differs from load to load
    out["source_file"] = [r[:at] + r[at + 1:] for r in out["source_file"]]
    return out


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    # 2 bundles of 260 files: more than one staged group each, and a process pool
    out = tmp_path_factory.mktemp("cstage")
    write_campaign(out, pixels=260, stamps=1, seed=9)
    return out


def test_every_loader_path_writes_the_same_warehouse(big_tree, tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEDB_URL", "TRACEDB_WORKERS")}
    urls = {}
    for name, extra in (("c-pool", {}), ("python-pool", {"TRACEDB_PURE_PYTHON": "1"}),
                        ("c-one-process", {"TRACEDB_WORKERS": "0"})):
        urls[name] = f"sqlite:///{(tmp_path / (name + '.sqlite')).as_posix()}"
        proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", urls[name], "ingest",
                               str(big_tree), "--format", "json"], cwd=REPO,
                              env={**env, **extra}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    # the unstaged path (SQLite's without serialize/deserialize): in this process
    monkeypatch.setattr("tracedb.store.sqlite.can_stage", lambda: False)
    urls["direct"] = f"sqlite:///{(tmp_path / 'direct.sqlite').as_posix()}"
    assert tracedb.connect(urls["direct"]).ingest([big_tree], workers=0).ok
    rows = {name: warehouse_rows(url) for name, url in urls.items()}
    first = rows.pop("c-pool")
    assert len(first["value"]) > 80000 and len(first["run"]) == 520
    for name, other in rows.items():
        for table in first:
            assert other[table] == first[table], (name, table)


@pytest.mark.parametrize("pure", ["", "1"])
def test_tricky_numbers_load_the_same_on_postgresql(tmp_path, pure):
    # numbers PostgreSQL's float8 input would read differently from float() (or
    # refuse: 1e-400) must reach it as the values SQLite stores; C and Python alike
    lines = [ln for ln in TRICKY if ln.startswith(("TRACE_C", " TRACE_C"))] + [
        "TRACE_C: b nan -nan NaN", "TRACE_C: c 1e-310 -4.9e-324 2.2250738585072014e-308",
        "TRACE_C: d 0.1 1.7976931348623157e308 -0e5 00012.5000", "TRACE_C: e 5 label=x\\y"]
    root = tmp_path / "t" / "c"
    root.mkdir(parents=True)
    (root / "trace_c_pixel_1_2.log").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEDB_URL",)}
    env["TRACEDB_PURE_PYTHON"] = pure

    def load_rows(url):
        proc = subprocess.run([sys.executable, "-m", "tracedb", "--db", url, "ingest",
                               str(tmp_path / "t")], cwd=REPO, env=env, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        rows = warehouse_rows(url)
        return rows["value"], [r[1:] for r in rows["tap"]]

    want = load_rows(f"sqlite:///{(tmp_path / 'wh.sqlite').as_posix()}")
    with pg_schema_url() as url:
        got = load_rows(url)

    def same(a, b):  # NaN != NaN: compare their text
        return [tuple("nan" if v != v else v for v in r) for r in a] == \
            [tuple("nan" if v != v else v for v in r) for r in b]

    assert len(want[0]) > 40
    assert same(got[0], want[0]) and got[1] == want[1]
