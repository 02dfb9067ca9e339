#!/usr/bin/env bash
# pushReport throughput of 200 KB archives with two v8help replicas on one PostgreSQL,
# beside one replica on PostgreSQL and SQLite's figure (bench/replicas.py; figures in the
# README). Needs a PostgreSQL server: V8HELP_BENCH_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/postgres (trust auth; a database is created and dropped).
# Usage: bench/replicas.sh   (DURATION=10s by default)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
command -v psql >/dev/null || { echo "bench/replicas.sh needs psql (Debian: postgresql-client)" >&2; exit 1; }
python3 bench/replicas.py "$work" "$PWD/target/release/v8help"
