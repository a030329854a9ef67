"""The README's examples, run as written on the real corpus (../shared/corpus): every
`tracedb ...` line of its sh blocks as a real command, then its Python and SQL blocks.

They run in README order in one working directory, as a user following the README
would: `reports/` there is the corpus's reports tree (a symlink), the warehouse is the
default `./tracedb.sqlite`, loaded once up front, and whatever an example writes
(`out/`, aliases, accepted divergences) stays in that directory."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys

import pytest

import tracedb

from .conftest import CORPUS, REPO

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [body for kind, body in FENCE.findall(text) if kind == lang]


EXAMPLES = [line.strip() for body in blocks("sh") for line in body.splitlines()
            if line.startswith("tracedb ")]


def exit_code(argv: list[str]) -> int:
    """What the README says the command exits with on the corpus: the corpus diverges
    (phase_c's beam_center_m), so --fail-on-divergence fails; the rest succeed."""
    return 1 if "--fail-on-divergence" in argv else 0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at ../shared/corpus/nanoBragg (expected {CORPUS})")
    work = tmp_path_factory.mktemp("readme")
    (work / "reports").symlink_to(CORPUS / "reports", target_is_directory=True)
    loaded = tracedb.connect(f"sqlite:///{(work / 'tracedb.sqlite').as_posix()}")
    assert loaded.ingest([work / "reports"]).ok
    loaded.close()
    return work


def test_the_readme_has_the_examples_this_file_runs():
    commands = {shlex.split(line, comments=True)[1] for line in EXAMPLES}
    assert {"ingest", "runs", "taps", "diverge", "timeline", "regress", "report",
            "sql", "db"} <= commands
    assert len(blocks("python")) == 1 and len(blocks("sql")) == 1


@pytest.mark.parametrize("line", EXAMPLES, ids=lambda line: shlex.join(
    shlex.split(line, comments=True)[1:]))
def test_readme_example_runs_on_the_corpus(workdir, line):
    argv = shlex.split(line, comments=True)
    env = {k: v for k, v in os.environ.items() if k != "TRACEDB_URL"}
    proc = subprocess.run([sys.executable, "-m", "tracedb", *argv[1:]], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == exit_code(argv), (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "tracedb: error" not in proc.stderr
    assert proc.stdout.strip()


def test_readme_python_runs_on_the_corpus(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("TRACEDB_URL", raising=False)
    [code] = blocks("python")
    names: dict = {}
    exec(compile(code, "README.md (python)", "exec"), names)
    assert len(names["summaries"]) >= 1
    names["wh"].close()


def test_readme_sql_runs_on_the_corpus(workdir):
    [sql] = blocks("sql")
    proc = subprocess.run([sys.executable, "-m", "tracedb", "diverge", "--save"], cwd=workdir,
                          capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "TRACEDB_URL"})
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(workdir / "tracedb.sqlite") as conn:
        rows = conn.execute(sql).fetchall()
    assert rows and all(len(r) == 5 for r in rows)
