#!/usr/bin/env bash
# v8help against nginx on this machine, in one run (see bench/compare.py and the README).
# Usage: bench/compare.sh [ROUNDS]   (env: DURATION=10s per wrk run, BURST=3000 connections)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python3 bench/compare.py "$work" "$PWD/target/release/v8help" "${1:-3}"
