"""The C accelerator (tracedb/_cstage.c) against the Python it replaces.

The loader reads lines, numbers and their precision, and writes staged rows,
through ``tracedb.stage``: C when it was built, Python otherwise. Both must give
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
from tracedb import api, load, parse, stage
from tracedb.discover import TraceFile

from .conftest import REPO

cstage = pytest.importorskip(
    "tracedb._cstage", reason="C accelerator not built (no C compiler or SQLite headers "
    "when tracedb was installed); the pure-Python loader is in use")


def test_ci_builds_the_accelerator():
    # CI installs from a clean clone: the build hook must have compiled it there
    if os.environ.get("CI"):
        assert stage.IMPLEMENTATION == "c"


def both_scans(text: str):
    c, py = cstage.scan(text), parse.scan_lines(text)
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
             "TRACE_C_PHI: ", "TRACE_PY", "x TRACE_C: "]
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
           for t, cols in (("tap", load.TAP_COLS), ("value", load.VALUE_COLS))}
    con.close()
    return out


def test_c_and_python_stagers_write_the_same_rows(tmp_path):
    write_campaign(tmp_path / "c", pixels=40, stamps=1, seed=3)
    files = sorted(p for p in (tmp_path / "c").rglob("*.log"))
    ctx = load.StageContext((("_m", "m"),), (("*", "F_latt", "Flatt"),), {})
    jobs = [(TraceFile(p, p.name, None), ()) for p in files]
    images = {}
    for impl in ("c", "python"):
        saved = stage.Stager
        stage.Stager = cstage.Stager if impl == "c" else stage.PyStager
        try:
            staged = load.stage_files((jobs, ctx))
        finally:
            stage.Stager = saved
        assert staged.runs == len(files) and staged.new_keys
        images[impl] = dump(staged.image)
    assert images["c"] == images["python"]
    assert len(images["c"]["value"]) > 10000


def warehouse_rows(url: str) -> dict:
    wh = tracedb.connect(url)
    with wh.engine.connect() as conn:
        out = {t: conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY {order}").fetchall()
               for t, order in (("tap", "id"), ("value", "run_id, key_id, idx"),
                                ("run", "id"), ("tap_key", "id"), ("source_file", "id"))}
    wh.close()
    for row in out["source_file"]:
        assert row[-1]  # loaded_at
    out["source_file"] = [r[:-1] for r in out["source_file"]]
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
    # the unstaged path (PostgreSQL's, and SQLite's without serialize): in this process
    monkeypatch.setattr(api, "can_stage", lambda: False)
    urls["direct"] = f"sqlite:///{(tmp_path / 'direct.sqlite').as_posix()}"
    assert tracedb.connect(urls["direct"]).ingest([big_tree], workers=0).ok
    rows = {name: warehouse_rows(url) for name, url in urls.items()}
    first = rows.pop("c-pool")
    assert len(first["value"]) > 80000 and len(first["run"]) == 520
    for name, other in rows.items():
        for table in first:
            assert other[table] == first[table], (name, table)
