#!/usr/bin/env bash
# vm-suite: debug
# libdevmemtcp RX and `devmemtcp recv` / `probe` in the VM, on dmveth:
# - the library's NIC setup (prepare, steer, restore) and receive engine
#   programs against a real devmem NIC;
# - devmem RX into `devmemtcp recv` from the kernel's `ncdevmem` client and
#   from `devmemtcp send`, validated, 64 MiB, IPv4 and IPv6, one and
#   several queues, no linear bytes;
# - the NIC state (channels, rings, RSS table, ntuple rules) identical
#   before and after, also after SIGINT in the middle of a transfer;
# - probe: all good on dmveth, each missing piece named on veth and lo;
# - refusals: queue out of range, queue already bound (the kernel's words),
#   header split unsupported (veth), port in use.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; dmveth_unpair; rm -rf "$LOG"' EXIT
command -v devmemtcp >/dev/null || { ktap_fail "devmemtcp built (make all)"; exit 1; }

# nic_state NS DEV: everything devmemtcp recv may change, as text: channels,
# rings (with tcp-data-split), the RSS table and key, the ntuple rules.
# (ethtool, not the YNL cli: its start-up costs a minute on the debug kernel;
# hds-thresh is checked by nic-setup.)
nic_state() {
	{
		ip netns exec "$1" ethtool -l "$2"
		ip netns exec "$1" ethtool -g "$2"
		ip netns exec "$1" ethtool -x "$2"
		ip netns exec "$1" ethtool -n "$2"
		ip netns exec "$1" ethtool -k "$2" | grep ntuple
	} 2>&1
}

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }

relay "nic-setup (dmveth)" ip netns exec b nic-setup -i $DMV_B

ip netns exec b devmemtcp -j probe $DMV_B >"$LOG/probe" 2>"$LOG/probe.err"
rc=$?
if [ $rc = 0 ]; then
	ktap_ok "probe $DMV_B: devmem RX and TX would work (exit 0)"
else
	sed 's/^/# /' "$LOG/probe" "$LOG/probe.err" | tail -n 20
	ktap_fail "probe $DMV_B: devmem RX and TX would work (exit $rc)"
fi

port=5700
# recv_from NAME SENDER QUEUES BYTES SRV CLI: devmemtcp recv on dmb (netns
# b) with --queues QUEUES, SENDER from dma (netns a): the kernel's ncdevmem
# client (one sendmsg per 7-byte line: a small amount), tests/progs/devmem-tx
# (the same devmem sendmsg, large) or devmemtcp send.  ARGS go to recv.
recv_from() {
	local name=$1 sender=$2 queues=$3 bytes=$4 srv=$5 cli=$6 rpid rrc src lhost before after
	shift 6
	port=$((port + 1))
	before=$(nic_state b $DMV_B)
	case $srv in *:*) lhost="[$srv]" ;; *) lhost=$srv ;; esac
	ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$lhost:$port" --queues "$queues" \
		--validate 7 --mode devmem --fail-on-linear "$@" >"$LOG/rcv" 2>"$LOG/rcv.err" &
	rpid=$!
	if ! wait_listen b $port 60; then
		sed 's/^/# /' "$LOG/rcv.err" | tail -n 10
		ktap_fail "$name: devmemtcp recv listening"
		kill $rpid 2>/dev/null
		return
	fi
	if [ "$sender" = ncdevmem ] || [ "$sender" = devmem-tx ]; then
		pattern 7 "$bytes" | ip netns exec a "$sender" -f $DMV_A -s "$srv" -p $port >"$LOG/snd" 2>&1
	else
		case $srv in *:*) lhost="[$srv]:$port" ;; *) lhost="$srv:$port" ;; esac
		ip netns exec a devmemtcp send "$lhost" --dev $DMV_A --provider udmabuf --size 8M \
			--bytes "$bytes" --validate 7 --mode devmem >"$LOG/snd" 2>&1
	fi
	src=$?
	timeout 120 tail --pid=$rpid -f /dev/null
	wait $rpid
	rrc=$?
	after=$(nic_state b $DMV_B)
	if [ $src = 0 ] && [ $rrc = 0 ] && [ "$(json "$LOG/rcv" mode)" = devmem ] &&
		[ "$(json "$LOG/rcv" bytes)" = "$bytes" ] && [ "$(json "$LOG/rcv" linear_bytes)" = 0 ] &&
		[ "$(json "$LOG/rcv" tokens)" = "$(json "$LOG/rcv" frags)" ]; then
		ktap_ok "$name: $bytes bytes validated, mode devmem, $(json "$LOG/rcv" frags) frags, $(json "$LOG/rcv" tokens) tokens in $(json "$LOG/rcv" dontneed_calls) DONTNEED calls, $(json "$LOG/rcv" mbytes_per_sec) MB/s"
	else
		echo "# sender exit $src, recv exit $rrc"
		sed 's/^/# send: /' "$LOG/snd" | tail -n 5
		sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 15
		ktap_fail "$name"
	fi
	if [ "$before" = "$after" ]; then
		ktap_ok "$name: NIC state identical before and after"
	else
		diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
		ktap_fail "$name: NIC state identical before and after"
	fi
}

