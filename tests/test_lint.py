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


# The layers of README's Architecture section, lowest first: a module may import its
# own layer and those below it, never one above (data flows one way).
LAYERS = {"errors": 0, "paths": 0, "workers": 0, "store": 1, "ingest": 2, "compare": 3, "curate": 3,
          "present": 4, "api": 5, "cli": 6, "cli_options": 6}


def _imports(path):
    """The tracedb modules a file imports (anywhere in it, lazily or not)."""
    import ast

    parts = list(path.relative_to(REPO).with_suffix("").parts)
    package = parts[:-1] if path.name != "__init__.py" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            if target[:1] == ["tracedb"]:
                for alias in node.names:
                    yield ".".join(target + [alias.name]) if len(target) == 1 \
                        else ".".join(target)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_layers_import_downward_and_pandas_stays_at_the_edge():
    upward, pandas = [], []
    for path in sorted((REPO / "tracedb").rglob("*.py")):
        parts = path.relative_to(REPO / "tracedb").with_suffix("").parts
        layer = parts[0]
        if layer not in LAYERS:  # the package root: __init__, __main__
            continue
        for name in _imports(path):
            if name.split(".")[0] == "pandas":
                pandas.append(str(path.relative_to(REPO)))
            target = name.split(".")
            if target[0] == "tracedb" and len(target) > 1 and target[1] in LAYERS \
                    and LAYERS[target[1]] > LAYERS[layer]:
                upward.append(f"{path.relative_to(REPO)} imports {name}")
    assert upward == []
    assert set(pandas) == {"tracedb/api.py"}
