#!/usr/bin/env bash
# cap: 30
# dmveth: received frames carry their NAPI's id, as a driver's do with
# skb_mark_napi_id(): a TCP socket's SO_INCOMING_NAPI_ID names one of
# dmb's RX queue NAPIs (netdev queue-get), which busy polling needs; and
# each RX queue's page pool recycles straight from its NAPI, so netdev
# page-pool-get shows that NAPI's id for every dmb pool (issue 12, bugs 5
# and 6).
# shellcheck disable=SC2015 # ktap_ok only prints
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
dmveth_test_init 4
IFINDEX=$(ip -n b -o link show $DMV_B | cut -d: -f1)

# napi.py PORT OUT: accept one connection, read to EOF, write the
# socket's SO_INCOMING_NAPI_ID to OUT
cat >"$LOG/napi.py" <<'EOF'
import socket, sys
SO_INCOMING_NAPI_ID = 56
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1])))
ls.listen(1)
c, _ = ls.accept()
while c.recv(1 << 16):
    pass
open(sys.argv[2], "w").write(f"{c.getsockopt(socket.SOL_SOCKET, SO_INCOMING_NAPI_ID)}\n")
EOF
ip netns exec b timeout 60 python3 "$LOG/napi.py" 5950 "$LOG/napi" 2>"$LOG/srv" &
SPID=$!
if ! wait_listen b 5950 30 "$SPID"; then
	ktap_fail "SO_INCOMING_NAPI_ID: receiver listens ($(cat "$LOG/srv"))"
	exit 1
fi
head -c 65536 /dev/zero | ip netns exec a timeout 60 socat -u - TCP:$DMV_B4:5950
bwait $SPID 300
napi=$(cat "$LOG/napi" 2>/dev/null)

if ! [ -f "$YNL" ] || ! [ -f "$SPECS/netdev.yaml" ]; then
	# the id alone, without the queues to compare it with
	[ "${napi:-0}" -gt 0 ] && ktap_ok "SO_INCOMING_NAPI_ID on a dmb socket is $napi" ||
		ktap_fail "SO_INCOMING_NAPI_ID on a dmb socket is non-zero (got '${napi}')"
	ktap_skip "page-pool-get shows each dmb pool's NAPI" "YNL cli not found at $YNL"
	exit 0
fi

ynl b netdev --dump queue-get --json "{\"ifindex\": $IFINDEX}" --output-json >"$LOG/queues" 2>&1
qids=$(python3 -c '
import json, sys
print(" ".join(sorted(str(q["napi-id"]) for q in json.load(open(sys.argv[1]))
                      if q["type"] == "rx" and "napi-id" in q)))' "$LOG/queues" 2>&1)
if [ "${napi:-0}" -gt 0 ] && grep -qw -- "$napi" <<<"$qids"; then
	ktap_ok "SO_INCOMING_NAPI_ID on a dmb socket is $napi, one of dmb's RX queue NAPIs ($qids)"
else
	sed 's/^/# /' "$LOG/queues" | head -n 10
	ktap_fail "SO_INCOMING_NAPI_ID on a dmb socket is '$napi', one of dmb's RX queue NAPIs ($qids)"
fi

ynl b netdev --dump page-pool-get --output-json >"$LOG/pools" 2>&1
pids=$(python3 -c '
import json, sys
pools = [p for p in json.load(open(sys.argv[1]))
         if p.get("ifindex") == int(sys.argv[2]) and "detach-time" not in p]
print(" ".join(sorted(str(p.get("napi-id", "none")) for p in pools)))' "$LOG/pools" "$IFINDEX" 2>&1)
if [ -n "$qids" ] && [ "$pids" = "$qids" ]; then
	ktap_ok "page-pool-get: dmb's pools name its RX queue NAPIs ($pids)"
else
	sed 's/^/# /' "$LOG/pools" | head -n 10
	ktap_fail "page-pool-get: dmb's pools name its RX queue NAPIs (pools: '$pids', queues: '$qids')"
fi
ktap_done
