#!/usr/bin/env bash
# cap: 90
# cap-debug: 150
# vm-suite: debug
# dmveth with the kernel's own ncdevmem: probe mode, then devmem TX ->
# dmveth -> devmem RX into `ncdevmem -l -L -v 7`, IPv4 and IPv6, from
# ncdevmem's own client (one sendmsg per 7-byte line, so a small amount) and
# from tests/progs/devmem-tx (large sends: 64 MiB), with and without TX
# chunking.  A transfer passes only when the server validated every byte:
# -L (a linear, non-devmem fragment fails it: ncdevmem never looks at
# linear payload), no "Failed validation" line (ncdevmem itself tolerates
# 20 wrong bytes and exits 0), and its last total_received equal to the
# bytes sent.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; dmveth_unpair; rm -rf "$LOG"' EXIT
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }
ktap_ok "create a dmveth pair in netns a and b"

ktap_check "ncdevmem -f $DMV_B probe mode exits 0" ip netns exec b ncdevmem -f $DMV_B

stat_of() { # stat_of NS DEV NAME: sum of the ethtool -S counters matching NAME
	ip netns exec "$1" ethtool -S "$2" | awk -v n="$3" '$1 ~ n {s += $2} END {print s + 0}'
}

port=5300
# transfer NAME SERVER CLIENT BYTES SENDER [ARGS...]: ncdevmem -l -L -v 7 on
# dmb, SENDER (ncdevmem or devmem-tx) on dma with the 7-byte pattern.
transfer() {
	local name=$1 srv=$2 cli=$3 bytes=$4 sender=$5 crc gen src t0 t1 rx0 tx0 rx1 tx1 got bad
	shift 5
	port=$((port + 1))
	rx0=$(stat_of b $DMV_B 'rx[0-9]+_unreadable_packets:')
	tx0=$(stat_of a $DMV_A 'tx[0-9]+_unreadable_packets:')
	if ! ncdevmem_server "$LOG/srv" $port "$srv" "$cli"; then
		ktap_fail "$name: server listening"
		return
	fi
	local spid=$NCD_PID
	t0=$(date +%s.%N)
	pattern 7 "$bytes" | ip netns exec a "$sender" -f $DMV_A -s "$srv" -c "$cli" -p $port "$@" >"$LOG/cli" 2>&1
	gen=${PIPESTATUS[0]} crc=${PIPESTATUS[1]}
	bwait $spid 120
	src=$?
	t1=$(date +%s.%N)
	rx1=$(stat_of b $DMV_B 'rx[0-9]+_unreadable_packets:')
	tx1=$(stat_of a $DMV_A 'tx[0-9]+_unreadable_packets:')
	got=$(ncdevmem_got "$LOG/srv")
	bad=$(ncdevmem_bad "$LOG/srv")
	if [ "$gen" = 0 ] && [ "$crc" = 0 ] && [ $src = 0 ] && grep -q 'client exited' "$LOG/srv" &&
		[ "$bad" = 0 ] && [ "$got" = "$bytes" ] &&
		[ "$rx1" -gt "$rx0" ] && [ "$tx1" -gt "$tx0" ]; then
		ktap_ok "$name: $bytes bytes validated (total_received=$got, no linear fragment), both exit 0, devmem frames RX $((rx1 - rx0)) TX $((tx1 - tx0)) ($(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f MB/s", b / (z - a) / 1e6}'))"
	else
		echo "# pattern exit $gen, client exit $crc, server exit $src, server total_received=${got:-none} (sent $bytes), $bad 'Failed validation' lines, unreadable RX +$((rx1 - rx0)) TX +$((tx1 - tx0))"
		grep -v -E 'received frag_page|Validated buffer|tx complete|sendmsg_ret' "$LOG/cli" | tail -n 10 | sed 's/^/# client: /'
		ncdevmem_tail "$LOG/srv" 15
		ktap_fail "$name"
	fi
}

# The debug kernel (KASAN, lockdep, kmemleak; ten times slower) runs each
# data path once, small: ncdevmem's own TX and devmem-tx, IPv4 (a transfer
# costs over a minute there).  The normal kernel adds TX chunks (-z), IPv6
# and 64 MiB transfers (more than ncdevmem's 62.5 MiB buffer: its buffer is
# reused).
DEBUG=0
[ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] && [ "${DEVMEMTCP_FULL:-0}" != 1 ] && DEBUG=1
small=$(scale 7000 700)
big=$(scale $((64 << 20)) $((4 << 20)))
transfer "ncdevmem client -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$small" ncdevmem
transfer "devmem-tx -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$big" devmem-tx
if [ $DEBUG = 0 ]; then
	transfer "devmem-tx -z 4000 (TX chunks) -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$big" devmem-tx -z 4000
	transfer "ncdevmem client -z 3 (TX chunks) -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$small" ncdevmem -z 3
	transfer "ncdevmem client -> ncdevmem -l -L -v 7, IPv6" $DMV_B6 $DMV_A6 "$small" ncdevmem
	transfer "devmem-tx -> ncdevmem -l -L -v 7, IPv6" $DMV_B6 $DMV_A6 "$big" devmem-tx
fi
ktap_done
