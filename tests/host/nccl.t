#!/usr/bin/env bash
# cap: 30
# cap-asan: 30
# asan: yes
# The NCCL net plugin on this machine, host-memory path: the library file
# exports ncclNetPlugin_v8..v12 and nothing else; nccl-abi checks our ABI
# header against NCCL's numbers; nccl-harness drives the plugin as NCCL's
# proxy does, two ranks over loopback and then across a veth pair between
# two network namespaces; init with devmem required on the veth (no devmem)
# fails with the reason in NCCL's log and changes nothing on the interface.
# The namespaces are removed on every exit path.
. "$(dirname "$0")/../lib/ktap.sh"
set -o pipefail

PLUGIN=$BUILD/nccl/libnccl-net-devmemtcp.so
NS_A=dmt-nccl-$$-a NS_B=dmt-nccl-$$-b
TMP=$(mktemp -d /tmp/dmt-nccl.XXXXXX)
cleanup() {
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# run LABEL CMD...: the program's KTAP lines, renumbered by tests/run's count.
run() {
	local label=$1
	shift
	"$@" 2>&1 | sed "s/^\(\(not \)\{0,1\}ok \)[0-9]* /\1- $label: /"
}

if [ ! -f "$PLUGIN" ]; then
	ktap_fail "libnccl-net-devmemtcp.so built (make all)"
else
	exports=$(nm -D --defined-only "$PLUGIN" | awk '{print $3}' | sort | tr '\n' ' ')
	want="ncclNetPlugin_v10 ncclNetPlugin_v11 ncclNetPlugin_v12 ncclNetPlugin_v8 ncclNetPlugin_v9 "
	ktap_check "the plugin exports exactly ncclNetPlugin_v8..v12 (got: $exports)" \
		test "$exports" = "$want"
	needed=$(readelf -d "$PLUGIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
	ktap_check "the plugin carries the library inside (needs: $needed)" \
		bash -c "! grep -q libdevmemtcp <<<'$needed'"
	ktap_check "each table is a data object of the version's size" bash -c "
		readelf --dyn-syms -W '$PLUGIN' | awk '\$8 ~ /^ncclNetPlugin_v/ { print \$8, \$3, \$4 }' | sort >'$TMP/sym'
		printf '%s\n' 'ncclNetPlugin_v10 160 OBJECT' 'ncclNetPlugin_v11 176 OBJECT' \
			'ncclNetPlugin_v12 176 OBJECT' 'ncclNetPlugin_v8 152 OBJECT' \
			'ncclNetPlugin_v9 160 OBJECT' | diff - '$TMP/sym'"
fi

for p in nccl-abi nccl-harness; do
	[ -x "$BUILD/tests/$p" ] || ktap_fail "$p built (make all)"
done
[ -x "$BUILD/tests/nccl-abi" ] && run "nccl-abi" "$BUILD/tests/nccl-abi"
[ -x "$BUILD/tests/nccl-harness" ] && [ -f "$PLUGIN" ] || exit 0

NCCL_DEVMEMTCP_MODE=host run "harness (lo)" \
	timeout 300 "$BUILD/tests/nccl-harness" -p "$PLUGIN" -i lo -I lo

# nic_state IFNAME: what an init could have changed, read in NS_A.
nic_state() {
	local c
	for c in "ip -d link show dev $1" "ethtool -k $1" "ethtool -l $1" "ethtool -g $1" \
		"ethtool -x $1" "ethtool -n $1"; do
		echo "== $c"
		# shellcheck disable=SC2086 # the command line splits on purpose
		ip netns exec "$NS_A" $c 2>&1
	done
}

if [ "$(id -u)" != 0 ] || ! ip netns add "$NS_A" 2>/dev/null; then
	ktap_skip "harness (veth)" "cannot create network namespaces (needs root)"
	exit 0
fi
if ! { ip netns add "$NS_B" &&
	ip link add dmnA netns "$NS_A" type veth peer name dmnB netns "$NS_B" &&
	ip -n "$NS_A" addr add 10.232.0.1/24 dev dmnA &&
	ip -n "$NS_B" addr add 10.232.0.2/24 dev dmnB &&
	ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
	ip -n "$NS_A" link set dmnA up && ip -n "$NS_B" link set dmnB up; } 2>"$TMP/err"; then
	sed 's/^/# /' "$TMP/err"
	ktap_skip "harness (veth)" "no veth pair between namespaces (CONFIG_VETH?)"
	exit 0
fi

NCCL_DEVMEMTCP_MODE=host run "harness (veth, two namespaces)" \
	timeout 300 "$BUILD/tests/nccl-harness" -p "$PLUGIN" -n "$NS_A" -N "$NS_B" -i dmnA -I dmnB

# --provider cuda: the sender's arena in GPU memory (libcuda.so.1 dlopen'ed,
# cuMemAlloc, its dma-buf registered).  Without a GPU the run is one SKIP
# naming why (no driver, no GPU, no dma-buf export); with one, init in
# devmem mode fails on veth and that is the SKIP.  Never a pass here: the
# devmem run with a GPU needs a devmem NIC (by hand: -i IF, PORTING.md).
out=$(NCCL_DEVMEMTCP_MODE=devmem timeout 120 "$BUILD/tests/nccl-harness" -p "$PLUGIN" \
	--provider cuda -n "$NS_A" -N "$NS_B" -i dmnA -I dmnB 2>&1)
rc=$?
why=$(sed -n 's/^ok [0-9]* .* # SKIP \(..*\)$/\1/p' <<<"$out" | head -n 1)
if { [ $rc = 4 ] || [ $rc = 0 ]; } && [ -n "$why" ] && ! grep -q '^not ok' <<<"$out"; then
	ktap_ok "harness --provider cuda: skips with the reason, nothing failed (exit $rc)"
	ktap_skip "harness --provider cuda (veth)" "$why"
else
	sed 's/^/# /' <<<"$out" | tail -n 20
	ktap_fail "harness --provider cuda: skips with the reason, nothing failed (exit $rc, reason '${why}')"
fi

# devmem required on an interface without it: init fails, says why, and
# leaves the interface as it was.
nic_state dmnA >"$TMP/before"
NCCL_DEVMEMTCP_MODE=devmem run "init on veth, devmem required" \
	timeout 60 ip netns exec "$NS_A" "$BUILD/tests/nccl-harness" -p "$PLUGIN" --init-fails -i dmnA \
	-e "devmem TCP is not usable on dmnA"
nic_state dmnA >"$TMP/after"
if diff "$TMP/before" "$TMP/after" >"$TMP/diff"; then
	ktap_ok "the failed init changed nothing on dmnA (link, features, channels, rings, RSS, ntuple)"
else
	sed 's/^/# /' "$TMP/diff"
	ktap_fail "the failed init changed nothing on dmnA"
fi
# a bad variable is refused with its name
NCCL_DEVMEMTCP_MODE=host NCCL_DEVMEMTCP_BUF_SIZE=lots run "bad NCCL_DEVMEMTCP_BUF_SIZE" \
	timeout 60 "$BUILD/tests/nccl-harness" -p "$PLUGIN" --init-fails -i lo -e NCCL_DEVMEMTCP_BUF_SIZE
NCCL_DEVMEMTCP_MODE=host NCCL_DEVMEMTCP_MAX_RECVS=9 run "bad NCCL_DEVMEMTCP_MAX_RECVS" \
	timeout 60 "$BUILD/tests/nccl-harness" -p "$PLUGIN" --init-fails -i lo -e "NCCL_DEVMEMTCP_MAX_RECVS=9: expected 1..8"
ktap_done
