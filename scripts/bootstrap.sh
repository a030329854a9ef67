#!/usr/bin/env bash
# Create .venv (if missing) and install tracedb into it with the given extras.
# Usage: scripts/bootstrap.sh [EXTRAS]   e.g. scripts/bootstrap.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
extras=${1:-}
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[$extras]"
else
    .venv/bin/python -m pip install -q -e .
fi
# An install by the former build backend (hatchling) leaves an empty tracedb/ in
# site-packages, which Python would take for the package: remove it.
find .venv/lib -maxdepth 3 -path '*/site-packages/tracedb' -type d -empty -delete
# The C accelerator is optional (a recent pip shows its build's warning): say here
# when this install got the pure-Python loader, and why.
version=$(.venv/bin/tracedb --version)
case "$version" in
    *"C accelerator not built"*)
        echo "note: $version; '.venv/bin/pip install -v -e .' shows the build's error" >&2 ;;
    *"pure Python"*) echo "note: $version" >&2 ;;
esac
