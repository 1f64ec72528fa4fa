#!/usr/bin/env bash
# cap: 35
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
# - devmemtcp recv --rx-page-size 64K --hugepages (with its NIC setup, which
#   turns rx-gro-hw on): 4 MiB from devmemtcp send, every byte validated in
#   devmem, fragments averaging more than a page; --rx-page-size 128K is
#   refused with dmveth's extack (exit 2) and the NIC is put back.
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
# rx-gro-hw off, as mlx5 ships it (dmveth's default is on, as gve's and
# bnxt's): recv's NIC setup turns it on, and back off
ip netns exec b ethtool -K $DMV_B rx-gro-hw off || ktap_bail "ethtool -K $DMV_B rx-gro-hw off"
# ncdevmem's 62.5 MiB buffer, rounded up to 2 MiB huge pages: 32 of them
[ "$HP0" -ge 40 ] || echo 40 >$HP
[ "$(cat $HP)" -ge 32 ] || ktap_bail "reserve 32 huge pages of 2 MiB (got $(cat $HP))"
ktap_ok "dmveth pair in netns a and b, $(cat $HP) huge pages"

# hp_free N: hugepages_wait N (20 s at most: a CI run started the next
# ncdevmem before the last binding's udmabuf was freed, and it could not
# create its own); else the pool's state as a comment and 1.
hp_free() {
	hugepages_wait "$1" && return 0
	echo "# $(hugepages_state)"
	return 1
}

port=5460
# refuse SIZE TEXT: ncdevmem -b SIZE fails to bind, the kernel's TEXT shown.
refuse() {
	local size=$1 text=$2 rc
	port=$((port + 1))
	hp_free 32 || { ktap_fail "rx-page-size $size: 32 huge pages free within 20 s"; return; }
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
	local size=$1 bytes=$2 want=$3
	port=$((port + 1))
	hp_free 32 || { ktap_fail "rx-page-size $size: 32 huge pages free within 20 s of the last binding's exit"; return; }
	if ! nc_stream $port "$bytes" -b "$size"; then
		ktap_fail "rx-page-size $size: ncdevmem bound and listening"
		return
	fi
	# fragments: count, outside one buffer, not at a buffer's start (unless
	# it goes on where the one before ended: recvmsg's byte budget ran out
	# inside a buffer and the next call got the rest), largest
	read -r nf out mis max < <(awk -v s="$size" '{n++; if ($1 % s + $2 > s) out++; if ($1 % s && $1 != end) mis++
			if ($2 > max) max = $2; end = $1 + $2}
			END {printf "%d %d %d %d\n", n, out, mis, max}' "$LOG/frags")
	if $NC_OK && [ "$out" = 0 ] && [ "$mis" = 0 ] && [ "$max" -ge "$want" ] && [ "$max" -le "$size" ]; then
		ktap_ok "rx-page-size $size: $bytes bytes validated in $nf fragments, each inside one $size-byte buffer, from its start or where the one before ended, largest $max ($NC_SECS s with ncdevmem's checks and exit)"
	else
		echo "# fragments $nf: $out cross a buffer, $mis not at a buffer's start, largest $max (want >= $want, <= $size)"
		ktap_fail "rx-page-size $size: stream validated in fragments of that buffer size"
	fi
}
receive 16384 $((2 << 20)) 16384
receive 65536 $((2 << 20)) 16385

# devmemtcp recv --rx-page-size: its NIC setup turns rx-gro-hw on, so a TSO
# frame's payload fills 64 KiB buffers: fragments average more than a page
port=$((port + 1))
bytes=$((4 << 20))
hp_free 8 || echo "# devmemtcp recv --hugepages follows with fewer than its 8 huge pages free"
ip netns exec b devmemtcp -j recv --dev $DMV_B --listen $DMV_B4:$port --queues 3:1 --mode devmem \
	--rx-page-size 64K --hugepages --size 16M --validate 7 >"$LOG/rcv" 2>"$LOG/rcv.err" &
rpid=$!
wait_listen b $port 30 "$rpid"
ip netns exec a timeout 60 devmemtcp -j send $DMV_B4:$port --dev $DMV_A --provider udmabuf --size 8M \
	--bytes $bytes --mode devmem --validate 7 >"$LOG/snd" 2>"$LOG/snd.err"
src=$?
bwait $rpid 60
rrc=$?
read -r got val lin nf rps < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r.get("bytes"), r.get("validated_bytes"), r.get("linear_bytes"), r.get("frags") or 0, r["options"].get("rx_page_size"))' "$LOG/rcv" 2>/dev/null)
if [ $src = 0 ] && [ $rrc = 0 ] && [ "$got" = $bytes ] && [ "$val" = $bytes ] && [ "$lin" = 0 ] &&
	[ "$rps" = 65536 ] && [ "$nf" -gt 0 ] && [ $((bytes / nf)) -gt 4096 ]; then
	ktap_ok "devmemtcp recv --rx-page-size 64K: $bytes bytes validated in $nf fragments, $((bytes / nf)) bytes on average"
else
	sed 's/^/# recv: /' "$LOG/rcv.err" | tail -n 5
	sed 's/^/# send: /' "$LOG/snd.err" | tail -n 5
	ktap_fail "devmemtcp recv --rx-page-size 64K: every byte validated in fragments averaging over 4096 bytes (send exit $src, recv exit $rrc, bytes $got, validated $val, linear $lin, $nf fragments, rx_page_size $rps)"
fi
# refused by the driver: the kernel's extack, exit 2, the NIC put back
port=$((port + 1))
hp_free 8 || echo "# devmemtcp recv --hugepages follows with fewer than its 8 huge pages free"
timeout 60 ip netns exec b devmemtcp recv --dev $DMV_B --listen $DMV_B4:$port --queues 3:1 --mode devmem \
	--rx-page-size 128K --hugepages --size 16M >"$LOG/out" 2>"$LOG/err" </dev/null
rc=$?
if [ $rc = 2 ] && grep -q 'rx-page-size 131072 not supported' "$LOG/err" &&
	[ -z "$(ip netns exec b sh -c 'ls /run/devmemtcp/net-*/*.undo 2>/dev/null')" ] &&
	ip netns exec b ethtool -k $DMV_B | grep -q '^rx-gro-hw: off'; then
	ktap_ok "devmemtcp recv --rx-page-size 128K: exit 2, $(cat "$LOG/err")"
else
	sed 's/^/# /' "$LOG/out" "$LOG/err" | tail -n 5
	ktap_fail "devmemtcp recv --rx-page-size 128K: exit 2 with dmveth's extack, no undo log, rx-gro-hw off again (exit $rc)"
fi
ktap_done
