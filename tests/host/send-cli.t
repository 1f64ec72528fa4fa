#!/usr/bin/env bash
# cap: 30
# cap-asan: 60
# asan: yes
# devmemtcp send on the host (no /dev/udmabuf here: --provider host): the
# zerocopy and copy modes over loopback into a receiver that checks every
# byte of the ncdevmem pattern, -j output, auto's fallback said out loud,
# the one-line errors with their fix and distinct exit codes, SIGINT and
# SIGTERM, and no fd leaked (DEVMEMTCP_FD_CHECK=1 on every run).
# Devmem mode itself needs a devmem NIC: tests/vm covers it on dmveth.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/clitest.sh"
cd "$TOP" || exit 1
TOOL=$BUILD/bin/devmemtcp
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
export DEVMEMTCP_FD_CHECK=1

if [ ! -x "$TOOL" ]; then
	ktap_bail "devmemtcp built (make all)"
fi

# The receiver: listens on 127.0.0.1, prints its port (the ready signal),
# then, per MODE: "check PERIOD" validates the pattern to EOF, "sink" reads
# to EOF, "short N" reads N bytes and exits with the rest unread (a reset).
# "progress" lines after each MiB let a test act once data flows.
cat >"$T/recv.py" <<'PY'
import socket, sys
mode = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(60)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.settimeout(60)
if mode == "short":
    want, got = int(sys.argv[2]), 0
    while got < want:
        b = c.recv(65536)
        if not b:
            break
        got += len(b)
    print("short read %d" % got, flush=True)
    c.close()
    sys.exit(0)
period = int(sys.argv[2]) if mode == "check" else 0
if period:
    one = bytes(10 if i == period - 1 else i + 1 for i in range(period))
    pat = one * (65536 // period + 2)
pos, mib = 0, 1 << 20
buf = bytearray(65536)
while True:
    n = c.recv_into(buf)
    if not n:
        break
    if period:
        o = pos % period
        if buf[:n] != pat[o:o + n]:
            k = next(i for i in range(n) if buf[i] != pat[o + i])
            print("BAD byte %d: 0x%02x, want 0x%02x" % (pos + k, buf[k], pat[o + k]), flush=True)
            sys.exit(1)
    if pos // mib != (pos + n) // mib:
        print("progress %d" % (pos + n), flush=True)
    pos += n
print("received %d" % pos, flush=True)
c.close()
PY

# start_recv MODE ARGS...: sets RPORT and RFD (the receiver's stdout).
start_recv() {
	exec {RFD}< <(exec python3 "$T/recv.py" "$@")
	RPID=$!
	read -r -t 30 -u "$RFD" RPORT
}
# recv_wait [RC]: RES = the receiver's last line; RC != 0 (the sender
# failed): stop the receiver first.
recv_wait() {
	local line
	[ "${1:-0}" = 0 ] || kill "$RPID" 2>/dev/null
	RES=
	while read -r -t 60 -u "$RFD" line; do
		RES=$line
	done
	exec {RFD}<&-
}

# transfer NAME MODE BYTES [ARGS...]: MODE devmemtcp over lo into a
# validating receiver; ok when both succeed and every byte matched.
transfer() {
	local name=$1 mode=$2 bytes=$3 rc res
	shift 3
	start_recv check 7
	"$TOOL" send 127.0.0.1:"$RPORT" --dev lo --provider host --mode "$mode" \
		--size 4M --bytes "$bytes" --validate 7 "$@" >"$T/out" 2>"$T/err"
	rc=$?
	recv_wait $rc; res=$RES
	if [ $rc = 0 ] && [ "$res" = "received $bytes" ]; then
		ktap_ok "$name: $bytes bytes validated by the receiver: $(grep -h '^sent:' "$T/out")"
	else
		sed 's/^/# /' "$T/out" "$T/err"
		echo "# exit $rc, receiver: $res"
		ktap_fail "$name"
	fi
}

# json_check NAME PYEXPR: stdout of the last run is one JSON object j for
# which PYEXPR is true.
json_check() {
	if python3 -m json.tool "$T/out" >/dev/null 2>&1 &&
		python3 -c "import json,sys; j = json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$T/out"; then
		ktap_ok "$1"
	else
		sed 's/^/# /' "$T/out" "$T/err"
		ktap_fail "$1"
	fi
}

v=$("$TOOL" --version)
case $v in "devmemtcp "[0-9]*.[0-9]*) ktap_ok "--version: $v" ;; *) ktap_fail "--version: '$v'" ;; esac
help=$("$TOOL" --help)
if grep -q -E '^ +8 +peer closed' <<<"$help" && grep -q -E '^ +4 +devmem' <<<"$help"; then
	ktap_ok "--help lists the commands and the exit codes"
else
	ktap_fail "--help lists the commands and the exit codes"
fi

transfer "zerocopy mode over lo" zerocopy $((32 << 20))
transfer "copy mode over lo" copy $((32 << 20))
transfer "zerocopy, --chunk 4097 (regions not page aligned)" zerocopy $((8 << 20)) --chunk 4097
transfer "copy, --chunk 1 byte, odd total" copy 100003 --chunk 1

# -j: one object with the options echoed, the mode and the counters.
start_recv check 7
"$TOOL" -j send 127.0.0.1:"$RPORT" --dev lo --provider host --mode zerocopy --size 1M \
	--bytes 8M --validate --chunk 32K >"$T/out" 2>"$T/err"
