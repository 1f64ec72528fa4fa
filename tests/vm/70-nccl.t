#!/usr/bin/env bash
# cap: 35
# The NCCL net plugin in devmem mode on dmveth, driven by nccl-harness as
# NCCL's proxy threads would: rank 0 receives in netns b on dmb (init's
# probe passes, listen prepares a queue and binds the bounce dma-buf, accept
# steers the data flow and acks on the control connection), rank 1 sends
# from netns a on dma; every byte validated.  Udmabuf arenas stand in for
# CUDA memory (regMrDmaBuf, NCCL_PTR_CUDA): isend goes straight from the
# dma-buf (bind-tx, dmt_tx_submit, done at the zerocopy completion); irecv
# is published as UNPACK loadMeta, the harness does the unpack kernel's
# copy on the CPU from the bounce buffer, validates, then irecvConsumed;
# the plugin's token counters show each receive's fragments held until
# irecvConsumed and given back by it; closing with receives done but not
# consumed (and one not done) gives every token back.  1, 8 and 32 in
# flight (16 receives: one UNPACK slot each), grouped receives of 2..8
# buffers (NCCL_DEVMEMTCP_MAX_RECVS=8 through --grouped; 0 and 1 byte
# among the sizes, one UNPACK slot per buffer), 1 byte .. 4 MiB into
# device buffers, 16 MiB between host buffers on the same comm (over one
# UNPACK slice: copied out of the dma-buf).  A second comm through the same
# listen comm is closed while the listen comm stays: its ntuple rule is
# gone and the first comm's kept (the harness counts the rules); then the
# listen comm closes (as NCCL does right after accept) and the first comm
# goes on, through the bench, on its own reference to the RX side.
# The ABI versions are each driven on the host (tests/host/nccl.t); here
# the schedule runs once, through v12, to keep the TCG boot short.
# After the runs: dmb's NIC state as before, no queue bound, and the
# payload came through the dma-buf (not as linear bytes).
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
trap 'for p in $(jobs -p); do kill $p 2>/dev/null; bwait $p 10 >/dev/null 2>&1; done; dmveth_unpair; rm -rf "$LOG"' EXIT
PLUGIN=$BUILD/nccl/libnccl-net-devmemtcp.so
HARNESS=$BUILD/tests/nccl-harness
[ -f "$PLUGIN" ] && [ -x "$HARNESS" ] || { ktap_fail "plugin and nccl-harness built (make all)"; exit 1; }
command -v queues >/dev/null || { ktap_fail "tests/progs/queues built (make all)"; exit 1; }

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
# Jumbo frames, as devmem deployments run them (TCPX needs MTU 8244): NCCL's
# UNPACK has 2048 slots per 4 MiB receive, and dmveth delivers a fragment per
# segment (GRO cut at the sender's MSS), so at MTU 1500 a 4 MiB receive needs
# ~2900 and the plugin refuses it (E2BIG, named in NCCL's log).
ip -n a link set $DMV_A mtu 9000 && ip -n b link set $DMV_B mtu 9000 ||
	{ ktap_fail "MTU 9000 on the dmveth pair"; exit 1; }
before=$(nic_state b $DMV_B)

export NCCL_DEVMEMTCP_MODE=devmem NCCL_DEVMEMTCP_BUF_SIZE=32M
t0=$(date +%s.%N)
relay "device buffers (UNPACK)" timeout 600 "$HARNESS" -p "$PLUGIN" -v 12 --device --grouped \
	--no-versions --then-bench 32 -n b -N a -i $DMV_B -I $DMV_A
echo "# device run: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
cp "$LOG/relay" "$LOG/device"
grep '^#' "$LOG/device" | grep -v 'rank. INFO' | tail -n 20
# maxP2pBytes/maxCollBytes follow the MTU (UNPACK's 2048 fragments of at
# least MTU - 72 bytes): the whole 4 MiB slice at 9000
if grep -q 'INFO.*MTU 9000: at most 4194304 bytes per receive' "$LOG/device"; then
	ktap_ok "getProperties: at MTU 9000 a receive may take 4 MiB (UNPACK's slice)"
else
	grep 'INFO.*MTU' "$LOG/device" | head -n 2 | sed 's/^/# /'
	ktap_fail "getProperties: at MTU 9000 a receive may take 4 MiB (UNPACK's slice)"
