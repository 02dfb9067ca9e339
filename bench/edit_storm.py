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
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from compare import NG_HTTP, V8_HTTP, make_certificate, start_nginx, start_v8help, stop_servers, wait_up  # noqa: E402

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
    make_certificate(work)
    for path in (f"{work}/www/message.json", f"{work}/msg/message.json"):
        save(path, doc(0), 0)
    v8 = start_v8help(work, binary, f"{work}/msg/message.json")
    version = start_nginx(work)
    try:
        wait_up(f"http://127.0.0.1:{V8_HTTP}/message.json")
        wait_up(f"http://127.0.0.1:{NG_HTTP}/message.json")
        print(f"nginx {'.'.join(map(str, version))} and v8help, {CLIENTS} keep-alive clients each, plain HTTP\n")
        print("| server | file rewritten | answers | bad answers | kinds of bad answers |")
        print("|---|---|---:|---:|---|")
        storm("nginx", NG_HTTP, f"{work}/www/message.json", saves)
        storm("v8help", V8_HTTP, f"{work}/msg/message.json", saves)
    finally:
        stop_servers(work, v8)


if __name__ == "__main__":
    main()
