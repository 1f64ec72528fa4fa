#!/usr/bin/env bash
# cap: 70
# Durable, exact NIC undo (libdevmemtcp 0.2) in the VM, on dmveth:
# - the library (tests/progs/nic-undo): tcp-data-split "unknown" round trip
#   on dmveth and on netdevsim (a single-buffer XDP attach works again after
#   restore), restore / free / close refused with EBUSY while a dma-buf is
#   bound, the log on disk, a second handle refused naming our pid, a child
#   SIGKILLed part way replayed;
# - `devmemtcp recv --mode devmem` SIGKILLed mid-transfer: the NIC state
#   (channels, rings with tcp-data-split, RSS table, ntuple rules and
#   feature, rx-gro-hw) differs, rx-gro-hw among it, a second recv is
#   refused (changes never undone, exit 17), `devmemtcp restore` brings it
#   back identical and removes the log;
# - SIGHUP and SIGQUIT mid-transfer: summary, exit 129 / 131, NIC identical,
#   no log left; rx-gro-hw on while receiving, off with --no-gro-hw;
# - two recv on one NIC: the second is refused naming the first's pid.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
NSIM_ID=65
cleanup() {
	kill $(jobs -p) 2>/dev/null
	[ -e /sys/bus/netdevsim/devices/netdevsim$NSIM_ID ] &&
		echo $NSIM_ID >/sys/bus/netdevsim/del_device
	dmveth_unpair
	rm -rf "$LOG"
}
trap cleanup EXIT
command -v devmemtcp >/dev/null || { ktap_fail "devmemtcp built (make all)"; exit 1; }
command -v nic-undo >/dev/null || { ktap_fail "nic-undo built (make all)"; exit 1; }

# nic_state NS DEV: everything recv may change: channels, rings (with
# tcp-data-split), the RSS table, the ntuple rules, the ntuple and
# rx-gro-hw features.
nic_state() {
	{
		ip netns exec "$1" ethtool -l "$2"
		ip netns exec "$1" ethtool -g "$2"
		ip netns exec "$1" ethtool -x "$2"
		ip netns exec "$1" ethtool -n "$2"
		ip netns exec "$1" ethtool -k "$2" | grep -E '^(ntuple-filters|rx-gro-hw):'
	} 2>&1
}

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }
# rx-gro-hw off, as mlx5 ships it (dmveth's default is on, as gve's and
# bnxt's): recv's NIC setup turns it on, restore turns it off again
ip netns exec b ethtool -K $DMV_B rx-gro-hw off || { ktap_fail "ethtool -K $DMV_B rx-gro-hw off"; exit 1; }

