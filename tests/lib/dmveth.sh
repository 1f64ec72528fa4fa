# shellcheck shell=bash
# Helpers for tests that run inside the VM on a dmveth pair.
#
# dmveth_pair [QUEUES]: create the pair "dma" (netns a, 10.55.0.1, fd55::1)
# and "dmb" (netns b, 10.55.0.2, fd55::2), both up.  Stock iproute2 cannot
# name a dmveth peer, so the peer comes up as dmvethN and is renamed.
DMV_A=dma DMV_B=dmb
DMV_A4=10.55.0.1 DMV_B4=10.55.0.2
DMV_A6=fd55::1 DMV_B6=fd55::2

dmveth_pair() {
	local q=${1:-4} peer
	ip netns add a || return 1
	ip netns add b || return 1
	ip link add $DMV_A numrxqueues "$q" numtxqueues "$q" type dmveth || return 1
	peer=$(ip -o link show $DMV_A | sed -n 's/^[0-9]*: [^@]*@\([^:]*\):.*/\1/p')
	[ -n "$peer" ] || { echo "# no peer found for $DMV_A" >&2; return 1; }
	ip link set "$peer" name $DMV_B || return 1
	ip link set $DMV_A netns a || return 1
	ip link set $DMV_B netns b || return 1
	ip -n a addr add $DMV_A4/24 dev $DMV_A
	ip -n b addr add $DMV_B4/24 dev $DMV_B
	ip -n a addr add $DMV_A6/64 dev $DMV_A nodad
	ip -n b addr add $DMV_B6/64 dev $DMV_B nodad
	ip -n a link set lo up
	ip -n b link set lo up
	ip -n a link set $DMV_A up
	ip -n b link set $DMV_B up
}

dmveth_unpair() {
	ip netns del a 2>/dev/null
	ip netns del b 2>/dev/null
	true
}

# dmveth_test_init [QUEUES]: the start most dmveth tests share: LOG (a new
# temporary folder), an EXIT trap (dmveth_test_cleanup) and the pair
# (dmveth_pair QUEUES, default 4), or a bail out.  Source ktap.sh first.
dmveth_test_init() {
	LOG=$(mktemp -d) || ktap_bail "make a temporary folder"
	trap dmveth_test_cleanup EXIT
	dmveth_pair "${1:-4}" || ktap_bail "create a dmveth pair in netns a and b"
}

# dmveth_test_cleanup: kill the test's background jobs, run the test's own
# dmveth_test_cleanup_hook if it defines one, delete the pair and LOG.
dmveth_test_cleanup() {
	local p
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	if declare -F dmveth_test_cleanup_hook >/dev/null; then
		dmveth_test_cleanup_hook
	fi
	dmveth_unpair
	[ -z "${LOG:-}" ] || rm -rf "$LOG"
}

# wait_listen NS PORT [SECONDS]: until a TCP socket listens on PORT in NS.
wait_listen() {
	local ns=$1 port=$2 t=${3:-60} i
	for ((i = 0; i < t * 10; i++)); do
		[ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port")" ] && return 0
		sleep 0.1
	done
	return 1
}

# pattern N BYTES: the ncdevmem -v N pattern (bytes 1..N-1, then '\n').
pattern() {
	python3 -c '
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
unit = bytes(range(1, n)) + b"\n"
out = sys.stdout.buffer
reps, rest = divmod(size, len(unit))
chunk = unit * 65536
for _ in range(reps // 65536):
    out.write(chunk)
out.write(unit * (reps % 65536) + unit[:rest])
' "$1" "$2"
}

# scale BYTES [DEBUG_BYTES]: BYTES on the normal kernel; on the debug kernel,
# which is many times slower, DEBUG_BYTES or BYTES/16 (DEVMEMTCP_FULL=1:
# BYTES there too).
scale() {
	if [ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] && [ "${DEVMEMTCP_FULL:-0}" != 1 ]; then
		echo "${2:-$(($1 / 16))}"
	else
		echo "$1"
	fi
}

# The kernel's YNL cli and specs from the rig's tools tree ($DEVMEMTCP_TOOLS).
YNL=${DEVMEMTCP_TOOLS:-/nonexistent}/tools/net/ynl/pyynl/cli.py
SPECS=${DEVMEMTCP_TOOLS:-/nonexistent}/Documentation/netlink/specs
# ynl NS FAMILY ARGS...: the YNL cli with FAMILY's spec, in netns NS.  Its
# start-up (Python, the YAML spec) takes seconds under TCG and over a minute
# on a loaded machine: the cap (an upper bound, free on a healthy run) is
# 180 s.
ynl() {
	local ns=$1 fam=$2
	shift 2
	ip netns exec "$ns" timeout 180 python3 "$YNL" --spec "$SPECS/$fam.yaml" --no-schema "$@"
}

# eth ARGS...: ethtool in netns b
eth() { ip netns exec b timeout 60 ethtool "$@"; }

# ethtool 6.13+ sets and shows tcp-data-split and hds-thresh itself
# (no `| grep -q`: under pipefail its early exit would fail ethtool with
# SIGPIPE)
ETHTOOL_HDS=0
case $(ethtool -h 2>&1) in *hds-thresh*) ETHTOOL_HDS=1 ;; esac

# rings_set DEV [rx N] [tx N] [tcp-data-split on|off] [hds-thresh N] (DEV in
# netns b): ethtool -G, or the YNL cli where ethtool is too old for these
rings_set() {
	local dev=$1 json v
	shift
	if [ $ETHTOOL_HDS = 1 ]; then
		eth -G "$dev" "$@"
		return
	fi
	json="{\"header\": {\"dev-name\": \"$dev\"}"
	while [ $# -ge 2 ]; do
		case $1:$2 in
		tcp-data-split:on) v='"enabled"' ;;
		tcp-data-split:off) v='"disabled"' ;;
		tcp-data-split:auto) v='"unknown"' ;;
		*) v=$2 ;;
		esac
		json+=", \"$1\": $v"
		shift 2
	done
	ynl b ethtool --do rings-set --json "$json}"
}
