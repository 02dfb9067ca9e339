#!/usr/bin/env bash
# Ten minutes of keep-alive and fresh-TLS clients, quiet connections, an edit storm and
# hostile Accept-Language against one v8help; RSS and CPU per minute (see bench/soak.py
# and the README). Usage: bench/soak.sh   (env: SOAK_MINUTES=10)
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python3 bench/soak.py "$work" "$PWD/target/release/v8help"