# netdevsim in netns b (new_device takes the writer's namespace): it reports
# tcp-data-split "enabled" while its config is "unknown"
nsim=
if [ -w /sys/bus/netdevsim/new_device ] &&
	ip netns exec b sh -c "echo '$NSIM_ID 1 4' >/sys/bus/netdevsim/new_device"; then
	# ethN without udev: the netdev whose parent device is netdevsimID
	for _ in $(seq 50); do
		nsim=$(ip -n b -d -j link show | python3 -c '
import json, sys
print(next((l["ifname"] for l in json.load(sys.stdin) if l.get("parentdev") == sys.argv[1]), ""))' \
			"netdevsim$NSIM_ID")
		[ -n "$nsim" ] && break
		nap 0.1
	done
	[ -n "$nsim" ] && ip -n b link set "$nsim" up
fi
if [ -n "$nsim" ]; then
	relay "nic-undo" ip netns exec b nic-undo -i $DMV_B -x "$nsim"
else
	ktap_fail "netdevsim device in netns b (CONFIG_NETDEVSIM: the rig's kernel has it)"
	relay "nic-undo" ip netns exec b nic-undo -i $DMV_B
fi

port=5800
# start_transfer: devmemtcp recv (devmem, validated) on dmb and devmemtcp
# send from dma for up to 10 minutes; RPID, SPID; 0 once bytes flow.
start_transfer() {
	port=$((port + 1))
	: >"$LOG/rcv.err"
	ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$DMV_B4:$port" --validate 7 \
		--mode devmem "$@" >"$LOG/rcv" 2>"$LOG/rcv.err" &
	RPID=$!
	wait_file_line "$LOG/rcv.err" '^listening on ' 60 $RPID || return 1
	ip netns exec a devmemtcp send "$DMV_B4:$port" --dev $DMV_A --provider udmabuf --size 8M \
		--time 600 --validate 7 --mode devmem >"$LOG/snd" 2>&1 &
	SPID=$!
	# bytes arrived: the established socket has received some
	for _ in $(seq 300); do
		ip netns exec b ss -Htni state established "sport = :$port" |
			grep -q -E 'bytes_received:[1-9][0-9]{5}' && return 0
		nap 0.1
	done
	return 1
}

log_files() {
	ip netns exec b sh -c 'ls /run/devmemtcp/net-*/*.undo 2>/dev/null'
}

# 1. SIGKILL mid-transfer, then `devmemtcp restore`.
before=$(nic_state b $DMV_B)
if start_transfer; then
	ktap_ok "SIGKILL case: recv on $DMV_B receiving from dma"
else
	sed 's/^/# recv: /' "$LOG/rcv.err" | tail -n 5
	ktap_fail "SIGKILL case: recv on $DMV_B receiving from dma"
fi
kill -KILL $RPID
bwait $RPID 30
rrc=$?
kill $SPID 2>/dev/null
bwait $SPID 30 >/dev/null
mid=$(nic_state b $DMV_B)
logs=$(log_files)
if [ $rrc = 137 ] && [ "$mid" != "$before" ] && [ -n "$logs" ] && grep -q '^rx-gro-hw: off' <<<"$before" &&
	grep -q '^rx-gro-hw: on' <<<"$mid"; then
	ktap_ok "SIGKILL: recv dead (exit $rrc), NIC state differs (rx-gro-hw on too), undo log left ($logs)"
	diff <(echo "$before") <(echo "$mid") | sed 's/^/# /' | head -n 12
else
	diff <(echo "$before") <(echo "$mid") | sed 's/^/# /' | head -n 12
	ktap_fail "SIGKILL: recv dead (exit $rrc, want 137), NIC state differs (rx-gro-hw off before, on now), undo log left ($logs)"
fi
# a new recv must not take the changed NIC for the original
port=$((port + 1))
ip netns exec b devmemtcp recv --dev $DMV_B --listen "$DMV_B4:$port" --mode devmem \
	>"$LOG/out" 2>"$LOG/err" </dev/null
rc=$?
if [ $rc = 17 ] && [ "$(wc -l <"$LOG/err")" = 1 ] && grep -q "never undone.*devmemtcp restore $DMV_B" "$LOG/err"; then
	ktap_ok "recv after the SIGKILL: refused, exit 17: $(cat "$LOG/err")"
else
	sed 's/^/# /' "$LOG/out" "$LOG/err" | tail -n 5
	ktap_fail "recv after the SIGKILL: refused with exit 17 naming devmemtcp restore (exit $rc)"
fi
ip netns exec b devmemtcp -j restore >"$LOG/restore" 2>"$LOG/restore.err"
rc=$?
after=$(nic_state b $DMV_B)
if [ $rc = 0 ] && [ "$after" = "$before" ] && [ -z "$(log_files)" ] &&
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
l = j["logs"]
sys.exit(0 if j["restored"] == 1 and len(l) == 1 and l[0]["ifname"] == "dmb" and l[0]["restored"]
         and l[0]["rings"] and l[0]["rss"] and l[0]["rules"] == 1 and l[0]["gro_hw"] and not l[0]["pid_alive"] else 1)' "$LOG/restore"; then
	ktap_ok "devmemtcp restore: exit 0, rings, RSS table, 1 rule and rx-gro-hw put back, NIC state identical to before, log removed"
else
	echo "# restore exit $rc"
	sed 's/^/# /' "$LOG/restore" "$LOG/restore.err" | tail -n 5
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
	ktap_fail "devmemtcp restore: exit 0, NIC state identical to before, log removed"
fi
ip netns exec b devmemtcp restore $DMV_B >"$LOG/out" 2>"$LOG/err"
rc=$?
if [ $rc = 18 ] && grep -q "no undo log for $DMV_B" "$LOG/err"; then
	ktap_ok "restore again: exit 18, nothing to restore"
else
	sed 's/^/# /' "$LOG/out" "$LOG/err"
	ktap_fail "restore again: exit 18, nothing to restore (exit $rc)"
fi

# 2. SIGHUP and SIGQUIT mid-transfer: summary, 128+N, NIC identical.  The
# SIGQUIT run has --no-gro-hw: rx-gro-hw stays off while it receives.
for sig in HUP QUIT; do
	want=$((128 + $(kill -l $sig)))
	before=$(nic_state b $DMV_B)
	extra=() gro=on setup=True
	[ $sig = QUIT ] && extra=(--no-gro-hw) gro=off setup=False
	start_transfer "${extra[@]}" || echo "# SIG$sig: the transfer did not start"
	during=$(nic_state b $DMV_B | sed -n 's/^rx-gro-hw: \([a-z]*\).*/\1/p')
	kill -$sig $RPID
	bwait $RPID 60
	rrc=$?
	kill $SPID 2>/dev/null
	bwait $SPID 30 >/dev/null
	after=$(nic_state b $DMV_B)
	if [ "$during" = $gro ] && [ "$(json "$LOG/rcv" options.gro_hw_setup)" = $setup ]; then
		ktap_ok "SIG$sig case${extra[*]:+ (${extra[*]})}: rx-gro-hw $gro while receiving, options.gro_hw_setup $setup"
	else
		ktap_fail "SIG$sig case${extra[*]:+ (${extra[*]})}: rx-gro-hw $gro while receiving (was $during), options.gro_hw_setup $setup (got $(json "$LOG/rcv" options.gro_hw_setup))"
	fi
	if [ $rrc = $want ] && [ "$before" = "$after" ] && [ -z "$(log_files)" ] &&
		[ "$(json "$LOG/rcv" stopped_by)" = "SIG$sig" ] && [ "$(json "$LOG/rcv" nic_restored)" = True ] &&
		[ "$(json "$LOG/rcv" bytes)" -gt 0 ]; then
		ktap_ok "SIG$sig mid-transfer: exit $rrc, summary ($(json "$LOG/rcv" bytes) bytes), NIC state identical, no log left"
	else
		echo "# recv exit $rrc, want $want"
		diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
		sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
		ktap_fail "SIG$sig mid-transfer: exit $want, summary, NIC state identical, no log left"
	fi
done

# 3. Two processes preparing one NIC: the second is refused, naming the first.
before=$(nic_state b $DMV_B)
port=$((port + 1))
: >"$LOG/rcv.err"
ip netns exec b devmemtcp recv --dev $DMV_B --listen "$DMV_B4:$port" --mode devmem \
	>"$LOG/rcv" 2>"$LOG/rcv.err" &
RPID=$!
wait_file_line "$LOG/rcv.err" '^listening on ' 60 $RPID
port=$((port + 1))
ip netns exec b devmemtcp recv --dev $DMV_B --listen "$DMV_B4:$port" --queues 2:1 --mode devmem \
	>"$LOG/out" 2>"$LOG/err" </dev/null
rc=$?
if [ $rc = 17 ] && [ "$(wc -l <"$LOG/err")" = 1 ] && grep -q "being set up by pid $RPID" "$LOG/err"; then
	ktap_ok "a second recv on $DMV_B: exit 17: $(cat "$LOG/err")"
else
	sed 's/^/# /' "$LOG/out" "$LOG/err" | tail -n 5
	ktap_fail "a second recv on $DMV_B: refused with exit 17 naming pid $RPID (exit $rc)"
fi
kill -TERM $RPID
bwait $RPID 60
rrc=$?
after=$(nic_state b $DMV_B)
if [ $rrc = 143 ] && [ "$before" = "$after" ] && [ -z "$(log_files)" ]; then
	ktap_ok "the first recv, SIGTERM: exit 143, NIC state identical, no log left"
else
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
	ktap_fail "the first recv, SIGTERM: exit 143 (got $rrc), NIC state identical, no log left"
fi
ktap_done
