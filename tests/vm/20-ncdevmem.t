#!/usr/bin/env bash
# vm-suite: debug
# dmveth with the kernel's own ncdevmem: probe mode, then devmem TX ->
# dmveth -> devmem RX into `ncdevmem -l -v 7` (which validates every byte of
# the pattern), IPv4 and IPv6, from ncdevmem's own client (one sendmsg per
# 7-byte line, so a small amount) and from tests/progs/devmem-tx (large
# sends: 64 MiB), with and without TX chunking.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; dmveth_unpair; rm -rf "$LOG"' EXIT
command -v ncdevmem >/dev/null || { ktap_skip ncdevmem "ncdevmem not built (vm/build)"; exit 0; }

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }
ktap_ok "create a dmveth pair in netns a and b"

ktap_check "ncdevmem -f $DMV_B probe mode exits 0" ip netns exec b ncdevmem -f $DMV_B

stat_of() { # stat_of NS DEV NAME: sum of the ethtool -S counters matching NAME
	ip netns exec "$1" ethtool -S "$2" | awk -v n="$3" '$1 ~ n {s += $2} END {print s + 0}'
}

port=5300
# transfer NAME SERVER CLIENT BYTES SENDER [ARGS...]: ncdevmem -l -v 7 on
# dmb, SENDER (ncdevmem or devmem-tx) on dma with the 7-byte pattern.
transfer() {
	local name=$1 srv=$2 cli=$3 bytes=$4 sender=$5 crc src t0 t1 rx0 tx0 rx1 tx1
	shift 5
	port=$((port + 1))
	rx0=$(stat_of b $DMV_B 'rx[0-9]+_unreadable_packets:')
	tx0=$(stat_of a $DMV_A 'tx[0-9]+_unreadable_packets:')
	ip netns exec b ncdevmem -l -f $DMV_B -s "$srv" -c "$cli" -p $port -v 7 >"$LOG/srv" 2>&1 &
	local spid=$!
	if ! wait_listen b $port 60; then
		tail -n 20 "$LOG/srv" | sed 's/^/# /'
		ktap_fail "$name: server listening"
		kill $spid 2>/dev/null
		return
	fi
	t0=$(date +%s.%N)
	pattern 7 "$bytes" | ip netns exec a "$sender" -f $DMV_A -s "$srv" -c "$cli" -p $port "$@" >"$LOG/cli" 2>&1
	crc=$?
	timeout 120 tail --pid=$spid -f /dev/null
	wait $spid
	src=$?
	t1=$(date +%s.%N)
	rx1=$(stat_of b $DMV_B 'rx[0-9]+_unreadable_packets:')
	tx1=$(stat_of a $DMV_A 'tx[0-9]+_unreadable_packets:')
	if [ $crc = 0 ] && [ $src = 0 ] && grep -q 'client exited' "$LOG/srv" &&
		[ "$rx1" -gt "$rx0" ] && [ "$tx1" -gt "$tx0" ]; then
		ktap_ok "$name: $bytes bytes validated, both exit 0, devmem frames RX $((rx1 - rx0)) TX $((tx1 - tx0)) ($(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f MB/s", b / (z - a) / 1e6}'))"
	else
		echo "# client exit $crc, server exit $src, unreadable RX +$((rx1 - rx0)) TX +$((tx1 - tx0))"
		grep -v -E 'received frag_page|Validated buffer|tx complete|sendmsg_ret' "$LOG/cli" | tail -n 10 | sed 's/^/# client: /'
		grep -v -E 'received frag_page|Validated buffer' "$LOG/srv" | tail -n 15 | sed 's/^/# server: /'
		ktap_fail "$name"
	fi
}

small=$(scale 7000 700)
transfer "ncdevmem client -> ncdevmem -l -v 7, IPv4" $DMV_B4 $DMV_A4 "$small" ncdevmem
transfer "ncdevmem client -z 3 (TX chunks) -> ncdevmem -l -v 7, IPv4" $DMV_B4 $DMV_A4 "$small" ncdevmem -z 3
transfer "ncdevmem client -> ncdevmem -l -v 7, IPv6" $DMV_B6 $DMV_A6 "$small" ncdevmem
# 64 MiB on the debug kernel too for the first transfer (>= 64 MiB there):
# about 0.5 MB/s under TCG + KASAN, 2-3 minutes; the other two take the
# debug kernel's smaller size (DEVMEMTCP_FULL=1: 64 MiB for all three).
big=$((64 << 20))
transfer "devmem-tx -> ncdevmem -l -v 7, IPv4" $DMV_B4 $DMV_A4 "$big" devmem-tx
transfer "devmem-tx -z 4000 (TX chunks) -> ncdevmem -l -v 7, IPv4" $DMV_B4 $DMV_A4 "$(scale $big)" devmem-tx -z 4000
transfer "devmem-tx -> ncdevmem -l -v 7, IPv6" $DMV_B6 $DMV_A6 "$(scale $big)" devmem-tx
