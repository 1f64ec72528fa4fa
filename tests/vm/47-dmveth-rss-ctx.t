#!/usr/bin/env bash
# cap: 30
# dmveth: additional RSS contexts (issue 12), with ethtool's ioctl API.
# - ethtool -X dmb context new weight 0 0 1 1: context 1 spreads over queues
#   2 and 3 (ethtool -x ... context 1 reads it back); context new weight 1 1:
#   context 2 over queues 0 and 1.
# - Rules: tcp4 dst-port 5471 -> context 1; dst-port 5472 -> context 2
#   action 2 (the rule's queue is added to the context's entries:
#   cap_rss_rxnfc_adds), so both ports land on queues 2 and 3.  16
#   connections to each port (64 KiB each, received whole): queues 2 and 3
#   receive at least 3 packets per connection together (SYN, data, FIN),
#   each of them some, queues 0 and 1 next to none (< 8: ARP and such).
# - A context a rule uses cannot be deleted, nor can the channel count drop
#   below a context's queues; a rule's queue plus its context's table may not
#   pass the last queue (a new rule, a new table, a smaller channel count:
#   refused), nor may a second rule match the same flow; once the rules are
#   gone, both contexts delete, the context list is empty and ethtool -L
#   combined 2 works.
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
set -o pipefail
dmveth_test_init 4
eb() { ip netns exec b ethtool "$@"; }

ktap_ok "dmveth pair in netns a and b"

out=$(eb -X $DMV_B context new weight 0 0 1 1 2>&1)
c1=$(sed -n 's/^New RSS context is \([0-9]*\)$/\1/p' <<<"$out")
out2=$(eb -X $DMV_B context new weight 1 1 2>&1)
c2=$(sed -n 's/^New RSS context is \([0-9]*\)$/\1/p' <<<"$out2")
if [ -n "$c1" ] && [ -n "$c2" ] && [ "$c1" != "$c2" ]; then
	ktap_ok "ethtool -X context new twice: contexts $c1 and $c2"
else
	echo "# $out / $out2"
	ktap_bail "ethtool -X context new twice"
fi
# the table of context c1, as ethtool -x prints it: only queues 2 and 3
tbl=$(eb -x $DMV_B context "$c1" | awk '/^ *[0-9]+: / {for (i = 2; i <= NF; i++) print $i}' | sort -u |
	tr '\n' ' ')
if [ "$tbl" = "2 3 " ]; then
	ktap_ok "ethtool -x context $c1: entries $tbl"
else
	eb -x $DMV_B context "$c1" | head -n 8 | sed 's/^/# /'
	ktap_fail "ethtool -x context $c1: entries are queues 2 and 3 (got '$tbl')"
fi

r1=$(eb -N $DMV_B flow-type tcp4 dst-port 5471 context "$c1" 2>&1 | sed -n 's/.*rule with ID \([0-9]*\).*/\1/p')
r2=$(eb -N $DMV_B flow-type tcp4 dst-port 5472 context "$c2" action 2 2>&1 |
	sed -n 's/.*rule with ID \([0-9]*\).*/\1/p')
if [ -n "$r1" ] && [ -n "$r2" ] && eb -n $DMV_B rule "$r1" | grep -qi "context.*$c1"; then
	ktap_ok "ntuple rules $r1 (context $c1) and $r2 (context $c2, queue offset 2)"
else
	eb -n $DMV_B | sed 's/^/# /'
	ktap_fail "ntuple rules with context $c1 and context $c2 action 2"
fi

qpk() { # qpk Q: packets received on dmb's queue Q
	eb -S $DMV_B | awk -v n="rx$1_packets:" '$1 == n {print $2}'
}
cat >"$LOG/srv.py" <<'EOF'
import socket, sys
n = int(sys.argv[1])
ls = [socket.create_server(("0.0.0.0", p)) for p in (5471, 5472)]
print("ready", flush=True)
total = 0
for s in ls:
    for _ in range(n):
        c, _ = s.accept()
        while True:
            b = c.recv(65536)
            if not b:
                break
            total += len(b)
        c.close()
print(total)
EOF
b0=$(for q in 0 1 2 3; do qpk $q; done | tr '\n' ' ')
timeout 60 ip netns exec b python3 "$LOG/srv.py" 16 >"$LOG/srv" 2>&1 &
spid=$!
wait_file_line "$LOG/srv" '^ready$' 30 $spid || ktap_bail "server listening on ports 5471 and 5472"
timeout 60 ip netns exec a python3 -c '
import socket, sys
for port in (5471, 5472):
    for i in range(16):
        s = socket.create_connection((sys.argv[1], port))
        s.sendall(b"x" * 65536)
        s.close()
