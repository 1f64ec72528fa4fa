#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How many queues of an "equal 4" RSS table a Toeplitz key spreads flows to.

Usage: rss-spread.py -4|-6 KEY   (KEY as ethtool -x prints it: aa:bb:...)
       rss-spread.py --hash KEY SRC DST SPORT DPORT   (TCP hash, hex)

The kernel's rss_ctx.py checks traffic spread with 16 iperf3 flows between
two fixed addresses (IPv6 where the test has them, as here) to one port:
their source ports are even and a few steps apart (Linux picks each
connection's port 2 to 16 above the last), so they differ in bits 1-9 only.
Toeplitz is linear: source-port bit j (0 the least significant) is input
bit A + 15 - j, after the two addresses (A = 64 bits for IPv4, 256 for
IPv6), and it XORs key bits A + 45 - j and A + 46 - j into the two low
hash bits, which pick the queue of an equal-4 table (entry = hash mod
table size, entry i = queue i mod 4).  Those pairs for j = 1..9 span 0, 1
or 2 dimensions: the flows can reach at most 1, 2 or 4 queues.
A key that reaches only 1 fails rss_ctx.py's overlap and flow-hash cases on any
Toeplitz NIC.  Prints that count.
"""

import ipaddress
import sys


def toeplitz(key, data):
    """The Microsoft RSS Toeplitz hash of data (bytes) under key (bytes)."""
    k = int.from_bytes(key, "big")
    klen = len(key) * 8
    bits = len(data) * 8
    d = int.from_bytes(data, "big")
    h = 0
    for i in range(bits):
        if (d >> (bits - 1 - i)) & 1:
            h ^= (k >> (klen - 32 - i)) & 0xFFFFFFFF
    return h


def parse_key(text):
    key = bytes(int(x, 16) for x in text.strip().split(":"))
    if len(key) < 16:
        sys.exit(f"rss-spread: key of {len(key)} bytes; want ethtool -x's "
                 "hash key (aa:bb:..., 40 bytes on dmveth)")
    return key


def queues_reached(key, addr_bits):
    """Queues of an equal-4 table that source-port bits 1-9 reach."""
    k = int.from_bytes(key, "big")
    klen = len(key) * 8
    pairs = {(k >> (klen - 32 - (addr_bits + 15 - j))) & 3
             for j in range(1, 10)}
    pairs.discard(0)
    return {0: 1, 1: 2}.get(len(pairs), 4)


def main():
    args = sys.argv[1:]
    if len(args) == 6 and args[0] == "--hash":
        key = parse_key(args[1])
        data = (ipaddress.ip_address(args[2]).packed +
                ipaddress.ip_address(args[3]).packed +
                int(args[4]).to_bytes(2, "big") +
                int(args[5]).to_bytes(2, "big"))
        print(f"{toeplitz(key, data):08x}")
    elif len(args) == 2 and args[0] in ("-4", "-6"):
        print(queues_reached(parse_key(args[1]), 64 if args[0] == "-4" else 256))
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
