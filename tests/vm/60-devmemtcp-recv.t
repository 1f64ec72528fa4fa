#!/usr/bin/env bash
# cap: 175
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
#   header split unsupported (veth), port in use; each with the exit code
#   man8 documents (the EXIT table below, not the tool's own --help).
# Every transfer passes only with validated_bytes == bytes in recv's -j
# summary (--validate 7 checks every byte, --fail-on-linear: none linear).
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
defer=	# net.core.skb_defer_max as it was, while the 1 MiB case changes it
cleanup() {
	local p
	for p in $(jobs -p); do kill "$p" 2>/dev/null; bwait "$p" 10 2>/dev/null; done
	[ -z "$defer" ] || sysctl -qw net.core.skb_defer_max="$defer"
	dmveth_unpair
	rm -rf "$LOG"
}
trap cleanup EXIT
command -v devmemtcp >/dev/null || ktap_bail "devmemtcp built (make all)"
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"

# devmemtcp's exit codes as README/man8 (EXIT STATUS) document them
declare -A EXIT=(
	[probe_missing]=4	# probe: devmem RX or TX would not work
	[queues_range]=9	# recv: --queues out of range
	[queue_bound]=10	# recv: queue already bound (the kernel's words)
	[no_hds]=11		# recv: header split unsupported
	[no_qmgmt]=12		# recv: no queue management ops
	[port_in_use]=13	# recv: listen port in use
	[sigint]=130		# stopped by SIGINT
)

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

