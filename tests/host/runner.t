#!/usr/bin/env bash
# cap: 45
# The test runner's self-test: tests/run (and tests/vm/suite, through a fake
# vm/run that runs the suite on this machine) is fed fake .t files that fail
# in every way a real one can, and must count each as a failure named with
# its file: ok then exit 1, ok then a segfault, SIGKILL in the middle of a
# line, a hang past its cap, no output, no run bit, a filter that matches
# nothing; in the VM suite: a hang, a guest that dies part way (files not
# finished, kernel log never checked).  RUNNER=FILE tests another runner
# (e.g. an old tests/run: `RUNNER=<(git show REV:tests/run) tests/host/runner.t`).
. "$(dirname "$0")/../lib/ktap.sh"
RUNNER=${RUNNER:-$TOP/tests/run}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

mkdir -p "$T/tests/host" "$T/tests/vm" "$T/tests/lib" "$T/vm"
cp "$RUNNER" "$T/tests/run"
cp "$TOP/tests/lib/runner.sh" "$T/tests/lib/"
cp "$TOP/tests/vm/suite" "$T/tests/vm/suite"
chmod +x "$T/tests/run" "$T/tests/vm/suite"

# fake FILE BODY [MODE]: a test file
fake() {
	printf '#!/usr/bin/env bash\n%s\n' "$2" >"$1"
	chmod "${3:-755}" "$1"
}
H=$T/tests/host V=$T/tests/vm
fake "$H/a-good.t" 'echo "ok 1 fine"'
fake "$H/b-exit1.t" 'echo "ok 1 looks fine"; exit 1'
fake "$H/c-segv.t" 'echo "ok 1 looks fine"; kill -SEGV $$'
fake "$H/d-killmid.t" 'printf "ok 1 first\nok 2 cut her"; kill -KILL $$'
fake "$H/e-hang.t" '# cap: 2
echo "ok 1 before the hang"; sleep 60; echo "ok 2 never"'
fake "$H/f-silent.t" 'exit 0'
fake "$H/g-norunbit.t" 'echo "ok 1 never run"' 644
fake "$H/h-notok.t" 'echo "ok 1 one"; echo "not ok 2 two"; exit 1'
fake "$V/05-vgood.t" '# vm-suite: debug
echo "ok 1 guest fine"'
fake "$V/10-vhang.t" '# cap: 2
echo "ok 1 before"; sleep 60'
fake "$V/20-vexit1.t" 'echo "ok 1 fine"; exit 1'
fake "$V/99-vdebugonly.t" '# vm-suite: debug-only
echo "ok 1 debug alone"'
# the ASan pass: a file marked "# asan: yes" runs again against build/asan
# with a sanitizer log folder; a real heap overflow there must fail it
mkdir -p "$T/build/asan/bin"
printf '#!/bin/sh\n' >"$T/build/asan/bin/devmemtcp"
chmod +x "$T/build/asan/bin/devmemtcp"
printf '#include <stdlib.h>\nint main(int c, char **v) { char *p = malloc(4); p[c + 4] = 1; free(p); return 0; }\n' >"$T/overflow.c"
cc -O0 -g -fsanitize=address -o "$T/overflow" "$T/overflow.c" 2>"$T/cc.err" || sed 's/^/# cc: /' "$T/cc.err"
fake "$H/i-asan.t" "# asan: yes
echo \"ok 1 ran\"; [ -n \"\${DEVMEMTCP_ASAN:-}\" ] && $T/overflow; exit 0"
# vm/run stand-in: runs CMD here; FAKE_VM_DIE=SECONDS kills the "guest"
# part way, as a panic or a boot timeout would (no log check then).
cat >"$T/vm/run" <<'EOF'
#!/usr/bin/env bash
flavor=normal
while [ "$1" != -- ]; do [ "$1" = --debug ] && flavor=debug; shift; done
shift
echo "vm: booting fake guest ($flavor)" >&2
echo "$flavor" >>"$(dirname "$0")/boots"
DEVMEMTCP_FLAVOR=$flavor DEVMEMTCP_SUITE_NOCLEAN=1 setsid "$@" &
pid=$!
if [ -n "${FAKE_VM_DIE:-}" ]; then
	sleep "$FAKE_VM_DIE"
	kill -KILL -- "-$pid" 2>/dev/null
	echo "vm: error: the guest did not finish CMD" >&2
	exit 1
