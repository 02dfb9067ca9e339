#!/usr/bin/env python3
"""What clients get while an admin's editor rewrites the message file: v8help against nginx.

Run through bench/edit_storm.sh. Usage: edit_storm.py WORKDIR V8HELP_BINARY [SAVES].

Each server serves its own copy of the same file, rewritten SAVES times the way editors and
shell redirections do it: truncate, write half, a short pause, write the rest (in place),
and every fourth save delete + recreate. Meanwhile 4 client threads per server request the
message over keep-alive HTTP and sort every answer: a complete JSON document whose
userMessage is one of the versions written, or not (invalid JSON, a truncated body, a 404,
a transport error).
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from compare import NG_HTTP, V8_HTTP, nginx_conf, sh, wait_up  # noqa: E402

CLIENTS = 4


def doc(i):
    return json.dumps({"userMessage": f"Работы, версия {i}: до 14:00, дежурный +7 (495) 123-45-67",
                       "expires": "2099-01-01T14:00:00+03:00"}, ensure_ascii=False).encode() + b"\n"


def save(path, content, i):
    if i % 4 == 3:
        os.remove(path)
        time.sleep(0.002)
        with open(path, "wb") as f:
            f.write(content)
    else:
        with open(path, "wb") as f:  # truncates
            f.write(content[: len(content) // 2])
            f.flush()
            time.sleep(0.002)
            f.write(content[len(content) // 2:])
    os.chmod(path, 0o644)


def client(port, allowed, stop, counts, lock):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/message.json")
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                kind = f"status {r.status}"
            else:
                try:
                    kind = "ok" if json.loads(body)["userMessage"] in allowed else "unknown text"
                except Exception:
                    kind = "invalid JSON"
        except Exception:
            kind = "transport error"
            conn = None
        with lock:
            counts[kind] = counts.get(kind, 0) + 1


def storm(name, port, path, saves):
    allowed = {json.loads(doc(i))["userMessage"] for i in range(saves + 1)}
    stop, lock, counts = threading.Event(), threading.Lock(), {}
    threads = [threading.Thread(target=client, args=(port, allowed, stop, counts, lock)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    started = time.time()
    for i in range(1, saves + 1):
        save(path, doc(i), i)
        time.sleep(0.005)
    elapsed = time.time() - started
    stop.set()
    for t in threads:
        t.join()
    total = sum(counts.values())
    bad = total - counts.get("ok", 0)
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if k != "ok") or "none"
    print(f"| {name} | {saves} saves in {elapsed:.1f} s | {total} | {bad} ({bad / total * 100:.1f}%) | {detail} |",
          flush=True)


def main():
    work, binary = sys.argv[1], sys.argv[2]
    saves = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    os.chmod(work, 0o755)
    for d in ("www", "msg"):
        os.makedirs(f"{work}/{d}", exist_ok=True)
        os.chmod(f"{work}/{d}", 0o755)
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1")
    for path in (f"{work}/www/message.json", f"{work}/msg/message.json"):
        save(path, doc(0), 0)
    version = tuple(int(x) for x in __import__("re").search(r"nginx/([\d.]+)", sh("nginx", "-v").stderr)
                    .group(1).split("."))
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(nginx_conf(work, version))
    v8 = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:18443", "--http-listen", f"127.0.0.1:{V8_HTTP}",
                           "--cert", f"{work}/cert.pem", "--key", f"{work}/key.pem",
                           "--message", f"{work}/msg/message.json", "--tz", "UTC"],
                          stderr=open(f"{work}/v8help.log", "w"))
    sh("nginx", "-c", f"{work}/nginx.conf")
    try:
        wait_up(f"http://127.0.0.1:{V8_HTTP}/message.json")
        wait_up(f"http://127.0.0.1:{NG_HTTP}/message.json")
        print(f"nginx {'.'.join(map(str, version))} and v8help, {CLIENTS} keep-alive clients each, plain HTTP\n")
        print("| server | file rewritten | answers | bad answers | kinds of bad answers |")
        print("|---|---|---:|---:|---|")
        storm("nginx", NG_HTTP, f"{work}/www/message.json", saves)
        storm("v8help", V8_HTTP, f"{work}/msg/message.json", saves)
    finally:
        v8.send_signal(signal.SIGTERM)
        v8.wait(timeout=20)
        subprocess.run(["nginx", "-c", f"{work}/nginx.conf", "-s", "stop"], capture_output=True)


if __name__ == "__main__":
    main()
