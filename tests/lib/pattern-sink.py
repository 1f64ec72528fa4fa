#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TCP receiver that validates the ncdevmem -v PERIOD pattern.

Usage: pattern-sink.py --listen ADDR --port PORT [--period 7]
                       [--ready FILE] [--max BYTES] [--slow]

Accepts one connection and checks every byte against the pattern the
kernel's `ncdevmem -l -v PERIOD` checks: 1, 2, ..., PERIOD-1, '\\n', ...
Creates FILE once listening (no sleeps needed by the caller).  --max: read
that many bytes, then close (a peer closing mid-stream).  --slow: small
reads with pauses and a small receive buffer (a slow receiver).
Prints "validated N bytes" and exits 0, or names the first bad byte and
exits 1.
"""

import argparse
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--period", type=int, default=7)
    ap.add_argument("--ready")
    ap.add_argument("--max", type=int, default=0)
    ap.add_argument("--slow", action="store_true")
    a = ap.parse_args()

    fam = socket.AF_INET6 if ":" in a.listen else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.slow:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind((a.listen, a.port))
    ls.listen(1)
    if a.ready:
        open(a.ready, "w").close()
    conn, _ = ls.accept()
    ls.close()

    unit = bytes(range(1, a.period)) + b"\n"
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
                        print(f"byte {k}: expected {big[off + j]}, got "
                              f"{data[i + j]}")
                        return 1
            i += n
            off = 0
        pos += len(data)
        if a.slow:
            time.sleep(0.001)
    conn.close()
    print(f"validated {pos} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
