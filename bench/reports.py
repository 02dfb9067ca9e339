"""The error-report intake under load; run through bench/reports.sh.

1. getInfo answers/s over keep-alive HTTPS (wrk, 2 threads, 64 connections) and the
   server's CPU time per answer.
2. pushReport of a 200 KB archive (incompressible payload) over keep-alive HTTPS, every
   report committed with synchronous=FULL before its 200; the count in the database is
   checked against wrk's.
3. The message endpoint's p99 alone, then during a pushReport flood (both with wrk), in
   FLOOD_ROUNDS rounds (3 by default): one 10-second p99 on a shared 2-core machine moves
   by a third from run to run, so the median ratio is the figure.
4. RSS (sampled every 50 ms) during a flood of 10 MB archives from 64 connections.
"""

import io
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile

sys.path.insert(0, os.path.dirname(__file__))

FLOOD_ROUNDS = int(os.environ.get("FLOOD_ROUNDS", "3"))
from compare import DOC, TICKS, V8_HTTPS, cpu_ticks, make_certificate, rss_kib, run_wrk, wait_up  # noqa: E402

LUA = """
local f = io.open(os.getenv("BODY"), "rb")
wrk.body = f:read("*all")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/zip"
"""


def archive(path, payload_bytes):
    report = open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "reports", "report.json"), "rb").read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("report.json", report)
        z.writestr("screenshot.png", random.Random(1).randbytes(payload_bytes))
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return len(buf.getvalue())


def wrk_post(work, url, body, conns, threads=1, extra=()):
    env = dict(os.environ, BODY=body)
    lua = f"{work}/post.lua"
    with open(lua, "w") as f:
        f.write(LUA)
    old = os.environ.copy()
    os.environ.update(env)
    try:
        return run_wrk(url, conns, extra=("-s", lua, f"-t{threads}", *extra))
    finally:
        os.environ.clear()
        os.environ.update(old)


def main():
    work, binary = sys.argv[1], sys.argv[2]
    make_certificate(work)
    with open(f"{work}/message.json", "w") as f:
        f.write(DOC)
    # As deployed (deploy/systemd: /var/lib/v8help), not in the watched message directory.
    os.makedirs(f"{work}/state", exist_ok=True)
    db = f"{work}/state/reports.db"
    v8 = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{V8_HTTPS}", "--cert", f"{work}/cert.pem",
                           "--key", f"{work}/key.pem", "--message", f"{work}/message.json", "--tz", "UTC",
                           "--reports-db", f"sqlite:{db}"], stderr=open(f"{work}/v8help.log", "w"))
    base = f"https://127.0.0.1:{V8_HTTPS}"
    try:
        wait_up(f"{base}/message.json")
        pids = [v8.pid]
        print(f"machine: {os.cpu_count()} CPUs, shared with other builds; load average {os.getloadavg()[0]:.1f}")

        getinfo = f"{work}/getinfo.json"
        with open(getinfo, "w") as f:
            f.write('{"configName":"БухгалтерияПредприятия","configVersion":"3.0.150.27","appName":"1CV8C",'
                    '"appVersion":"8.3.24.1467","platformInterfaceLanguageCode":"ru",'
                    '"appStackHash":"C0FFEE00C0FFEE00C0FFEE00C0FFEE00"}')
        t0 = cpu_ticks(pids)
        r = wrk_post(work, f"{base}/reports/getInfo", getinfo, 64, threads=2)
        us = (cpu_ticks(pids) - t0) / TICKS / max(r["requests"], 1) * 1e6
        print(f"getInfo: {r['rps']:.0f} answers/s, p99 {r['p99']:.2f} ms, failures {r['failures']}, "
              f"server CPU {us:.1f} µs/answer")

        small = f"{work}/200k.zip"
        size = archive(small, 200 * 1024)
        before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM reports").fetchone()[0]
        t0 = cpu_ticks(pids)
        r = wrk_post(work, f"{base}/reports/pushReport", small, 64, threads=2)
        stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM reports").fetchone()[0] - before
        us = (cpu_ticks(pids) - t0) / TICKS / max(r["requests"], 1) * 1e6
        print(f"pushReport {size} B: {r['rps']:.0f} reports/s, p99 {r['p99']:.1f} ms, failures {r['failures']}, "
              f"stored {stored} of {r['requests']} answered, server CPU {us:.0f} µs/report")

        ratios = []
        for n in range(FLOOD_ROUNDS):
            alone = run_wrk(f"{base}/message.json", 32)
            flood = {}
            t = threading.Thread(target=lambda: flood.update(
                wrk_post(work, f"{base}/reports/pushReport", small, 32, extra=("-d12s",))))
            t.start()
            time.sleep(1)
            during = run_wrk(f"{base}/message.json", 32)
            t.join()
            ratios.append(during['p99'] / alone['p99'])
            print(f"message p99, round {n + 1}: {alone['p99']:.2f} ms alone ({alone['rps']:.0f} req/s), "
                  f"{during['p99']:.2f} ms during a flood of {flood.get('rps', 0):.0f} reports/s "
                  f"({during['rps']:.0f} req/s): ratio {ratios[-1]:.2f}")
        print(f"message p99 during a flood / alone: median {sorted(ratios)[len(ratios) // 2]:.2f} "
              f"of {FLOOD_ROUNDS} rounds ({', '.join(f'{r:.2f}' for r in ratios)})")

        big = f"{work}/10m.zip"
        size = archive(big, 10 * 1024 * 1024)
        peak = [rss_kib(pids)]
        start_rss = peak[0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(pids))
                time.sleep(0.05)

        s = threading.Thread(target=sample)
        s.start()
        r = wrk_post(work, f"{base}/reports/pushReport", big, 64, extra=("-d15s", "--timeout", "30s"))
        done.set()
        s.join()
        print(f"10 MB flood ({size} B archives, 64 connections): {r['rps']:.1f} reports/s, failures {r['failures']}, "
              f"RSS {start_rss / 1024:.0f} MiB before, peak {peak[0] / 1024:.0f} MiB")
    finally:
        v8.terminate()
        v8.wait(timeout=30)


if __name__ == "__main__":
    main()
