#!/usr/bin/env bash
# cap: 135
# dmveth's configuration surface: link creation limits, a frame crossing
# (IPv4, IPv6), ethtool channels (-l/-L), rings and header split (-g/-G,
# tcp-data-split, hds-thresh), the RSS table and key (-x/-X), ntuple rules
# (-n/-N), steering that really moves a TCP flow to the queue a rule or the
# table names (ethtool -S per-queue counters), header-split accounting
# (rx*_split_packets), per-queue stats through netdev netlink (qstats) and
# ethtool -i.  All ethtool commands run on dmb in netns b.
#
# ethtool older than 6.13 cannot set tcp-data-split/hds-thresh: ring
# settings then go through the kernel's YNL cli (ethtool family), whose
# extack reaches us the same way.  ethtool and the YNL cli are tools the rig
# installs: either missing is a failure naming vm/build, not a skip.
# shellcheck disable=SC2015 # ktap_ok only prints
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
LOG=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; ip link del dmvbad 2>/dev/null; dmveth_unpair; rm -rf "$LOG"' EXIT

# have_ynl: the YNL cli and the netdev and ethtool specs are there
have_ynl() { [ -f "$YNL" ] && [ -f "$SPECS/netdev.yaml" ] && [ -f "$SPECS/ethtool.yaml" ]; }
command -v ethtool >/dev/null || ktap_bail "ethtool present in the VM (fix: vm/build)"
have_ynl || ktap_fail "the YNL cli and the netdev/ethtool specs present (${DEVMEMTCP_TOOLS:-\$DEVMEMTCP_TOOLS unset}; the rig installs them; fix: vm/build)"


# ring_cur DEV LABEL: a "Current hardware settings" value of ethtool -g
ring_cur() {
	eth -g "$1" | awk -v l="$2:" '/^Current hardware settings/ {c = 1}
		c && index($0, l) == 1 {sub(/^[^:]*:[ \t]*/, ""); print; exit}'
}

# hds_thresh DEV [max]: the current (or maximum) HDS threshold
hds_thresh() {
	if [ $ETHTOOL_HDS = 1 ]; then
		eth -g "$1" | awk -v m="${2:-}" '/^Pre-set maximums/ {s = "max"}
			/^Current hardware settings/ {s = "cur"}
			/^HDS thresh:/ && ((m == "max") == (s == "max")) {print $3; exit}'
	else
		ynl b ethtool --do rings-get --json "{\"header\": {\"dev-name\": \"$1\"}}" --output-json |
			python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["hds-thresh-max" if sys.argv[1] else "hds-thresh"])' "${2:-}"
	fi
}

# combined DEV: the current combined channel count
combined() {
	eth -l "$1" | awk '/^Current hardware settings/ {c = 1} c && /^Combined:/ {print $2; exit}'
}

# indir DEV: the distinct queues of the RSS indirection table, then the
# entry count, e.g. "0 1 /128"
indir() {
	eth -x "$1" | awk '/^ *[0-9]+: / {for (i = 2; i <= NF; i++) {n++; q[$i] = 1}}
		END {s = ""; for (i = 0; i < 64; i++) if (i in q) s = s i " "; print s "/" n}'
}

# rss_key DEV: the line after "RSS hash key:"
rss_key() { eth -x "$1" | awk 'k {print; exit} /^RSS hash key:/ {k = 1}'; }

# rule DEV ID: the ethtool -n block of one rule
rule() { eth -n "$1" | awk -v id="$2" '/^Filter:/ {p = ($2 == id)} p'; }
nrules() { eth -n "$1" | sed -n 's/^Total \([0-9]*\) rules.*/\1/p'; }

# snap FILE: dmb's ethtool -S counters as "name value" lines
snap() { eth -S $DMV_B | awk 'NF == 2 && $2 ~ /^[0-9]+$/ {sub(":", "", $1); print $1, $2}' >"$1"; }
# delta FILE0 FILE1 REGEX: the growth of the sum of the counters matching REGEX
delta() {
	awk -v re="^($3)$" 'FNR == NR {if ($1 ~ re) a += $2; next}
		$1 ~ re {b += $2} END {print b - a}' "$1" "$2"
}

