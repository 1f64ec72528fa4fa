#!/usr/bin/env bash
# cap: 30
# dmveth: a frame whose TCP checksum the sender left to the NIC
# (CHECKSUM_PARTIAL) and that a router forwards elsewhere must leave that
# router with a correct checksum (issue 12, bug 4).  dmveth used to mark
# such frames CHECKSUM_UNNECESSARY with only the pseudo-header sum in the
# checksum field, so nothing ever completed it.
#
# netns a (dma) -> dmb in netns b, which forwards -> veth vb -> vc in netns
# c.  vb has TX checksumming off, so b completes every checksum itself.  A
# capture on vc (AF_PACKET with PACKET_AUXDATA) checks each TCP segment's
# checksum; a segment still flagged as checksum-not-ready would be fine too.
# A 1 MB stream from a to c must arrive whole with no bad checksum.
# shellcheck disable=SC2015 # ktap_ok only prints
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
cleanup() {
	local p
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null; done
	dmveth_unpair
	ip netns del c 2>/dev/null
	rm -rf "$LOG"
}
trap cleanup EXIT

cat >"$LOG/sniff.py" <<'EOF'
# sniff.py IFNAME READY STOP: count IPv4 TCP segments from a on IFNAME, and those
# with a wrong checksum (not flagged CSUMNOTREADY); print "total bad".
import os, socket, struct, sys, time
SOL_PACKET, PACKET_AUXDATA, CSUMNOTREADY = 263, 8, 1 << 3
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((sys.argv[1], 0))
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.settimeout(0.2)
open(sys.argv[2], "w").close()
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return t
total = bad = 0
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        pkt, anc, _, _ = s.recvmsg(70000, socket.CMSG_SPACE(20))
    except socket.timeout:
        if os.path.exists(sys.argv[3]):
            break
        continue
    status = 0
    for lvl, typ, data in anc:
        if lvl == SOL_PACKET and typ == PACKET_AUXDATA:
            status = struct.unpack_from("I", data)[0]
    ip = pkt[14:]
    # segments forwarded from a (10.55.0.1) only
    if len(ip) < 20 or ip[9] != 6 or ip[12:16] != bytes([10, 55, 0, 1]):
        continue
    ihl, tot = (ip[0] & 15) * 4, struct.unpack("!H", ip[2:4])[0]
    seg = ip[ihl:tot]
    total += 1
    if status & CSUMNOTREADY:
        continue
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(seg))
    if csum(pseudo + seg) != 0xffff:
        bad += 1
print(total, bad)
EOF

dmveth_pair 4 || { ktap_fail "create a dmveth pair"; exit 1; }
if ! { ip netns add c &&
	ip link add vb type veth peer name vc &&
	ip link set vb netns b && ip link set vc netns c &&
	ip -n b addr add 10.56.0.1/24 dev vb && ip -n c addr add 10.56.0.2/24 dev vc &&
	ip -n b link set vb up && ip -n c link set vc up && ip -n c link set lo up &&
	ip netns exec b sysctl -qw net.ipv4.ip_forward=1 &&
	ip -n a route add 10.56.0.0/24 via $DMV_B4 &&
	ip -n c route add default via 10.56.0.1 &&
	ip netns exec b ethtool -K vb tx off >/dev/null; }; then
	ktap_fail "router b: dmb -> ip_forward -> veth vb (TX checksum off) -> vc in netns c"
	exit 1
fi
ktap_ok "router b: dmb -> ip_forward -> veth vb (TX checksum off) -> vc in netns c"

ip netns exec c timeout 150 python3 "$LOG/sniff.py" vc "$LOG/ready" "$LOG/stop" >"$LOG/sniff" 2>&1 &
SNIFF=$!
for ((i = 0; i < 300; i++)); do
	[ -e "$LOG/ready" ] && break
	kill -0 $SNIFF 2>/dev/null || break
	nap 0.1
done
[ -e "$LOG/ready" ] || { ktap_fail "capture on vc starts ($(cat "$LOG/sniff"))"; exit 1; }

BYTES=1048576
ip netns exec c timeout 120 socat -u TCP-LISTEN:5900,reuseaddr CREATE:"$LOG/out" 2>"$LOG/srv" &
RPID=$!
wait_listen c 5900 30 "$RPID" || { ktap_fail "receiver in c listens"; exit 1; }
if head -c $BYTES /dev/urandom >"$LOG/in" &&
	ip netns exec a timeout 120 socat -u OPEN:"$LOG/in" TCP:10.56.0.2:5900 2>"$LOG/cli" &&
	bwait $RPID 300 && cmp -s "$LOG/in" "$LOG/out"; then
	ktap_ok "a 1 MB stream from a through router b reaches c intact"
else
	echo "# client: $(tail -n 2 "$LOG/cli") server: $(tail -n 2 "$LOG/srv")"
	ktap_fail "a 1 MB stream from a through router b reaches c intact ($(stat -c %s "$LOG/out" 2>/dev/null) bytes)"
fi
touch "$LOG/stop"
bwait $SNIFF 300
read -r total bad <"$LOG/sniff"
if [ "${total:-0}" -gt 0 ] && [ "$bad" = 0 ]; then
	ktap_ok "every TCP segment forwarded to c has a correct checksum ($total captured)"
else
	ktap_fail "every TCP segment forwarded to c has a correct checksum: $bad bad of ${total:-?} ($(head -c 300 "$LOG/sniff"))"
fi
errs=$(ip netns exec c nstat -az TcpInCsumErrors | awk '$1 == "TcpInCsumErrors" {print $2}')
[ "${errs:-x}" = 0 ] && ktap_ok "c counts no TCP checksum errors" ||
	ktap_fail "c counts no TCP checksum errors (TcpInCsumErrors ${errs:-?})"
ktap_done
