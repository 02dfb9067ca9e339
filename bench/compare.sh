#!/usr/bin/env bash
# v8help against nginx on this machine, in one run: installs nginx, wrk and h2load when
# missing, builds v8help in release mode, then runs bench/compare.py.
# Usage: bench/compare.sh [ROUNDS]   (env: DURATION=10s per wrk run, BURST=3000 connections)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# 3,000 clients at once need file descriptors on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release --quiet
work=$(mktemp -d /tmp/v8help-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/compare.py "$work" "$PWD/target/release/v8help" "${1:-3}"
