#!/usr/bin/env bash
# The test command: install dependencies, build everything (a normal build,
# an ASan+UBSan build and a clang libFuzzer build), build the guest artifacts
# (kernel from cache), run every test suite. Used as is by .ci/run.
#
#   scripts/check.sh            all suites (unit, vm, package, fuzz)
#   ZVM_SUITES="unit" scripts/check.sh     only some
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${ZVM_BUILD_DIR:-$src/build}
asan=${ZVM_ASAN_BUILD_DIR:-$src/build-asan}
fuzz=${ZVM_FUZZ_BUILD_DIR:-$src/build-fuzz}
cd "$src"

"$src/scripts/install-deps"

[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
meson compile -C "$build"
[ -f "$asan/build.ninja" ] || meson setup "$asan" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C "$asan"
# The fuzz harnesses (tests/fuzz/README.md) need clang; this build holds
# only the libraries and the harnesses.
[ -f "$fuzz/build.ninja" ] || CC=clang meson setup "$fuzz" -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dguest=disabled >/dev/null
meson compile -C "$fuzz"

"$src/scripts/build-guest" "$build"

# Every VM test must really boot here: a skip is a failure.
export ZVM_MUST_BOOT=${ZVM_MUST_BOOT:-1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
suites=${ZVM_SUITES:-unit vm package fuzz}
args=()
for s in $suites; do args+=(--suite "$s"); done
meson test -C "$asan" --suite unit --print-errorlogs || rc=1
# Each meson test run rewrites testlog.json: keep this one for the summary.
cp "$asan/meson-logs/testlog.json" "$asan/meson-logs/testlog-unit.json" 2>/dev/null || true
meson test -C "$build" "${args[@]}" --print-errorlogs --num-processes "$(nproc)" || rc=1
# Every fuzz target: its corpus replayed (kept crashers included), then a
# few seconds of fuzzing each (tens of seconds in all); any crash fails.
fuzz_log=
if [[ " $suites " == *" fuzz "* ]]; then
        fuzz_log=$fuzz/meson-logs/testlog.json
        meson test -C "$fuzz" --suite fuzz --print-errorlogs --num-processes 1 || rc=1
fi
# zvmd itself under ASan+UBSan (+LeakSanitizer at exit) on the scenarios that
# push the most paths: a report in its log fails the scenario.
asan_vm_log=
if [[ " $suites " == *" vm "* ]]; then
        asan_vm_log=$asan/meson-logs/testlog.json
        ZVM_GUEST_DIR=$build/guest ASAN_OPTIONS=detect_leaks=1 ZVM_LOOP_MAX_MS=400 \
                meson test -C "$asan" --print-errorlogs --num-processes "$(nproc)" \
                zvmd-lifecycle zvmd-bad_input zvmd-crash zvmd-readopt zvmd-agent zvmd-balloon \
                zvmd-templates zvmd-ssh zvmd-readopt_clean zvmd-ready_guard zvmd-console_flood zvmd-pool || rc=1
fi

# One plain summary line over both runs, for humans and for CI.
python3 - "$build/meson-logs/testlog.json" "$asan/meson-logs/testlog-unit.json" $asan_vm_log $fuzz_log <<'PY'
import json, sys
count = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    try:
        for line in open(path):
            r = json.loads(line).get("result", "FAIL")
            key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
            count[key] += 1
    except OSError:
        pass
print(f"{count['OK']} passed, {count['FAIL']} failed, {count['SKIP']} skipped")
PY
exit $rc