' $DMV_B4
crc=$?
bwait $spid 60
src=$?
b1=$(for q in 0 1 2 3; do qpk $q; done | tr '\n' ' ')
read -r a0 a1 a2 a3 <<<"$b0"
read -r z0 z1 z2 z3 <<<"$b1"
d01=$((z0 - a0 + z1 - a1)) d2=$((z2 - a2)) d3=$((z3 - a3))
got=$(tail -n 1 "$LOG/srv")
if [ $crc = 0 ] && [ $src = 0 ] && [ "$got" = $((32 * 65536)) ] && [ $d2 -gt 0 ] && [ $d3 -gt 0 ] &&
	[ $((d2 + d3)) -ge 96 ] && [ $d01 -lt 8 ]; then
	ktap_ok "32 connections to ports 5471/5472 ($got bytes): queue 2 +$d2, queue 3 +$d3 packets, queues 0-1 +$d01"
else
	echo "# client exit $crc, server exit $src, received ${got:-none} of $((32 * 65536)); packets per queue before: $b0, after: $b1"
	ktap_fail "connections steered by contexts $c1/$c2 to queues 2 and 3 only, both used"
fi

if eb -X $DMV_B context "$c1" delete >"$LOG/del" 2>&1; then
	ktap_fail "deleting context $c1 while rule $r1 uses it is refused"
else
	ktap_ok "deleting context $c1 while rule $r1 uses it is refused ($(head -n 1 "$LOG/del"))"
fi
if eb -L $DMV_B combined 2 >"$LOG/ch" 2>&1; then
	ktap_fail "ethtool -L combined 2 refused while context $c1 uses queue 3"
else
	ktap_ok "ethtool -L combined 2 refused while context $c1 uses queue 3 ($(head -n 1 "$LOG/ch"))"
fi
# "context N action Q" lands on Q plus an entry of N's table: dmveth
# refuses what would put that past the last queue (the core checks the
# rule's queue and the table each alone), and a second rule for the same
# flow (-EEXIST, as bnxt)
# refused WHAT CMD...: CMD fails (bookworm's ethtool 6.1 may exit 0 after
# "Cannot ...": its message counts) and dmb's rules are as they were
refused() {
	local before rc=0
	before=$(eb -n $DMV_B 2>&1)
	"${@:2}" >"$LOG/r" 2>&1 || rc=$?
	if { [ $rc != 0 ] || grep -q -i 'cannot' "$LOG/r"; } && [ "$(eb -n $DMV_B 2>&1)" = "$before" ]; then
		ktap_ok "$1 is refused ($(grep -v '^rmgr' "$LOG/r" | head -n 1 | tr -s ' '))"
	else
		sed 's/^/# /' "$LOG/r"
		eb -n $DMV_B | sed 's/^/# rules: /'
		ktap_fail "$1 is refused"
	fi
}
refused "a rule for context $c2 (queues 0-1) with action 3 (queue 4 of 4)" \
	eb -N $DMV_B flow-type tcp4 dst-port 5473 context "$c2" action 3
refused "a second rule for rule $r2's flow" \
	eb -N $DMV_B flow-type tcp4 dst-port 5472 context "$c2" action 1
refused "context $c2's table over queues 2-3 while rule $r2 adds 2 to it" \
	eb -X $DMV_B context "$c2" weight 0 0 1 1
if eb -N $DMV_B delete "$r1" && eb -X $DMV_B context "$c1" delete; then
	ktap_ok "rule $r1 and context $c1 deleted"
else
	ktap_fail "rule $r1 and context $c1 deleted"
fi
refused "ethtool -L combined 3 while rule $r2 (action 2, context $c2 over queues 0-1) uses queue 3" \
	eb -L $DMV_B combined 3
if eb -N $DMV_B delete "$r2" && eb -X $DMV_B context "$c2" delete &&
	! eb -x $DMV_B context "$c1" >/dev/null 2>&1 && eb -L $DMV_B combined 2 &&
	eb -L $DMV_B combined 4; then
	ktap_ok "rules and contexts deleted, context $c1 gone, ethtool -L combined 2 and back to 4"
else
	ktap_fail "rules and contexts deleted, context $c1 gone, ethtool -L combined 2 and back to 4"
fi
ktap_done
