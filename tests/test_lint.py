"""The code stays ruff-clean (ARCHITECTURE.md conventions)."""

import shutil
import subprocess
import sys

import pytest

from .conftest import REPO


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(REPO / ".venv" / "bin" / "ruff")
    if not shutil.which(ruff):
        pytest.skip("ruff not installed (pip install -e '.[dev]')")
    proc = subprocess.run([ruff, "check", "tracedb", "tests", "migrations", "benchmarks"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_machine_paths_in_tracked_files():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    bad = []
    for name in files.stdout.split():
        p = REPO / name
        if p.suffix in {".py", ".md", ".sql", ".sh", ".toml", ".txt", ".json", ".log", ""}:
            text = p.read_text(encoding="utf-8", errors="replace") if p.is_file() else ""
            for marker in ("/work/", "/root/", "/home/", "/tmp/pytest"):
                if marker in text and name != "tests/test_lint.py":
                    bad.append(f"{name}: {marker}")
    assert not bad, bad
    assert sys.version_info >= (3, 11)
