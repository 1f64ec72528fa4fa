# shellcheck shell=bash
# Shared by vm/build and vm/run: cache layout, logging, checks, the private
# apt configuration.  Source it; it defines functions and variables only.

# The one place the kernel version is pinned.  When the pinned package is
# gone from the mirror, vm/build takes the newest linux-source-X.Y >= MIN.
KERNEL_PIN=7.3
KERNEL_MIN=6.16

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}
APT_DIR=$CACHE/apt
SRC_DIR=$CACHE/src
VNG_DIR=$CACHE/virtme-ng
LOG_DIR=$CACHE/logs

say() { printf 'vm: %s\n' "$*" >&2; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and boots a VM); fix: run it with sudo"
}

need_disk() { # need_disk DIR GIB
	local dir=$1 want=$2 have
	mkdir -p "$dir"
	have=$(df -Pk "$dir" | awk 'NR==2 {print int($4/1048576)}')
	[ "$have" -ge "$want" ] ||
		die "only ${have} GiB free under $dir, the kernel build needs ${want} GiB; fix: free space or set DEVMEMTCP_CACHE to a larger disk"
}

# run_logged NAME CMD...: run CMD with its output in $LOG_DIR/NAME.log; on
# failure print the last 40 lines and the log's path, and exit.
run_logged() {
	local name=$1 log
	shift
	mkdir -p "$LOG_DIR"
	log=$LOG_DIR/$name.log
	if ! "$@" >"$log" 2>&1; then
		printf 'vm: step "%s" failed; last 40 lines of %s:\n' "$name" "$log" >&2
		tail -n 40 "$log" >&2
		die "$name failed (whole log: $log)"
	fi
}

# Debian mirror: DEVMEMTCP_MIRROR, else the first plain (non-security) Debian
# URI of the system's own apt sources.  Printed, never stored in the repo.
apt_mirror() {
	if [ -n "${DEVMEMTCP_MIRROR:-}" ]; then
		echo "$DEVMEMTCP_MIRROR"
		return
	fi
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			if [ -f "$f" ]; then awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f"; fi
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			if [ -f "$f" ]; then awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; break}}' "$f"; fi
		done
	} | grep -v -e security -e '^cdrom:' | grep '/debian/*$' | head -n 1 || true
}

# apt_private ARGS...: apt-get with the private configuration (suites sid
# and trixie-backports of the system's mirror) kept under $APT_DIR.
apt_private() { apt_cfg apt-get -q "$@"; }
apt_cache_private() { apt_cfg apt-cache "$@"; }
apt_cfg() {
	local tool=$1
	shift
	"$tool" -o Dir::Etc::SourceList="$APT_DIR/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$APT_DIR/lists" \
		-o Dir::State::Status="$APT_DIR/status" \
		-o Dir::Cache::Archives="$APT_DIR/archives" \
		-o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="" \
		-o APT::Get::AllowUnauthenticated=false "$@"
}

apt_private_update() {
	local mirror
	mirror=$(apt_mirror)
	[ -n "$mirror" ] ||
		die "no Debian mirror found in /etc/apt/sources*; fix: set DEVMEMTCP_MIRROR=<Debian mirror URI> or DEVMEMTCP_KERNEL_SRC=/path/to/linux-tree-or-tarball"
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial"
	: >"$APT_DIR/status.new"
	[ -f "$APT_DIR/status" ] || mv "$APT_DIR/status.new" "$APT_DIR/status"
	printf 'deb %s sid main\ndeb %s trixie-backports main\n' "$mirror" "$mirror" >"$APT_DIR/sources.list"
	# Refresh at most once a day; a refresh is what a new pin needs.
	if [ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
		say "refreshing the private package lists (sid, trixie-backports)"
		if ! apt_private update >"$APT_DIR/update.log" 2>&1 ||
			! ls "$APT_DIR/lists/"*Packages* >/dev/null 2>&1; then
			tail -n 5 "$APT_DIR/update.log" >&2
			die "the Debian mirror is not reachable; fix: set DEVMEMTCP_MIRROR=<Debian mirror URI> or DEVMEMTCP_KERNEL_SRC=/path/to/linux-tree-or-tarball"
		fi
	fi
}

# apt_fetch PKG: download PKG's .deb into $APT_DIR/archives, print its path.
apt_fetch() {
	local pkg=$1 ver file
	ver=$(apt_cache_private policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
	file=$(ls "$APT_DIR/archives/${pkg}_"*"${ver#*:}"*.deb 2>/dev/null | head -n 1)
	if [ -z "$file" ]; then
		(cd "$APT_DIR/archives" && apt_private download "$pkg=$ver") >>"$APT_DIR/download.log" 2>&1 || return 1
		file=$(ls "$APT_DIR/archives/${pkg}_"*.deb | sort -V | tail -n 1)
	fi
	echo "$file"
}

# The host packages the rig needs (installed into the system from its own
# apt sources, bookworm here).
HOST_PKGS="qemu-system-x86 qemu-utils flex bison libelf-dev libssl-dev bc ccache
	make gcc rsync cpio xz-utils zstd kmod ethtool iproute2 socat busybox-static
	python3 python3-argcomplete python3-requests python3-yaml python3-jsonschema
	libmnl-dev libcap-dev pkg-config perl iputils-ping groff-base binutils
	iperf3 gnuplot-nox strace"

host_deps() {
	local missing=() p
	for p in $HOST_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing host packages: ${missing[*]}"
	run_logged apt-update apt-get update
	DEBIAN_FRONTEND=noninteractive run_logged apt-install apt-get install -y --no-install-recommends "${missing[@]}"
}

# virtme-ng from sid, extracted into the cache and run with the system python.
vng_fetch() {
	local deb
	[ -x "$VNG_DIR/usr/bin/vng" ] && return 0
	apt_private_update
	deb=$(apt_fetch virtme-ng) || die "could not download virtme-ng from the mirror's sid suite; fix: set DEVMEMTCP_MIRROR to a Debian mirror that carries sid"
	say "extracting $(basename "$deb")"
	rm -rf "$VNG_DIR.tmp"
	dpkg -x "$deb" "$VNG_DIR.tmp"
	mv "$VNG_DIR.tmp" "$VNG_DIR"
}

vng() {
	PYTHONPATH=$VNG_DIR/usr/lib/python3/dist-packages PATH=$VNG_DIR/usr/bin:$PATH \
		/usr/bin/python3 "$VNG_DIR/usr/bin/vng" "$@"
}

flavor_dir() { # flavor_dir normal|debug
	echo "$CACHE/build/$1"
}
