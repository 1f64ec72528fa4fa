#!/usr/bin/env bash
# cap: 900
# The kernel's NIC selftests (tools/testing/selftests/drivers/net/: hw/
# ntuple.py, hw/rss_ctx.py, hw/iou-zcrx.py, hds.py, queues.py) on dmveth,
# issue 12: NETIF is one end in this netns, the remote end is in netns "a" (REMOTE_TYPE=netns),
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
. "$TOP/tests/lib/ksft.sh"
D=$KSFT_NET
ksft_need hds.py queues.py hw/iou-zcrx.py hw/ntuple.py hw/rss_ctx.py
ETH=$(ls -d "$(dirname "$DEVMEMTCP_TOOLS")"/ethtool-*/usr/sbin 2>/dev/null | sort -V | tail -n 1)
# (lo has no coalescing: a JSON-capable ethtool says so, an old one refuses --json)
[ -n "$ETH" ] && [[ $("$ETH/ethtool" --json -c lo 2>&1) == *"Operation not supported"* ]] ||
	ktap_bail "an ethtool that prints --json -c in the cache (host: $(ethtool --version); fix: vm/build)"
export PATH=$ETH:$PATH

# case -> a text its SKIP reason must contain
declare -A ALLOW_SKIP=()
# selftest -> its cases not run, with why (none)
declare -A EXCLUDE=()
# selftest -> the only cases run (patterns), with why (none: hw/ntuple.py
# and hw/rss_ctx.py run whole)
declare -A ONLY=()
# selftest -> the seed of its Python random module (KSFT_SEED overrides).
# rss_ctx.py sets RSS keys it draws from random (test_hitless_key_update's
# stays in place), then checks that 16 iperf3 flows over IPv6, told apart
# only by source ports a few steps apart, land on both halves of a table.
# Under Toeplitz those port bits reach the queue only through key bits
# 292-301: a key with them zero (about 1 in 1000) puts every flow on one
# queue on any Toeplitz NIC, and about as many more put them on one half;
# test_rss_context_overlap and _overlap2 fail then, and _flow_hash with the
# first (a CI run of 590f97a did, [75898, 0, 0, 0]; setting such a key
# before them does it every time).  A pinned seed draws the same keys each
# run; after the run tests/lib/rss-spread.py says how far the key left in
# place spreads those flows.
declare -A KSFT_SEED_OF=([rss_ctx]=3)

KSFT_LOG=$(mktemp -d)
trap 'ksft_unpair; rm -rf "$KSFT_LOG"' EXIT
# 72 queues, 4 of them active: rss_ctx.py's context32 raises NETIF to 66
# (2 for the device's table, 2 for each of 32 contexts), the others to 5-10
ksft_pair 72
ktap_ok "dmveth pair (4 of 72 queues active), $DMV_B here and $DMV_A in netns a; $(ethtool --version)"

SCALE=3
[ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] && SCALE=10
for t in ${NIC_SELFTESTS:-hds.py queues.py hw/iou-zcrx.py hw/ntuple.py hw/rss_ctx.py}; do
	args=()
	set -f	# the patterns are the selftest's, not the shell's
	for x in ${EXCLUDE[$t]:-}; do args+=(-T "$x"); done
	for x in ${ONLY[$t]:-}; do args+=(-t "$x"); done
	set +f
	ksft_run "$D/$(dirname "$t")" "$(basename "$t" .py)" 400 $SCALE "${args[@]}"
	if [ "$t" = hw/rss_ctx.py ]; then
		key=$(ethtool -x $DMV_B | sed -n '/hash key/{n;p}')
		echo "# rss_ctx.py left RSS key ${key:0:11}...: IPv6 flows whose source ports differ in bits 1-9 reach $("$TOP/tests/lib/rss-spread.py" -6 "$key" 2>&1) of an equal-4 table (_overlap and _overlap2 need both halves, _flow_hash 2 queues, on any Toeplitz NIC)"
	fi
done
ktap_done
