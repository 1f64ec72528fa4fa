#!/usr/bin/env bash
# cap: 30
# cap-asan: 60
# asan: yes
# The send engine on this machine: tx-modes (zerocopy, copy, auto over lo,
# then over a veth pair between two network namespaces) and tx-reuse (no
# region reused before its send completed, under ENOBUFS storms in a
# private netns), tx-noalloc (no heap allocation per send in steady state),
# tx-epoll (8 non-blocking connections driven by one epoll thread).
# 0.2: tx-submit (caller-owned requests from two buffers with cookies,
# refusals, options checks, kept error-queue messages), tx-stall (< 100
# wake-ups/s while waiting for completions, EINTR), tx-memlock (zerocopy
# under a low RLIMIT_MEMLOCK without CAP_IPC_LOCK).
# The namespaces are removed on every exit path.
. "$(dirname "$0")/../lib/ktap.sh"

NS_A=dmt-tx-$$-a NS_B=dmt-tx-$$-b
cleanup() {
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# run LABEL CMD...: the program's KTAP lines as ours; its crash, timeout or
# non-zero exit is a "not ok" naming it (ktap_relay).
run() { ktap_relay "$@"; }

for p in tx-modes tx-reuse tx-noalloc tx-epoll; do
	[ -x "$BUILD/tests/$p" ] || ktap_fail "$p built (make all)"
done

[ -x "$BUILD/tests/tx-modes" ] && run "tx-modes (lo)" "$BUILD/tests/tx-modes"

if [ -x "$BUILD/tests/tx-modes" ]; then
	if [ "$(id -u)" != 0 ] || ! ip netns add "$NS_A" 2>/dev/null; then
		ktap_skip "tx-modes (veth)" "cannot create network namespaces (needs root)"
	elif ! { ip netns add "$NS_B" &&
		ip link add dmtA netns "$NS_A" type veth peer name dmtB netns "$NS_B" &&
		ip -n "$NS_A" addr add 10.231.0.1/24 dev dmtA &&
		ip -n "$NS_B" addr add 10.231.0.2/24 dev dmtB &&
		ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
		ip -n "$NS_A" link set dmtA up && ip -n "$NS_B" link set dmtB up; } 2>/tmp/dmt-tx-$$.err; then
		sed 's/^/# /' /tmp/dmt-tx-$$.err
		ktap_skip "tx-modes (veth)" "no veth pair between namespaces (CONFIG_VETH?)"
	else
		run "tx-modes (veth)" ip netns exec "$NS_A" \
			"$BUILD/tests/tx-modes" -i dmtA -a 10.231.0.2 -n "$NS_B" -m 32
	fi
	rm -f /tmp/dmt-tx-$$.err
fi

[ -x "$BUILD/tests/tx-reuse" ] && run "tx-reuse" "$BUILD/tests/tx-reuse"
[ -x "$BUILD/tests/tx-noalloc" ] && run "tx-noalloc" "$BUILD/tests/tx-noalloc"
[ -x "$BUILD/tests/tx-epoll" ] && run "tx-epoll" "$BUILD/tests/tx-epoll"
# The 0.2 programs and the example use host memory over lo: on the host
# only (vm/50 runs this file in the VM too, where tests/vm/55 covers 0.2
# in devmem mode).
if [ -n "${DEVMEMTCP_FLAVOR:-}" ]; then
	ktap_done
fi
for p in tx-submit tx-stall tx-memlock; do
	if [ -x "$BUILD/tests/$p" ]; then
		run "$p" "$BUILD/tests/$p"
	else
		ktap_fail "$p built (make all)"
	fi
done
# examples/sender over lo (zerocopy from host buffers, 8 connections on
# one epoll thread) into the pattern sink: every byte of every connection
# checked, each connection's byte count and the total compared.
S=$BUILD/examples/sender
if [ ! -x "$S" ]; then
	ktap_fail "examples/sender built (make all)"
else
	D=$(mktemp -d)
	port=$((20000 + $$ % 20000))
	conns=8
	python3 "$(dirname "$0")/../lib/pattern-sink.py" --listen 127.0.0.1 --port $port \
		--period 7 --conns $conns --ready "$D/ready" >"$D/sink" 2>&1 &
	spid=$!
	for _ in $(seq 100); do [ -e "$D/ready" ] && break; sleep 0.1; done	# a new folder: fresh
	n=$((2 << 20 | 12345))	# per connection
	total=$((conns * n))
	timeout 60 "$S" --dev lo --to 127.0.0.1:$port --conns $conns --bytes $n --msg 3001 \
		--mode zerocopy --provider host >"$D/out" 2>&1
	rc=$?
	bwait $spid 30
	src=$?
	each=$(grep -c -E "^connection [0-9]+: validated $n bytes\$" "$D/sink")
	if [ $rc = 0 ] && [ $src = 0 ] && [ "$each" = $conns ] &&
		grep -q "^validated $total bytes in $conns connections\$" "$D/sink" &&
		grep -q " conns=$conns bytes=$total " "$D/out"; then
		ktap_ok "examples/sender over lo: $conns connections on one thread, $total bytes sent = validated, $n on each ($(cat "$D/out"))"
	else
		sed 's/^/# /' "$D/out" "$D/sink" | tail -n 12
		ktap_fail "examples/sender over lo: $conns connections, $total bytes validated (exit $rc, sink $src, $each connections complete)"
	fi
	rm -rf "$D"
fi
ktap_done
