#!/usr/bin/env bash
# The main job on the embedded SQLite default: set up, write the example reports
# tree (./tracedb-example/reports) and ingest it into ./tracedb.sqlite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/tracedb demo "$@"
