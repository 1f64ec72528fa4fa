#!/usr/bin/env bash
# cap: 30
# cap-asan: 60
# asan: yes
# devmemtcp recv and probe on the host (no /dev/udmabuf here: --provider
# host): `send --mode copy --validate` into `recv --mode auto --validate`
# over lo (auto falls back to copy and says why), text and -j summaries,
# probe on lo and on a veth pair in a private netns (each missing piece
# named with its fix), the one-line errors with distinct exit codes, SIGINT
# during a receive (summary, exit 130), and no fd leaked
# (DEVMEMTCP_FD_CHECK=1 on every run).  Devmem RX itself needs a devmem NIC:
# the VM tests cover it on dmveth.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/clitest.sh"
cd "$TOP" || exit 1
TOOL=$BUILD/bin/devmemtcp
T=$(mktemp -d)
NS=dmt-recv-cli-$$
cleanup() {
	kill $(jobs -p) 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export DEVMEMTCP_FD_CHECK=1

if [ ! -x "$TOOL" ]; then
	ktap_bail "devmemtcp built (make all)"
fi

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_recv OUT ERR ARGS...: devmemtcp ARGS in the background (RPID);
# returns once it printed "listening on" (its ready signal) or died.  OUT
# and ERR are new files for each start (an earlier run's ready line must not
# count).
start_recv() {
	local out=$1 err=$2
	shift 2
	rm -f "$out" "$err"
	"$TOOL" "$@" >"$out" 2>"$err" &
	RPID=$!
	wait_file_line "$err" '^listening on ' 30 "$RPID"
}

# json_check NAME FILE PYEXPR: FILE is one JSON object j for which PYEXPR
# is true.
json_check() {
	if python3 -c "import json,sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" "$2" 2>"$T/pyerr"; then
		ktap_ok "$1"
	else
		sed 's/^/# /' "$2" "$T/pyerr"
		ktap_fail "$1"
	fi
}

help=$("$TOOL" --help)
if grep -q -E '^ +recv ' <<<"$help" && grep -q -E '^ +probe ' <<<"$help" &&
	grep -q -E '^ +13 +recv: listen port in use' <<<"$help"; then
	ktap_ok "--help lists recv, probe and their exit codes"
else
	ktap_fail "--help lists recv, probe and their exit codes"
fi

# 1. send copy -> recv auto (falls back to copy: host memory), 32 MiB validated.
BYTES=$((32 << 20))
P=$(free_port)
if start_recv "$T/rout" "$T/rerr" recv --dev lo --listen 127.0.0.1:"$P" --provider host \
	--mode auto --validate; then
	"$TOOL" send 127.0.0.1:"$P" --dev lo --provider host --mode copy --size 4M \
		--bytes $BYTES --validate >"$T/sout" 2>"$T/serr"
	src=$?
	bwait $RPID 120
	rrc=$?
else
	src=-1 rrc=-1
fi
if [ $src = 0 ] && [ $rrc = 0 ] && grep -q "^received: $BYTES bytes" "$T/rout" &&
	grep -q "^validated: $BYTES bytes, pattern ok" "$T/rout" &&
	grep -q -E '^mode: copy \(auto: devmem not used: .+\)' "$T/rout" &&
	grep -q '^devmemtcp: devmem not used, receiving with copy: ' "$T/rerr"; then
	ktap_ok "auto over lo: $BYTES bytes validated, fallback said: $(grep '^received:' "$T/rout")"
else
	sed 's/^/# recv: /' "$T/rout" "$T/rerr"
	sed 's/^/# send: /' "$T/sout" "$T/serr"
	ktap_fail "auto over lo: $BYTES bytes validated (send exit $src, recv exit $rrc)"
fi
if grep -q -E '^fragments: [0-9]+, linear 0 bytes, tokens returned 0 in 0 DONTNEED calls' "$T/rout" &&
	grep -q -E '^cpu: user [0-9.]+ s, sys [0-9.]+ s' "$T/rout" &&
	grep -q -E '^received: [0-9]+ bytes in [0-9.]+ s, [0-9.]+ Gb/s \([0-9.]+ MB/s\)' "$T/rout"; then
	ktap_ok "text summary: fragments, linear bytes, tokens, DONTNEED calls, cpu"
else
	sed 's/^/# /' "$T/rout"
	ktap_fail "text summary: fragments, linear bytes, tokens, DONTNEED calls, cpu"
fi

# 2. The same with -j on both sides, and --mode copy on the receiver.
P=$(free_port)
if start_recv "$T/rout" "$T/rerr" -j recv --dev lo --listen 127.0.0.1:"$P" --provider host \
	--mode auto --validate 13 --size 8M; then
	"$TOOL" -j send 127.0.0.1:"$P" --dev lo --provider host --mode copy --size 1M \
		--bytes $BYTES --validate 13 >"$T/sout" 2>"$T/serr"
	src=$?
	bwait $RPID 120
	rrc=$?
else
	src=-1 rrc=-1
fi
json_check "-j: one object: bytes, mode copy, fallback_reason, counters, options echoed (send $src, recv $rrc)" "$T/rout" \
	"$src == 0 and $rrc == 0 and j['bytes'] == $BYTES and j['validated_bytes'] == $BYTES and j['mode'] == 'copy' and len(j['fallback_reason'] or '') > 0 and j['linear_bytes'] == 0 and j['tokens'] == 0 and j['dontneed_calls'] == 0 and j['frags'] > 0 and j['gbits_per_sec'] > 0 and j['options']['validate'] == 13 and j['options']['size'] == 8 << 20 and j['options']['mode'] == 'auto' and j['options']['provider'] == 'host' and j['nic_restored'] and j['stopped_by'] is None and j['eof'] and 'cpu_sys' in j and 'error' not in j"

P=$(free_port)
if start_recv "$T/rout" "$T/rerr" -j recv --dev lo --listen 127.0.0.1:"$P" --provider host --mode copy --size 1M; then
	"$TOOL" send 127.0.0.1:"$P" --dev lo --provider host --mode copy --size 1M --bytes 3M >/dev/null 2>&1
	bwait $RPID 120
	rrc=$?
else
	rrc=-1
fi
json_check "--mode copy: 3 MiB through a 1 MiB buffer (exit $rrc)" "$T/rout" \
	"$rrc == 0 and j['bytes'] == 3 << 20 and j['mode'] == 'copy' and j['fallback_reason'] is None and j['validated_bytes'] is None"

# 3. A mismatch is found: the sender's period differs.
P=$(free_port)
if start_recv "$T/rout" "$T/rerr" recv --dev lo --listen 127.0.0.1:"$P" --provider host \
	--mode copy --validate 7; then
	"$TOOL" send 127.0.0.1:"$P" --dev lo --provider host --mode copy --size 1M \
		--bytes 4M --validate 9 >/dev/null 2>&1
	bwait $RPID 120
	rrc=$?
else
	rrc=-1
fi
if [ $rrc = 14 ] && grep -q -E '^error: byte [0-9]+ of the stream .* is 0x[0-9a-f]+, the pattern.s is 0x[0-9a-f]+ .*\(.+\)$' "$T/rerr"; then
	ktap_ok "validation failure: exit 14: $(grep '^error:' "$T/rerr")"
else
	sed 's/^/# /' "$T/rout" "$T/rerr"
	ktap_fail "validation failure: exit 14 (got $rrc)"
fi

# 4. SIGINT during a receive: summary, teardown, exit 130, no fd leaked.
P=$(free_port)
if start_recv "$T/rout" "$T/rerr" -j recv --dev lo --listen 127.0.0.1:"$P" --provider host \
	--mode auto --size 4M --validate; then
	"$TOOL" send 127.0.0.1:"$P" --dev lo --provider host --mode copy --size 1M --time 30 \
		--validate >"$T/sout" 2>"$T/serr" &
	spid=$!
	sleep 1
	kill -INT $RPID
	bwait $RPID 120
	rrc=$?
	bwait $spid 60
	src=$?
else
	rrc=-1 src=-1
fi
json_check "SIGINT during a receive: exit 130 (got $rrc), summary with bytes, stopped_by SIGINT; the sender sees the close (exit $src)" "$T/rout" \
	"$rrc == 130 and j['stopped_by'] == 'SIGINT' and j['bytes'] > 0 and j['validated_bytes'] == j['bytes'] and j['nic_restored'] and 'error' not in j and $src == 8"

# SIGTERM while still waiting for the connection.
P=$(free_port)
if start_recv "$T/rout" "$T/rerr" recv --dev lo --listen 127.0.0.1:"$P" --provider host --mode copy; then
	kill -TERM $RPID
	bwait $RPID 120
	rrc=$?
else
	rrc=-1
fi
if [ $rrc = 143 ] && grep -q '^stopped by SIGTERM' "$T/rout"; then
	ktap_ok "SIGTERM while listening: exit 143, stopped by SIGTERM"
else
	sed 's/^/# /' "$T/rout" "$T/rerr"
	ktap_fail "SIGTERM while listening: exit 143 (got $rrc)"
fi

# 5. The failures, each with its own exit code.
expect "unknown interface" 3 "nosuchif0" recv --dev nosuchif0 --provider host
expect "--mode devmem on lo (no header split)" 11 "lo does not support header split" recv --dev lo --provider host --mode devmem
expect "--mode devmem, host memory" 5 "not a dma-buf" recv --dev lo --provider host --mode devmem --queues 0:1 --no-setup
expect "--queues out of range on lo" 9 "--queues 5:2" recv --dev lo --provider host --queues 5:2
expect "--queues garbage" 2 "--queues" recv --dev lo --queues x:1
expect "--mode zerocopy (send only)" 2 "--mode zerocopy" recv --dev lo --mode zerocopy
expect "no --dev" 2 "--dev" recv --provider host
expect "--size 0" 6 "--size 0" recv --dev lo --provider host --mode copy --size 0
expect "--validate 1" 2 "--validate 1" recv --dev lo --validate=1
expect "--rx-page-size 12K" 2 "not a power of 2 from 4096" recv --dev lo --rx-page-size 12K
expect "--rx-page-size 2048" 2 "not a power of 2 from 4096" recv --dev lo --rx-page-size 2048
expect "--rx-page-size garbage" 2 "--rx-page-size x: not a size" recv --dev lo --rx-page-size x

P=$(free_port)
exec {HFD}< <(exec python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("held", flush=True)
time.sleep(120)' "$P" </dev/null)
HPID=$!
read -r -t 10 -u "$HFD" _
expect "port in use" 13 "Address already in use" recv --dev lo --listen 127.0.0.1:"$P" --provider host --mode copy
kill $HPID 2>/dev/null
exec {HFD}<&-

"$TOOL" -j recv --dev nosuchif0 --provider host >"$T/out" 2>"$T/err"
rc=$?
json_check "-j error object: what, fix, errno, exit 3" "$T/out" \
	"$rc == 3 and j['error']['exit'] == 3 and 'nosuchif0' in j['error']['what'] and j['error']['fix'] and j['error']['errno'] == 'ENODEV'"

# 6. probe on lo: devmem impossible, every missing piece named with its fix.
"$TOOL" probe lo >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 4 ] && grep -q '^lo: devmem RX: no, devmem TX: no' "$T/out" &&
	grep -q -E '^  netmem tx +MISSING .*Driver does not support netmem TX' "$T/out" &&
	grep -q -E '^  queue management +MISSING ' "$T/out" &&
	[ "$(grep -c MISSING "$T/out")" = "$(grep -c '^ *fix: ' "$T/out")" ]; then
	ktap_ok "probe lo: exit 4, each MISSING line followed by its fix"
else
	sed 's/^/# /' "$T/out" "$T/err"
	ktap_fail "probe lo (exit $rc)"
fi
"$TOOL" -j probe lo >"$T/out" 2>"$T/err"
rc=$?
json_check "probe -j lo: [{ifname, devmem_rx, devmem_tx, checks: [{name, ok, detail, fix}]}]; missing ones have a fix" "$T/out" \
	"$rc == 4 and isinstance(j, list) and len(j) == 1 and j[0]['ifname'] == 'lo' and not j[0]['devmem_rx'] and not j[0]['devmem_tx'] and all(set(c) >= {'name', 'ok', 'detail', 'fix'} for c in j[0]['checks']) and all(c['fix'] for c in j[0]['checks'] if not c['ok']) and {c['name']: c['ok'] for c in j[0]['checks']}['netmem tx'] is False and {c['name']: c['ok'] for c in j[0]['checks']}['kernel bind-rx'] is True"
expect "probe of an unknown interface" 3 "nosuchif0" probe lo nosuchif0

# 7. A veth pair in a private netns: probe each end, and recv's queue check.
if ! ip netns add "$NS" 2>/dev/null ||
	! ip -n "$NS" link add va type veth peer name vb 2>/dev/null; then
	ktap_skip "probe on veth" "cannot make a netns with a veth pair here"
	ktap_skip "probe -j on veth, no names: every interface" "cannot make a netns with a veth pair here"
	ktap_skip "--queues out of range on veth" "cannot make a netns with a veth pair here"
else
	ip -n "$NS" link set lo up
	ip -n "$NS" link set va up
	ip -n "$NS" link set vb up
	ip netns exec "$NS" "$TOOL" probe va >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc = 4 ] && grep -q '^va: devmem RX: no, devmem TX: no' "$T/out" &&
		grep -q -E '^  rx queues >= 2 +MISSING' "$T/out" &&
		grep -q -E '^  queue management +MISSING' "$T/out" &&
		[ "$(grep -c MISSING "$T/out")" = "$(grep -c '^ *fix: ' "$T/out")" ]; then
		ktap_ok "probe va (veth): exit 4, $(grep -c MISSING "$T/out") pieces missing, each with its fix"
	else
		sed 's/^/# /' "$T/out" "$T/err"
		ktap_fail "probe on veth (exit $rc)"
	fi
	ip netns exec "$NS" "$TOOL" -j probe >"$T/out" 2>"$T/err"
	rc=$?
	json_check "probe -j on veth, no names: every interface of the netns (exit $rc)" "$T/out" \
		"$rc == 4 and sorted(i['ifname'] for i in j) == ['lo', 'va', 'vb'] and not any(i['devmem_rx'] or i['devmem_tx'] for i in j) and all(c['fix'] for i in j for c in i['checks'] if not c['ok'])"
	ip netns exec "$NS" "$TOOL" recv --dev va --provider host --mode auto --queues 3:1 >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc = 9 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q -E '^error: --queues 3:1: va has 1 RX queue .*\(.+\)$' "$T/err"; then
		ktap_ok "--queues out of range on veth: exit 9: $(cat "$T/err")"
	else
		sed 's/^/# /' "$T/out" "$T/err"
		ktap_fail "--queues out of range on veth (exit $rc)"
	fi
fi
ktap_done
