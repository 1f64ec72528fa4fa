#!/usr/bin/env bash
# cap: 220
# The kernel's NIC selftests (tools/testing/selftests/drivers/net/: hw/
# ntuple.py, hw/rss_ctx.py, hds.py, queues.py) on dmveth, issue 12: NETIF is
# one end in this netns, the remote end is in netns "a" (REMOTE_TYPE=netns),
# as in 30-devmem-selftest.t.  They read ethtool's JSON output (-c, -g, -x,
# ...), which bookworm's ethtool 6.1 does not print: vm/build unpacks sid's
# ethtool into the cache and it goes first in PATH here.
# Each selftest's cases are result lines of ours: "not ok" fails, and so
# does a SKIP unless ALLOW_SKIP names the case and its reason; cases listed
# in EXCLUDE are not run (-T), each with the reason; the count must match
# the selftest's plan and it must exit 0.  Each selftest's own totals line
# is printed.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
D=${DEVMEMTCP_TOOLS:-}/tools/testing/selftests/drivers/net
[ -f "$D/hw/ntuple.py" ] || ktap_bail "the NIC selftests under \$DEVMEMTCP_TOOLS (${DEVMEMTCP_TOOLS:-unset}; fix: vm/build)"
ETH=$(ls -d "$(dirname "$DEVMEMTCP_TOOLS")"/ethtool-*/usr/sbin 2>/dev/null | sort -V | tail -n 1)
# (lo has no coalescing: a JSON-capable ethtool says so, an old one refuses --json)
[ -n "$ETH" ] && [[ $("$ETH/ethtool" --json -c lo 2>&1) == *"Operation not supported"* ]] ||
	ktap_bail "an ethtool that prints --json -c in the cache (host: $(ethtool --version); fix: vm/build)"
export PATH=$ETH:$PATH

# case -> a text its SKIP reason must contain
declare -A ALLOW_SKIP=()
# selftest -> its cases not run, with why
declare -A EXCLUDE=()
# selftest -> the only cases run (patterns), with why
# Under TCG each ntuple.py variant takes ~8 s (all 24 pass: 205 s) and each
# rss_ctx.py case 10-40 s: the caps' total (tests/host/runner.t) allows a
# sample.  rss_ctx.py cases left out: those needing more than 4 queues
# (queue_reconfigure, context4/32, out_of_order, create_with_cfg,
# context_queue_reconfigure, flow_hash: "Not enough queues"/-L refused),
# and the slow traffic ones (overlap, overlap2, ntuple_addition,
# default_context_rule, persist_*) -- see the report of issue 12.
declare -A ONLY=(
	[hw/ntuple.py]="*tcp4.src_ip.dst_ip.src_port.dst_port *udp4.src_port *tcp6.src_ip *udp6.dst_port"
	[hw/rss_ctx.py]="test_rss_key_indir test_rss_resize test_rss_context test_rss_context_dump test_flow_add_context_missing test_delete_rss_context_busy"
)

LOG=$(mktemp -d)
trap 'ip link del $DMV_B 2>/dev/null; ip netns del a 2>/dev/null; rm -rf "$LOG"' EXIT
ip netns add a
ip link add $DMV_B numrxqueues 4 numtxqueues 4 type dmveth
peer=$(ip -o link show $DMV_B | sed -n 's/^[0-9]*: [^@]*@\([^:]*\):.*/\1/p')
ip link set "$peer" name $DMV_A
ip link set $DMV_A netns a
ip addr add $DMV_B4/24 dev $DMV_B
ip addr add $DMV_B6/64 dev $DMV_B nodad
ip -n a addr add $DMV_A4/24 dev $DMV_A
ip -n a addr add $DMV_A6/64 dev $DMV_A nodad
# queues.py check_down takes NETIF down: keep the IPv6 addresses (by
# default a link going down drops them, and every IPv6 case after fails)
sysctl -qw net.ipv6.conf.$DMV_B.keep_addr_on_down=1
ip netns exec a sysctl -qw net.ipv6.conf.$DMV_A.keep_addr_on_down=1
ip link set lo up
ip -n a link set lo up
ip link set $DMV_B up
ip -n a link set $DMV_A up
ktap_ok "dmveth pair, $DMV_B here and $DMV_A in netns a; $(ethtool --version)"

SCALE=3
[ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] && SCALE=10
# run TEST: one selftest, its cases as our result lines
run() {
	local t=$1 name excl=() x n=0 plan rc line c t0
	local -
	name=$(basename "$t" .py)
	set -f	# the patterns are the selftest's, not the shell's
	for x in ${EXCLUDE[$t]:-}; do excl+=(-T "$x"); done
	for x in ${ONLY[$t]:-}; do excl+=(-t "$x"); done
	t0=$(date +%s)
	(cd "$D/$(dirname "$t")" && NETIF=$DMV_B REMOTE_TYPE=netns REMOTE_ARGS=a LOCAL_V4=$DMV_B4 \
		REMOTE_V4=$DMV_A4 LOCAL_V6=$DMV_B6 REMOTE_V6=$DMV_A6 PYTHONDONTWRITEBYTECODE=1 \
		timeout 400 python3 "$TOP/tests/lib/ksft-scaled.py" $SCALE "./$name.py" "${excl[@]}") \
		>"$LOG/$name" 2>&1
	rc=$?
	sed -i 's/\x1b\[[0-9;]*m//g' "$LOG/$name"
	echo "# $t: $(grep -E '^# Totals:' "$LOG/$name" | tail -n 1) (exit $rc, $(($(date +%s) - t0)) s)"
	plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$LOG/$name" | head -n 1)
	while IFS= read -r line; do
		n=$((n + 1))
		c=$(sed -E "s/^(not )?ok [0-9]+ $name\.([A-Za-z0-9_.]+).*/\2/" <<<"$line")
		case $line in
		"not ok "*)
			grep -E '^# ' "$LOG/$name" | grep -v '^# Totals' | tail -n 15
			ktap_fail "$name $c${line#*$name.$c}" ;;
		*" # SKIP "*)
			why=${line#* # SKIP }
			if [ -n "${ALLOW_SKIP[$c]:-}" ] && [[ $why == *"${ALLOW_SKIP[$c]}"* ]]; then
				ktap_skip "$name $c" "$why (allowed: ${ALLOW_SKIP[$c]})"
			else
				ktap_fail "$name $c: skipped ($why), not on this test's allow-list"
			fi ;;
		*" # "*) ktap_fail "$name $c: ${line#* # }" ;;
		*) ktap_ok "$name $c" ;;
		esac
	done < <(grep -E "^(not )?ok [0-9]+ $name\." "$LOG/$name")
	if [ "$rc" = 0 ] && [ -n "$plan" ] && [ "$plan" = $n ]; then
		ktap_ok "$t exits 0 with all $n planned cases reported"
	else
		tail -n 20 "$LOG/$name" | sed 's/^/# /'
		ktap_fail "$t exits 0 with every planned case reported (exit $rc, plan ${plan:-none}, $n reported)"
	fi
}

for t in ${NIC_SELFTESTS:-hds.py queues.py hw/ntuple.py hw/rss_ctx.py}; do
	run "$t"
done
ktap_done
