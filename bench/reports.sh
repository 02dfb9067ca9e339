#!/usr/bin/env bash
# The error-report intake under load (bench/reports.py, figures in the README):
# getInfo over keep-alive HTTPS, pushReport of 200 KB archives (every one durable), the
# message's p99 during a report flood, and RSS under a flood of 10 MB archives.
# Usage: bench/reports.sh   (DURATION=10s by default; FLOOD_ROUNDS=3 rounds of the flood)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python3 bench/reports.py "$work" "$PWD/target/release/v8help"
