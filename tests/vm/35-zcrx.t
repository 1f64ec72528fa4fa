#!/usr/bin/env bash
# cap: 45
# io_uring zero-copy receive (zcrx) on a dmveth queue: the kernel's own
# iou-zcrx selftest program, server in netns b on dmb queue 3 (header split
# on, RSS over queues 0-2, an ntuple rule steering the flow to 3), client
# in netns a.  The server checks every byte it gets through its zcrx area;
# recvzc fails outright if a packet lands anywhere else.  This is the same
# memory-provider path devmem RX takes, with io_uring's provider.
# Normal kernel only: iou-zcrx's server gives up 5 s after it starts.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; dmveth_unpair; rm -rf "$LOG"' EXIT
command -v iou-zcrx >/dev/null || ktap_bail "iou-zcrx present in the VM (the rig builds it against liburing; fix: vm/build)"

Q=3
dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }
ktap_ok "create a dmveth pair in netns a and b"

state() { # what the test changes on dmb, to compare before and after
	{ eth -g $DMV_B; eth -x $DMV_B; eth -n $DMV_B; eth -k $DMV_B | grep ntuple; } 2>&1
}
before=$(state)
ntuple_was_on=0
grep -q '^ntuple-filters: on' <<<"$(eth -k $DMV_B)" && ntuple_was_on=1
rings_set $DMV_B tcp-data-split on hds-thresh 0 >/dev/null &&
	eth -X $DMV_B equal $Q &&
	eth -K $DMV_B ntuple on
ktap_check "header split on, RSS over queues 0-$((Q - 1)), ntuple on" test $? = 0

unreadable() { # unreadable frames received on queue Q
	ip netns exec b ethtool -S $DMV_B | awk -v n="rx${Q}_unreadable_packets:" '$1 == n {print $2 + 0}'
}
provider_on_q() { # does queue Q have the io-uring memory provider?
	local q
	q=$(ip netns exec b queues $DMV_B) && grep -qx "rx $Q io-uring" <<<"$q"
}

port=5400
# zcrx NAME SIZE SERVER_ARGS CLIENT_ARGS: one transfer of SIZE (as said:
# iou-zcrx sends 2 MiB, or -z BYTES)
zcrx() {
	local name=$1 size=$2 srv=$3 cli=$4 rule u0 u1 spid crc src
	port=$((port + 1))
	rule=$(eth -N $DMV_B flow-type tcp6 dst-port $port action $Q | sed -n 's/.*ID \([0-9]*\).*/\1/p')
	u0=$(unreadable)
	# shellcheck disable=SC2086
	ip netns exec b iou-zcrx -s -p $port -i $DMV_B -q $Q $srv >"$LOG/srv" 2>&1 &
	spid=$!
	if ! wait_listen b $port 5 "$spid"; then
		sed 's/^/# server: /' "$LOG/srv"
		ktap_fail "$name: server listening"
		kill $spid 2>/dev/null
		[ -n "$rule" ] && eth -N $DMV_B delete "$rule"
		return
	fi
	provider_on_q && bound=1 || bound=0
	# shellcheck disable=SC2086
	ip netns exec a iou-zcrx -c -h $DMV_B6 -p $port $cli >"$LOG/cli" 2>&1
	crc=$?
	bwait $spid 30
	src=$?
	u1=$(unreadable)
	[ -n "$rule" ] && eth -N $DMV_B delete "$rule"
	if [ $crc = 0 ] && [ $src = 0 ] && [ $bound = 1 ] && [ "$u1" -gt "$u0" ]; then
		ktap_ok "$name: $size checked by the server, both exit 0, queue $Q had the io-uring provider, $((u1 - u0)) frames into the zcrx area"
	else
		echo "# client exit $crc, server exit $src, provider seen $bound, unreadable frames +$((u1 - u0)), rule '${rule}'"
		sed 's/^/# client: /' "$LOG/cli" | tail -n 5
		sed 's/^/# server: /' "$LOG/srv" | tail -n 5
		ktap_fail "$name"
	fi
}

zcrx "zcrx, multishot recvzc" "2 MiB" "" "-l 12840"
zcrx "zcrx, oneshot recvzc (-o 4, 4 KiB sends)" "16 KiB" "-o 4" "-l 4096 -z 16384"

# The provider goes with the ring: the queue restarts with ordinary pages.
gone=0
for _ in $(seq 50); do
	provider_on_q || { gone=1; break; }
	nap 0.1
done
ktap_check "queue $Q has no io-uring provider once iou-zcrx exited" test $gone = 1

# The kernel's own checks apply: no header split, no zcrx.  The core
# (netdev_rx_queue.c) refuses with -EINVAL and the extack "tcp-data-split is
# disabled"; io_uring's registration has no extack channel, so iou-zcrx
# can only print the errno: "io_uring_register_ifq(): -22", exit 1.
rings_set $DMV_B tcp-data-split off >/dev/null
out=$(ip netns exec b timeout 30 iou-zcrx -s -p $((port + 1)) -i $DMV_B -q $Q 2>&1)
rc=$?
echo "# header split off: iou-zcrx: ${out//$'\n'/ } (exit $rc)"
if [ $rc = 1 ] && grep -q -E 'io_uring_register_ifq\(\): -22$' <<<"$out"; then
	ktap_ok "zcrx refused on a queue without header split: io_uring_register_ifq -22 (EINVAL), exit 1"
else
	ktap_fail "zcrx refused on a queue without header split with EINVAL (exit $rc, want 1 and 'io_uring_register_ifq(): -22')"
fi

rings_set $DMV_B tcp-data-split auto hds-thresh 0 >/dev/null
eth -X $DMV_B default
[ $ntuple_was_on = 1 ] || eth -K $DMV_B ntuple off
after=$(state)
if [ "$before" = "$after" ]; then
	ktap_ok "dmb state (rings, RSS table, ntuple) restored"
else
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /'
	ktap_fail "dmb state (rings, RSS table, ntuple) restored"
fi
ktap_done
