#!/usr/bin/env python3
"""Many bases, one service: v8help with a messages directory of N documents against one.

Run through bench/bases.sh (which installs wrk and builds v8help in release mode); see the
README's Benchmarks section. Usage: bases.py WORKDIR V8HELP_BINARY [DOCUMENTS].

For each directory (N documents, then 1) it starts `v8help serve --messages DIR`, reads the
load time v8help logs ("messages directory loaded", took_ms, from the first read of the
directory to the last document rendered), the RSS once listening, then runs wrk over plain
HTTP keep-alive (-t1 -c64), each request asking a random base's /NAME/ (a Lua script), and
checks every answer is a 200.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request

DURATION = os.environ.get("DURATION", "10s")
HTTPS, HTTP = 18543, 18180


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


def make_dir(path, n):
    os.makedirs(path, exist_ok=True)
    for i in range(n):
        doc = {
            "userMessage": f"База {i}: сервер 1С недоступен, обновление до 14:00 (МСК)",
            "userMessages": {"kk": f"{i}-база: 1С сервері 14:00-ге дейін қолжетімсіз"},
            "expires": "2099-01-01T14:00:00+03:00",
        }
        with open(f"{path}/base-{i}.json", "w") as f:
            json.dump(doc, f, ensure_ascii=False)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def start(work, binary, directory):
    log = open(f"{work}/v8help.log", "w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [binary, "--log-format", "json", "serve", "--listen", f"127.0.0.1:{HTTPS}", "--http-listen",
         f"127.0.0.1:{HTTP}", "--message", f"{work}/root.json", "--messages", directory, "--tz", "UTC",
         "--reports-db", "off"],
        stderr=log)
    loaded_ms = None
    while time.monotonic() - started < 120:
        time.sleep(0.05)
        text = open(f"{work}/v8help.log").read()
        for line in text.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            fields = event.get("fields", {})
            if fields.get("message") == "messages directory loaded":
                loaded_ms = float(fields["took_ms"])
        if loaded_ms is not None and "listening on" in text:
            return proc, loaded_ms, time.monotonic() - started
    proc.kill()
    sys.exit(f"v8help did not start: {open(f'{work}/v8help.log').read()[-2000:]}")


def run_wrk(work, n):
    script = f"{work}/bases.lua"
    with open(script, "w") as f:
        f.write(f"math.randomseed(42)\nrequest = function() return wrk.format('GET', '/base-' .. math.random(0, {n - 1}) .. '/') end\n"
                "done = function(summary, latency, requests)\n"
                "  io.write(string.format('non200 %d\\n', summary.errors.status))\nend\n")
    out = sh("wrk", "-t1", "-c64", f"-d{DURATION}", "--latency", "-s", script, f"http://127.0.0.1:{HTTP}/").stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = int(re.search(r"non200 (\d+)", out).group(1))
    return rps, p99, errors


def main():
    work, binary = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    with open(f"{work}/root.json", "w") as f:
        f.write('{"userMessage":"root","expires":"2099-01-01T00:00:00Z"}')
    rows = []
    for count in (n, 1):
        directory = f"{work}/messages-{count}"
        make_dir(directory, count)
        proc, loaded_ms, ready_s = start(work, binary, directory)
        try:
            # One request of each kind answers right, then the load.
            body = urllib.request.urlopen(f"http://127.0.0.1:{HTTP}/base-{count - 1}/").read().decode()
            assert f"База {count - 1}:" in body, body
            rss = rss_kib(proc.pid)
            rps, p99, errors = run_wrk(work, count)
            rss_after = rss_kib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        rows.append((count, loaded_ms, ready_s, rss, rss_after, rps, p99, errors))
    print(f"v8help messages directory, wrk -t1 -c64 -d{DURATION} over plain HTTP keep-alive, random base per request")
    print(f"{'documents':>10} {'load ms':>9} {'ready s':>8} {'RSS MiB':>8} {'RSS after':>10} {'req/s':>10} {'p99 ms':>7} {'non-200':>8}")
    for count, loaded_ms, ready_s, rss, rss_after, rps, p99, errors in rows:
        print(f"{count:>10} {loaded_ms:>9.1f} {ready_s:>8.2f} {rss / 1024:>8.1f} {rss_after / 1024:>10.1f} "
              f"{rps:>10.0f} {p99:>7.2f} {errors:>8}")


if __name__ == "__main__":
    main()
