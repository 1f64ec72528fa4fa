#!/usr/bin/env bash
# cap: 40
# libdevmemtcp 0.2's receive engine in the VM, on dmveth in devmem mode:
# - examples/receiver: 8 connections on one epoll thread from 8
#   `devmemtcp send --mode devmem`, fragments held per request while a
#   worker thread unpacks them from the dma-buf and gives them back out of
#   order; every byte validated, each connection's byte count compared, no
#   token leaked (the engines' counters: released = received, held 0, lost
#   0), the binding gone from queue-get after exit, the NIC as before;
# - rx-engine's devmem mode (0.1's dmt_rx_recv, the NIC set up through
#   dmt_nic_*) from `devmemtcp send`, every byte validated;
# - bind-rx rx-page-size: accepted at the page size, the kernel's refusals
#   surfaced (the success path SKIPs where dmveth lacks QCFG_RX_PAGE_SIZE);
# - devmemtcp recv --validate against no validation: the throughput cost.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
trap 'for p in $(jobs -p); do kill $p 2>/dev/null; bwait $p 10 >/dev/null 2>&1; done; dmveth_unpair; rm -rf "$LOG"' EXIT
RECEIVER=$TOP/build/examples/receiver
[ -x "$RECEIVER" ] || { ktap_fail "examples/receiver built (make all)"; exit 1; }
command -v devmemtcp >/dev/null || { ktap_fail "devmemtcp built (make all)"; exit 1; }

# what receiver's NIC setup changes: rings (header split), RSS, ntuple rules
nic_state() {
	{
		ip netns exec b ethtool -g $DMV_B
		ip netns exec b ethtool -x $DMV_B
		ip netns exec b ethtool -n $DMV_B
	} 2>&1
}

# kv FILE KEY: KEY=VALUE from the receiver's summary line
kv() { grep '^receiver: conns=' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }

# ------------------------------------------------ examples/receiver, 8 conns
conns=8
per=$(scale $((4 << 20)) $((512 << 10)))
port=5900
before=$(nic_state)
ip netns exec b timeout 600 "$RECEIVER" -i $DMV_B -l $DMV_B4 -p $port -q 3 -c $conns -v 7 \
	-n "$per" >"$LOG/rcv" 2>"$LOG/rcv.err" &
rpid=$!
if wait_listen b $port 60 "$rpid"; then
	spids=()
	for i in $(seq $conns); do
		ip netns exec a timeout 600 devmemtcp send "$DMV_B4:$port" --dev $DMV_A \
			--provider udmabuf --size 2M --bytes "$per" --validate 7 --mode devmem \
			>"$LOG/snd$i" 2>&1 &
		spids+=($!)
	done
	sfail=0
	for p in "${spids[@]}"; do
		bwait "$p" 300 || sfail=$((sfail + 1))
	done
	timeout 600 tail --pid=$rpid -f /dev/null
	bwait $rpid 300
	rrc=$?
	ktap_check "8 devmemtcp send --mode devmem exit 0 ($sfail failed)" test $sfail = 0
	[ $sfail = 0 ] || sed 's/^/# send: /' "$LOG/snd1" | tail -n 5
	total=$((conns * per))
	if [ $rrc = 0 ] && [ "$(kv "$LOG/rcv" conns)" = $conns ] &&
		[ "$(kv "$LOG/rcv" bytes)" = $total ] && [ "$(kv "$LOG/rcv" validated)" = $total ] &&
		[ "$(kv "$LOG/rcv" short_conns)" = 0 ]; then
		ktap_ok "receiver: $conns connections on one thread, $total bytes, every byte validated after unpacking, $per on each ($(kv "$LOG/rcv" mbytes_per_sec) MB/s, $(kv "$LOG/rcv" linear_bytes) linear bytes)"
	else
		echo "# receiver exit $rrc"
		sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 15
		ktap_fail "receiver: $conns connections, $total bytes, every byte validated"
	fi
	rec=$(kv "$LOG/rcv" frags_received)
	if [ -n "$rec" ] && [ "$rec" -gt 0 ] && [ "$(kv "$LOG/rcv" frags_released)" = "$rec" ] &&
		[ "$(kv "$LOG/rcv" frags_held)" = 0 ] && [ "$(kv "$LOG/rcv" frags_lost)" = 0 ] &&
		[ "$(kv "$LOG/rcv" frags_unknown)" = 0 ] && [ "$(kv "$LOG/rcv" put_errors)" = 0 ]; then
		ktap_ok "receiver: no token leaked: $rec fragments received = released, out of order from the worker in $(kv "$LOG/rcv" puts) puts ($(kv "$LOG/rcv" dontneed_calls) DONTNEED calls)"
	else
		grep '^receiver: conns' "$LOG/rcv" | sed 's/^/# /'
		ktap_fail "receiver: no token leaked (released = received, held 0, lost 0)"
	fi
	q=$(ip netns exec b queues $DMV_B 2>&1)
	if [ -n "$q" ] && ! grep -q dmabuf <<<"$q"; then
		ktap_ok "receiver: after exit queue-get shows no binding on $DMV_B"
	else
		sed 's/^/# /' <<<"$q"
		ktap_fail "receiver: after exit queue-get shows no binding on $DMV_B"
	fi
	after=$(nic_state)
	if [ "$before" = "$after" ]; then
		ktap_ok "receiver: NIC state (rings, RSS, ntuple) identical before and after"
	else
		diff <(echo "$before") <(echo "$after") | sed 's/^/# /' | head -n 20
		ktap_fail "receiver: NIC state identical before and after"
	fi
