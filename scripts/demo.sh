#!/usr/bin/env bash
# The main job on the embedded SQLite default: set up, write the example reports
# tree (./tracedb-example/reports), ingest it into ./tracedb.sqlite, print the
# first divergences and write a report to ./tracedb-example/report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh plot
exec .venv/bin/tracedb demo "$@"