big=$(scale $((64 << 20)))
recv_from "ncdevmem client -> devmemtcp recv, queue 3" ncdevmem 3:1 "$(scale 7000 700)" $DMV_B4 $DMV_A4
recv_from "devmemtcp send -> devmemtcp recv, IPv4, queue 3" devmemtcp 3:1 "$big" $DMV_B4 $DMV_A4
# the debug kernel runs the cases above and below (its point is the kernel
# log); these add nothing there but minutes
if [ "${DEVMEMTCP_FLAVOR:-normal}" != debug ]; then
	recv_from "devmem-tx -> devmemtcp recv, IPv4, queue 3" devmem-tx 3:1 "$big" $DMV_B4 $DMV_A4
	recv_from "devmemtcp send -> devmemtcp recv, IPv6, queue 3" devmemtcp 3:1 "$big" $DMV_B6 $DMV_A6
fi
recv_from "devmemtcp send -> devmemtcp recv, IPv4, queues 2-3" devmemtcp 2:2 "$big" $DMV_B4 $DMV_A4
# A 1 MiB dma-buf (256 pages) for 64 MiB: the queue runs out of buffers
# whenever the receiver is slower than the sender, drops, and TCP
# retransmits; it must neither deadlock nor lose a token.
if [ "${DEVMEMTCP_FLAVOR:-normal}" != debug ]; then
	recv_from "devmemtcp send -> devmemtcp recv into a 1 MiB dma-buf (receiver slower than the NIC)" \
		devmemtcp 3:1 "$big" $DMV_B4 $DMV_A4 --size 1M
fi

# SIGINT in the middle of a transfer: summary, exit 130, NIC restored.
before=$(nic_state b $DMV_B)
port=$((port + 1))
ip netns exec b devmemtcp recv --dev $DMV_B --listen "$DMV_B4:$port" --validate 7 --mode devmem \
	>"$LOG/rcv" 2>"$LOG/rcv.err" &
rpid=$!
wait_listen b $port 60
ip netns exec a devmemtcp send "$DMV_B4:$port" --dev $DMV_A --provider udmabuf --size 8M \
	--time 600 --validate 7 --mode devmem >"$LOG/snd" 2>&1 &
spid=$!
for _ in $(seq 300); do
	[ "$(ip netns exec b ss -Htn state established "sport = :$port" | wc -l)" -gt 0 ] && break
	sleep 0.1
done
sleep 2
kill -INT $rpid
wait $rpid
rrc=$?
kill $spid 2>/dev/null
wait $spid 2>/dev/null
after=$(nic_state b $DMV_B)
if [ $rrc = 130 ] && [ "$before" = "$after" ] && grep -q . "$LOG/rcv"; then
	ktap_ok "SIGINT mid-transfer: exit 130, summary printed, NIC state identical"
else
	echo "# recv exit $rrc"
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
	sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
	ktap_fail "SIGINT mid-transfer: exit 130, summary printed, NIC state identical"
fi

