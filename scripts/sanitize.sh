#!/usr/bin/env bash
# The unit and loopback integration suites under a sanitizer (docs/RELIABILITY.md, "Sanitizers").
#   ./scripts/sanitize.sh address      AddressSanitizer (with LeakSanitizer: see below)
#   ./scripts/sanitize.sh thread       ThreadSanitizer
#   ./scripts/sanitize.sh              both, one after the other
# Extra arguments go to `swift test` (a --filter, say). Each sanitizer builds in a scratch directory of its own
# (.build-asan, .build-tsan), so the ordinary build is not thrown away. The suites that drive browsers, ffmpeg,
# coturn or aiortc (and the lab's, ExperimentTests) are left out: their timings are what they test, and a
# sanitizer's slowdown (2x for ASan, 5-15x for TSan) breaks them without finding anything in our code that the
# loopback suites miss.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg coturn openssl

which=${1:-all}
[ $# -gt 0 ] && shift
case "$which" in
    address|thread|all) ;;
    *) echo "sanitize.sh: address, thread or all, not $which" >&2; exit 2 ;;
esac

# Suites left out (a regular expression over test names for `swift test --skip`).
skip='Browser[A-Za-z0-9]*Tests|[A-Za-z0-9]*InteropTests|ExperimentTests'

# Suppressions, each explained:
# - ASan's LeakSanitizer runs at exit and reports memory still reachable only through the Swift runtime's and
#   libraries' own caches and singletons (type metadata, NIO's global thread pool, libavcodec's static tables):
#   those are allocated once and never freed by design, so they are suppressed by where they are allocated. A leak
#   in LiveSwarm's own code is not suppressed: it fails the run.
# - TSan: none yet. Its reports today are on state guarded by Synchronization.Mutex, whose lock (in the prebuilt
#   stdlib) TSan cannot see, so they are false; they are not suppressed but fixed by giving TSan builds a lock it
#   knows (docs/RELIABILITY.md). The run fails until then.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitize/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="suppressions=$PWD/scripts/sanitize/tsan.supp:halt_on_error=0:second_deadlock_stack=1"
# The Swift backtracer's crash handler reads memory a sanitizer then reports as a second, misleading error.
export SWIFT_BACKTRACE=enable=no

run() {
    local sanitizer=$1 scratch=$2
    shift 2
    echo "== $sanitizer: building in $scratch"
    swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch"
    echo "== $sanitizer: unit and loopback suites"
    timeout --kill-after=30s 40m swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" --no-parallel \
        --skip "$skip" "$@"
}

[ "$which" = thread ] || run address .build-asan "$@"
[ "$which" = address ] || run thread .build-tsan "$@"
echo "sanitize.sh: clean under ${which/all/address and thread}"
