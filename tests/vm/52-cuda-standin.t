#!/usr/bin/env bash
# cap: 50
# The CUDA code paths with a stand-in libcuda.so.1 (tests/standin/libcuda.c:
# memfd "device memory", a udmabuf as its dma-buf, memcpy as the driver's
# copies), since the rig has no GPU.  No name here claims a GPU; what a real
# GPU showed is in the closing notes.  Over a dmveth pair:
# - lib-dmabuf's cuda provider: an unmapped dma-buf, round trips through
#   cuMemcpyHtoD/DtoH, no fd left after a second buffer;
# - devmemtcp send -> recv, --provider cuda at both ends, devmem mode: bind-tx
#   and bind-rx of the "GPU" dma-buf, recv validating every fragment through
#   cuMemcpyDtoH, no linear byte;
# - copy mode into CUDA memory (a NIC without devmem, as most are): recv
#   lands each recv() in a bounce buffer and cuMemcpyHtoD's it into the
#   buffer; every byte validated back out of it;
# - the NCCL harness with --provider cuda: the sender's arena from
#   cuMemAlloc, isend straight from its dma-buf.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
cleanup() {
	local p
	for p in $(jobs -p); do kill "$p" 2>/dev/null; bwait "$p" 10 >/dev/null 2>&1; done
	dmveth_unpair
	rm -rf "$LOG"
}
trap cleanup EXIT
STANDIN=$BUILD/tests/cuda-standin
PLUGIN=$BUILD/nccl/libnccl-net-devmemtcp.so
HARNESS=$BUILD/tests/nccl-harness
[ -f "$STANDIN/libcuda.so.1" ] || ktap_bail "the stand-in libcuda built (make all)"
command -v devmemtcp >/dev/null || ktap_bail "devmemtcp built (make all)"
export LD_LIBRARY_PATH=$STANDIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

relay "lib-dmabuf (stand-in libcuda)" lib-dmabuf
if grep -q '^ok .* cuda: write and read back' "$LOG/relay"; then
	ktap_ok "the cuda provider ran on the stand-in (not skipped)"
else
	ktap_fail "the cuda provider ran on the stand-in (not skipped)"
fi

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }
bytes=$(scale $((32 << 20)) $((8 << 20)))
port=5600

# pair NAME MODE: devmemtcp recv on dmb (netns b) and send from dma (netns
# a), --provider cuda at both ends, both in MODE; every byte validated.
pair() {
	local name=$1 mode=$2 rpid rrc src queues=
	port=$((port + 1))
	[ "$mode" = devmem ] && queues="--queues 3:1 --fail-on-linear"
	# shellcheck disable=SC2086
	ip netns exec b devmemtcp -j recv --dev $DMV_B --listen "$DMV_B4:$port" --provider cuda \
		--size 16M --mode "$mode" --validate 7 $queues >"$LOG/rcv" 2>"$LOG/rcv.err" &
	rpid=$!
	if ! wait_listen b $port 60 "$rpid"; then
		sed 's/^/# /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
		ktap_fail "$name: devmemtcp recv listening"
		kill $rpid 2>/dev/null
		return
	fi
	ip netns exec a timeout 100 devmemtcp -j send "$DMV_B4:$port" --dev $DMV_A --provider cuda \
		--size 8M --bytes "$bytes" --validate 7 --mode "$mode" >"$LOG/snd" 2>"$LOG/snd.err"
	src=$?
	bwait $rpid 100
	rrc=$?
	if [ $src = 0 ] && [ $rrc = 0 ] && [ "$(json "$LOG/snd" mode)" = "$mode" ] &&
		[ "$(json "$LOG/rcv" mode)" = "$mode" ] &&
		[ "$(json "$LOG/rcv" validated_bytes)" = "$bytes" ] &&
		[ "$(json "$LOG/rcv" linear_bytes)" = 0 ]; then
		ktap_ok "$name: $bytes bytes validated, mode $mode at both ends, $(json "$LOG/rcv" frags) frags, $(json "$LOG/rcv" mbytes_per_sec) MB/s"
	else
		echo "# send exit $src, recv exit $rrc"
		sed 's/^/# send: /' "$LOG/snd" "$LOG/snd.err" | tail -n 5
		sed 's/^/# recv: /' "$LOG/rcv" "$LOG/rcv.err" | tail -n 10
		ktap_fail "$name"
	fi
}
pair "cuda -> cuda, devmem (stand-in libcuda)" devmem
pair "cuda -> cuda, copy into CUDA memory through a bounce buffer (stand-in libcuda)" copy

# The plugin: rank 1 sends from cuMemAlloc memory (regMrDmaBuf of its
# dma-buf, bind-tx), rank 0 receives as in 70-nccl.t.  MTU 9000 as there.
ip -n a link set $DMV_A mtu 9000 && ip -n b link set $DMV_B mtu 9000 ||
	{ ktap_fail "MTU 9000 on the dmveth pair"; exit 1; }
NCCL_DEVMEMTCP_MODE=devmem NCCL_DEVMEMTCP_BUF_SIZE=32M \
	relay "nccl-harness --provider cuda (stand-in libcuda)" timeout 300 "$HARNESS" \
	-p "$PLUGIN" -v 12 --provider cuda --grouped --no-versions -n b -N a -i $DMV_B -I $DMV_A
if grep -q '^ok .*GPU (cuMemAlloc) arena' "$LOG/relay" && ! grep -q 'SKIP' "$LOG/relay"; then
	ktap_ok "nccl-harness: the sender's arena came from cuMemAlloc, nothing skipped"
else
	ktap_fail "nccl-harness: the sender's arena came from cuMemAlloc, nothing skipped"
fi
ktap_done
