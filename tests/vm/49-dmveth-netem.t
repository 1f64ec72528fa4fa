#!/usr/bin/env bash
# cap: 35
# cap-debug: 120
# vm-suite: debug
# dmveth: devmem TX and RX over a lossy wire (issue 12).  netem on dma (the
# sending end, netns a) loses 2% and duplicates 1% of the frames (TSO frames
# whole), sends 90% at once and holds the others 1 ms (reordering them);
# devmem-tx (bind-tx, devmem frags) sends the ncdevmem -v 7 pattern to
# ncdevmem -l -L -v 7 (bind-rx) on dmb, IPv4, then IPv6 (IPv4 only, 2 MiB, on
# the debug kernel).  Every byte must
# arrive validated (no linear fragment, no "Failed validation",
# total_received equal to what was sent, both exit 0) although TCP
# retransmitted unreadable skbs: netem counted drops and the sender's
# TcpRetransSegs grew.  The kernel needs CONFIG_NET_SCH_NETEM.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"
command -v devmem-tx >/dev/null || ktap_bail "devmem-tx built (make all)"
command -v tc >/dev/null || ktap_bail "tc present in the VM (iproute2)"
dmveth_test_init 4

NETEM=(loss 2% duplicate 1% delay 1ms reorder 90% 25%)
if out=$(ip netns exec a tc qdisc add dev $DMV_A root netem "${NETEM[@]}" 2>&1); then
	ktap_ok "netem on $DMV_A: ${NETEM[*]}"
else
	echo "# $out"
	ktap_bail "netem on $DMV_A (the kernel needs CONFIG_NET_SCH_NETEM)"
fi
# retrans: TcpRetransSegs of netns a (nstat -a: absolute)
retrans() { ip netns exec a nstat -az TcpRetransSegs | awk '$1 == "TcpRetransSegs" {print $2 + 0}'; }
qstat() { # qstat: the frames netem dropped (tc -s)
	ip netns exec a tc -s qdisc show dev $DMV_A |
		sed -n "s/.*(dropped \([0-9]*\), overlimits \([0-9]*\) requeues \([0-9]*\)).*/\1/p" | head -n 1
}

port=5490
# transfer NAME SRV CLI BYTES
transfer() {
	local name=$1 srv=$2 cli=$3 bytes=$4 gen crc src got bad lin r0 r1 d0 d1 t0 t1
	port=$((port + 1))
	r0=$(retrans) d0=$(qstat)
	if ! ncdevmem_server "$LOG/srv" $port "$srv" "$cli"; then
		ktap_fail "$name: ncdevmem listening"
		return
	fi
	local spid=$NCD_PID
	t0=$(date +%s.%N)
	pattern 7 "$bytes" | timeout 90 ip netns exec a devmem-tx -f $DMV_A -s "$srv" -c "$cli" -p $port >"$LOG/cli" 2>&1
	gen=${PIPESTATUS[0]} crc=${PIPESTATUS[1]}
	bwait $spid 60
	src=$?
	t1=$(date +%s.%N)
	r1=$(retrans) d1=$(qstat)
	got=$(ncdevmem_got "$LOG/srv")
	bad=$(ncdevmem_bad "$LOG/srv")
	lin=$(grep -c 'SCM_DEVMEM_LINEAR' "$LOG/srv")
	if [ "$gen" = 0 ] && [ "$crc" = 0 ] && [ "$src" = 0 ] && grep -q 'client exited' "$LOG/srv" &&
		[ "$bad" = 0 ] && [ "$lin" = 0 ] && [ "$got" = "$bytes" ] &&
		[ "$((r1 - r0))" -gt 0 ] && [ "$((d1 - d0))" -gt 0 ]; then
		ktap_ok "$name: $bytes bytes validated, netem dropped $((d1 - d0)), $((r1 - r0)) retransmitted segments ($(awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", z - a}') s)"
	else
		echo "# pattern exit $gen, devmem-tx exit $crc, ncdevmem exit $src, total_received=${got:-none} (sent $bytes), $bad 'Failed validation', $lin linear; netem dropped +$((d1 - d0)), retransmits +$((r1 - r0))"
		grep -v -E 'tx complete|sendmsg_ret' "$LOG/cli" | tail -n 8 | sed 's/^/# client: /'
		ncdevmem_tail "$LOG/srv" 12
		ktap_fail "$name: every byte validated through loss, duplication and reordering"
	fi
}
bytes=$(scale $((16 << 20)) $((2 << 20)))
transfer "devmem-tx -> netem -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$bytes"
# the debug kernel (~10x slower) runs the IPv4 transfer only
[ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] ||
	transfer "devmem-tx -> netem -> ncdevmem -l -L -v 7, IPv6" $DMV_B6 $DMV_A6 "$bytes"
dup=$(ip netns exec a tc -s qdisc show dev $DMV_A | head -n 3 | tr '\n' ' ')
echo "# $dup"
ktap_done
