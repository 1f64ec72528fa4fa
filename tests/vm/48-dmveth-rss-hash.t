#!/usr/bin/env bash
# cap: 90
# dmveth's RSS hash is the Microsoft Toeplitz hash real NICs compute, over
# source address, destination address, source port, destination port (issue
# 12: the kernel's rss_ctx.py and the users' RSS tools count on it).  With
# the Microsoft verification key (ethtool -X hkey) and an equal-4 table,
# 8 TCP connections each over IPv4 and IPv6 from netns a, from source ports
# chosen to spread, each send 64 KiB: every one lands on the queue
# tests/lib/rss-spread.py computes for its 4-tuple (the hash's low bits
# pick the table entry), at least 40 packets there and at most 4 anywhere
# else (neighbour discovery and such).
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
set -o pipefail
dmveth_test_init 4
MSKEY=6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa
if ip netns exec b ethtool -X $DMV_B hkey $MSKEY equal 4 >"$LOG/x" 2>&1 &&
	[ "$(ip netns exec b ethtool -x $DMV_B | sed -n '/hash key/{n;p}')" = $MSKEY ]; then
	ktap_ok "ethtool -X $DMV_B hkey (the Microsoft verification key) equal 4"
else
	ktap_bail "ethtool -X $DMV_B hkey ... equal 4: $(head -n 2 "$LOG/x")"
fi

cat >"$LOG/srv.py" <<'EOF'
import socket, threading
def serve(s):
    while True:
        c, _ = s.accept()
        while c.recv(65536):
            pass
        c.close()
s4 = socket.create_server(("0.0.0.0", 5481))
s6 = socket.create_server(("::", 5481), family=socket.AF_INET6, dualstack_ipv6=False)
for s in (s4, s6):
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
EOF
# the client: one connection at a time, dmb's per-queue counters read
# before and after each
cat >"$LOG/cli.py" <<'EOF'
import importlib.util, re, socket, subprocess, sys
spec = importlib.util.spec_from_file_location("rs", sys.argv[1])
rs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rs)
dev, fam, src, dst = sys.argv[3:7]
key = rs.parse_key(sys.argv[2], 64 if fam == "4" else 256)
def counts():
    out = subprocess.run(["ip", "netns", "exec", "b", "ethtool", "-S", dev],
                         capture_output=True, text=True, check=True).stdout
    return [int(re.search(r"^\s*rx%d_packets: (\d+)$" % q, out, re.M).group(1))
            for q in range(4)]
af = socket.AF_INET if fam == "4" else socket.AF_INET6
for sport in (40000, 40001, 40002, 40007, 40100, 41234, 50000, 60001):
    want = rs.toeplitz(key, socket.inet_pton(af, src) + socket.inet_pton(af, dst) +
                       sport.to_bytes(2, "big") + (5481).to_bytes(2, "big")) % 4
    c0 = counts()
    s = socket.socket(af)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
    s.connect((dst, 5481))
    s.sendall(b"x" * 65536)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    c1 = counts()
    print(sport, want, " ".join(str(b - a) for a, b in zip(c0, c1)), flush=True)
EOF
timeout 60 ip netns exec b python3 "$LOG/srv.py" >"$LOG/srv" 2>&1 &
spid=$!
wait_file_line "$LOG/srv" '^ready$' 30 $spid || ktap_bail "server listening on port 5481 (IPv4 and IPv6): $(head -n 3 "$LOG/srv")"

for fam in 4 6; do
	if [ $fam = 4 ]; then src=$DMV_A4 dst=$DMV_B4; else src=$DMV_A6 dst=$DMV_B6; fi
	out=$(timeout 60 ip netns exec a python3 "$LOG/cli.py" "$TOP/tests/lib/rss-spread.py" $MSKEY $DMV_B $fam $src $dst 2>&1)
	rc=$?
	bad=0 n=0 wants=
	while read -r sport want d0 d1 d2 d3; do
		[[ $sport =~ ^[0-9]+$ ]] || continue
		n=$((n + 1))
		d=("$d0" "$d1" "$d2" "$d3")
		others=$((d0 + d1 + d2 + d3 - d[want]))
		[[ " $wants " == *" $want "* ]] || wants+=" $want"
		if [ "${d[want]}" -lt 40 ] || [ $others -gt 4 ]; then
			bad=$((bad + 1))
			echo "# IPv$fam source port $sport: hash picks queue $want; packets per queue: ${d[*]}"
		fi
	done <<<"$out"
	if [ $rc = 0 ] && [ $n = 8 ] && [ $bad = 0 ] && [ "$(wc -w <<<"$wants")" -ge 3 ]; then
		ktap_ok "IPv$fam: 8 connections, each on the queue the Toeplitz hash of its 4-tuple picks (queues$wants)"
	else
		[ $rc = 0 ] || echo "$out" | tail -n 5 | sed 's/^/# /'
		ktap_fail "IPv$fam: 8 connections, each on the queue the Toeplitz hash of its 4-tuple picks (client exit $rc, $n reported, $bad elsewhere, queues$wants)"
	fi
done
kill $spid 2>/dev/null
bwait $spid 10
ktap_done
