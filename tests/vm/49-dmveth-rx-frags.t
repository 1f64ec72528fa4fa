#!/usr/bin/env bash
# cap: 30
# dmveth: payload fragments smaller than a buffer (issue 12), as drivers that
# split a page into 2 KiB halves deliver them, through GRO.
# - The rx_frag_size module parameter refuses what is not 0 or a power of 2
#   from 1024 to 32768 (3000, 512: EINVAL) and takes 2048.
# - A plain TCP stream of the ncdevmem -v 7 pattern from netns a (socat from
#   source port PORT: the 4-tuple ncdevmem -c steers to its queue) into
#   ncdevmem -l -L on dmb: every byte validated in devmem fragments (no
#   linear one, no "Failed validation", total_received equal to what was
#   sent, exit 0), each inside one 2 KiB half of a page-sized net_iov, some
#   of them at in-page offset 2048 (an application meets non-zero
#   offsets); dmb's queues counted at least one frame per 1448 bytes (TSO
#   frames were cut at the sender's segment size) and GRO merged them again
#   (netns b's IP layer saw at least twice as many segments,
#   IpExtInNoECTPkts, as packets, IpInReceives).
# - rx-gro-hw: on by default (as gve and bnxt ship), turned off for the
#   cases above; with rx_frag_size back to 0 and
#   `ethtool -K dmb rx-gro-hw on`, the same stream arrives as whole TSO
#   frames with their payload packed into page-sized net_iovs: every byte
#   validated, largest fragment 4096, fragments averaging at least 3000
#   bytes (one 1448-byte fragment per wire frame without it); it turns
#   off again.
# - The DMA engine's other copy routine (dma_copy_words flipped from what
#   module load measured to be faster): the stream validates again.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
PARAM=/sys/module/dmveth/parameters/rx_frag_size
WORDS=/sys/module/dmveth/parameters/dma_copy_words
WORDS0=$(cat $WORDS 2>/dev/null)
# shellcheck disable=SC2317 # called by dmveth_test_cleanup
dmveth_test_cleanup_hook() {
	[ -w "$PARAM" ] && echo 0 >"$PARAM"
	[ -z "$WORDS0" ] || echo "$WORDS0" >$WORDS
}
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"
command -v socat >/dev/null || ktap_bail "socat present in the VM (the rig's root file system has it)"
[ -w $PARAM ] || ktap_bail "dmveth has the rx_frag_size parameter ($PARAM)"
[ -n "$WORDS0" ] || ktap_bail "dmveth has the dma_copy_words parameter ($WORDS; fix: vm/build)"

bad=''
for v in 3000 512 65536; do
	if (echo $v >$PARAM) 2>/dev/null; then bad+=" $v"; fi
done
if [ -z "$bad" ] && echo 2048 >$PARAM && [ "$(cat $PARAM)" = 2048 ]; then
	ktap_ok "rx_frag_size refuses 3000, 512 and 65536, takes 2048"
else
	ktap_bail "rx_frag_size refuses 3000, 512 and 65536 (took:${bad:- none}), takes 2048 (reads $(cat $PARAM))"
fi
# the queues latch it when they start: after the parameter is set
dmveth_test_init 4
grohw() { ip netns exec b ethtool -k $DMV_B | awk '$1 == "rx-gro-hw:" {print $2}'; }
# rx-gro-hw is on by default (as gve and bnxt ship); off, TSO frames are cut
# at the segment size and go through GRO
if [ "$(grohw)" = on ] && ip netns exec b ethtool -K $DMV_B rx-gro-hw off && [ "$(grohw)" = off ]; then
	ktap_ok "rx-gro-hw is on by default and turns off"
else
	ktap_fail "rx-gro-hw is on by default and turns off (now: $(grohw))"
fi

