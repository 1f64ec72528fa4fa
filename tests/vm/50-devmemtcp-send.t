#!/usr/bin/env bash
# cap: 145
# libdevmemtcp TX and `devmemtcp send` in the VM:
# - the library's own test programs where the VM has what the host lacks
#   (udmabuf, bind-tx);
# - the send engine's reuse proof in devmem mode over dmveth;
# - devmem mode over dmveth into the kernel's `ncdevmem -l -L -v 7`: 64 MiB
#   over IPv4 and IPv6, and with a small --chunk; passed only when ncdevmem
#   printed no "Failed validation" line (it tolerates 20 and exits 0), got
#   no linear fragment (-L) and its last total_received is the bytes sent;
# - on a veth pair (no netmem TX): --mode devmem fails with the kernel's own
#   "Driver does not support netmem TX" and exit code 4; --mode auto falls
#   back to zerocopy and says so, and the bytes still arrive validated.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/vmtest.sh"
LOG=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; dmveth_unpair; rm -rf "$LOG"' EXIT
command -v devmemtcp >/dev/null || ktap_bail "devmemtcp built (make all)"
command -v ncdevmem >/dev/null || ktap_bail "ncdevmem present in the VM (the rig builds it; fix: vm/build)"

# The library's programs, here with /dev/udmabuf and bind-tx.  (The CUDA
# provider: 52-cuda-standin.t, through a stand-in libcuda.so.1.)
relay "lib-dmabuf (vm)" env DMT_TEST_CUDA=0 lib-dmabuf
relay "lib-netlink (vm)" lib-netlink
# the engine over lo and veth with udmabuf (not devmem: the normal kernel
# is enough)
if [ "${DEVMEMTCP_FLAVOR:-normal}" != debug ]; then
	relay "tx.t (vm, udmabuf)" env BUILD="$TOP/build" "$TOP/tests/host/tx.t"
fi

dmveth_pair 4 || { ktap_fail "create a dmveth pair in netns a and b"; exit 1; }

# The reuse proof in devmem mode: regions poisoned as they are handed out,
# tiny optmem_max, a slow receiver on the peer checking every byte.
relay "tx-reuse (vm, devmem over dmveth)" ip netns exec a tx-reuse -i $DMV_A -a $DMV_B4 -n b \
	-m "$(scale 24 2)"

port=5400
# send_ncdevmem NAME SRV CLI BYTES ARGS...: ncdevmem -l -L -v 7 on dmb
# (netns b), devmemtcp send -j --mode devmem from dma (netns a).
send_ncdevmem() {
	local name=$1 srv=$2 cli=$3 bytes=$4 crc src spid host got bad
	shift 4
	port=$((port + 1))
	if ! ncdevmem_server "$LOG/srv" $port "$srv" "$cli"; then
		ktap_fail "$name: ncdevmem listening"
		return
	fi
	spid=$NCD_PID
	case $srv in *:*) host="[$srv]:$port" ;; *) host="$srv:$port" ;; esac
	case $cli in *:*) cli="[$cli]" ;; esac
	# bounded (the transfer takes seconds): a stall is a failure that
	# shows both sockets, not the file running into its cap
	ip netns exec a timeout 60 devmemtcp -j send "$host" --dev $DMV_A --provider udmabuf \
		--size 8M --bytes "$bytes" --validate 7 --bind "$cli:$port" --mode devmem "$@" \
		>"$LOG/cli" 2>"$LOG/cli.err"
	crc=$?
	if [ $crc = 124 ]; then
		echo "# devmemtcp send still running after 60 s: killed; the connection then:"
		ip netns exec b ss -tnie "sport = :$port" | sed 's/^/#   /'
		ip netns exec b ethtool -S $DMV_B | grep -v ': 0$' | tr '\n' ' ' | sed 's/^/#   /'
		echo
	fi
	bwait $spid 30
	src=$?
	got=$(ncdevmem_got "$LOG/srv")
	bad=$(ncdevmem_bad "$LOG/srv")
	if [ $crc = 0 ] && [ $src = 0 ] && grep -q 'client exited' "$LOG/srv" &&
		[ "$bad" = 0 ] && [ "$got" = "$bytes" ] &&
		[ "$(json "$LOG/cli" mode)" = devmem ] &&
		[ "$(json "$LOG/cli" bytes)" = "$bytes" ]; then
		ktap_ok "$name: $bytes bytes validated by ncdevmem (total_received=$got, no linear fragment), mode devmem, $(json "$LOG/cli" mbytes_per_sec) MB/s, $(json "$LOG/cli" sends) sends, $(json "$LOG/cli" completions) completions"
	else
		echo "# devmemtcp exit $crc, ncdevmem exit $src, total_received=${got:-none} (sent $bytes), $bad 'Failed validation' lines"
		sed 's/^/# devmemtcp: /' "$LOG/cli" "$LOG/cli.err" | tail -n 15
		ncdevmem_tail "$LOG/srv" 15
		ktap_fail "$name"
	fi
}