# xfer PORT BYTES: a TCP stream of BYTES from netns a to dmb:PORT; returns
# once the receiver read it all and saw EOF.
xfer() {
	local port=$1 bytes=$2 spid i
	ip netns exec b socat -u TCP-LISTEN:"$port",reuseaddr OPEN:/dev/null >"$LOG/socat-srv" 2>&1 &
	spid=$!
	if ! wait_listen b "$port" 30 "$spid"; then
		echo "# socat did not listen on $port: $(tail -n 3 "$LOG/socat-srv")"
		kill $spid 2>/dev/null
		return 1
	fi
	if ! head -c "$bytes" /dev/zero |
		ip netns exec a timeout 120 socat -u - TCP:$DMV_B4:"$port" >"$LOG/socat-cli" 2>&1; then
		echo "# socat client failed: $(tail -n 3 "$LOG/socat-cli")"
		kill $spid 2>/dev/null
		return 1
	fi
	for i in $(seq 600); do
		kill -0 $spid 2>/dev/null || break
		nap 0.1
	done
	if kill -0 $spid 2>/dev/null; then
		echo "# the receiver on $port did not see EOF within 60 s"
		kill $spid 2>/dev/null
		return 1
	fi
	bwait $spid 10
}

# ---- link creation ----
if out=$(ip link add dmvbad numrxqueues 2 numtxqueues 3 type dmveth 2>&1); then
	ip link del dmvbad 2>/dev/null
	ktap_fail "ip link add numrxqueues 2 numtxqueues 3 type dmveth is refused"
elif ! ip link show dmvbad >/dev/null 2>&1; then
	ktap_ok "ip link add numrxqueues 2 numtxqueues 3 type dmveth is refused (${out//$'\n'/ })"
else
	ktap_fail "ip link add numrxqueues 2 numtxqueues 3 type dmveth is refused: a link was left"
fi
if out=$(ip link add dmvbad numrxqueues 129 numtxqueues 129 type dmveth 2>&1); then
	ip link del dmvbad 2>/dev/null
	ktap_fail "ip link add numrxqueues 129 numtxqueues 129 type dmveth is refused"
elif ! ip link show dmvbad >/dev/null 2>&1; then
	ktap_ok "ip link add numrxqueues 129 numtxqueues 129 type dmveth is refused (${out//$'\n'/ })"
else
	ktap_fail "ip link add numrxqueues 129 numtxqueues 129 type dmveth is refused: a link was left"
fi

dmveth_pair 4 || { ktap_fail "create a dmveth pair with 4 queues in netns a and b"; exit 1; }
ktap_ok "create a dmveth pair with 4 queues in netns a and b"

if command -v ping >/dev/null; then
	ktap_check "ping -4 from a to b" ip netns exec a ping -c1 -W5 $DMV_B4
	ktap_check "ping -6 from a to b" ip netns exec a ping -6 -c1 -W5 $DMV_B6
else
	tcp_probe() { # tcp_probe ADDR PORT: bash /dev/tcp connect from a to a socat in b
		ip netns exec b timeout 30 socat -u TCP-LISTEN:"$2",reuseaddr OPEN:/dev/null &
		wait_listen b "$2" 30 &&
			ip netns exec a timeout 10 bash -c "exec 3<>/dev/tcp/$1/$2"
		local rc=$?
		kill %% 2>/dev/null
		return $rc
	}
	ktap_check "TCP connect from a to b, IPv4 (no ping)" tcp_probe $DMV_B4 5001
	ktap_check "TCP connect from a to b, IPv6 (no ping)" tcp_probe $DMV_B6 5002
fi

drv=$(eth -i $DMV_B | sed -n 's/^driver: //p')
[ "$drv" = dmveth ] && ktap_ok "ethtool -i says driver dmveth" ||
	ktap_fail "ethtool -i says driver dmveth (got '$drv')"