# Refusals, each one line with its own exit code.
# expect NAME EXIT PATTERN NS ARGS...
expect() {
	local name=$1 want=$2 pat=$3 ns=$4 rc
	shift 4
	ip netns exec "$ns" env DEVMEMTCP_FD_CHECK=1 timeout 120 devmemtcp "$@" >"$LOG/out" 2>"$LOG/err"
	rc=$?
	if [ $rc = "$want" ] && [ "$(wc -l <"$LOG/err")" = 1 ] && grep -q -- "$pat" "$LOG/err"; then
		ktap_ok "$name: exit $rc: $(cat "$LOG/err")"
	else
		sed 's/^/# /' "$LOG/out" "$LOG/err" | tail -n 10
		ktap_fail "$name (exit $rc, want $want, pattern '$pat')"
	fi
}
expect "--queues past the last queue" "$(devmemtcp --help 2>&1 | sed -n 's/^ *\([0-9][0-9]*\) .*queue.*range.*/\1/p' | head -n 1)" "queue" \
	b recv --dev $DMV_B --listen "$DMV_B4:5790" --queues 7:1 --mode devmem

# a queue bound by someone else: the kernel's own words
ip netns exec b ncdevmem -l -f $DMV_B -s $DMV_B4 -p 5791 -v 7 -t 3 -q 1 >"$LOG/holder" 2>&1 &
hpid=$!
if wait_listen b 5791 60; then
	code=$(devmemtcp --help 2>&1 | sed -n 's/^ *\([0-9][0-9]*\) .*already bound.*/\1/p' | head -n 1)
	expect "queue already bound by another process" "$code" "designated queue already memory provider bound" \
		b recv --dev $DMV_B --listen "$DMV_B4:5792" --queues 3:1 --mode devmem --no-setup
else
	ktap_fail "queue already bound: ncdevmem holding queue 3"
fi
kill $hpid 2>/dev/null
wait $hpid 2>/dev/null

# veth: no header split, no queue management
ip link add vta netns a type veth peer name vtb netns b
ip -n b addr add 10.56.0.2/24 dev vtb
ip -n b link set vtb up
ip -n a link set vta up
ip netns exec b devmemtcp -j probe vtb >"$LOG/probe" 2>&1
rc=$?
if [ $rc != 0 ] && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
j = j[0] if isinstance(j, list) else j
checks = j.get("checks", [])
bad = [c for c in checks if not c.get("ok")]
sys.exit(0 if bad and all(c.get("fix") for c in bad) else 1)' "$LOG/probe"; then
	ktap_ok "probe vtb (veth): exit $rc, every missing piece has a fix"
else
	sed 's/^/# /' "$LOG/probe" | tail -n 20
	ktap_fail "probe vtb (veth): exit non-zero, every missing piece has a fix (exit $rc)"
fi
ip netns exec b devmemtcp probe lo >"$LOG/probe" 2>&1
rc=$?
if [ $rc != 0 ] && grep -qi "fix\|ethtool\|driver" "$LOG/probe"; then
	ktap_ok "probe lo: exit $rc, missing pieces named"
else
	sed 's/^/# /' "$LOG/probe" | tail -n 20
	ktap_fail "probe lo: exit non-zero with missing pieces named (exit $rc)"
fi
code=$(devmemtcp --help 2>&1 | sed -n 's/^ *\([0-9][0-9]*\) .*header split.*/\1/p' | head -n 1)
expect "header split unsupported (veth)" "$code" "split" \
	b recv --dev vtb --listen 10.56.0.2:5793 --mode devmem --provider udmabuf

# veth has no queue management: with --no-setup, bind-rx itself says so
code=$(devmemtcp --help 2>&1 | sed -n 's/^ *\([0-9][0-9]*\) .*queue management.*/\1/p' | head -n 1)
expect "interface without queue management (veth, --no-setup)" "$code" "queue management" \
	b recv --dev vtb --listen 10.56.0.2:5795 --no-setup --mode devmem

# port in use
ip netns exec b python3 -c '
import socket, time
s = socket.socket(); s.bind(("10.55.0.2", 5794)); s.listen(1); time.sleep(60)' &
hpid=$!
wait_listen b 5794 30
code=$(devmemtcp --help 2>&1 | sed -n 's/^ *\([0-9][0-9]*\) .*in use.*/\1/p' | head -n 1)
expect "port in use" "$code" "in use" \
	b recv --dev $DMV_B --listen "$DMV_B4:5794" --mode devmem
kill $hpid 2>/dev/null
wait $hpid 2>/dev/null
exit 0
