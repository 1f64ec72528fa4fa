#!/usr/bin/env bash
# cap: 30
# devmemtcp restore on the host, against undo logs in a scratch --log-dir
# (the NIC cases, on dmveth, are tests/vm/65-nic-restore.t): no log at all,
# no log for an interface, an unknown interface, a corrupt log, a log whose
# interface is gone or was recreated, a log another process holds, each a
# one-line error with its fix and its own exit code; a log of changes that
# need nothing put back (on lo) is replayed and removed; -j; usage errors.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/clitest.sh"
cd "$TOP" || exit 1
TOOL=$BUILD/bin/devmemtcp
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
export DEVMEMTCP_FD_CHECK=1

if [ ! -x "$TOOL" ]; then
	ktap_fail "devmemtcp built (make all)"
	exit 0
fi
NS=$(stat -L -c %i /proc/self/ns/net)
D=$T/logs/net-$NS
mkdir -p "$D"
SPEC=01$(printf '00%.0s' $(seq 167))	# a tcp4 rule spec (struct ethtool_rx_flow_spec)
# log IFNAME IFINDEX LINES...: an undo log as the library writes it
log() {
	local name=$1 idx=$2
	shift 2
	mkdir -p "$D"	# the library removes it with its last log
	{
		printf 'devmemtcp-nic-undo 1\nnic %s %s %s\nowner 99999999 devmemtcp\n' "$name" "$idx" "$NS"
		printf '%s\n' "$@"
	} >"$D/$name.undo"
}

help=$("$TOOL" --help)
if grep -q -E '^ +restore ' <<<"$help" && grep -q -E '^ +19 +restore: the undo log is corrupt' <<<"$help"; then
	ktap_ok "--help lists restore and its exit codes"
else
	ktap_fail "--help lists restore and its exit codes"
fi

"$TOOL" restore --log-dir "$T/none" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 0 ] && grep -q "nothing to restore" "$T/out" && [ ! -s "$T/err" ]; then
	ktap_ok "no logs at all: exit 0, nothing to restore"
else
	sed 's/^/# /' "$T/out" "$T/err"
	ktap_fail "no logs at all: exit 0, nothing to restore (exit $rc)"
fi
expect "no log for lo" 18 "no undo log for lo" restore --log-dir "$T/logs" lo
expect "unknown interface" 3 "no interface dmt-nosuch0" restore --log-dir "$T/logs" dmt-nosuch0
expect "interface name too long" 2 "restore" restore --log-dir "$T/logs" abcdefghijklmnopq
expect "two interfaces" 2 "unexpected argument" restore --log-dir "$T/logs" lo lo
expect "bad option" 2 "bad option" restore --frob

log lo 1 "1 frobnicate 7"
expect "corrupt log (unknown entry)" 19 'line 4 .*"1 frobnicate 7"' restore --log-dir "$T/logs" lo
printf 'not a devmemtcp log\n' >"$D/lo.undo"
expect "corrupt log (no header)" 19 "not one devmemtcp wrote" restore --log-dir "$T/logs" lo
log lo 1 "1 rss 4 0 0,1,2 0,1,2,3"
expect "corrupt log (short RSS table)" 19 "line 4" restore --log-dir "$T/logs" lo
log lo 1 "1 rule any 0102"
expect "corrupt log (short rule)" 19 "line 4" restore --log-dir "$T/logs" lo
ktap_check "a corrupt log is left in place" test -f "$D/lo.undo"

log dmt-gone0 4000000 "1 ntuple"
expect "interface gone" 20 "dmt-gone0 \\(ifindex 4000000\\) is gone" restore --log-dir "$T/logs" dmt-gone0
rm -f "$D/dmt-gone0.undo"
log lo 4000000 "1 ntuple"
expect "interface recreated (another index)" 20 "lo is ifindex 1 now, not 4000000" restore --log-dir "$T/logs" lo

# held by a live process (flock(2), as the library takes it)
log lo 1 "1 ntuple"
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)' "$D/lo.undo" >"$T/locked" &
hpid=$!
wait_file_line "$T/locked" '^locked$' 30 $hpid
expect "log held by another process" 17 "lo is being set up by pid 99999999" restore --log-dir "$T/logs" lo
kill $hpid 2>/dev/null
bwait $hpid 10 >/dev/null

# changes that need nothing put back on lo (no ntuple there): replayed,
# the torn last line (no newline: its change was never made) ignored
log lo 1 "1 rule any $SPEC" "2 ntuple"
printf '3 rings 2' >>"$D/lo.undo"
"$TOOL" -j restore --log-dir "$T/logs" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 0 ] && [ ! -e "$D/lo.undo" ] && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
l = j["logs"]
sys.exit(0 if j["restored"] == 1 and len(l) == 1 and l[0]["ifname"] == "lo" and l[0]["changes"] == 2
         and l[0]["undone"] == 2 and l[0]["pid"] == 99999999 and not l[0]["pid_alive"] and l[0]["error"] is None
         and "error" not in j else 1)' "$T/out"; then
	ktap_ok "a log of lo replayed (-j, every log): exit 0, 2 changes, torn last line ignored, log removed"
else
	sed 's/^/# /' "$T/out" "$T/err"
	ktap_fail "a log of lo replayed (-j): exit 0, 2 changes, log removed (exit $rc)"
fi
log lo 1 "1 ntuple" "1 undone"
"$TOOL" restore --log-dir "$T/logs" lo >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 0 ] && [ ! -e "$D/lo.undo" ] && grep -q "^lo: restored 0 changes" "$T/out"; then
	ktap_ok "a log whose changes were all undone: exit 0, removed"
else
	sed 's/^/# /' "$T/out" "$T/err"
	ktap_fail "a log whose changes were all undone: exit 0, removed (exit $rc)"
fi
ktap_done