else
	sed 's/^/# /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
	ktap_fail "receiver listening"
	kill $rpid 2>/dev/null
fi

# ------------------------------------------- rx-engine's devmem mode (0.1)
port=$((port + 1))
bytes=$(scale $((16 << 20)) $((2 << 20)))
mkfifo "$LOG/ready"
ip netns exec b timeout 600 rx-engine -i $DMV_B -a $DMV_B4 -p $port -q 3 -S -s 16 -n "$bytes" \
	-R 3 3>"$LOG/ready" >"$LOG/rxe" 2>&1 &
rpid=$!
if timeout 120 head -c 1 "$LOG/ready" >/dev/null; then
	ip netns exec a timeout 600 devmemtcp send "$DMV_B4:$port" --dev $DMV_A --provider udmabuf \
		--size 2M --bytes "$bytes" --validate 7 --mode devmem >"$LOG/snd" 2>&1
	src=$?
	[ $src = 0 ] || sed 's/^/# send: /' "$LOG/snd" | tail -n 5
else
	ktap_fail "rx-engine devmem: listening"
fi
timeout 600 tail --pid=$rpid -f /dev/null
bwait $rpid 300
rrc=$?
grep '^#' "$LOG/rxe" | tail -n 3
relay_file() {
	local l name
	while read -r l; do
		name=$(sed -E 's/^(not )?ok ([0-9]+|-) //' <<<"$l")
		case $l in
		"not ok "*) ktap_fail "rx-engine (devmem, dmveth): $name" ;;
		*"# SKIP"*) ktap_skip "rx-engine (devmem, dmveth): ${name%% # SKIP*}" "${name#* # SKIP }" ;;
		*) ktap_ok "rx-engine (devmem, dmveth): $name" ;;
		esac
	done < <(grep -E '^(not )?ok ' "$1")
}
relay_file "$LOG/rxe"
ktap_check "rx-engine (devmem, dmveth) exits 0 (exit $rrc)" test $rrc = 0

# --------------------------------------------------------- rx-page-size
echo 8 >/proc/sys/vm/nr_hugepages 2>/dev/null
relay "rx-page-size ($DMV_B)" ip netns exec b rx-page-size -i $DMV_B -q 3
echo 0 >/proc/sys/vm/nr_hugepages 2>/dev/null

# ------------------------------------- the cost of --validate (figures)
# devmemtcp recv with and without --validate, one after the other
rate() {
	local v=$1 rp
	port=$((port + 1))
	ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$DMV_B4:$port" --queues 3:1 \
		--mode devmem $v >"$LOG/vr" 2>"$LOG/vr.err" &
	rp=$!
	wait_listen b $port 60 "$rp" || return 1
	ip netns exec a timeout 600 devmemtcp send "$DMV_B4:$port" --dev $DMV_A --provider udmabuf \
		--size 8M --bytes "$bytes" --validate 7 --mode devmem >/dev/null 2>&1
	timeout 300 tail --pid=$rp -f /dev/null
	bwait $rp 300 || return 1
	json "$LOG/vr" mbytes_per_sec
}
plain=$(rate "")
checked=$(rate "--validate 7")
if [ -n "$plain" ] && [ -n "$checked" ]; then
	ktap_ok "devmemtcp recv throughput: $plain MB/s, with --validate 7: $checked MB/s ($(python3 -c "print(round(100 * (1 - $checked / max($plain, 1e-9))))")% cost)"
else
	sed 's/^/# /' "$LOG/vr.err" | tail -n 5
	ktap_fail "devmemtcp recv with and without --validate"
fi
ktap_done