big=$(scale $((64 << 20)) $((4 << 20)))
send_ncdevmem "devmemtcp send --mode devmem -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$big"
send_ncdevmem "devmemtcp send --mode devmem --chunk 3000 -> ncdevmem -l -L -v 7, IPv4" $DMV_B4 $DMV_A4 "$(scale $((16 << 20)) $((1 << 20)))" --chunk 3000
# the debug kernel's point is the kernel path, which IPv4 has taken; the
# normal kernel adds IPv6 and the veth refusal and fallback
[ "${DEVMEMTCP_FLAVOR:-normal}" = debug ] && ktap_done
send_ncdevmem "devmemtcp send --mode devmem -> ncdevmem -l -L -v 7, IPv6" $DMV_B6 $DMV_A6 "$big"

# A veth pair (no netmem TX) between the same namespaces.
ip link add vta netns a type veth peer name vtb netns b
ip -n a addr add 10.56.0.1/24 dev vta
ip -n b addr add 10.56.0.2/24 dev vtb
ip -n a link set vta up
ip -n b link set vtb up

ip netns exec a env DEVMEMTCP_FD_CHECK=1 devmemtcp send 10.56.0.2:5999 --dev vta --provider udmabuf --size 1M \
	--bytes 1M --mode devmem >"$LOG/out" 2>"$LOG/err"
rc=$?
if [ $rc = 4 ] && [ "$(wc -l <"$LOG/err")" = 1 ] && grep -q 'Driver does not support netmem TX' "$LOG/err"; then
	ktap_ok "--mode devmem on veth: exit 4, one line with the kernel's reason"
else
	sed 's/^/# /' "$LOG/err"
	ktap_fail "--mode devmem on veth: exit 4, one line with the kernel's reason (exit $rc)"
fi

rm -f "$LOG/ready"
ip netns exec b python3 "$TOP/tests/lib/pattern-sink.py" --listen 10.56.0.2 --port 5998 \
	--period 7 --ready "$LOG/ready" >"$LOG/sink" 2>&1 &
spid=$!
for _ in $(seq 600); do [ -e "$LOG/ready" ] && break; kill -0 $spid 2>/dev/null || break; nap 0.1; done
n=$(scale $((8 << 20)))
ip netns exec a devmemtcp -j send 10.56.0.2:5998 --dev vta --provider udmabuf --size 1M \
	--bytes "$n" --validate 7 --mode auto >"$LOG/out" 2>"$LOG/err"
rc=$?
bwait $spid 60
src=$?
if [ $rc = 0 ] && [ $src = 0 ] && [ "$(json "$LOG/out" mode)" = zerocopy ] &&
	[ -n "$(json "$LOG/out" fallback_reason)" ] && grep -q "^validated $n " "$LOG/sink"; then
	ktap_ok "--mode auto on veth falls back to zerocopy ($(json "$LOG/out" fallback_reason)); $n bytes validated"
else
	sed 's/^/# /' "$LOG/out" "$LOG/err" "$LOG/sink" | tail -n 20
	ktap_fail "--mode auto on veth falls back to zerocopy and says why (exit $rc, sink $src)"
fi
ktap_done
