#!/usr/bin/env python3
"""v8help against nginx serving the same JSON file, side by side in one run.

Run through bench/compare.sh (which installs nginx, wrk and h2load and builds v8help);
see the README's Benchmarks section. Usage: compare.py WORKDIR V8HELP_BINARY [ROUNDS].

Both servers get the same certificate (ECDSA P-256), the same bytes and 127.0.0.1 ports.
Servers alternate round by round; the summary gives medians. Besides req/s and p99 latency
it reports each server's own CPU time per request (utime+stime from /proc, summed over
nginx's workers), which does not depend on the load generator sharing the 2 cores.
"""

import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import ssl

DURATION = os.environ.get("DURATION", "10s")
BURST = int(os.environ.get("BURST", "3000"))
TICKS = os.sysconf("SC_CLK_TCK")

V8_HTTPS, V8_HTTP = 18443, 18080
NG_HTTPS, NG_HTTP = 28443, 28080
PATH = "/message.json"

DOC = (
    '{"userMessage":"Сервер 1С недоступен: обновление конфигурации до 14:00 (МСК). '
    'Дежурный администратор: +7 (495) 123-45-67","expires":"2099-01-01T14:00:00+03:00"}\n'
)


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def fetch(url, headers=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def wait_up(url):
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            return fetch(url)
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, conns, extra=()):
    out = sh("wrk", "-t1", f"-c{conns}", f"-d{DURATION}", "--latency", *extra, url).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failures = int(non2xx.group(1)) if non2xx else 0
    if errors:
        failures += sum(int(n) for n in re.findall(r"\d+", errors.group(1)))
    return {"rps": rps, "requests": requests, "p99": to_ms(*m.groups()), "failures": failures}


def run_burst(url, log):
    out = sh("h2load", "--h1", "-n", str(BURST), "-c", str(BURST), "-t", "1", f"--log-file={log}", url).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    total, ok, failed, errored, timeout = map(int, m.groups())
    times = sorted(int(line.split("\t")[2]) / 1000.0 for line in open(log) if line.strip())
    p99 = times[max(0, int(len(times) * 0.99) - 1)] if times else float("nan")
    return {"rps": rps, "requests": ok, "p99": p99, "failures": total - ok}


def nginx_conf(work, version):
    http2_listen, http2_directive = ("", "http2 on;") if version >= (1, 25, 1) else (" http2", "")
    user = "www-data" if subprocess.run(["id", "www-data"], capture_output=True).returncode == 0 else "nobody"
    return f"""
user {user};
worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
    include /etc/nginx/mime.types;
    charset utf-8;
    charset_types application/json;
    access_log off;
    # What a careful admin sets for a small hot file: no open()/fstat() per request.
    sendfile on;
    tcp_nopush on;
    open_file_cache max=100;
    keepalive_requests 10000000;
    # TLS 1.3 as v8help offers it (nginx's own default since 1.23.4; 1.22 stops at TLS 1.2,
    # whose session resumption skips the key exchange that TLS 1.3 always does).
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 1h;
    server {{
        listen 127.0.0.1:{NG_HTTPS} ssl{http2_listen} backlog=8192;
        {http2_directive}
        ssl_certificate {work}/cert.pem;
        ssl_certificate_key {work}/key.pem;
        root {work}/www;
    }}
    server {{
        listen 127.0.0.1:{NG_HTTP} backlog=8192;
        root {work}/www;
    }}
}}
"""


def make_certificate(work):
    """One ECDSA P-256 certificate for 127.0.0.1, used by both servers."""
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
       "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")


def start_v8help(work, binary, message):
    return subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{V8_HTTPS}", "--http-listen",
                             f"127.0.0.1:{V8_HTTP}", "--cert", f"{work}/cert.pem", "--key", f"{work}/key.pem",
                             "--message", message, "--tz", "UTC"], stderr=open(f"{work}/v8help.log", "w"))


def start_nginx(work):
    """Writes nginx.conf for the installed version, starts nginx, returns the version."""
    version = tuple(int(x) for x in re.search(r"nginx/([\d.]+)", sh("nginx", "-v").stderr).group(1).split("."))
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(nginx_conf(work, version))
    sh("nginx", "-c", f"{work}/nginx.conf")
    return version


def stop_servers(work, v8):
    v8.send_signal(signal.SIGTERM)
    v8.wait(timeout=20)
    subprocess.run(["nginx", "-c", f"{work}/nginx.conf", "-s", "stop"], capture_output=True)


