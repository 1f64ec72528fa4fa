# shellcheck shell=bash
# Helpers for the tests that run the kernel's own NIC selftests
# (tools/testing/selftests/drivers/net/) on dmveth.  Source ktap.sh and
# dmveth.sh first.
#
# The kernel's driver selftests, as vm/build installs them.
KSFT_NET=${DEVMEMTCP_TOOLS:-}/tools/testing/selftests/drivers/net

# ksft_need FILE...: each FILE (relative to KSFT_NET) is there, or bail out
# naming it and the fix.
ksft_need() {
	local f
	for f in "$@"; do
		[ -f "$KSFT_NET/$f" ] ||
			ktap_bail "$f of the kernel's NIC selftests under \$DEVMEMTCP_TOOLS (${DEVMEMTCP_TOOLS:-unset}; fix: vm/build)"
	done
}

# ksft_pair [MAX]: netns "a" and a dmveth pair with 4 active queues of MAX
# (default 4): NETIF ($DMV_B) in this netns, the remote end ($DMV_A) in
# netns a (REMOTE_TYPE=netns), both up with IPv4 and IPv6 addresses; IPv6
# addresses survive a link going down (queues.py check_down), and lo is up
# on both sides.  Bails out on failure; the caller's EXIT trap runs
# ksft_unpair.
ksft_pair() {
	local peer max=${1:-4}
	ip netns add a || ktap_bail "ip netns add a"
	ip link add $DMV_B numrxqueues "$max" numtxqueues "$max" type dmveth ||
		ktap_bail "ip link add $DMV_B numrxqueues $max type dmveth"
	peer=$(ip -o link show $DMV_B | sed -n 's/^[0-9]*: [^@]*@\([^:]*\):.*/\1/p')
	ip link set "$peer" name $DMV_A && ip link set $DMV_A netns a ||
		ktap_bail "the peer of $DMV_B renamed $DMV_A and moved to netns a"
	ip addr add $DMV_B4/24 dev $DMV_B
	ip addr add $DMV_B6/64 dev $DMV_B nodad
	ip -n a addr add $DMV_A4/24 dev $DMV_A
	ip -n a addr add $DMV_A6/64 dev $DMV_A nodad
	sysctl -qw net.ipv6.conf.$DMV_B.keep_addr_on_down=1
	ip netns exec a sysctl -qw net.ipv6.conf.$DMV_A.keep_addr_on_down=1
	if [ "$max" -gt 4 ]; then
		ethtool -L $DMV_B combined 4 && ip netns exec a ethtool -L $DMV_A combined 4 ||
			ktap_bail "ethtool -L combined 4 on both ends of the $max-queue pair"
	fi
	ip link set lo up
	ip -n a link set lo up
	ip link set $DMV_B up
	ip -n a link set $DMV_A up
	# The selftests' socat clients in netns a bind the source port they
	# connect to (bind=[REMOTE]:PORT, PORT from rand_port() here), and
	# each of them closes first, so that port sits in TIME_WAIT there for
	# 60 s.  A later rand_port() that picks it again made socat fail
	# "Address already in use" (seen once, in nk_devmem's
	# check_nk_rx_large_niov).  netns a, the remote machine's stand-in,
	# keeps no TIME_WAIT sockets: the port is free once the connection is.
	ip netns exec a sysctl -qw net.ipv4.tcp_max_tw_buckets=0 ||
		ktap_bail "sysctl net.ipv4.tcp_max_tw_buckets=0 in netns a"
	ksft_port_reuse
}

# ksft_port_reuse: from netns a, two connections in a row to NETIF with
# the selftests' own socat client command (socat_send: source port bound
# to the destination port, netns a closes first); the second must get the
# port.  A result line either way.
KSFT_REUSE_PORT=47901
ksft_port_reuse() {
	local p=$KSFT_REUSE_PORT srv out rc=0 i
	out=$(mktemp)
	socat -u "TCP6-LISTEN:$p,bind=[$DMV_B6],reuseaddr,fork" - >/dev/null 2>"$out.srv" &
	srv=$!
	wait_listen "" $p 20 $srv || { rc=1; echo "no listener on [$DMV_B6]:$p:" >"$out"; cat "$out.srv" >>"$out"; }
	for i in 1 2; do
		[ $rc = 0 ] || break
		echo x | ip netns exec a timeout 20 socat -u - "TCP6:[$DMV_B6]:$p,bind=[$DMV_A6]:$p" 2>>"$out" ||
			{ rc=1; echo "(connection $i)" >>"$out"; }
	done
	kill $srv 2>/dev/null
	bwait $srv 10 >/dev/null 2>&1
	if [ $rc = 0 ]; then
		ktap_ok "netns a keeps no TIME_WAIT: a source port bound, used and closed there is bound again at once (as the selftests' socat clients bind theirs)"
	else
		ktap_fail "netns a: a source port bound again right after its connection closed: $(tr '\n' ' ' <"$out")"
	fi
	rm -f "$out" "$out.srv"
}

ksft_unpair() {
	ip link del $DMV_B 2>/dev/null
	ip netns del a 2>/dev/null
	[ -z "$KSFT_HP0" ] || echo "$KSFT_HP0" >/proc/sys/vm/nr_hugepages
	true
}

