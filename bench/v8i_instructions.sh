#!/usr/bin/env bash
# Instructions the v8i reader takes for a 10,000-base list (examples/v8i_instructions.rs),
# counted by callgrind: comparable between two builds whatever else the machine runs.
# Usage: bench/v8i_instructions.sh   (prints instructions per round, plain and with diagnostics)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
cargo build --release --quiet --example v8i_instructions
bin=target/release/examples/v8i_instructions
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for mode in plain diagnostics; do
  for rounds in 1 3; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$mode.$rounds" "$bin" "$mode" "$rounds" >/dev/null 2>"$out/log"
    grep -m1 '^summary:' "$out/$mode.$rounds" | awk '{print $2}' > "$out/$mode.$rounds.n"
  done
  one=$(cat "$out/$mode.1.n"); three=$(cat "$out/$mode.3.n")
  echo "$mode: $(( (three - one) / 2 )) instructions per round"
done