fi
while kill -0 $pid 2>/dev/null; do sleep 0.1; done	# the runner's timeout bounds this fake
wait $pid
rc=$?
echo "vm: guest kernel log clean (fake)" >&2
exit $rc
EOF
chmod +x "$T/vm/run"

# run_runner NAME ARGS...: run the runner on the fake tree into $T/NAME.out
run_runner() {
	local name=$1
	shift
	rm -f "$T/vm/boots"
	(cd "$T" && timeout 100 tests/run "$@") >"$T/$name.out" 2>&1
	echo $? >"$T/$name.rc"
}
# expect CASE OUT PATTERN: OUT has a line matching PATTERN (grep -E)
expect() {
	if grep -q -E -- "$3" "$T/$2.out"; then
		ktap_ok "$1"
	else
		echo "# wanted a line matching: $3"
		grep -E '^(not ok|ok|[0-9]+ passed)' "$T/$2.out" | tail -n 30 | sed 's/^/#   /'
		ktap_fail "$1"
	fi
}

run_runner host --host-only
expect "a good file passes" host '^ok 1 a-good: fine$'
expect "ok then exit 1 is a failure named with its file" host '^not ok - b-exit1: exited 1'
expect "ok then a segfault is a failure named with its file" host '^not ok - c-segv: killed by signal 11'
expect "SIGKILL mid-line is a failure named with its file" host '^not ok - d-killmid: killed by signal 9'
expect "output cut mid-line is named" host '^not ok - d-killmid: output cut mid-line'
if grep -q -E '^ok [0-9]+ .*cut her' "$T/host.out"; then
	ktap_fail "a line cut mid-way is not counted as a result"
else
	ktap_ok "a line cut mid-way is not counted as a result"
fi
expect "a hang past its cap is killed and counted" host '^not ok - e-hang: timed out: killed after its cap of 2s'
expect "a file at its cap says how long it was silent" host '^# at its cap: no output for [0-9]+s; still running'
expect "a file at its cap says what it was running" host '^#  +[0-9]+ +[0-9]+ sleep 60$'
expect "no output is a failure" host '^not ok - f-silent: printed no result'
expect "no run bit is a failure" host '^not ok - g-norunbit: not executable'
expect "a not-ok line is counted" host '^not ok 2 h-notok: two$'
expect "each file's duration is printed" host '^# ==== e-hang: FAIL .* in [0-9]+s$'
expect "a sanitizer report in the ASan pass fails the file" host '^not ok - asan i-asan: sanitizer report'
# a-good 1 + b 1 + c 1 + d 1 + e 1 + h 1 + i 1 + asan i 1 = 8 ok; failures:
# b, c, d (x2), e, f, g, h's own line, asan i = 9
expect "summary counts every failure" host '^8 passed, 9 failed, 0 skipped$'
[ "$(cat "$T/host.rc")" = 1 ] && ktap_ok "the runner exits 1 on failures" ||
	ktap_fail "the runner exits 1 on failures (got $(cat "$T/host.rc"))"
[ "$(tail -n 1 "$T/host.out" | grep -c -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$')" = 1 ] &&
	ktap_ok "the summary is the last line" || ktap_fail "the summary is the last line"

run_runner nomatch no-such-file-anywhere
expect "a filter matching nothing is a failure" nomatch "^not ok - filter 'no-such-file-anywhere' matches no test file"
[ ! -e "$T/vm/boots" ] && ktap_ok "a filter matching no VM file boots no kernel" ||
	ktap_fail "a filter matching no VM file boots no kernel (booted: $(tr '\n' ' ' <"$T/vm/boots"))"