# ksft_hugepages N: at least N huge pages of 2 MiB in the pool, for the
# selftests' large-niov cases.  devmem_lib asks for 64 and goes on with
# what it has; each ncdevmem -b 16384 pins 32 of them (its 62.5 MiB
# udmabuf, rounded up), and they come back only when the kernel frees the
# binding, some time after the process exits (about 1 s in a TCG guest).
# The cases run back to back: with 64 pages a CI run failed "create
# udmabuf: Cannot allocate memory", so callers ask for room for four.
# Caches are dropped first, and memory compacted where the kernel can.  A
# result line says what it got; KSFT_HP0 keeps the count before, which
# ksft_unpair puts back; ksft_hugepages_report prints the pool's state.
KSFT_HP0=
ksft_hugepages_report() {
	echo "# huge pages after the run: $(hugepages_state)"
}
ksft_hugepages() {
	local want=$1 hp=/proc/sys/vm/nr_hugepages got
	KSFT_HP0=$(cat $hp)
	[ "$KSFT_HP0" -ge "$want" ] && return 0
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# (the rig's kernels have no CONFIG_COMPACTION: no file to write)
	[ ! -w /proc/sys/vm/compact_memory ] || echo 1 >/proc/sys/vm/compact_memory
	echo "$want" >$hp
	got=$(cat $hp)
	if [ "$got" -ge "$want" ]; then
		ktap_ok "$want huge pages of 2 MiB reserved for the large-niov cases"
	else
		ktap_fail "$want huge pages of 2 MiB reserved for the large-niov cases (got $got; $(grep -E '^MemFree' /proc/meminfo | tr -s ' '))"
	fi
}

# ksft_run DIR NAME LIMIT SCALE [ARG...]: run DIR/NAME.py (NETIF and the
# remote end from ksft_pair, every other variable from the environment, its
# framework's waits scaled by SCALE, at most LIMIT seconds) and turn its
# cases into our result lines: "not ok" fails, and so does a SKIP unless
# the caller's associative array ALLOW_SKIP maps the case to a text its
# reason contains; the count must match the selftest's plan and it must
# exit 0.  Prints its totals line; the selftest's output is in
# $KSFT_LOG/NAME.  Sets KSFT_SEEN to " case case ... ".  ARGs go to the
# selftest (-t/-T patterns).  A failed case is shown with its own
# diagnostics: the "# " lines between the result line before it and its own.
# The selftest's Python random module is seeded (tests/lib/ksft-scaled.py
# prints the seed): with $KSFT_SEED where set (to repeat or explore a run),
# else with the caller's associative array KSFT_SEED_OF[NAME], else fresh.
ksft_run() {
	local dir=$1 name=$2 limit=$3 scale=$4 n=0 plan rc line c why t0 out ln prev=0 seed
	shift 4
	out=$KSFT_LOG/$name
	KSFT_SEEN=" "
	seed=${KSFT_SEED:-}
	if [ -z "$seed" ] && declare -p KSFT_SEED_OF >/dev/null 2>&1; then
		seed=${KSFT_SEED_OF[$name]:-}
	fi
	t0=$(date +%s)
	(cd "$dir" && NETIF=$DMV_B REMOTE_TYPE=netns REMOTE_ARGS=a LOCAL_V4=$DMV_B4 \
		REMOTE_V4=$DMV_A4 LOCAL_V6=$DMV_B6 REMOTE_V6=$DMV_A6 PYTHONDONTWRITEBYTECODE=1 \
		KSFT_SEED=$seed \
		timeout "$limit" python3 "$TOP/tests/lib/ksft-scaled.py" "$scale" "./$name.py" "$@") \
		>"$out" 2>&1
	rc=$?
	sed -i 's/\x1b\[[0-9;]*m//g' "$out"
	echo "# $name.py: $(grep -E '^# Totals:' "$out" | tail -n 1) (exit $rc, $(($(date +%s) - t0)) s; $(grep -m 1 -oE 'random\.seed\([0-9]+\)' "$out" || echo 'no seed line'))"
	plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$out" | head -n 1)
	while IFS= read -r line; do
		ln=${line%%:*}
		line=${line#*:}
		n=$((n + 1))
		c=$(sed -E "s/^(not )?ok [0-9]+ $name\.([A-Za-z0-9_.]+).*/\2/" <<<"$line")
		KSFT_SEEN+="$c "
		case $line in
		"not ok "*)
			sed -n "$((prev + 1)),$((ln - 1))p" "$out" | grep -E '^# ' | tail -n 15
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
		prev=$ln
	done < <(grep -nE "^(not )?ok [0-9]+ $name\." "$out")
	if [ "$rc" = 0 ] && [ -n "$plan" ] && [ "$plan" = $n ]; then
		ktap_ok "$name.py exits 0 with all $n planned cases reported"
	else
		tail -n 20 "$out" | sed 's/^/# /'
		ktap_fail "$name.py exits 0 with every planned case reported (exit $rc, plan ${plan:-none}, $n reported)"
	fi
}

# ksft_require CASE...: each CASE was among the last ksft_run's cases.
ksft_require() {
	local c
	for c in "$@"; do
		[[ $KSFT_SEEN == *" $c "* ]] || ktap_fail "$c: not run"
	done
}
