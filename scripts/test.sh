#!/usr/bin/env bash
# Set up and run the whole test suite, on SQLite and on PostgreSQL.
# PostgreSQL: $TRACEDB_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test);
# its tests skip with the reason where no server answers, except under CI=true.
# Chromium (for the browser test) is installed with apt-get where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start \
            || echo "note: could not start PostgreSQL; its tests will say why" >&2
    fi
fi
# The browser test (tests/test_browse.py) drives Debian's Chromium; install it where
# missing (as root, or with sudo that asks no password).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends chromium; } >/dev/null \
        || echo "note: could not install chromium; the browser test will say why" >&2
fi
exec .venv/bin/python -m pytest "$@"