rc=$?
recv_wait $rc; res=$RES
[ $rc = 0 ] && [ "$res" = "received $((8 << 20))" ] || echo "# exit $rc, receiver: $res"
json_check "-j: one JSON object: mode, bytes, options echoed" \
	"j['mode'] == 'zerocopy' and j['bytes'] == 8 << 20 and j['sends'] > 0 and j['completions'] > 0 and j['options']['chunk'] == 32768 and j['options']['validate'] == 7 and j['options']['size'] == 1 << 20 and j['options']['mode'] == 'zerocopy' and 'copied' in j and 'cpu_sys' in j and 'error' not in j and $rc == 0"

# auto on a device without devmem: falls back, and says why.
start_recv check 7
"$TOOL" send 127.0.0.1:"$RPORT" --dev lo --provider host --size 1M --bytes 4M --validate 7 >"$T/out" 2>"$T/err"
rc=$?
recv_wait $rc; res=$RES
if [ $rc = 0 ] && [ "$res" = "received $((4 << 20))" ] && grep -q -E '^mode: (zerocopy|copy) \(auto: devmem not used: .+\)' "$T/out"; then
	ktap_ok "auto falls back on lo and says why: $(grep '^mode:' "$T/out")"
else
	sed 's/^/# /' "$T/out" "$T/err"
	ktap_fail "auto falls back on lo and says why (exit $rc, receiver: $res)"
fi
start_recv sink
"$TOOL" -j send 127.0.0.1:"$RPORT" --dev lo --provider host --size 1M --bytes 1M >"$T/out" 2>"$T/err"
recv_wait $?
json_check "auto -j: fallback_reason given" "j['mode'] != 'devmem' and j['options']['mode'] == 'auto' and len(j['fallback_reason'] or '') > 0"

# --time: stops on its own.
start_recv sink
"$TOOL" send 127.0.0.1:"$RPORT" --dev lo --provider host --mode copy --size 1M --time 0.3 >"$T/out" 2>"$T/err"
rc=$?
recv_wait $rc; res=$RES
if [ $rc = 0 ] && [ "$res" = "received $(sed -n 's/^sent: \([0-9]*\) bytes.*/\1/p' "$T/out")" ]; then
	ktap_ok "--time 0.3: $(grep '^sent:' "$T/out")"
else
	sed 's/^/# /' "$T/out" "$T/err"
	ktap_fail "--time 0.3 (exit $rc, receiver: $res)"
fi

# The failures, each with its own exit code.
expect "devmem mode on lo" 4 "" send 127.0.0.1:9 --dev lo --provider host --mode devmem
expect "unknown interface" 3 "nosuchif0" send 127.0.0.1:9 --dev nosuchif0 --provider host
expect "--provider fd --fd 0 (not a dma-buf)" 5 "" send 127.0.0.1:9 --dev lo --provider fd --fd 0
expect "--chunk larger than --size" 6 "--chunk" send 127.0.0.1:9 --dev lo --provider host --size 64K --chunk 128K
expect "--size 0" 6 "--size 0" send 127.0.0.1:9 --dev lo --provider host --size 0
expect "--chunk 0" 6 "--chunk 0" send 127.0.0.1:9 --dev lo --provider host --chunk 0
expect "refusing peer (a closed port)" 7 "Connection refused" send 127.0.0.1:9 --dev lo --provider host --mode copy
expect "unknown host" 7 "nosuchhost.invalid" send nosuchhost.invalid --mode copy --provider host
expect "bad --mode" 2 "--mode" send 127.0.0.1 --dev lo --mode fast
expect "--size garbage" 2 "--size" send 127.0.0.1 --dev lo --size lots
expect "devmem needs --dev" 2 "--dev" send 127.0.0.1 --provider host
expect "no HOST" 2 "HOST" send --dev lo
expect "unknown command" 2 "unknown command 'frob'" frob

start_recv short $((1 << 20))
expect "peer closes mid-stream" 8 "" send 127.0.0.1:"$RPORT" --dev lo --provider host --mode zerocopy --size 1M --bytes 1G
recv_wait

# -j errors: one object with "error".
"$TOOL" -j send 127.0.0.1:9 --dev nosuchif0 --provider host >"$T/out" 2>"$T/err"
rc=$?
json_check "-j error object: what, fix, code, exit 3" \
	"$rc == 3 and j['error']['exit'] == 3 and 'nosuchif0' in j['error']['what'] and j['error']['fix'] and j['error']['errno'] == 'ENODEV'"

# Signals: stop, drain, summary, exit 128+N.
for sig in INT TERM; do
	want=$((128 + $(kill -l $sig)))
	start_recv sink
	"$TOOL" -j send 127.0.0.1:"$RPORT" --dev lo --provider host --mode zerocopy --size 1M --time 60 >"$T/out" 2>"$T/err" &
	tpid=$!
	line=
	read -r -t 30 -u "$RFD" line	# the receiver has its first MiB
	kill -$sig $tpid
	bwait $tpid 60
	rc=$?
	recv_wait
	json_check "SIG$sig: summary printed, exit $want (got $rc), no fd leaked" \
		"$rc == $want and j['stopped_by'] == 'SIG$sig' and j['bytes'] >= 1 << 20 and '$line'.startswith('progress')"
done
ktap_done