# stall_report: what a stalled transfer left: both ends' sockets and
# non-zero NIC counters, the receiver's threads' kernel stacks.
stall_report() {
	local p t
	echo "# the sender ran past 100 s: state"
	{
		ip netns exec a ss -tnie
		ip netns exec b ss -tnie
		ip netns exec a ethtool -S $DMV_A | grep -v ': 0$'
		ip netns exec b ethtool -S $DMV_B | grep -v ': 0$'
		for p in $(pgrep -f 'devmemtcp -j recv'); do
			for t in /proc/$p/task/*; do
				echo "${t#/proc/}: $(cat "$t/wchan")"
				cat "$t/stack"
			done
		done
	} 2>&1 | sed 's/^/#   /'
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
	local name=$1 sender=$2 queues=$3 bytes=$4 srv=$5 cli=$6 rpid rrc src gen=0 lhost before after
	shift 6
	port=$((port + 1))
	before=$(nic_state b $DMV_B)
	case $srv in *:*) lhost="[$srv]" ;; *) lhost=$srv ;; esac
	rm -f "$LOG/rcv" "$LOG/rcv.err"
	ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$lhost:$port" --queues "$queues" \
		--validate 7 --mode devmem --fail-on-linear "$@" >"$LOG/rcv" 2>"$LOG/rcv.err" &
	rpid=$!
	if ! wait_listen b $port 60 "$rpid"; then
		sed 's/^/# /' "$LOG/rcv.err" | tail -n 10
		ktap_fail "$name: devmemtcp recv listening"
		kill $rpid 2>/dev/null
		return
	fi
	if [ "$sender" = ncdevmem ] || [ "$sender" = devmem-tx ]; then
		pattern 7 "$bytes" | ip netns exec a timeout 100 "$sender" -f $DMV_A -s "$srv" -p $port >"$LOG/snd" 2>&1
		gen=${PIPESTATUS[0]} src=${PIPESTATUS[1]}
	else
		case $srv in *:*) lhost="[$srv]:$port" ;; *) lhost="$srv:$port" ;; esac
		ip netns exec a timeout 100 devmemtcp send "$lhost" --dev $DMV_A --provider udmabuf --size 8M \
			--bytes "$bytes" --validate 7 --mode devmem >"$LOG/snd" 2>&1
		src=$?
	fi
	[ "$src" = 124 ] && stall_report
	bwait $rpid 120
	rrc=$?
	after=$(nic_state b $DMV_B)
	if [ "$gen" = 0 ] && [ "$src" = 0 ] && [ $rrc = 0 ] && [ "$(json "$LOG/rcv" mode)" = devmem ] &&
		[ "$(json "$LOG/rcv" bytes)" = "$bytes" ] && [ "$(json "$LOG/rcv" validated_bytes)" = "$bytes" ] &&
		[ "$(json "$LOG/rcv" linear_bytes)" = 0 ] &&
		[ "$(json "$LOG/rcv" tokens)" = "$(json "$LOG/rcv" frags)" ]; then
		ktap_ok "$name: $bytes bytes, validated_bytes $(json "$LOG/rcv" validated_bytes), mode devmem, $(json "$LOG/rcv" frags) frags, $(json "$LOG/rcv" tokens) tokens in $(json "$LOG/rcv" dontneed_calls) DONTNEED calls, $(json "$LOG/rcv" mbytes_per_sec) MB/s"
	else
		echo "# pattern exit $gen, sender exit $src, recv exit $rrc, bytes $(json "$LOG/rcv" bytes), validated_bytes $(json "$LOG/rcv" validated_bytes) (sent $bytes)"
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

big=$((64 << 20))
recv_from "ncdevmem client -> devmemtcp recv, queue 3" ncdevmem 3:1 1400 $DMV_B4 $DMV_A4
recv_from "devmemtcp send -> devmemtcp recv, IPv4, queue 3" devmemtcp 3:1 "$big" $DMV_B4 $DMV_A4
recv_from "devmem-tx -> devmemtcp recv, IPv4, queue 3" devmem-tx 3:1 "$big" $DMV_B4 $DMV_A4
recv_from "devmemtcp send -> devmemtcp recv, IPv6, queue 3" devmemtcp 3:1 "$big" $DMV_B6 $DMV_A6
recv_from "devmemtcp send -> devmemtcp recv, IPv4, queues 2-3" devmemtcp 2:2 "$big" $DMV_B4 $DMV_A4
# A 1 MiB dma-buf (256 pages) for 64 MiB: the queue runs out of buffers
# whenever the receiver is slower than the sender, drops, and TCP
# retransmits; it must neither deadlock nor lose a token.  (It stalled in 3
# of 8 runs while the out-of-order queue could take every buffer: recv now
# sizes SO_RCVBUF for it.  Then in 1 of 18: dmveth runs a queue's NAPI
# inside the sender's xmit, so skbs the receiver frees wait on the defer
# list of the CPU that allocated them, and once traffic stalls no NAPI
# there flushes it; a NIC's interrupt CPU would.  Running NAPI on a CPU of
# its own fixed that (12 of 12) but left iou-zcrx's consumer behind its
# CQ (-ENOSPC in the kernel's zcrx selftests), so the case turns skb
# deferral off instead.)
defer=$(sysctl -n net.core.skb_defer_max)
sysctl -qw net.core.skb_defer_max=0
recv_from "devmemtcp send -> devmemtcp recv into a 1 MiB dma-buf (receiver slower than the NIC)" \
	devmemtcp 3:1 "$big" $DMV_B4 $DMV_A4 --size 1M
sysctl -qw net.core.skb_defer_max="$defer"
defer=
# ... which recv sizes for it: receives of at most a quarter of its 256
# buffers, SO_RCVBUF below what the other buffers cost in socket memory
# (an out-of-order queue holding them all stalls the connection for good)
rb=$(json "$LOG/rcv" rcvbuf) mf=$(json "$LOG/rcv" max_frags)
if [ -n "$rb" ] && [ "$rb" -gt 0 ] && [ "$rb" -lt $(((256 - 64) * 5120 / 2)) ] && [ "$mf" = 64 ]; then
	ktap_ok "1 MiB dma-buf: SO_RCVBUF $rb, at most $mf of its 256 buffers per receive"
else
	ktap_fail "1 MiB dma-buf: SO_RCVBUF set below (256 - 64) buffers' cost, 64 buffers per receive (rcvbuf '$rb', max_frags '$mf')"
fi

# SIGINT in the middle of a transfer: the -j summary (mode devmem, bytes
# received, all of them validated, stopped_by SIGINT, NIC restored), exit
# 130, NIC state identical.
before=$(nic_state b $DMV_B)
port=$((port + 1))
rm -f "$LOG/rcv" "$LOG/rcv.err"
ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$DMV_B4:$port" --validate 7 --mode devmem \
	>"$LOG/rcv" 2>"$LOG/rcv.err" &
rpid=$!
wait_listen b $port 60 "$rpid" || echo "# devmemtcp recv not listening on $port after 60 s"
ip netns exec a devmemtcp send "$DMV_B4:$port" --dev $DMV_A --provider udmabuf --size 8M \
	--time 600 --validate 7 --mode devmem >"$LOG/snd" 2>&1 &
spid=$!
# in flight: devmem frames reached dmb's queues; then a moment for recv to
# take some of them
for _ in $(seq 300); do
	n=$(ip netns exec b ethtool -S $DMV_B | awk '$1 ~ /^rx[0-9]+_unreadable_packets:$/ {s += $2} END {print s + 0}')
	[ "${n:-0}" -gt 0 ] && break
	kill -0 $spid 2>/dev/null || break
	nap 0.1
done
sleep 1
kill -INT $rpid
bwait $rpid 60
rrc=$?
kill $spid 2>/dev/null
bwait $spid 30 >/dev/null 2>&1
after=$(nic_state b $DMV_B)
if [ $rrc = "${EXIT[sigint]}" ] && [ "$before" = "$after" ] && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
ok = (j["mode"] == "devmem" and j["bytes"] > 0 and j["validated_bytes"] == j["bytes"]
      and j["linear_bytes"] == 0 and j["stopped_by"] == "SIGINT" and j["nic_restored"] is True
      and j["frags"] > 0 and "error" not in j)
print("# summary: mode %s, bytes %s, validated_bytes %s, linear_bytes %s, stopped_by %s, nic_restored %s"
      % tuple(j.get(k) for k in ("mode", "bytes", "validated_bytes", "linear_bytes", "stopped_by", "nic_restored")))
sys.exit(0 if ok else 1)' "$LOG/rcv"; then
	ktap_ok "SIGINT mid-transfer: exit 130, summary (mode devmem, $(json "$LOG/rcv" bytes) bytes all validated, stopped_by SIGINT, nic_restored), NIC state identical"
else
	echo "# recv exit $rrc (want ${EXIT[sigint]}), $n devmem frames seen before SIGINT"
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
	sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
	ktap_fail "SIGINT mid-transfer: exit 130, summary with mode, bytes == validated_bytes, stopped_by SIGINT, nic_restored; NIC state identical"
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
expect "--queues past the last queue" "${EXIT[queues_range]}" "queue" \
	b recv --dev $DMV_B --listen "$DMV_B4:5790" --queues 7:1 --mode devmem

# a queue bound by someone else: the kernel's own words
ip netns exec b ncdevmem -l -f $DMV_B -s $DMV_B4 -p 5791 -v 7 -t 3 -q 1 >"$LOG/holder" 2>&1 &
hpid=$!
if wait_listen b 5791 60 "$hpid"; then
	expect "queue already bound by another process" "${EXIT[queue_bound]}" "designated queue already memory provider bound" \
		b recv --dev $DMV_B --listen "$DMV_B4:5792" --queues 3:1 --mode devmem --no-setup
else
	ktap_fail "queue already bound: ncdevmem holding queue 3"
fi
kill $hpid 2>/dev/null
bwait $hpid 30 >/dev/null 2>&1

# veth: no header split, no queue management
ip link add vta netns a type veth peer name vtb netns b
ip -n b addr add 10.56.0.2/24 dev vtb
ip -n b link set vtb up
ip -n a link set vta up
ip netns exec b devmemtcp -j probe vtb >"$LOG/probe" 2>&1
rc=$?
if [ $rc = "${EXIT[probe_missing]}" ] && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
j = j[0] if isinstance(j, list) else j
checks = j.get("checks", [])
bad = [c for c in checks if not c.get("ok")]
sys.exit(0 if bad and all(c.get("fix") for c in bad) else 1)' "$LOG/probe"; then
	ktap_ok "probe vtb (veth): exit $rc, every missing piece has a fix"
else
	sed 's/^/# /' "$LOG/probe" | tail -n 20
	ktap_fail "probe vtb (veth): exit ${EXIT[probe_missing]}, every missing piece has a fix (exit $rc)"
fi
ip netns exec b devmemtcp probe lo >"$LOG/probe" 2>&1
rc=$?
if [ $rc = "${EXIT[probe_missing]}" ] && grep -q 'MISSING' "$LOG/probe" &&
	[ "$(grep -c MISSING "$LOG/probe")" = "$(grep -c '^ *fix: ' "$LOG/probe")" ]; then
	ktap_ok "probe lo: exit $rc, $(grep -c MISSING "$LOG/probe") missing pieces, each with its fix"
else
	sed 's/^/# /' "$LOG/probe" | tail -n 20
	ktap_fail "probe lo: exit ${EXIT[probe_missing]}, each missing piece with its fix (exit $rc)"
fi
expect "header split unsupported (veth)" "${EXIT[no_hds]}" "split" \
	b recv --dev vtb --listen 10.56.0.2:5793 --mode devmem --provider udmabuf

# veth has no queue management: with --no-setup, bind-rx itself says so
expect "interface without queue management (veth, --no-setup)" "${EXIT[no_qmgmt]}" "queue management" \
	b recv --dev vtb --listen 10.56.0.2:5795 --no-setup --mode devmem

# port in use
ip netns exec b python3 -c '
import socket, time
s = socket.socket(); s.bind(("10.55.0.2", 5794)); s.listen(1); time.sleep(60)' &
hpid=$!
wait_listen b 5794 30 "$hpid" || echo "# the port holder is not listening on 5794"
expect "port in use" "${EXIT[port_in_use]}" "in use" \
	b recv --dev $DMV_B --listen "$DMV_B4:5794" --mode devmem
kill $hpid 2>/dev/null
bwait $hpid 30 >/dev/null 2>&1
ktap_done
