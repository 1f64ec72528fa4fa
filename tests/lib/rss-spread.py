#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How far a Toeplitz RSS key spreads rss_ctx.py's flows over 4 queues.

Usage: rss-spread.py -4|-6 KEY   (KEY as ethtool -x prints it: aa:bb:...)
       rss-spread.py --hash KEY SRC DST SPORT DPORT   (TCP hash, hex)

The kernel's rss_ctx.py checks traffic spread with 16 iperf3 flows between
two fixed addresses (IPv6 where the test has them, as here) to one port:
their source ports are even and a few steps apart (Linux picks each
connection's port 2 to 16 above the last), so they differ in bits 1-9
(unless they cross a 1024-port boundary).  Toeplitz is linear: source-port
bit j (0 the least significant) is input bit A + 15 - j, after the two
addresses (A = 64 bits for IPv4, 256 for IPv6), and it XORs key bits
A + 45 - j and A + 46 - j into the two low hash bits, which pick the
queue of an equal-4 table (entry = hash mod table size, entry i = queue
i mod 4).  What those pairs for j = 1..9 span decides where the flows can
go: 1 queue, 2 queues (one half of the table, 0-1 or 2-3, when bit 1
never changes; or both), or all 4.  test_rss_context_overlap and _overlap2
need both halves, _flow_hash two queues, on any Toeplitz NIC.  Prints
"N queues, both halves" (or "one half").
"""

import ipaddress
import sys


def toeplitz(key, data):
    """The Microsoft RSS Toeplitz hash of data (bytes) under key (bytes)."""
    k = int.from_bytes(key, "big")
    klen = len(key) * 8
    bits = len(data) * 8
    if bits + 31 > klen:
        sys.exit(f"rss-spread: a {len(key)}-byte key hashes at most "
                 f"{(klen - 31) // 8} bytes of input, not {len(data)}")
    d = int.from_bytes(data, "big")
    h = 0
    for i in range(bits):
        if (d >> (bits - 1 - i)) & 1:
            h ^= (k >> (klen - 32 - i)) & 0xFFFFFFFF
    return h


def parse_key(text, addr_bits):
    """ethtool -x's key text, long enough to hash a TCP 4-tuple whose two
    addresses take @addr_bits bits (as spread()), or exit naming it."""
    need = (addr_bits + 32 + 31 + 7) // 8
    try:
        key = bytes(int(x, 16) for x in text.strip().split(":"))
    except ValueError:
        key = b""
    if len(key) < need:
        sys.exit(f"rss-spread: key '{text.strip()[:20]}' is not {need} or "
                 "more bytes in hex (want ethtool -x's hash key: aa:bb:..., "
                 "40 bytes on dmveth)")
    return key


def spread(key, addr_bits):
    """The XOR offsets source-port bits 1-9 give an equal-4 table's queue:
    Toeplitz is linear, so each bit's offset is the hash of an input with
    only that bit set (addresses and ports zero otherwise)."""
    span = {0}
    for j in range(1, 10):
        data = bytes(addr_bits // 8) + (1 << j).to_bytes(2, "big") + bytes(2)
        pair = toeplitz(key, data) & 3
        span |= {x ^ pair for x in span}
    return span


def main():
    args = sys.argv[1:]
    if len(args) == 6 and args[0] == "--hash":
        addrs = (ipaddress.ip_address(args[2]).packed +
                 ipaddress.ip_address(args[3]).packed)
        key = parse_key(args[1], len(addrs) * 8)
        data = (addrs + int(args[4]).to_bytes(2, "big") +
                int(args[5]).to_bytes(2, "big"))
        print(f"{toeplitz(key, data):08x}")
    elif len(args) == 2 and args[0] in ("-4", "-6"):
        abits = 64 if args[0] == "-4" else 256
        span = spread(parse_key(args[1], abits), abits)
        halves = "both halves" if any(x & 2 for x in span) else "one half"
        print(f"{len(span)} queue{'s' if len(span) > 1 else ''}, {halves}")
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
