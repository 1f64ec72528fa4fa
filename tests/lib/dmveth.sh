# shellcheck shell=bash
# Helpers for tests that run inside the VM on a dmveth pair.
# Their poll loops use nap, from ktap.sh, which tests source first.
declare -F nap >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/ktap.sh"

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
	dmveth_irq_spread_restore
	true
}

# dmveth_irq_spread 0|1: dmveth's irq_spread module option (1: each RX
# queue's NAPI on its own interrupt CPU, as make bench runs; 0: in the
# sender's softirq, the default); the first call keeps the value it found,
# which dmveth_unpair (or dmveth_irq_spread_restore) puts back.
DMV_SPREAD=/sys/module/dmveth/parameters/irq_spread
DMV_SPREAD0=
dmveth_irq_spread() {
	[ -w $DMV_SPREAD ] || { echo "# no $DMV_SPREAD: dmveth.ko is older than the tree (fix: vm/build)" >&2; return 1; }
	[ -n "$DMV_SPREAD0" ] || DMV_SPREAD0=$(cat $DMV_SPREAD)
	echo "$1" >$DMV_SPREAD
}
dmveth_irq_spread_restore() {
	[ -n "$DMV_SPREAD0" ] || return 0
	if [ "$DMV_SPREAD0" = Y ]; then echo 1 >$DMV_SPREAD; else echo 0 >$DMV_SPREAD; fi
	DMV_SPREAD0=
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

# hugepages_state: the 2 MiB huge page pool on one line
# ("HugePages_Total: 40 HugePages_Free: 8 HugePages_Rsvd: 0 ").
hugepages_state() {
	grep -E '^HugePages_(Total|Free|Rsvd):' /proc/meminfo | tr -s ' ' | tr '\n' ' '
}

# hugepages_wait N [SECONDS]: until N huge pages are free; 1 after SECONDS
# (20).  A binding's udmabuf comes back only when the kernel frees the
# binding, some time after its process exits (0.1-0.5 s seen under TCG, up
# to about 1 s), so the next user of the pages waits here.
hugepages_wait() {
	local want=$1 t=${2:-20} i k v
	for ((i = 0; i < t * 10; i++)); do
		# read, not awk: no process started per round (see nap)
		while read -r k v _; do
			[ "$k" = HugePages_Free: ] && break
		done </proc/meminfo
		[ "${v:-0}" -ge "$want" ] && return 0
		nap 0.1
	done
	return 1
}

# ncdevmem_server FILE PORT SRV CLI [ARGS...]: the kernel's devmem receiver,
# `ncdevmem -l -L -v 7 ARGS` on $DMV_B in netns b, in the background (its pid
# in NCD_PID), until it listens (60 s); else (or at once when it exits
# first) 1, with its last lines as comments.  Its stderr goes to FILE, its
# stdout to FILE.out: ncdevmem writes "Validated buffer" to stdout,
# block-buffered into a file, and everything else unbuffered to stderr.
# In one file a 4 KiB stdout flush ends mid-line and the next stderr line
# is glued to it, which can hide the last total_received= or a Failed
# validation line (a CI run read 66411008 of 67108864 bytes that way).
ncdevmem_server() {
	local f=$1 port=$2 srv=$3 cli=$4
	shift 4
	rm -f "$f" "$f.out"
	ip netns exec b ncdevmem -l -L -f "$DMV_B" -s "$srv" -c "$cli" -p "$port" -v 7 "$@" >"$f.out" 2>"$f" &
	NCD_PID=$!
	wait_listen b "$port" 60 "$NCD_PID" && return 0
	tail -n 20 "$f" | sed 's/^/# /'
	kill "$NCD_PID" 2>/dev/null
	return 1
}

# ncdevmem_got FILE: the server's last total_received (empty if none);
# ncdevmem_bad FILE: its Failed validation lines (ncdevmem tolerates 20
# wrong bytes and still exits 0); ncdevmem_tail FILE N: its last N lines
# that are not per-buffer chatter, as comments.
ncdevmem_got() { sed -n 's/^total_received=\([0-9]*\)$/\1/p' "$1" | tail -n 1; }
ncdevmem_bad() { grep -c '^Failed validation' "$1"; }
ncdevmem_tail() {
	grep -m 3 '^Failed validation' "$1" | sed 's/^/# server: /'
	grep -v -E 'received frag_page|Validated buffer|^recvmsg ret=|^total_received=|^Failed validation' "$1" |
		tail -n "$2" | sed 's/^/# server: /'
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

# nc_stream PORT BYTES [NCDEVMEM_ARGS...]: the ncdevmem -v 7 pattern, BYTES
# of it, from netns a (socat from source port PORT: the 4-tuple ncdevmem -c
# steers to its queue) into `ncdevmem -l -L -v 7 ARGS` on $DMV_B.  Its log
# stays in $LOG/srv; it writes "OFFSET SIZE" per devmem fragment to
# $LOG/frags and sets NC_OK (true: every program exited 0, the server saw
# its client exit, no "Failed validation", no linear fragment, all BYTES,
# at least one fragment), NC_SECS (send to exit) and NC_WHY (what went
# wrong, for a comment line; the server's log tail follows it on stdout).
# Returns 1, having printed the log's tail, when the server never listened.
# shellcheck disable=SC2034 # NC_* are for the caller
nc_stream() {
	local port=$1 bytes=$2 spid gen snd rc got bad lin t0 t1
	shift 2
	NC_OK=false NC_SECS=0 NC_WHY="ncdevmem never listened on port $port"
	: >"$LOG/frags"
	ncdevmem_server "$LOG/srv" "$port" "$DMV_B4" "$DMV_A4" "$@" || return 1
	spid=$NCD_PID
	t0=$(date +%s.%N)
	pattern 7 "$bytes" | timeout 60 ip netns exec a socat -u -b 65536 - "TCP:$DMV_B4:$port,sourceport=$port"
	gen=${PIPESTATUS[0]} snd=${PIPESTATUS[1]}
	bwait "$spid" 60
	rc=$?
	t1=$(date +%s.%N)
	NC_SECS=$(awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", z - a}')
	got=$(ncdevmem_got "$LOG/srv")
	bad=$(ncdevmem_bad "$LOG/srv")
	lin=$(grep -c 'SCM_DEVMEM_LINEAR' "$LOG/srv")
	sed -n 's/^received .*frag_offset=\([0-9]*\), frag_size=\([0-9]*\),.*/\1 \2/p' "$LOG/srv" >"$LOG/frags"
	if [ "$gen" = 0 ] && [ "$snd" = 0 ] && [ "$rc" = 0 ] && grep -q 'client exited' "$LOG/srv" &&
		[ "$bad" = 0 ] && [ "$lin" = 0 ] && [ "$got" = "$bytes" ] && [ -s "$LOG/frags" ]; then
		NC_OK=true NC_WHY=''
		return 0
	fi
	NC_WHY="pattern exit $gen, socat exit $snd, ncdevmem exit $rc, total_received=${got:-none} (sent $bytes), $bad 'Failed validation' lines, $lin linear, $(wc -l <"$LOG/frags") fragments"
	echo "# $NC_WHY"
	ncdevmem_tail "$LOG/srv" 15
	return 0
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