rxpk() { # rxpk: frames dmb's queues received
	ip netns exec b ethtool -S $DMV_B | awk '$1 ~ /^rx[0-9]+_packets:/ {s += $2} END {print s + 0}'
}
mib() { # mib NAME: a counter of netns b's IP MIB (nstat -a: absolute)
	ip netns exec b nstat -az "$1" | awk -v n="$1" '$1 == n {print $2 + 0}'
}
port=5490
bytes=$((2 << 20))
# stream: nc_stream's transfer; sets ok and secs, and of the fragments
# their count nf, how many cross a 2 KiB half (out), sit at in-page offset
# 2048 (half), the largest (max) and their sum
stream() {
	port=$((port + 1))
	nc_stream $port "$bytes" || ktap_bail "ncdevmem bound and listening"
	ok=$NC_OK secs=$NC_SECS
	read -r nf out half max sum < <(awk '{n++; sum += $2; if ($1 % 2048 + $2 > 2048) out++; if ($1 % 4096 == 2048) half++; if ($2 > max) max = $2}
		END {printf "%d %d %d %d %d\n", n, out, half, max, sum}' "$LOG/frags")
	$ok || echo "# fragments $nf: $out cross a 2 KiB half, $half at offset 2048, largest $max"
}

pk0=$(rxpk) in0=$(mib IpInReceives) seg0=$(mib IpExtInNoECTPkts)
stream
pk=$(($(rxpk) - pk0)) in=$(($(mib IpInReceives) - in0)) seg=$(($(mib IpExtInNoECTPkts) - seg0))
if $ok && [ "$out" = 0 ] && [ "$half" -gt 0 ] && [ "$max" -le 2048 ]; then
	ktap_ok "$bytes bytes validated in $nf devmem fragments, each inside a 2 KiB half, $half at in-page offset 2048, largest $max ($secs s)"
else
	ktap_fail "devmem stream validated in 2 KiB fragments, some at a non-zero offset ($nf fragments: $out cross a 2 KiB half, $half at offset 2048, largest $max)"
fi
if [ "$pk" -ge $((bytes / 1448)) ] && [ "$in" -gt 0 ] && [ "$seg" -ge $((2 * in)) ]; then
	ktap_ok "dmb received $pk frames for $bytes bytes (TSO frames cut at the segment size), GRO made $in packets of $seg segments"
else
	ktap_fail "dmb received at least $((bytes / 1448)) frames for $bytes bytes (got $pk), GRO merged them (IP saw $in packets of $seg segments)"
fi

# rx-gro-hw: whole TSO frames, payload packed into full buffers
echo 0 >$PARAM
if ip netns exec b ethtool -K $DMV_B rx-gro-hw on && [ "$(grohw)" = on ]; then
	ktap_ok "rx-gro-hw turns on again"
else
	ktap_fail "rx-gro-hw turns on again (now: $(grohw))"
fi
stream	# ncdevmem's bind-rx restarts the queue: rx_frag_size 0 again
if $ok && [ "$max" = 4096 ] && [ $((sum / nf)) -ge 3000 ]; then
	ktap_ok "rx-gro-hw on: $bytes bytes validated in $nf devmem fragments averaging $((sum / nf)) bytes, largest $max ($secs s)"
else
	ktap_fail "rx-gro-hw on: the stream validated in fragments averaging at least 3000 bytes, largest 4096 (got $nf fragments, average $((sum / (nf > 0 ? nf : 1))), largest $max)"
fi
ip netns exec b ethtool -K $DMV_B rx-gro-hw off
if [ "$(grohw)" = off ]; then
	ktap_ok "rx-gro-hw turns off again"
else
	ktap_fail "rx-gro-hw turns off again (now: $(grohw))"
fi

# The DMA engine's other copy routine (dma_copy_words: the one module load
# did not pick): the stream validates with it too
if [ "$(cat $WORDS)" = Y ]; then other=N; else other=Y; fi
echo $other >$WORDS
stream
if $ok && [ "$(cat $WORDS)" = $other ]; then
	ktap_ok "dma_copy_words=$other (load picked $WORDS0): $bytes bytes validated in $nf devmem fragments ($secs s)"
else
	ktap_fail "dma_copy_words=$other (load picked $WORDS0): the stream validated"
fi
ktap_done
