"""pushReport throughput with two replicas on one PostgreSQL, beside SQLite; run through
bench/replicas.sh.

Each run pushes a 200 KB archive (incompressible payload, as bench/reports.py) over
keep-alive HTTPS with wrk for DURATION, every report committed before its 200, and checks
the count in the database against wrk's:
1. SQLite, one v8help (the #9 figure, measured again on this machine in this run);
2. PostgreSQL, one v8help;
3. PostgreSQL, two v8help processes on one database, half the connections each.
The PostgreSQL server is V8HELP_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres);
each run gets a fresh database, dropped at the end.
"""

import os
import sqlite3
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from compare import DOC, TICKS, V8_HTTPS, cpu_ticks, make_certificate, wait_up  # noqa: E402
from reports import archive, wrk_post  # noqa: E402

SERVER = os.environ.get("V8HELP_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
CONNECTIONS = 64


def psql(url, sql):
    out = subprocess.run(["psql", "-qtAX", url, "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def start(work, binary, port, db, name):
    return subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--cert", f"{work}/cert.pem", "--key", f"{work}/key.pem",
         "--message", f"{work}/message.json", "--tz", "UTC", "--reports-db", db, "--admin-listen", "off",
         "--reports-spool", f"{work}/spool-{name}"],
        stderr=open(f"{work}/v8help-{name}.log", "w"))


def flood(work, body, ports):
    """wrk against each port at once, the connections split between them: (sum of reports/s,
    answered, failures, worst p99)."""
    results = [None] * len(ports)

    def one(i, port):
        results[i] = wrk_post(work, f"https://127.0.0.1:{port}/reports/pushReport", body,
                              CONNECTIONS // len(ports))

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (sum(r["rps"] for r in results), sum(r["requests"] for r in results),
            sum(r["failures"] for r in results), max(r["p99"] for r in results))


def run(label, work, binary, body, size, db, replicas, count):
    ports = [V8_HTTPS + 20 + i for i in range(replicas)]
    procs = [start(work, binary, p, db, f"{label}-{i}") for i, p in enumerate(ports)]
    try:
        for p in ports:
            wait_up(f"https://127.0.0.1:{p}/message.json")
        before = count()
        t0 = cpu_ticks([p.pid for p in procs])
        rps, answered, failures, p99 = flood(work, body, ports)
        us = (cpu_ticks([p.pid for p in procs]) - t0) / TICKS / max(answered, 1) * 1e6
        stored = count() - before
        print(f"{label}: pushReport {size} B: {rps:.0f} reports/s, p99 {p99:.1f} ms, failures {failures}, "
              f"stored {stored} of {answered} answered, v8help CPU {us:.0f} µs/report", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def main():
    work, binary = sys.argv[1], sys.argv[2]
    make_certificate(work)
    with open(f"{work}/message.json", "w") as f:
        f.write(DOC)
    body = f"{work}/200k.zip"
    size = archive(body, 200 * 1024)
    print(f"machine: {os.cpu_count()} CPUs, shared with other builds; load average {os.getloadavg()[0]:.1f}; "
          f"{CONNECTIONS} connections, DURATION={os.environ.get('DURATION', '10s')}", flush=True)

    sqlite_db = f"{work}/reports.db"
    run("SQLite, 1 replica", work, binary, body, size, f"sqlite:{sqlite_db}", 1,
        lambda: sqlite3.connect(sqlite_db).execute("SELECT COUNT(*) FROM reports").fetchone()[0]
        if os.path.exists(sqlite_db) else 0)

    name = f"v8help_bench_{os.getpid()}"
    psql(SERVER, f"CREATE DATABASE {name}")
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    try:
        def pg_count():
            try:
                return int(psql(url, "SELECT COUNT(*) FROM reports") or 0)
            except subprocess.CalledProcessError:
                return 0

        run("PostgreSQL, 1 replica", work, binary, body, size, url, 1, pg_count)
        run("PostgreSQL, 2 replicas", work, binary, body, size, url, 2, pg_count)
        print(f"PostgreSQL: {psql(url, 'SELECT version()')}")
    finally:
        psql(SERVER, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
