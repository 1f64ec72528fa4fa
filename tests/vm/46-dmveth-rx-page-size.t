#!/usr/bin/env bash
# cap: 60
# dmveth: bind-rx rx-page-size (Linux 7.3, QCFG_RX_PAGE_SIZE; issue 12).
# The kernel's ncdevmem binds a dmveth queue with -b SIZE (a udmabuf on
# 2 MiB huge pages, whose entries are aligned to any buffer size).
# - Refused, with the kernel's extack and nothing bound: 12288 (not a power
#   of two: bind-rx), 2048 (below PAGE_SIZE: the netlink policy) and 131072
#   (above dmveth's largest buffer, 64 KiB: dmveth's queue config check).
# - Then, on the same pair, 16384 and 65536: a plain TCP stream of the
#   ncdevmem -v 7 pattern from netns a (socat from source port PORT: the
#   4-tuple ncdevmem -c steers to its queue) arrives in devmem fragments that
#   each lie inside one buffer of SIZE and start at its beginning (or go on
#   where the one before ended, when a recvmsg ended inside a buffer), the
#   largest one is larger than a page (16384 for 16 KiB buffers, more than
#   16384 for 64 KiB ones: a whole TSO frame's payload in one net_iov), and
#   ncdevmem -L validated every byte (no linear fragment, no "Failed
#   validation", total_received equal to what was sent, exit 0).
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
HP=/proc/sys/vm/nr_hugepages
HP0=$(cat $HP)
cleanup() {
	local p
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	dmveth_unpair
	echo "$HP0" >"$HP"
	rm -rf "$LOG"
}
trap cleanup EXIT
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"
command -v socat >/dev/null || ktap_bail "socat present in the VM (the rig's root file system has it)"

dmveth_pair 4 || ktap_bail "create a dmveth pair in netns a and b"
# ncdevmem's 62.5 MiB buffer, rounded up to 2 MiB huge pages: 32 of them
[ "$HP0" -ge 40 ] || echo 40 >$HP
[ "$(cat $HP)" -ge 32 ] || ktap_bail "reserve 32 huge pages of 2 MiB (got $(cat $HP))"
ktap_ok "dmveth pair in netns a and b, $(cat $HP) huge pages"

port=5460
# refuse SIZE TEXT: ncdevmem -b SIZE fails to bind, the kernel's TEXT shown.
refuse() {
	local size=$1 text=$2 rc
	port=$((port + 1))
	timeout 60 ip netns exec b ncdevmem -l -f $DMV_B -s $DMV_B4 -c $DMV_A4 -p $port -b "$size" \
		>"$LOG/bad" 2>&1
	rc=$?
	if [ $rc != 0 ] && [ $rc != 124 ] && grep -q -- "$text" "$LOG/bad" &&
		! grep -q '^got dmabuf id' "$LOG/bad"; then
		ktap_ok "rx-page-size $size refused: $(grep -m 1 -- "$text" "$LOG/bad")"
	else
		echo "# ncdevmem exit $rc"
		tail -n 8 "$LOG/bad" | sed 's/^/# /'
		ktap_fail "rx-page-size $size refused with \"$text\""
	fi
}
refuse 12288 "rx-page-size must be a power of 2"
refuse 2048 "integer out of range"
refuse 131072 "dmveth: rx-page-size 131072 not supported: a power of 2 from 4096 to 65536"

# receive SIZE BYTES MIN_MAXFRAG: socat from a -> ncdevmem -l -L -v 7 -b SIZE.
receive() {
	local size=$1 bytes=$2 want=$3 rc gen snd got bad lin stats t0 t1
	port=$((port + 1))
	rm -f "$LOG/srv"
	ip netns exec b ncdevmem -l -L -f $DMV_B -s $DMV_B4 -c $DMV_A4 -p $port -v 7 -b "$size" \
		>"$LOG/srv" 2>&1 &
	local spid=$!
	if ! wait_listen b $port 30; then
		tail -n 15 "$LOG/srv" | sed 's/^/# /'
		ktap_fail "rx-page-size $size: ncdevmem bound and listening"
		kill $spid 2>/dev/null
		return
	fi
	t0=$(date +%s.%N)
	pattern 7 "$bytes" | timeout 60 ip netns exec a socat -u -b 65536 - TCP:$DMV_B4:$port,sourceport=$port
	gen=${PIPESTATUS[0]} snd=${PIPESTATUS[1]}
	bwait $spid 60
	rc=$?
	t1=$(date +%s.%N)
	got=$(sed -n 's/^total_received=\([0-9]*\)$/\1/p' "$LOG/srv" | tail -n 1)
	bad=$(grep -c '^Failed validation' "$LOG/srv")
	lin=$(grep -c 'SCM_DEVMEM_LINEAR' "$LOG/srv")
	# fragments: count, outside one buffer, not at a buffer's start (unless
	# it goes on where the one before ended: recvmsg's byte budget ran out
	# inside a buffer and the next call got the rest), largest
	stats=$(sed -n 's/^received .*frag_offset=\([0-9]*\), frag_size=\([0-9]*\),.*/\1 \2/p' "$LOG/srv" |
		awk -v s="$size" '{n++; if ($1 % s + $2 > s) out++; if ($1 % s && $1 != end) mis++
			if ($2 > max) max = $2; end = $1 + $2}
			END {printf "%d %d %d %d", n, out, mis, max}')
	read -r nf out mis max <<<"$stats"
	if [ "$gen" = 0 ] && [ "$snd" = 0 ] && [ $rc = 0 ] && grep -q 'client exited' "$LOG/srv" &&
		[ "$bad" = 0 ] && [ "$lin" = 0 ] && [ "$got" = "$bytes" ] && [ "$nf" -gt 0 ] &&
		[ "$out" = 0 ] && [ "$mis" = 0 ] && [ "$max" -ge "$want" ] && [ "$max" -le "$size" ]; then
		ktap_ok "rx-page-size $size: $bytes bytes validated in $nf fragments, each inside one $size-byte buffer, from its start or where the one before ended, largest $max ($(awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", z - a}') s with ncdevmem's checks and exit)"
	else
		echo "# pattern exit $gen, socat exit $snd, ncdevmem exit $rc, total_received=${got:-none} (sent $bytes)"
		echo "# $bad 'Failed validation' lines, $lin linear; fragments $nf: $out cross a buffer, $mis not at a buffer's start, largest $max (want >= $want, <= $size)"
		grep -v -E 'received frag_page|Validated buffer|^recvmsg ret=|^total_received=' "$LOG/srv" |
			tail -n 15 | sed 's/^/# server: /'
		ktap_fail "rx-page-size $size: stream validated in fragments of that buffer size"
	fi
}
receive 16384 $((2 << 20)) 16384
receive 65536 $((2 << 20)) 16385
ktap_done
