#!/usr/bin/env bash
# cap: 30
# libdevmemtcp as a package: the shared library's soname and exported
# symbols (exactly the calls declared in include/devmemtcp.h, all in the
# version node), `make install` into a staging root, a program built with
# `pkg-config devmemtcp` against it and run, and a man page for every
# public call that groff renders without warnings.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$TOP/build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# the real file behind the soname link (libdevmemtcp.so.$(VERSION))
so=$(readlink -f "$B/lib/libdevmemtcp.so.0")
[ -f "$so" ] || ktap_bail "libdevmemtcp built (make all)"
VER=$(sed -n 's/^VERSION := \([0-9]*\.[0-9]*\)\..*/\1/p' "$TOP/Makefile")

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
ktap_check "soname is libdevmemtcp.so.0 (got '$soname')" test "$soname" = libdevmemtcp.so.0

# The calls the header declares: a name followed by '(' at the end of a
# declaration's first line.
grep -o '^[a-z].*\bdmt_[a-z_]*(' "$TOP/include/devmemtcp.h" | grep -o 'dmt_[a-z_]*($' |
	tr -d '(' | sort -u >"$T/header" || ktap_fail "the header declares dmt_ calls"
nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' >"$T/raw" || ktap_fail "nm -D $so"
sed 's/@.*//' "$T/raw" | sort -u >"$T/exported"
if diff -u "$T/header" "$T/exported" >"$T/diff"; then
	ktap_ok "exported symbols = the header's $(wc -l <"$T/header") calls"
else
	sed 's/^/# /' "$T/diff"
	ktap_fail "exported symbols = the header's calls"
fi
# Each export carries the version of the map node that lists it: 0.1's
# calls stay DEVMEMTCP_0.1, the ones added since are DEVMEMTCP_0.2.
awk '/^DEVMEMTCP_[0-9.]* *\{/ { v = $1 } /^\t\tdmt_[a-z_]*;/ { gsub(/[\t;]/, ""); print $0 "@@" v }' \
	"$TOP/lib/devmemtcp.map" | sort >"$T/want"
sort "$T/raw" >"$T/got"
bad=$(comm -3 "$T/want" "$T/got" | tr -d '\t' | tr '\n' ' ')
n01=$(grep -c '@@DEVMEMTCP_0\.1$' "$T/got")
n02=$(grep -c '@@DEVMEMTCP_0\.2$' "$T/got")
ktap_check "every export is versioned as its map node says: $n01 DEVMEMTCP_0.1, $n02 DEVMEMTCP_0.2${bad:+ (differs: $bad)}" \
	test -z "$bad" -a "$n01" -gt 0 -a "$n02" -gt 0
# 0.2 extends 0.1 (the node inherits it); 0.1's own calls stay in 0.1
# (no `| grep -q` under pipefail: an early exit would SIGPIPE readelf)
vdef=$(readelf -V "$so")
if [ "$(grep -A1 'Name: DEVMEMTCP_0.2' <<<"$vdef" | grep -c 'Parent 1: DEVMEMTCP_0.1')" = 1 ]; then
	ktap_ok "version node DEVMEMTCP_0.2 inherits DEVMEMTCP_0.1"
else
	readelf -V "$so" | grep -i devmemtcp | sed 's/^/# /'
	ktap_fail "version node DEVMEMTCP_0.2 inherits DEVMEMTCP_0.1"
fi
ktap_check "0.1 calls keep DEVMEMTCP_0.1 (dmt_nic_open, dmt_nic_close, dmt_rx_recv, dmt_tx_send)" \
	bash -c "grep -q -x 'dmt_nic_open@@DEVMEMTCP_0.1' '$T/raw' && grep -q -x 'dmt_nic_close@@DEVMEMTCP_0.1' '$T/raw' &&
		grep -q -x 'dmt_rx_recv@@DEVMEMTCP_0.1' '$T/raw' && grep -q -x 'dmt_tx_send@@DEVMEMTCP_0.1' '$T/raw'"

# PREFIX itself (not DESTDIR) is the staging root, so the installed .pc
# names real paths.
if make -s -C "$TOP" install PREFIX="$T/root/usr" >"$T/install.log" 2>&1; then
	ktap_ok "make install PREFIX=<staging root>"
else
	sed 's/^/# /' "$T/install.log" | tail -n 10
	ktap_fail "make install PREFIX=<staging root>"
fi

cat >"$T/hello.c" <<'EOF'
#include <devmemtcp.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_HOST, .size = 4096);
	struct dmt_err err;
	struct dmt_dmabuf *buf = dmt_dmabuf_new(&o, &err);
	char b[16];

	if (!buf)
		return 1;
	if (dmt_dmabuf_write(buf, 0, "devmem", 6) || dmt_dmabuf_read(buf, 0, b, 6))
		return 2;
	dmt_dmabuf_free(buf);
	printf("%s %.6s\n", dmt_version(), b);
	return 0;
}
EOF
export PKG_CONFIG_PATH=$T/root/usr/lib/pkgconfig
flags=$(pkg-config --cflags --libs devmemtcp 2>"$T/pc.err")
ktap_check "pkg-config devmemtcp: $flags" test -n "$flags"
if cc -std=gnu11 -Wall -Werror "$T/hello.c" -o "$T/hello" $flags >"$T/cc.log" 2>&1 &&
	out=$(LD_LIBRARY_PATH=$T/root/usr/lib "$T/hello") && [ "$out" = "$VER devmem" ]; then
	ktap_ok "a program built with pkg-config runs against the installed .so ($out)"
else
	sed 's/^/# /' "$T/pc.err" "$T/cc.log" | tail -n 10
	ktap_fail "a program built with pkg-config runs against the installed .so"
fi
needed=$(readelf -d "$T/hello" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(libdevmemtcp.*\)\]/\1/p')
ktap_check "the program needs the soname (${needed:-none})" test "$needed" = libdevmemtcp.so.0

missing=""
warned=""
for f in $(cat "$T/header"); do
	page=$TOP/man/man3/$f.3
	if [ ! -f "$page" ]; then
		missing+=" $f"
		continue
	fi
	# .so link pages render their target
	w=$(cd "$TOP/man" && groff -man -ww -Tutf8 -z "man3/$f.3" 2>&1 | head -n 3)
	[ -z "$w" ] || warned+=" $f: $w"
done
ktap_check "a man3 page for every public call${missing:+ (missing:$missing)}" test -z "$missing"
if command -v groff >/dev/null; then
	ktap_check "man3 pages render without groff warnings${warned:+ ($warned)}" test -z "$warned"
	w=$(groff -man -ww -Tutf8 -z "$TOP/man/man7/devmemtcp.7" "$TOP/man/man8/devmemtcp.8" 2>&1 | head -n 3)
	ktap_check "man7 and man8 pages render without warnings${w:+ ($w)}" test -z "$w"
else
	ktap_fail "man pages render without warnings: groff not installed (a host dependency; fix: make deps)"
fi
ktap_done
