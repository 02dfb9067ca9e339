"""Soak: ten minutes of mixed good and hostile traffic against one v8help; run through
bench/soak.sh.

At the same time, for SOAK_MINUTES (default 10):
- keep-alive clients: 4 HTTPS/1.1 connections, each asking every 20 ms;
- fresh-TLS clients: a new TLS connection per request, 10 a second; one that cannot
  connect, handshake or get its 200 within 5 s counts as locked out;
- quiet connections from another address (127.0.0.2): silent TCP, TLS handshakes with ALPN
  h2 that then say nothing, partial HTTP/2 prefaces; kept at 600 outstanding (reopened as
  the server closes them), against --max-connections 400;
- an edit storm: the message file rewritten 10 times a second (rename-over and in-place);
- hostile Accept-Language: h2load, 2 HTTP/2 connections, each 200 requests a second with a
  15 KB Accept-Language header of 3,700 entries (HPACK makes it nearly free to resend).

Every minute: the server's RSS and CPU (utime+stime from /proc), answers and failures of
each kind of client, the slowest fresh-TLS answer, and lockouts. At the end: whether RSS and
CPU stayed flat from minute 2 to the end, and whether any client was locked out.
"""

import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from compare import TICKS, make_certificate  # noqa: E402

MINUTES = int(os.environ.get("SOAK_MINUTES", "10"))
# Seconds per "minute" row: 60 for the real run; a few for a quick check of the script.
SAMPLE = float(os.environ.get("SOAK_SAMPLE_SECONDS", "60"))
HTTPS = 18443
HTTP = 18080
PATH = "/message.json"
QUIET_TARGET = 600
stop = threading.Event()
lock = threading.Lock()
counts = {}


def count(key, n=1):
    with lock:
        counts[key] = counts.get(key, 0) + n


def peak(key, value):
    with lock:
        counts[key] = max(counts.get(key, 0), value)


def context(alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=CERT)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def read_response(f):
    """Status and body of one HTTP/1.1 response with Content-Length from a file object."""
    status_line = f.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    body = f.read(length)
    return status, body


def request_bytes(headers=""):
    return f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode()


def keepalive_client():
    ctx = context()
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", HTTPS), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    f = tls.makefile("rb")
                    while not stop.is_set():
                        tls.sendall(request_bytes())
                        status, _ = read_response(f)
                        count("keepalive_ok" if status == 200 else "keepalive_bad")
                        time.sleep(0.02)
        except Exception:
            if not stop.is_set():
                count("keepalive_failed")
                time.sleep(0.1)


def fresh_client():
    ctx = context()
    while not stop.is_set():
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", HTTPS), timeout=5) as raw:
                raw.settimeout(5)
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(request_bytes("Connection: close\r\n"))
                    status, _ = read_response(tls.makefile("rb"))
            took = time.monotonic() - started
            if status == 200 and took < 5:
                count("fresh_ok")
                peak("fresh_slowest_ms", int(took * 1000))
            else:
                count("lockouts")
        except Exception:
            if not stop.is_set():
                count("lockouts")
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))


def quiet_connections():
    """Keeps QUIET_TARGET silent connections from 127.0.0.2 outstanding."""
    ctx = context(("h2",))
    open_socks = []
    kinds = ["silent", "h2-after-tls", "preface"]
    while not stop.is_set():
        # Drop the ones the server closed.
        alive = []
        for s in open_socks:
            try:
                s.setblocking(False)
                data = s.recv(4096)  # an HTTP/2 server's SETTINGS, or nothing
                if data == b"":
                    s.close()
                    count("quiet_closed_by_server")
                    continue
                alive.append(s)
            except (BlockingIOError, ssl.SSLWantReadError):
                alive.append(s)
            except Exception:
                s.close()
                count("quiet_closed_by_server")
        open_socks = alive
        peak("quiet_open_peak", len(open_socks))
        opened = 0
        while len(open_socks) < QUIET_TARGET and opened < 25 and not stop.is_set():
            opened += 1
            kind = random.choice(kinds)
            try:
                raw = socket.socket()
                raw.settimeout(2)
                raw.bind(("127.0.0.2", 0))
                if kind == "preface":
                    raw.connect(("127.0.0.1", HTTP))
                    raw.sendall(b"PRI * HTTP/2.0\r\n")
                    s = raw
                elif kind == "silent":
                    raw.connect(("127.0.0.1", random.choice([HTTP, HTTPS])))
                    s = raw
                else:
                    raw.connect(("127.0.0.1", HTTPS))
                    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                open_socks.append(s)
                count("quiet_opened")
            except Exception:
                count("quiet_refused")
                break
        peak("quiet_open_peak", len(open_socks))
        time.sleep(0.1)
    for s in open_socks:
        s.close()


