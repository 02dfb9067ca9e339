#!/usr/bin/env bash
# Many bases, one service (bench/bases.py, figures in the README): how long 10,000 message
# documents take to load, the RSS they cost, and req/s over plain HTTP keep-alive with
# 10,000 documents (each request a random base) against one.
# Usage: bench/bases.sh [DOCUMENTS]   (DURATION=10s per wrk run by default)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python3 bench/bases.py "$work" "$PWD/target/release/v8help" "${1:-10000}"
