#!/usr/bin/env bash
# Builds v8help.exe (x86_64-pc-windows-gnu) and runs the admin commands and `serve` under
# Wine, comparing their results with the Linux build's: `bases set-help` must write the
# same bytes, `message set` the same document, `bases check` the same report, and `serve`
# must answer and pick up a saved message. Usage: deploy/windows/smoke.sh
#
# Needs: rustup, gcc-mingw-w64-x86-64 and wine64 (Debian). Wine 8 (Debian 12) lacks
# bcryptprimitives.dll, which Rust's standard library imports for ProcessPrng; the script
# builds a one-function stand-in (RtlGenRandom) into its own Wine prefix. Windows itself
# has the real DLL.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=x86_64-pc-windows-gnu
need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target add "$target" >/dev/null
cargo build --release --quiet --bin v8help
cargo build --release --quiet --bin v8help --target "$target"
linux=$PWD/target/release/v8help
exe=$PWD/target/$target/release/v8help.exe

work=$(mktemp -d /tmp/v8help-windows.XXXXXX)
export WINEPREFIX=$work/prefix WINEDEBUG=-all
serve_pid=""
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  /usr/lib/wine/wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
/usr/lib/wine/wine64 cmd /c exit >/dev/null 2>&1 || true
cat >"$work/prng.c" <<'EOF'
#include <windows.h>
BOOLEAN NTAPI SystemFunction036(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
EOF
x86_64-w64-mingw32-gcc -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" "$work/prng.c" -ladvapi32
win() { /usr/lib/wine/wine64 "$exe" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$work"

echo "== v8help --version: $(win --version | tr -d '\r')"
for list in office legacy-cp1251; do
  cp "$OLDPWD/fixtures/v8i/$list.v8i" "win-$list.v8i"
  cp "$OLDPWD/fixtures/v8i/$list.v8i" "lin-$list.v8i"
  set +e
  win bases set-help --text "Дежурный +7 900 000-00-00" --url https://help.example/ "win-$list.v8i" >/dev/null 2>&1
  w=$?
  "$linux" bases set-help --text "Дежурный +7 900 000-00-00" --url https://help.example/ "lin-$list.v8i" >/dev/null 2>&1
  l=$?
  set -e
  [ "$w" = "$l" ] || fail "bases set-help on $list: exit $w on Windows, $l on Linux"
  cmp -s "win-$list.v8i" "lin-$list.v8i" || fail "bases set-help on $list wrote other bytes on Windows"
  echo "== bases set-help $list.v8i: exit $w, the same bytes as on Linux"
done
diff <(win bases check win-office.v8i 2>&1 | tr -d '\r' | sed 's/win-/LIST-/g') \
  <("$linux" bases check lin-office.v8i 2>&1 | sed 's/lin-/LIST-/g') || fail "bases check reads differently"
echo "== bases check: the same report as on Linux"

win message set "Работы до 14:00" --until 2030-01-01T14:00 --tz Europe/Moscow --lang en "Maintenance until 14:00" --file win.json >/dev/null
"$linux" message set "Работы до 14:00" --until 2030-01-01T14:00 --tz Europe/Moscow --lang en "Maintenance until 14:00" --file lin.json >/dev/null
cmp -s win.json lin.json || fail "message set wrote another document on Windows"
echo '{"userMessage": 5}' >bad.json
if win message check bad.json >check.out 2>&1; then fail "message check accepted a bad document"; fi
grep -q 'line 1: field "userMessage"' check.out || fail "message check: $(cat check.out)"
echo "== message set/check: the same document as on Linux; a bad one refused with its line and field"

win serve --listen 127.0.0.1:18443 --http-listen 127.0.0.1:18080 --message win.json --reports-db off >serve.log 2>&1 &
serve_pid=$!
for _ in $(seq 1 60); do
  curl -sf http://127.0.0.1:18080/message.json >/dev/null 2>&1 && break
  sleep 0.5
done
got=$(curl -skf https://127.0.0.1:18443/message.json) || fail "serve did not answer: $(tr -d '\r' <serve.log)"
case "$got" in *"Работы до 14:00"*) ;; *) fail "serve answered $got" ;; esac
win message set "Back at 15:00" --until 2030-01-01T15:00 --file win.json >/dev/null
for _ in $(seq 1 20); do
  got=$(curl -sf http://127.0.0.1:18080/message.json)
  case "$got" in *"Back at 15:00"*) break ;; esac
  sleep 0.25
done
case "$got" in *"Back at 15:00"*) ;; *) fail "a saved message was not served: $got" ;; esac
echo "== serve: HTTPS and HTTP answer; a saved message is served at once"
echo "all Windows checks passed"