# ---- channels ----
c=$(combined $DMV_B)
[ "$c" = 4 ] && ktap_ok "ethtool -l: Combined 4" || ktap_fail "ethtool -l: Combined 4 (got '$c')"
if out=$(eth -L $DMV_B combined 2 2>&1); then
	c=$(combined $DMV_B) t=$(indir $DMV_B)
	if [ "$c" = 2 ] && [ "$t" = "0 1 /128" ]; then
		ktap_ok "ethtool -L combined 2: ethtool -l says 2, the RSS table uses queues 0-1"
	else
		ktap_fail "ethtool -L combined 2: ethtool -l says 2 (got '$c'), the RSS table uses queues 0-1 (got '$t')"
	fi
else
	echo "# $out"
	ktap_fail "ethtool -L combined 2"
fi
if out=$(eth -L $DMV_B combined 4 2>&1); then
	c=$(combined $DMV_B) t=$(indir $DMV_B)
	if [ "$c" = 4 ] && [ "$t" = "0 1 2 3 /128" ]; then
		ktap_ok "ethtool -L combined 4: back to 4, the RSS table uses queues 0-3"
	else
		ktap_fail "ethtool -L combined 4: back to 4 (got '$c'), the RSS table uses queues 0-3 (got '$t')"
	fi
else
	echo "# $out"
	ktap_fail "ethtool -L combined 4"
fi
if out=$(eth -L $DMV_B combined 5 2>&1); then
	ktap_fail "ethtool -L combined 5 (above the maximum) is refused"
else
	ktap_ok "ethtool -L combined 5 (above the maximum) is refused (${out//$'\n'/ })"
fi

# ---- rings, header split ----
if [ $ETHTOOL_HDS = 0 ] && ! have_ynl; then
	ktap_fail "rings: ethtool $(ethtool --version | awk '{print $3}') cannot set tcp-data-split and the YNL cli is missing (fix: vm/build)"
	HDS_OK=0
else
	HDS_OK=1
	if out=$(rings_set $DMV_B tcp-data-split on hds-thresh 0 2>&1); then
		s=$(ring_cur $DMV_B "TCP data split") h=$(hds_thresh $DMV_B)
		if [ "$s" = on ] && [ "$h" = 0 ]; then
			ktap_ok "rings: tcp-data-split on hds-thresh 0: ethtool -g says TCP data split: on, HDS thresh 0"
		else
			ktap_fail "rings: tcp-data-split on hds-thresh 0: ethtool -g says TCP data split: on (got '$s'), HDS thresh 0 (got '$h')"
		fi
	else
		echo "# $out"
		ktap_fail "rings: tcp-data-split on hds-thresh 0"
	fi
	if out=$(rings_set $DMV_B rx 512 2>&1); then
		r=$(ring_cur $DMV_B RX)
		[ "$r" = 512 ] && ktap_ok "rings: rx 512: ethtool -g says RX 512" ||
			ktap_fail "rings: rx 512: ethtool -g says RX 512 (got '$r')"
	else
		echo "# $out"
		ktap_fail "rings: rx 512"
	fi
	m=$(hds_thresh $DMV_B max)
	if [ "$m" = 1024 ] && rings_set $DMV_B hds-thresh 1024 >/dev/null 2>&1 &&
		[ "$(hds_thresh $DMV_B)" = 1024 ] && rings_set $DMV_B hds-thresh 0 >/dev/null 2>&1; then
		ktap_ok "rings: HDS thresh max 1024, hds-thresh 1024 accepted"
	else
		ktap_fail "rings: HDS thresh max 1024 (got '$m'), hds-thresh 1024 accepted"
	fi
	if out=$(rings_set $DMV_B hds-thresh 1025 2>&1); then
		ktap_fail "rings: hds-thresh 1025 (above the maximum) is refused"
	else
		h=$(hds_thresh $DMV_B)
		[ "$h" = 0 ] && ktap_ok "rings: hds-thresh 1025 (above the maximum) is refused (${out//$'\n'/ })" ||
			ktap_fail "rings: hds-thresh 1025 is refused but HDS thresh is now '$h'"
	fi
