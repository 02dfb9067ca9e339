#!/usr/bin/env bash
# What clients get while the message file is rewritten: v8help against nginx (see
# bench/edit_storm.py and the README). Usage: bench/edit_storm.sh [SAVES]
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python3 bench/edit_storm.py "$work" "$PWD/target/release/v8help" "${1:-300}"
