# Sourced by the bench scripts: installs nginx, wrk, h2load and openssl when missing, raises
# the file-descriptor limit, builds v8help in release mode and makes a work directory ($work).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
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