fi

# ---- RSS ----
rss_case() { # rss_case NAME EXPECT ETHTOOL-X-ARGS...
	local name=$1 want=$2 out t
	shift 2
	if out=$(eth -X $DMV_B "$@" 2>&1); then
		t=$(indir $DMV_B)
		[ "$t" = "$want" ] && ktap_ok "$name" || ktap_fail "$name (table: '$t', want '$want')"
	else
		echo "# $out"
		ktap_fail "$name"
	fi
}
rss_case "ethtool -X equal 2: the table uses only queues 0 and 1" "0 1 /128" equal 2
rss_case "ethtool -X weight 1 0 0 1: the table uses only queues 0 and 3" "0 3 /128" weight 1 0 0 1
rss_case "ethtool -X default: the table uses queues 0-3 again" "0 1 2 3 /128" default
key=$(for i in $(seq 0 39); do printf '%02x:' $(((i * 37 + 11) & 255)); done)
key=${key%:}
old_key=$(rss_key $DMV_B)
if out=$(eth -X $DMV_B hkey "$key" 2>&1); then
	k=$(rss_key $DMV_B)
	[ "$k" = "$key" ] && ktap_ok "ethtool -X hkey: ethtool -x shows the new key" ||
		ktap_fail "ethtool -X hkey: ethtool -x shows the new key (got '$k')"
else
	echo "# $out"
	ktap_fail "ethtool -X hkey"
fi
eth -X $DMV_B hkey "$old_key" >/dev/null 2>&1

# ---- ntuple rules ----
if out=$(eth -N $DMV_B flow-type tcp4 dst-ip $DMV_B4 dst-port 5555 action 3 2>&1) &&
	id4=$(printf '%s\n' "$out" | sed -n 's/^Added rule with ID \([0-9]*\)$/\1/p') && [ -n "$id4" ]; then
	ktap_ok "ethtool -N tcp4 dst-ip dst-port action 3: Added rule with ID $id4"
else
	echo "# $out"
	ktap_fail "ethtool -N tcp4 dst-ip dst-port action 3: Added rule with ID N"
	id4=
fi
r=$(rule $DMV_B "${id4:-x}")
if [ -n "$id4" ] && grep -q 'Rule Type: TCP over IPv4' <<<"$r" &&
	grep -q "Dest IP addr: $DMV_B4 " <<<"$r" && grep -q 'Dest port: 5555 ' <<<"$r" &&
	grep -q 'Action: Direct to queue 3$' <<<"$r"; then
	ktap_ok "ethtool -n lists the tcp4 rule (dst $DMV_B4:5555, queue 3)"
else
	printf '%s\n' "$r" | sed 's/^/# /'
	ktap_fail "ethtool -n lists the tcp4 rule (dst $DMV_B4:5555, queue 3)"
fi
if out=$(eth -N $DMV_B flow-type tcp6 src-ip $DMV_A6 dst-ip $DMV_B6 src-port 4444 dst-port 5556 action 1 loc 7 2>&1); then
	r=$(rule $DMV_B 7)
	if grep -q 'Rule Type: TCP over IPv6' <<<"$r" && grep -q "Src IP addr: $DMV_A6 " <<<"$r" &&
		grep -q "Dest IP addr: $DMV_B6 " <<<"$r" && grep -q 'Src port: 4444 ' <<<"$r" &&
		grep -q 'Dest port: 5556 ' <<<"$r" && grep -q 'Action: Direct to queue 1$' <<<"$r"; then
		ktap_ok "ethtool -N tcp6 src-ip dst-ip src-port dst-port action 1 loc 7: listed as filter 7"
	else
		printf '%s\n' "$r" | sed 's/^/# /'
		ktap_fail "ethtool -N tcp6 ... loc 7: listed as filter 7"
	fi