def main():
    work, binary = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    os.chmod(work, 0o755)
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    os.chmod(www, 0o755)
    make_certificate(work)
    with open(f"{work}/message.json", "w") as f:
        f.write(DOC)

    v8 = start_v8help(work, binary, f"{work}/message.json")
    status, body, _ = wait_up(f"https://127.0.0.1:{V8_HTTPS}{PATH}")
    # nginx serves exactly the bytes v8help serves.
    with open(f"{www}/message.json", "wb") as f:
        f.write(body)
    os.chmod(f"{www}/message.json", 0o644)
    version = start_nginx(work)
    ng_status, ng_body, _ = wait_up(f"https://127.0.0.1:{NG_HTTPS}{PATH}")
    master = int(open(f"{work}/nginx.pid").read())
    workers = [int(p) for p in sh("pgrep", "-P", str(master)).stdout.split()]
    try:
        for name, port, scheme in [("v8help", V8_HTTPS, "https"), ("nginx", NG_HTTPS, "https"),
                                   ("v8help", V8_HTTP, "http"), ("nginx", NG_HTTP, "http")]:
            s, b, _ = fetch(f"{scheme}://127.0.0.1:{port}{PATH}")
            if s != 200 or b != body:
                raise SystemExit(f"{name} {scheme}: status {s}, body {b!r} differs from {body!r}")
        etags = {"v8help": fetch(f"https://127.0.0.1:{V8_HTTPS}{PATH}")[2]["ETag"],
                 "nginx": fetch(f"https://127.0.0.1:{NG_HTTPS}{PATH}")[2]["ETag"]}
        for name, port in [("v8help", V8_HTTPS), ("nginx", NG_HTTPS)]:
            s, _, _ = fetch(f"https://127.0.0.1:{port}{PATH}", {"If-None-Match": etags[name]})
            if s != 304:
                raise SystemExit(f"{name}: If-None-Match gave {s}, not 304")
        print(f"both servers answer 200 with the same {len(body)}-byte body and 304 on If-None-Match")
        print(f"nginx {'.'.join(map(str, version))} ({len(workers)} workers), v8help {binary}; "
              f"wrk duration {DURATION}, burst {BURST} connections\n")

        pids = {"v8help": [v8.pid], "nginx": workers}
        ports = {"v8help": (V8_HTTPS, V8_HTTP), "nginx": (NG_HTTPS, NG_HTTP)}
        scenarios = [
            ("a", "HTTPS keep-alive GET (wrk -c64)", lambda n: run_wrk(f"https://127.0.0.1:{ports[n][0]}{PATH}", 64)),
            ("b", f"burst: {BURST} fresh TLS handshakes (h2load --h1)",
             lambda n: run_burst(f"https://127.0.0.1:{ports[n][0]}{PATH}", f"{work}/h2load-{n}.log")),
            ("c", "plain HTTP keep-alive (wrk -c64)", lambda n: run_wrk(f"http://127.0.0.1:{ports[n][1]}{PATH}", 64)),
            ("d", "TLS resumption, Connection: close (wrk -c32)",
             lambda n: run_wrk(f"https://127.0.0.1:{ports[n][0]}{PATH}", 32, ("-H", "Connection: close"))),
            ("e", "If-None-Match → 304, keep-alive (wrk -c64)",
             lambda n: run_wrk(f"https://127.0.0.1:{ports[n][0]}{PATH}", 64, ("-H", f"If-None-Match: {etags[n]}"))),
        ]
        results = {(key, n): [] for key, *_ in scenarios for n in ("v8help", "nginx")}
        for r in range(rounds):
            order = ("v8help", "nginx") if r % 2 == 0 else ("nginx", "v8help")
            for key, title, run in scenarios:
                for n in order:
                    before = cpu_ticks(pids[n])
                    res = run(n)
                    res["us_per_req"] = (cpu_ticks(pids[n]) - before) / TICKS * 1e6 / max(res["requests"], 1)
                    results[(key, n)].append(res)
                    print(f"round {r + 1} {key} {n:7} {res['rps']:10.0f} req/s  p99 {res['p99']:8.2f} ms  "
                          f"{res['us_per_req']:7.1f} µs CPU/req  failures {res['failures']}", flush=True)
                    time.sleep(1)

        print("\nmedians over", rounds, "rounds")
        print(f"| scenario | v8help req/s | nginx req/s | req/s ratio | v8help p99 ms | nginx p99 ms | "
              f"v8help µs CPU/req | nginx µs CPU/req | CPU efficiency | failures v8help/nginx |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key, title, _ in scenarios:
            med = {n: {f: statistics.median(x[f] for x in results[(key, n)]) for f in ("rps", "p99", "us_per_req")}
                   for n in ("v8help", "nginx")}
            fails = {n: sum(x["failures"] for x in results[(key, n)]) for n in ("v8help", "nginx")}
            v, g = med["v8help"], med["nginx"]
            print(f"| ({key}) {title} | {v['rps']:.0f} | {g['rps']:.0f} | {v['rps'] / g['rps']:.2f}x | "
                  f"{v['p99']:.2f} | {g['p99']:.2f} | {v['us_per_req']:.1f} | {g['us_per_req']:.1f} | "
                  f"{g['us_per_req'] / v['us_per_req']:.2f}x | {fails['v8help']}/{fails['nginx']} |")
        print(f"\nRSS after the run: v8help {rss_kib([v8.pid]) / 1024:.1f} MiB, "
              f"nginx {rss_kib([master] + workers) / 1024:.1f} MiB (master + {len(workers)} workers)")
    finally:
        stop_servers(work, v8)


if __name__ == "__main__":
    main()
