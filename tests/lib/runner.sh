# shellcheck shell=bash
# The verdict on one test file, shared by tests/run (host files) and
# tests/vm/suite (VM files, inside the guest), and the caps both use.
#
# A .t passes only when it exits 0, printed at least one result line
# ("ok N name", "not ok N name", "ok N name # SKIP reason") and no "not ok".
# Anything else is a failure line of its own, "not ok - LABEL: why", named
# with its file: a non-zero exit without a "not ok", a crash (signal), its
# cap running out (the file and everything it started are killed), output
# cut in the middle of a line, no result at all, or no run bit.

# t_cap FILE FLAVOR: the file's cap in seconds, from its "# cap: N" line
# ("# cap-debug: N" on the debug kernel, "# cap-asan: N" in the ASan pass);
# 300 when it has none.
t_cap() {
	local f=$1 flavor=${2:-normal} c=
	c=$(sed -n "s/^# cap-$flavor: *\([0-9][0-9]*\).*/\1/p" "$f" | head -n 1)
	[ -n "$c" ] || c=$(sed -n 's/^# cap: *\([0-9][0-9]*\).*/\1/p' "$f" | head -n 1)
	echo "${c:-300}"
}

# vm_files DIR FLAVOR FILTER: the tests/vm files a flavor runs (the debug
# kernel runs only files with a "# vm-suite: debug" line; a file with
# "# vm-suite: debug-only" runs on the debug kernel alone), one per line.
vm_files() {
	local dir=$1 flavor=$2 filter=$3 t
	for t in "$dir"/*.t; do
		[ -e "$t" ] || continue
		case ${t##*/} in *"$filter"*) ;; *) continue ;; esac
		if [ "$flavor" = debug ] && ! grep -q '^# vm-suite: debug' "$t"; then
			continue
		fi
		if [ "$flavor" != debug ] && grep -q '^# vm-suite: debug-only' "$t"; then
			continue
		fi
		echo "$t"
	done
}

# t_prefix LABEL: copy stdin to stdout, LABEL put after the number of each
# result line; a last line without its newline (the writer was killed
# mid-line) is shown as a comment, never counted as a result.
t_prefix() {
	local label=$1 line re='^((not )?ok ([0-9]+|-) )(.*)$'
	while IFS= read -r line; do
		if [[ $line =~ $re ]]; then
			printf '%s%s: %s\n' "${BASH_REMATCH[1]}" "$label" "${BASH_REMATCH[4]}"
		else
			printf '%s\n' "$line"
		fi
	done
	[ -z "$line" ] || printf '# (cut mid-line) %s\n' "$line"
}

# t_watch PGID CAP OUT: one second before the cap runs out, append to OUT
# (the file's own output, so it is shown in order) how long the file has
# been silent and what of it is still running, with each process's age: a
# file killed at its cap then says where it was stuck.  Ends quietly when
# sent TERM; holds none of the runner's output open.
t_watch() {
	local pgid=$1 cap=$2 out=$3 s
	exec >/dev/null 2>&1 </dev/null
	sleep $((cap > 2 ? cap - 1 : 1)) &
	s=$!
	trap 'kill $s; exit 0' TERM
	wait $s
	kill -0 "$pgid" || exit 0
	s=$(stat -c %Y "$out")
	{
		echo "# at its cap: no output for $(($(date +%s) - s))s; still running (pid, seconds, command):"
		ps -e -o pgid=,pid=,etimes=,args= |
			awk -v g="$pgid" '$1 == g { $1 = ""; print "#  " $0 }'
	} >>"$out"
}

# run_t FILE LABEL CAP: run FILE with stdin from /dev/null, its output
# streamed with LABEL (see t_prefix), for at most CAP seconds; then the
# verdict lines, "#@done LABEL" and a duration line.  Returns 0 when the file
# passed.
run_t() {
	local t=$1 label=$2 cap=$3 out rc=0 t0 pid tpid wpid nres nfail nskip why=()
	t0=$(date +%s)
	echo "# ---- $label (cap ${cap}s, $(date +%T))"
	if [ ! -f "$t" ]; then
		why+=("no such file")
	elif [ ! -x "$t" ]; then
		why+=("not executable (fix: chmod +x $t)")
	else
		out=$(mktemp)
		# The file runs in its own process group under timeout, which kills
		# the group (TERM, then KILL 10 s later) when the cap runs out.  Its
		# output goes to a file, not a pipe, so a leftover child holding
		# the output open cannot hang the runner.
		timeout -k 10 "$cap" "$t" >"$out" 2>&1 </dev/null &
		pid=$!
		tail -n +1 -s 0.2 -f --pid=$pid "$out" | t_prefix "$label" &
		tpid=$!
		t_watch "$pid" "$cap" "$out" &
		wpid=$!
		wait $pid	# bounded: timeout ends it by CAP + 10 s
		rc=$?
		kill $wpid 2>/dev/null
		wait $wpid	# bounded: its trap ends it at once
		wait $tpid	# bounded: tail --pid ends when $pid has
		nres=$(grep -c -E '^(not )?ok ([0-9]+|-) ' "$out")
		nfail=$(grep -c -E '^not ok ' "$out")
		nskip=$(grep -c -E '^ok .*# SKIP' "$out")
		if [ $rc = 124 ] || { [ $rc = 137 ] && [ $(($(date +%s) - t0)) -ge "$cap" ]; }; then
			why+=("timed out: killed after its cap of ${cap}s")
		elif [ $rc -gt 128 ]; then
			why+=("killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))")
		elif [ $rc = 1 ] && [ "$nfail" = 0 ]; then
			why+=("exited 1 without a not-ok line")
		elif [ $rc != 0 ] && [ $rc != 1 ]; then
			why+=("exited $rc")
		fi
		if [ -s "$out" ] && [ -n "$(tail -c 1 "$out")" ]; then
			why+=("output cut mid-line")
		fi
		[ "$nres" = 0 ] && why+=("printed no result")
		rm -f "$out"
	fi
	local w
	for w in "${why[@]}"; do
		echo "not ok - $label: $w"
	done
	echo "#@done $label"
	echo "# ==== $label: $([ ${#why[@]} = 0 ] && [ "${nfail:-1}" = 0 ] && echo PASS || echo FAIL)" \
		"(exit $rc, ${nres:-0} results, ${nfail:-0} not ok, ${nskip:-0} skipped) in $(($(date +%s) - t0))s"
	[ ${#why[@]} = 0 ] && [ "${nfail:-1}" = 0 ]
}