else
	echo "# $out"
	ktap_fail "ethtool -N tcp6 src-ip dst-ip src-port dst-port action 1 loc 7"
fi
# ethtool 6.1 exits 0 even when the kernel refuses the rule ("rmgr: Cannot
# insert RX class rule: ..."): judge by its output and the rule count
out=$(eth -N $DMV_B flow-type tcp4 dst-port 5557 action 4 2>&1)
rc=$?
n=$(nrules $DMV_B)
if { [ $rc != 0 ] || grep -q 'Cannot insert' <<<"$out"; } && ! grep -q 'Added rule' <<<"$out" && [ "$n" = 2 ]; then
	ktap_ok "ethtool -N action 4 (no such queue) is refused, 2 rules remain (${out//$'\n'/ })"
else
	echo "# exit $rc: ${out//$'\n'/ }"
	ktap_fail "ethtool -N action 4 (no such queue) is refused, 2 rules remain (got $n)"
fi
if [ -n "$id4" ] && eth -N $DMV_B delete "$id4" && [ "$(nrules $DMV_B)" = 1 ] &&
	eth -N $DMV_B delete 7 && [ "$(nrules $DMV_B)" = 0 ]; then
	ktap_ok "ethtool -N delete both rules: ethtool -n shows Total 0 rules"
else
	eth -n $DMV_B | sed 's/^/# /'
	ktap_fail "ethtool -N delete both rules: ethtool -n shows Total 0 rules"
fi
if eth -N $DMV_B delete 7 >/dev/null 2>&1; then
	ktap_fail "ethtool -N delete of a missing rule is refused"
else
	ktap_ok "ethtool -N delete of a missing rule is refused"
fi

# ---- steering: a TCP flow lands on the queue a rule or the table names ----
BYTES=2000000
# steer_case NAME PORT QUEUE: transfer to PORT, QUEUE must get >= BYTES,
# every other queue less than a tenth of that
steer_case() {
	local name=$1 port=$2 q=$3 i d others=
	snap "$LOG/s0"
	if ! xfer "$port" $BYTES; then
		ktap_fail "$name: transfer"
		return
	fi
	snap "$LOG/s1"
	d=$(delta "$LOG/s0" "$LOG/s1" "rx${q}_bytes")
	for i in 0 1 2 3; do
		[ $i = "$q" ] && continue
		others+=" rx$i +$(delta "$LOG/s0" "$LOG/s1" "rx${i}_bytes")"
	done
	if [ "$d" -ge $BYTES ] && ! awk -v l="$others" -v m=$((BYTES / 10)) 'BEGIN {
		n = split(l, f, " "); for (i = 2; i <= n; i += 2) if (f[i] + 0 >= m) exit 0; exit 1}'; then
		ktap_ok "$name: rx$q +$d bytes;$others"
	else
		ktap_fail "$name: rx$q +$d bytes (want >= $BYTES);$others (want each < $((BYTES / 10)))"
	fi
}
# the table first sends everything to queue 0, so a rule that works is
# the only way to queue 3
if ! eth -X $DMV_B equal 1 >/dev/null 2>&1; then
	ktap_fail "ethtool -X equal 1"
elif out=$(eth -N $DMV_B flow-type tcp4 dst-port 5601 action 3 2>&1) &&
	id=$(printf '%s\n' "$out" | sed -n 's/^Added rule with ID \([0-9]*\)$/\1/p') && [ -n "$id" ]; then
	steer_case "ethtool -X equal 1 and a rule tcp4 dst-port 5601 -> queue 3: a 2 MB stream lands on rx3" 5601 3
	if eth -N $DMV_B delete "$id" >/dev/null 2>&1; then
		steer_case "rule deleted, ethtool -X equal 1: a 2 MB stream lands on rx0" 5602 0
	else
		ktap_fail "ethtool -N delete $id"
	fi
else
	echo "# $out"
	ktap_fail "ethtool -N flow-type tcp4 dst-port 5601 action 3"
