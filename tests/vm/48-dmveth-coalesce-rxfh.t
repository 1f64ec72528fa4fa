#!/usr/bin/env bash
# cap: 40
# dmveth: interrupt coalescing (ethtool -c/-C) and the RSS hash fields
# (ethtool -n/-N rx-flow-hash), issue 12.
# - ethtool -c reports the defaults (rx/tx-usecs 0, rx/tx-frames 1: NAPI
#   runs per frame; stats-block-usecs 0); -C rx-usecs 64 rx-frames 32
#   tx-usecs 128 tx-frames 16 adaptive-rx on reads back, per device (the
#   peer keeps its defaults) and across link down/up.
# - Refused, with the driver's message and nothing changed: rx-usecs 9000
#   (above 8192), rx-usecs 0 rx-frames 0, stats-block-usecs 10; the core
#   refuses what dmveth does not advertise (rx-usecs-irq).
# - rx-flow-hash: tcp4 and udp6 read "sdfn" by default, sctp4 and esp6
#   (hashed as ip4/ip6) "sd"; udp6 sd reads back; sctp4 s (set through ip4)
#   and tcp4 sdv (VLAN) are refused.
# - The setting is what the hash uses: 16 TCP connections from one address
#   (different source ports) spread over several of dmb's 4 queues with
#   tcp4 sdfn, and all land on one queue with tcp4 sd.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
set -o pipefail
LOG=$(mktemp -d)
cleanup() {
	local p
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	dmveth_unpair
	rm -rf "$LOG"
}
trap cleanup EXIT
eb() { ip netns exec b timeout 30 ethtool "$@"; }
ea() { ip netns exec a timeout 30 ethtool "$@"; }

dmveth_pair 4 || ktap_bail "create a dmveth pair in netns a and b"
ktap_ok "dmveth pair in netns a and b"

# coal DEV-CMD: "rx-usecs rx-frames tx-usecs tx-frames adaptive-rx adaptive-tx
# stats-block-usecs" as ethtool -c prints them
coal() {
	"$@" | awk '
		/^Adaptive RX:/ {arx = $3; atx = $5}
		/^rx-usecs:/ {ru = $2} /^rx-frames:/ {rf = $2}
		/^tx-usecs:/ {tu = $2} /^tx-frames:/ {tf = $2}
		/^stats-block-usecs:/ {sb = $2}
		END {print ru, rf, tu, tf, arx, atx, sb}'
}

got=$(coal eb -c $DMV_B)
if [ "$got" = "0 1 0 1 off off 0" ]; then
	ktap_ok "ethtool -c: defaults rx-usecs 0 rx-frames 1 tx-usecs 0 tx-frames 1, adaptive off, stats-block-usecs 0"
else
	eb -c $DMV_B 2>&1 | sed 's/^/# /'
	ktap_fail "ethtool -c: defaults (got '$got')"
fi

want="64 32 128 16 on off 0"
if eb -C $DMV_B rx-usecs 64 rx-frames 32 tx-usecs 128 tx-frames 16 adaptive-rx on >"$LOG/set" 2>&1 &&
	[ "$(coal eb -c $DMV_B)" = "$want" ] && [ "$(coal ea -c $DMV_A)" = "0 1 0 1 off off 0" ]; then
	ktap_ok "ethtool -C rx-usecs 64 rx-frames 32 tx-usecs 128 tx-frames 16 adaptive-rx on reads back; the peer keeps its own"
else
	sed 's/^/# /' "$LOG/set"
	echo "# dmb: $(coal eb -c $DMV_B); dma: $(coal ea -c $DMV_A)"
	ktap_fail "ethtool -C round trip (want '$want')"
fi
ip -n b link set $DMV_B down && ip -n b link set $DMV_B up
got=$(coal eb -c $DMV_B)
[ "$got" = "$want" ] && ktap_ok "coalescing kept across link down/up" ||
	ktap_fail "coalescing kept across link down/up (got '$got')"

# refuse NAME EXPECTED-TEXT ARGS...: ethtool -C ARGS fails, says TEXT, and
# changes nothing
refuse() {
	local name=$1 text=$2
	shift 2
	if eb -C $DMV_B "$@" >"$LOG/bad" 2>&1; then
		ktap_fail "ethtool -C $name refused (it was accepted)"
	elif ! grep -qF -- "$text" "$LOG/bad"; then
		sed 's/^/# /' "$LOG/bad"
		ktap_fail "ethtool -C $name refused, saying '$text'"
	elif [ "$(coal eb -c $DMV_B)" != "$want" ]; then
		ktap_fail "ethtool -C $name refused and nothing changed (now $(coal eb -c $DMV_B))"
	else
		ktap_ok "ethtool -C $name refused: $(grep -F -- "$text" "$LOG/bad" | head -n 1)"
	fi
}
refuse "rx-usecs 9000" "rx-usecs 9000 is above the maximum 8192" rx-usecs 9000
refuse "rx-usecs 0 rx-frames 0" "rx-usecs and rx-frames cannot both be 0" rx-usecs 0 rx-frames 0
refuse "stats-block-usecs 10" "stats-block-usecs must be 0" stats-block-usecs 10
refuse "rx-usecs-irq 5 (not advertised)" "cannot modify an unsupported parameter" rx-usecs-irq 5