def edit_storm(message):
    n = 0
    while not stop.is_set():
        n += 1
        doc = (
            '{"userMessage": "Работы до 14:00, правка %d", "expires": "2099-01-01T14:00:00+03:00", '
            '"userMessages": {"kk": "Жұмыс %d", "lv": "Darbi %d", "en": "Works %d"}, "ticket": %d}' % (n, n, n, n, n)
        ).encode()
        if n % 2:
            tmp = message + ".tmp"
            with open(tmp, "wb") as f:
                f.write(doc)
            os.rename(tmp, message)
        else:
            with open(message, "r+b") as f:
                f.truncate(0)
                f.write(doc[: len(doc) // 2])
                f.flush()
                f.write(doc[len(doc) // 2:])
        count("saves")
        time.sleep(0.1)


def hostile_accept_language(work):
    entries = ",".join(f"x{i};q=0.{i % 9 + 1}" for i in range(3700))[: 15 * 1024]
    log = open(f"{work}/h2load.log", "w")
    return subprocess.Popen(
        ["h2load", "-c", "2", "-m", "10", "--rps", "200", "-D", str(int(MINUTES * SAMPLE)),
         "-H", f"accept-language: {entries}", f"https://127.0.0.1:{HTTPS}{PATH}"],
        stdout=log, stderr=subprocess.STDOUT)


def proc_figures(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return ticks, rss


def main():
    global CERT
    work, binary = sys.argv[1], sys.argv[2]
    make_certificate(work)
    CERT = f"{work}/cert.pem"
    message = f"{work}/message.json"
    with open(message, "w") as f:
        f.write('{"userMessage": "start"}')
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{HTTPS}", "--http-listen", f"127.0.0.1:{HTTP}",
         "--cert", CERT, "--key", f"{work}/key.pem", "--message", message, "--tz", "UTC",
         "--max-connections", "400", "--max-connections-per-address", "200",
         "--header-timeout", "5", "--keepalive-timeout", "15", "--reports-db", "off"],
        stderr=open(f"{work}/v8help.log", "w"))
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", HTTPS), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    threads = [threading.Thread(target=keepalive_client) for _ in range(4)]
    threads += [threading.Thread(target=fresh_client), threading.Thread(target=quiet_connections),
                threading.Thread(target=edit_storm, args=(message,))]
    for t in threads:
        t.daemon = True
        t.start()
    h2load = hostile_accept_language(work)
    keys = ["keepalive_ok", "keepalive_failed", "fresh_ok", "lockouts", "fresh_slowest_ms", "quiet_opened",
            "quiet_closed_by_server", "quiet_refused", "quiet_open_peak", "saves"]
    print(f"soak: {MINUTES} min against {binary} (pid {server.pid})")
    print("| minute | RSS MiB | CPU % of one core | " + " | ".join(keys) + " |")
    print("|---:|---:|---:|" + "---:|" * len(keys))
    rows = []
    last_ticks, _ = proc_figures(server.pid)
    for minute in range(1, MINUTES + 1):
        time.sleep(SAMPLE)
        ticks, rss = proc_figures(server.pid)
        with lock:
            snap = dict(counts)
            counts.clear()
        cpu = (ticks - last_ticks) / TICKS / SAMPLE * 100
        last_ticks = ticks
        rows.append((minute, rss / 1024, cpu, snap))
        print(f"| {minute} | {rss / 1024:.1f} | {cpu:.1f} | " + " | ".join(str(snap.get(k, 0)) for k in keys) + " |",
              flush=True)
    stop.set()
    h2load.wait(timeout=60)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    steady = [r for r in rows if r[0] >= 2]
    if steady:
        rss = [r[1] for r in steady]
        cpu = [r[2] for r in steady]
        print(f"\nminutes 2-{MINUTES}: RSS {min(rss):.1f}-{max(rss):.1f} MiB, CPU {min(cpu):.1f}-{max(cpu):.1f} % "
              f"of one core")
    lockouts = sum(r[3].get("lockouts", 0) for r in rows)
    ka_failed = sum(r[3].get("keepalive_failed", 0) for r in rows)
    print(f"fresh-TLS clients locked out: {lockouts}; keep-alive connections lost: {ka_failed}")
    print("h2load (hostile Accept-Language):")
    with open(f"{work}/h2load.log") as f:
        for line in f:
            if line.startswith(("requests:", "status codes:", "finished in")):
                print("  " + line.rstrip())


if __name__ == "__main__":
    main()
