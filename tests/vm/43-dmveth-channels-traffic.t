#!/usr/bin/env bash
# cap: 65
# dmveth: ethtool -L while TCP streams run (issue 12, bugs 3 and 7).
# Shrinking must leave no frame in a removed queue: the peer's xmit could
# still steer to a removed queue after it had been emptied, and the frame
# then waited there, unpolled, holding the sender's skb (TCP cannot
# retransmit a segment whose clone is still in a driver queue: the stream
# stalls).  Four streams (one per queue) run from netns a to dmb for a few
# seconds; meanwhile dmb goes from 4 channels to 1 (then back to 4, then 2,
# with the streams still running).  Every stream must deliver every byte
# its sender wrote, and once idle every frame dma sent must be a frame dmb
# received or counted as dropped (ip -s link: dma TX packets = dmb RX
# packets + RX dropped): a frame left in a removed queue is neither.
# shellcheck disable=SC2015 # ktap_ok only prints
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
dmveth_test_init 4

# stream.py recv PORT OUT | send ADDR PORT SECONDS OUT: a TCP receiver that
# writes the byte count it read to OUT at EOF; a sender that writes for
# SECONDS, then writes the count it sent to OUT and closes.
cat >"$LOG/stream.py" <<'EOF'
import socket, sys, time
mode = sys.argv[1]
if mode == "recv":
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", int(sys.argv[2])))
    ls.listen(1)
    c, _ = ls.accept()
    n = 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        n += len(b)
    open(sys.argv[3], "w").write(f"{n}\n")
else:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=120)
    buf, n = bytes(1 << 16), 0
    end = time.monotonic() + float(sys.argv[4])
    while time.monotonic() < end:
        n += s.send(buf)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    open(sys.argv[5], "w").write(f"{n}\n")
EOF

# devstat NS DEV DIR FIELD: a device counter from ip -s -j link
devstat() {
	ip -n "$1" -s -j link show "$2" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"][sys.argv[1]][sys.argv[2]])' "$3" "$4"
}
combined() {
	eth -l $DMV_B | awk '/^Current hardware settings/ {c = 1} c && /^Combined:/ {print $2; exit}'
}

SECS=4
round() { # round NAME SEQUENCE...: streams run while dmb's channels go through SEQUENCE
	local name=$1 i n rc pids=() ok=1 msg='' want got
	shift
	rm -f "$LOG"/sent.* "$LOG"/got.*
	for i in 0 1 2 3; do
		ip netns exec b timeout 120 python3 "$LOG/stream.py" recv $((5800 + i)) "$LOG/got.$i" &
		pids+=($!)
	done
	for i in 0 1 2 3; do
		wait_listen b $((5800 + i)) 30 || { ktap_fail "$name: receiver $i listens"; return; }
	done
	for i in 0 1 2 3; do
		ip netns exec a timeout 120 python3 "$LOG/stream.py" send $DMV_B4 $((5800 + i)) $SECS "$LOG/sent.$i" &
		pids+=($!)
	done
	sleep 1 # let the streams run before the first change (not a synchronisation)
	for n in "$@"; do
		if ! out=$(eth -L $DMV_B combined "$n" 2>&1); then
			msg+=" ethtool -L combined $n failed: ${out//$'\n'/ };"
			ok=0
		fi
	done
	for i in "${pids[@]}"; do
		# bounded: each runs under timeout 120
		bwait "$i" 150
		rc=$?
		[ $rc = 0 ] || { ok=0; msg+=" a stream process failed (exit $rc);"; }
	done
	for i in 0 1 2 3; do
		want=$(cat "$LOG/sent.$i" 2>/dev/null) got=$(cat "$LOG/got.$i" 2>/dev/null)
		if [ -z "$want" ] || [ "$want" != "$got" ]; then
			ok=0
			msg+=" stream $i: sent '${want}' received '${got}';"
		fi
	done
	if [ $ok = 1 ]; then
		ktap_ok "$name: 4 streams deliver every byte ($(cat "$LOG"/got.* | awk '{s += $1} END {print s}') bytes), $(combined) channels now"
	else
		ktap_fail "$name:$msg"
	fi
}
round "ethtool -L combined 1 (from 4) under traffic" 1
round "ethtool -L combined 4, then 2, under traffic" 4 2

# every frame dma sent was received or dropped by dmb (wait for the
# backlogs to drain: 5 s at most)
for ((i = 0; i < 50; i++)); do
	tx=$(devstat a $DMV_A tx packets) rx=$(devstat b $DMV_B rx packets) dr=$(devstat b $DMV_B rx dropped)
	[ "$tx" = $((rx + dr)) ] && break
	nap 0.1
done
if [ "$tx" = $((rx + dr)) ]; then
	ktap_ok "every frame dma sent reached dmb: TX $tx = RX $rx + dropped $dr"
else
	ktap_fail "every frame dma sent reached dmb: TX $tx != RX $rx + dropped $dr ($((tx - rx - dr)) unaccounted)"
fi
ktap_done