fi
if eth -X $DMV_B weight 0 0 1 0 >/dev/null 2>&1; then
	steer_case "ethtool -X weight 0 0 1 0: a 2 MB stream lands on rx2" 5603 2
else
	ktap_fail "ethtool -X weight 0 0 1 0"
fi
eth -X $DMV_B default >/dev/null 2>&1

# ---- header split accounting ----
if [ $HDS_OK = 1 ]; then
	# hds_case NAME ON|OFF PORT
	hds_case() {
		local name=$1 mode=$2 port=$3 s p out
		if ! out=$(rings_set $DMV_B tcp-data-split "$mode" hds-thresh 0 2>&1); then
			echo "# $out"
			ktap_fail "$name: tcp-data-split $mode"
			return
		fi
		snap "$LOG/s0"
		if ! xfer "$port" $BYTES; then
			ktap_fail "$name: transfer"
			return
		fi
		snap "$LOG/s1"
		s=$(delta "$LOG/s0" "$LOG/s1" 'rx[0-9]+_split_packets')
		p=$(delta "$LOG/s0" "$LOG/s1" 'rx[0-9]+_packets')
		if [ "$mode" = on ] && [ "$s" -gt 0 ] && [ $((2 * s)) -ge "$p" ]; then
			ktap_ok "$name: split_packets +$s of +$p packets"
		elif [ "$mode" = off ] && [ "$s" = 0 ] && [ "$p" -gt 0 ]; then
			ktap_ok "$name: split_packets +0 of +$p packets"
		else
			ktap_fail "$name: split_packets +$s of +$p packets"
		fi
	}
	hds_case "tcp-data-split on: a 2 MB stream is header-split" on 5604
	hds_case "tcp-data-split off: no frame is header-split" off 5605
else
	ktap_fail "header split accounting: cannot set tcp-data-split (ethtool too old, no YNL cli; fix: vm/build)"
fi

# ---- per-queue stats through netdev netlink ----
if have_ynl; then
	ifindex=$(ip -n b -o link show $DMV_B | cut -d: -f1)
	snap "$LOG/s0"
	ynl b netdev --dump qstats-get --json '{"scope": "queue"}' --output-json >"$LOG/qstats" 2>&1
	rc=$?
	snap "$LOG/s1"
	if [ $rc = 0 ] && out=$(python3 - "$LOG/qstats" "$ifindex" "$LOG/s0" "$LOG/s1" <<'EOF'
import json, sys
qs = [q for q in json.load(open(sys.argv[1])) if q["ifindex"] == int(sys.argv[2])]
def stats(f):
    return dict((l.split()[0], int(l.split()[1])) for l in open(f))
s0, s1 = stats(sys.argv[3]), stats(sys.argv[4])
rx = sorted((q["queue-id"], q.get("rx-packets", 0)) for q in qs if q["queue-type"] == "rx")
tx = [q for q in qs if q["queue-type"] == "tx"]
bad = [f"rx{i} {n} not in [{s0.get(f'rx{i}_packets')}, {s1.get(f'rx{i}_packets')}]"
       for i, n in rx if not s0.get(f"rx{i}_packets", -1) <= n <= s1.get(f"rx{i}_packets", -1)]
print(f"rx queues {[i for i, _ in rx]}, rx-packets {[n for _, n in rx]}, {len(tx)} tx queues", end="")
if len(rx) != 4 or len(tx) != 4 or sum(n for _, n in rx) == 0 or bad:
    print("; " + "; ".join(bad))
    sys.exit(1)
EOF
	); then
		ktap_ok "netdev qstats-get (scope queue) for dmb: $out, each as ethtool -S says"
	else
		sed 's/^/# /' "$LOG/qstats" | tail -n 20
		ktap_fail "netdev qstats-get (scope queue) for dmb: ${out:-no answer}"
	fi
else
	ktap_fail "netdev qstats-get: YNL cli not found at $YNL (fix: vm/build)"
fi
ktap_done
