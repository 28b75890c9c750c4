#!/usr/bin/env bash
# The fuzz targets (Fuzz/, libFuzzer with AddressSanitizer; docs/RELIABILITY.md).
#   ./scripts/fuzz.sh                 every target for 60 s
#   ./scripts/fuzz.sh stun 3600       one target (fuzz-stun) for an hour
#   RUNS=10000000 ./scripts/fuzz.sh rtp 3600   until 10 million executions or an hour, whichever comes first
#   ./scripts/fuzz.sh "rtcp sdp" 600  several targets in turn, built once (a source change during a long loop
#                                     does not make it stop and rebuild)
#   JOBS=2 CONFIG=debug ./scripts/fuzz.sh all 10   two targets at a time, built for debugging (as CI does)
#   BUILD_ONLY=1 CONFIG=debug ./scripts/fuzz.sh      builds and runs nothing (CI builds beside the browser suites)
# Seeds are Fuzz/Corpus/TARGET (committed: fixtures and real clients' bytes, tools/fuzz/capture_seeds.py); what
# libFuzzer finds beyond them goes to Fuzz/.build/corpus/TARGET, crashes to Fuzz/.build/crashes/. Prints one line
# per target: executions, coverage (cov: edges, ft: features), corpus size, and whether it crashed; exits 1 if any did.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
# The names in Fuzz/Package.swift's `let targets = [...]` (which may span lines), lowercased as the executables are.
targets=$(sed -n '/^let targets = \[/,/\]/p' Fuzz/Package.swift | grep -o '"[A-Za-z0-9]*"' | tr -d '"' | tr 'A-Z' 'a-z' | tr '\n' ' ')
wanted=${1:-all}
seconds=${2:-60}
[ "$wanted" = all ] && wanted=$targets
for w in $wanted; do
    if ! grep -qw "$w" <<<"$targets"; then
        echo "fuzz.sh: no target $w; targets: $targets" >&2
        exit 2
    fi
done
# `--sanitize=fuzzer --sanitize=address` links libFuzzer and ASan, but swiftc keeps only the last `-sanitize=` of
# several when compiling: without `-sanitize=fuzzer,address` in one flag no Swift module got coverage counters, and
# libFuzzer ran blind (it did until this was found). `-enable-testing` lets targets `@testable import` services.
# CONFIG=debug builds faster and runs slower (CI's short runs); release is for finding things.
flags=(--package-path Fuzz -c "${CONFIG:-release}" --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address
       -Xswiftc -enable-testing)
if ! out=$(swift build "${flags[@]}" 2>&1); then
    echo "$out" | grep -E "error" | head -40 >&2
    echo "fuzz.sh: the fuzz package did not build" >&2
    exit 2
fi
bin=$(swift build "${flags[@]}" --show-bin-path)
[ -z "${BUILD_ONLY:-}" ] || exit 0
mkdir -p Fuzz/.build/crashes

# One target: prints its line, and its log's tail if it crashed; returns 1 if it did.
fuzz_one() {
    local t=$1 seeds work log limit start status execs line
    seeds=$(find Fuzz/Corpus -maxdepth 1 -iname "$t" -type d | head -1)
    work=Fuzz/.build/corpus/$t
    mkdir -p "$work"
    log=Fuzz/.build/fuzz-$t.log
    limit=(-max_total_time="$seconds")
    [ -n "${RUNS:-}" ] && limit+=(-runs="$RUNS")
    start=$SECONDS
    # LeakSanitizer stays on: a leak is a finding like a crash (docs/RELIABILITY.md).
    # No Swift backtracer: its crash handler reads memory ASan then reports as a second error.
    if SWIFT_BACKTRACE=enable=no "$bin/fuzz-$t" "${limit[@]}" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
            -artifact_prefix="Fuzz/.build/crashes/$t-" "$work" ${seeds:+"$seeds"} >"$log" 2>&1; then
        status=ok
    else
        status=CRASHED
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    line=$(grep -aE "^#[0-9]+" "$log" | grep -aE "cov:" | tail -1)
    echo "fuzz-$t: $status, ${execs:-?} executions in $((SECONDS - start)) s; ${line:-no stats}"
    [ $status = ok ] && return 0
    tail -40 "$log" | grep -avE "^#[0-9]+" | head -30
    return 1
}

# JOBS targets at a time (default 1; CI runs two, one a core); each prints its lines when it ends.
jobs_at_once=${JOBS:-1}
failed=0
running=0
for t in $wanted; do
    if [ "$jobs_at_once" -le 1 ]; then
        fuzz_one "$t" || failed=1
        continue
    fi
    if [ $running -ge "$jobs_at_once" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "$t" > "Fuzz/.build/fuzz-$t.summary" 2>&1 && cat "Fuzz/.build/fuzz-$t.summary" || { cat "Fuzz/.build/fuzz-$t.summary"; exit 1; } &
    running=$((running + 1))
done
while [ $running -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