# fh FLOW: rx-flow-hash FLOW's fields as ethtool -N letters (s d f n)
fh() {
	eb -n $DMV_B rx-flow-hash "$1" | awk '
		/^IP SA/ {s = s "s"} /^IP DA/ {s = s "d"}
		/^L4 bytes 0 & 1/ {s = s "f"} /^L4 bytes 2 & 3/ {s = s "n"}
		END {print s}'
}
got="$(fh tcp4) $(fh udp6) $(fh sctp4) $(fh esp6)"
[ "$got" = "sdfn sdfn sd sd" ] && ktap_ok "rx-flow-hash defaults: tcp4 sdfn, udp6 sdfn, sctp4 sd, esp6 sd" ||
	ktap_fail "rx-flow-hash defaults tcp4 sdfn, udp6 sdfn, sctp4 sd, esp6 sd (got '$got')"
if eb -N $DMV_B rx-flow-hash udp6 sd && [ "$(fh udp6)" = sd ] &&
	eb -N $DMV_B rx-flow-hash udp6 sdfn && [ "$(fh udp6)" = sdfn ]; then
	ktap_ok "rx-flow-hash udp6 sd, then sdfn, read back"
else
	ktap_fail "rx-flow-hash udp6 sd, then sdfn, read back (now '$(fh udp6)')"
fi
# sctp4 is hashed as ip4 (set there, through netlink); VLAN is not hashed.
# (ethtool 6.1 exits 0 when the kernel refuses rx-flow-hash: its message
# and the unchanged settings are the test.)
nfail() { eb -N $DMV_B rx-flow-hash "$@" 2>&1 | grep -c 'Cannot change RX network flow hashing'; }
if [ "$(nfail sctp4 s) $(nfail tcp4 sdv)" = "1 1" ] && [ "$(fh sctp4) $(fh tcp4)" = "sd sdfn" ]; then
	ktap_ok "rx-flow-hash sctp4 s and tcp4 sdv refused, settings unchanged"
else
	ktap_fail "rx-flow-hash sctp4 s and tcp4 sdv refused, settings unchanged (sctp4 '$(fh sctp4)', tcp4 '$(fh tcp4)')"
fi

qpk() { # qpk Q: packets received on dmb's queue Q
	eb -S $DMV_B | awk -v n="rx$1_packets:" '$1 == n {print $2}'
}
cat >"$LOG/srv.py" <<'EOF'
import socket, sys
n = int(sys.argv[1])
ls = socket.create_server(("0.0.0.0", int(sys.argv[2])))
print("ready", flush=True)
total = 0
for _ in range(n):
    c, _ = ls.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        total += len(b)
    c.close()
print(total)
EOF
# conns PORT: 16 connections (16 KiB each) from dma to dmb:PORT; prints the
# packets each of dmb's 4 queues received, or fails
conns() {
	local port=$1 b0 b1 spid i
	b0=$(for q in 0 1 2 3; do qpk $q; done | tr '\n' ' ')
	timeout 60 ip netns exec b python3 "$LOG/srv.py" 16 "$port" >"$LOG/srv" 2>&1 &
	spid=$!
	wait_file_line "$LOG/srv" '^ready$' 30 $spid || return 1
	timeout 60 ip netns exec a python3 -c '
import socket, sys
for i in range(16):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    s.sendall(b"x" * 16384)
    s.close()
' $DMV_B4 "$port" || return 1
	bwait $spid 60 || return 1
	[ "$(tail -n 1 "$LOG/srv")" = $((16 * 16384)) ] || return 1
	b1=$(for q in 0 1 2 3; do qpk $q; done | tr '\n' ' ')
	read -r -a A <<<"$b0"
	read -r -a Z <<<"$b1"
	for i in 0 1 2 3; do echo -n "$((Z[i] - A[i])) "; done
	echo
}
# used D0 D1 D2 D3: how many queues received >= 3 packets
used() { local n=0 d; for d in "$@"; do [ "$d" -ge 3 ] && n=$((n + 1)); done; echo $n; }

if d=$(conns 5481) && [ "$(used $d)" -ge 2 ]; then
	ktap_ok "tcp4 sdfn: 16 connections spread over $(used $d) queues (packets per queue: $d)"
else
	ktap_fail "tcp4 sdfn: 16 connections spread over 2 or more queues (packets per queue: ${d:-transfer failed})"
fi
if eb -N $DMV_B rx-flow-hash tcp4 sd && [ "$(fh tcp4)" = sd ] && d=$(conns 5482); then
	read -r -a D <<<"$d"
	max=0 sum=0
	for x in "${D[@]}"; do sum=$((sum + x)); [ "$x" -gt $max ] && max=$x; done
	# every packet of the 16 connections (>= 3 each) on one queue;
	# the rest (ARP, non-TCP) next to nothing
	if [ $max -ge 48 ] && [ $((sum - max)) -lt 8 ]; then
		ktap_ok "tcp4 sd: 16 connections on one queue (packets per queue: $d)"
	else
		ktap_fail "tcp4 sd: 16 connections on one queue (packets per queue: $d)"
	fi
else
	ktap_fail "tcp4 sd set and 16 connections run (${d:-transfer failed})"
fi
ktap_done
