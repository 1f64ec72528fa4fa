#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TCP receiver that validates the ncdevmem -v PERIOD pattern.

Usage: pattern-sink.py --listen ADDR --port PORT [--period 7]
                       [--ready FILE] [--max BYTES] [--slow] [--conns N]

Accepts one connection (--conns N: N of them, each read by its own thread)
and checks every byte of each against the pattern the kernel's
`ncdevmem -l -v PERIOD` checks: 1, 2, ..., PERIOD-1, '\\n', ..., from
stream position 0 on every connection.  Creates FILE once listening (no
sleeps needed by the caller).  --max: read that many bytes per connection,
then close (a peer closing mid-stream).  --slow: small reads with pauses
and a small receive buffer (a slow receiver).
Prints "validated N bytes" (with --conns: first one line per connection,
"connection I: validated N bytes", then "validated TOTAL bytes in N
connections") and exits 0, or names the first bad byte and exits 1.
"""

import argparse
import socket
import sys
import threading
import time


def check(conn, a, unit):
    """Validate one connection's stream; (bytes, None) or (pos, error)."""
    big = unit * (1 << 16)
    pos = 0
    while True:
        want = 1024 if a.slow else 1 << 20
        if a.max:
            want = min(want, a.max - pos)
            if want <= 0:
                break
        data = conn.recv(want)
        if not data:
            break
        off = pos % a.period
        i = 0
        while i < len(data):
            n = min(len(data) - i, len(big) - off)
            if data[i:i + n] != big[off:off + n]:
                for j in range(n):
                    if data[i + j] != big[off + j]:
                        k = pos + i + j
                        return k, (f"byte {k}: expected {big[off + j]}, got "
                                   f"{data[i + j]}")
            i += n
            off = 0
        pos += len(data)
        if a.slow:
            time.sleep(0.001)
    conn.close()
    return pos, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--period", type=int, default=7)
    ap.add_argument("--ready")
    ap.add_argument("--max", type=int, default=0)
    ap.add_argument("--slow", action="store_true")
    ap.add_argument("--conns", type=int, default=1)
    a = ap.parse_args()

    fam = socket.AF_INET6 if ":" in a.listen else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.slow:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind((a.listen, a.port))
    ls.listen(a.conns)
    if a.ready:
        open(a.ready, "w").close()
    unit = bytes(range(1, a.period)) + b"\n"
    if a.conns == 1:
        conn, _ = ls.accept()
        ls.close()
        pos, err = check(conn, a, unit)
        if err:
            print(err)
            return 1
        print(f"validated {pos} bytes")
        return 0

    results = [None] * a.conns
    threads = []
    for i in range(a.conns):
        conn, _ = ls.accept()

        def run(i=i, conn=conn):
            results[i] = check(conn, a, unit)
        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
    ls.close()
    for t in threads:
        t.join()
    rc = 0
    for i, (pos, err) in enumerate(results):
        if err:
            print(f"connection {i}: {err}")
            rc = 1
        else:
            print(f"connection {i}: validated {pos} bytes")
    if rc == 0:
        total = sum(pos for pos, _ in results)
        print(f"validated {total} bytes in {a.conns} connections")
    return rc


if __name__ == "__main__":
    sys.exit(main())