run_runner vm --vm-only
expect "VM: a good file passes" vm '^ok 1 vm-normal: 05-vgood.t: guest fine$'
expect "VM: a hang past its cap is a failure named with its file" vm '^not ok - vm-normal: 10-vhang.t: timed out'
expect "VM: ok then exit 1 is a failure" vm '^not ok - vm-normal: 20-vexit1.t: exited 1'
expect "VM: the debug kernel runs only its files" vm '^ok 1 vm-debug: 05-vgood.t: guest fine$'
expect "VM: guest log verdict counted" vm '^ok - vm-debug: guest kernel log free'
expect "VM: a debug-only file runs on the debug kernel" vm '^ok 1 vm-debug: 99-vdebugonly.t: debug alone$'
if grep -q 'vm-normal: 99-vdebugonly' "$T/vm.out"; then
	ktap_fail "VM: a debug-only file does not run on the normal kernel"
else
	ktap_ok "VM: a debug-only file does not run on the normal kernel"
fi
expect "VM: summary" vm '^7 passed, 2 failed, 0 skipped$'

FAKE_VM_DIE=1 run_runner vmdie --vm-only --no-debug
expect "VM: a file a dead guest was running is a failure" vmdie '^not ok - vm-normal: 10-vhang.t: did not finish'
expect "VM: files a dead guest never started are failures" vmdie '^not ok - vm-normal: 20-vexit1.t: did not finish'
expect "VM: a dead guest's kernel log is not called clean" vmdie '^not ok - vm-normal: guest kernel log not checked'
if grep -q -E '^ok .*guest kernel log free' "$T/vmdie.out"; then
	ktap_fail "VM: no 'log free' pass after a dead guest"
else
	ktap_ok "VM: no 'log free' pass after a dead guest"
fi

# The run's budget: files hanging at once still leave a summary line in
# time.  Here every fake file gets at most 3 s in all: e-hang (cap 2) takes
# what it can, the files after it find the budget spent, each one a failure
# named with its file; the VM suite, with nothing left, does not boot.
DEVMEMTCP_TEST_BUDGET=3 run_runner budget
expect "budget: files after it is spent are failures named with their file" budget \
	"^not ok - (g-norunbit|h-notok|i-asan): not run: the run's budget of 3s is spent"
expect "budget: a VM file is a failure named with its file, no boot" budget \
	"^not ok - vm-normal: 05-vgood.t: not run: the run's budget of 3s is spent"
expect "budget: the summary line still comes" budget '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'
if [ -e "$T/vm/boots" ]; then
	ktap_fail "budget: no VM boot once it is spent"
else
	ktap_ok "budget: no VM boot once it is spent"
fi
# The real tree: the budget is under CI's 90 minutes, and every cap fits in it.
. "$TOP/tests/lib/runner.sh"
budget=$(sed -n 's/^BUDGET=${DEVMEMTCP_TEST_BUDGET:-\([0-9]*\)}.*/\1/p' "$RUNNER" | head -n 1)
if [ -n "$budget" ] && [ "$budget" -lt 5400 ]; then
	ktap_ok "tests/run's budget is less than CI's 90 minutes: ${budget}s"
else
	ktap_fail "tests/run's budget is less than CI's 90 minutes: '${budget}'s"
fi
total=0 parts=
for f in "$TOP"/tests/host/*.t; do total=$((total + $(t_cap "$f" host))); done
parts="host $total"
n=0
for f in "$TOP"/tests/host/*.t; do grep -q '^# asan: yes' "$f" && n=$((n + $(t_cap "$f" asan))); done
total=$((total + n)) parts+=", asan $n"
for fl in normal debug; do
	n=$(sed -n "s/.*BOOT_$fl=\([0-9]*\).*/\1/p" "$RUNNER" | head -n 1)
	while IFS= read -r f; do n=$((n + $(t_cap "$f" $fl))); done < <(vm_files "$TOP/tests/vm" $fl "")
	total=$((total + n)) parts+=", vm-$fl $n"
done
echo "# the caps add up to ${total}s ($parts); the budget bounds the run"
ktap_done