fi
# each "tokens at irecvConsumed: N frags; before ... held H; after ...
# released L ...": the N were still held (H >= N) and this call gave back
# exactly them; at close nothing left held
read -r ncons nbad nfr < <(sed -n 's/.*tokens at irecvConsumed: \([0-9]*\) frags; before received \([0-9]*\) released \([0-9]*\) held \([0-9]*\); after received \([0-9]*\) released \([0-9]*\) held \([0-9]*\) lost \([0-9]*\).*/\1 \2 \3 \4 \5 \6 \7 \8/p' \
	"$LOG/device" | awk '{ n++; f += $1; if ($4 < $1 || $6 - $3 != $1 || $7 != $4 - $1 || $8) b++ }
		END { print n + 0, b + 0, f + 0 }')
if [ "$ncons" -ge 50 ] && [ "$nbad" = 0 ] && [ "$nfr" -gt 0 ]; then
	ktap_ok "tokens: none returned before irecvConsumed, each call returned its own ($ncons calls, $nfr fragments)"
else
	ktap_fail "tokens: none returned before irecvConsumed, each call returned its own ($ncons calls, $nbad wrong)"
fi
closed=$(grep -c 'receive comm closed: .* tokens received \([0-9]*\) released \1 held 0 lost 0' "$LOG/device")
nclosed=$(grep -c 'receive comm closed:' "$LOG/device")
if [ "$nclosed" -ge 1 ] && [ "$closed" = "$nclosed" ]; then
	ktap_ok "every receive comm closed with all tokens back ($closed comms)"
else
	grep 'receive comm closed:' "$LOG/device" | sed 's/^/# /'
	ktap_fail "every receive comm closed with all tokens back ($closed of $nclosed)"
fi
# one "ntuple rule N on IF deleted" per receive comm closed
ndel=$(grep -c "ntuple rule [0-9]* on $DMV_B deleted (its receive comm closed)" "$LOG/device")
if [ "$nclosed" -ge 2 ] && [ "$ndel" = "$nclosed" ]; then
	ktap_ok "each receive comm's ntuple rule deleted at its close ($ndel of $nclosed comms)"
else
	ktap_fail "each receive comm's ntuple rule deleted at its close ($ndel of $nclosed comms)"
fi
mv "$LOG/device" "$LOG/relay"

if grep -q "rank0 INFO .*queues [0-9.]* of $DMV_B bound to a" "$LOG/relay"; then
	ktap_ok "listen bound the bounce dma-buf to a queue of $DMV_B"
else
	ktap_fail "listen bound the bounce dma-buf to a queue of $DMV_B"
fi
# "receive comm closed: N bytes from the dma-buf, M linear", one per comm
read -r dmabuf linear < <(sed -n 's/.*receive comm closed: \([0-9]*\) bytes from the dma-buf, \([0-9]*\) linear.*/\1 \2/p' \
	"$LOG/relay" | awk '{ d += $1; l += $2 } END { print d + 0, l + 0 }')
if [ "${dmabuf:-0}" -ge $((24 << 20)) ] && [ "${linear:-1}" -le $((dmabuf / 100)) ]; then
	ktap_ok "payload came through the dma-buf ($dmabuf bytes, $linear linear)"
else
	ktap_fail "payload came through the dma-buf ($dmabuf bytes, $linear linear)"
fi
after=$(nic_state b $DMV_B)
if [ "$before" = "$after" ]; then
	ktap_ok "$DMV_B's channels, rings, RSS table and ntuple rules as before"
else
	diff <(echo "$before") <(echo "$after") | sed 's/^/# /'
	ktap_fail "$DMV_B's channels, rings, RSS table and ntuple rules as before"
fi
if bound=$(ip netns exec b queues $DMV_B 2>&1) && ! grep -q dmabuf <<<"$bound"; then
	ktap_ok "no queue of $DMV_B bound after the comms closed"
else
	sed 's/^/# /' <<<"$bound"
	ktap_fail "no queue of $DMV_B bound after the comms closed"
fi

# devmem required on a veth (no devmem): init fails with the kernel's own
# bind-tx refusal among the reasons (udmabuf exists here), nothing changed.
if ip -n a link add nv0 type veth peer name nv1 && ip -n a addr add 10.56.0.1/24 dev nv0 &&
	ip -n a link set nv0 up && ip -n a link set nv1 up; then
	vbefore=$(ip -n a -d link show nv0; ip netns exec a ethtool -k nv0 2>&1; ip netns exec a ethtool -l nv0 2>&1)
	relay "init on veth, devmem required" ip netns exec a "$HARNESS" -p "$PLUGIN" --init-fails \
		-i nv0 -e "bind-tx refused"
	grep 'WARN' "$LOG/relay" | tail -n 2
	vafter=$(ip -n a -d link show nv0; ip netns exec a ethtool -k nv0 2>&1; ip netns exec a ethtool -l nv0 2>&1)
	if [ "$vbefore" = "$vafter" ]; then
		ktap_ok "the failed init changed nothing on nv0"
	else
		diff <(echo "$vbefore") <(echo "$vafter") | sed 's/^/# /'
		ktap_fail "the failed init changed nothing on nv0"
	fi
else
	ktap_fail "a veth pair in netns a"
fi

# Throughput side by side in this boot (numbers, not verdicts): the
# schedule ended with 32 MiB through the plugin with device buffers (devmem
# TX from the udmabuf, UNPACK done on the CPU, validated: its "bench" line
# above); now devmemtcp send -> recv in devmem mode on the same pair and
# queue (validated).
grep 'rank0: bench:' "$LOG/relay" | sed 's/^ok [0-9]* /# plugin /'
port=5790
ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$DMV_B4:$port" --queues 3:1 \
	--validate 7 --mode devmem >"$LOG/rcv" 2>"$LOG/rcv.err" &
rpid=$!
if wait_listen b $port 60 "$rpid"; then
	ip netns exec a devmemtcp send "$DMV_B4:$port" --dev $DMV_A --provider udmabuf --size 8M \
		--bytes $((32 << 20)) --validate 7 --mode devmem >"$LOG/snd" 2>&1
	src=$?
	timeout 120 tail --pid=$rpid -f /dev/null
	bwait $rpid 300
	rrc=$?
	if [ $src = 0 ] && [ $rrc = 0 ]; then
		ktap_ok "bench (devmemtcp send -> recv, devmem, same pair): $(json "$LOG/rcv" bytes) bytes validated, $(json "$LOG/rcv" mbytes_per_sec) MB/s"
	else
		sed 's/^/# /' "$LOG/snd" "$LOG/rcv.err" | tail -n 10
		ktap_fail "bench (devmemtcp send -> recv, devmem, same pair) (send $src, recv $rrc)"
	fi
else
	kill $rpid 2>/dev/null
	sed 's/^/# /' "$LOG/rcv.err" | tail -n 10
	ktap_fail "bench: devmemtcp recv listening"
fi
ktap_done
