#!/usr/bin/env bash
# The unit and loopback integration suites under a sanitizer (docs/RELIABILITY.md, "Sanitizers").
#   ./scripts/sanitize.sh address      AddressSanitizer (with LeakSanitizer: see below)
#   ./scripts/sanitize.sh thread       ThreadSanitizer
#   ./scripts/sanitize.sh              both, one after the other
#   JOBS=1 ./scripts/sanitize.sh ...   builds with one job (beside a fuzz run, say)
#   BUILD_ONLY=1 ./scripts/sanitize.sh address    builds and runs nothing; SKIP_BUILD=1 runs what was built
#                                      (CI builds beside the browser suites, scripts/test.sh)
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
# The loopback suites' Python tools (a WebSocket client, aiortc) come from the test command's virtualenv.
LIVESWARM_PYTHON=${LIVESWARM_PYTHON:-$(python_venv .build/venv selenium aiortc websockets marionette-driver)}
export LIVESWARM_PYTHON

which=${1:-all}
[ $# -gt 0 ] && shift
case "$which" in
    address|thread|all) ;;
    *) echo "sanitize.sh: address, thread or all, not $which" >&2; exit 2 ;;
esac

# Suites left out: those whose timings are what they test (scripts/suites.sh).
. scripts/suites.sh

# Suppressions, each explained:
# - ASan's LeakSanitizer runs at exit and reports memory still reachable only through the Swift runtime's and
#   libraries' own caches and singletons (type metadata, NIO's global thread pool, libavcodec's static tables):
#   those are allocated once and never freed by design, so they are suppressed by where they are allocated. A leak
#   in LiveSwarm's own code is not suppressed: it fails the run.
# - TSan cannot see Synchronization.Mutex (a futex inside the uninstrumented stdlib), so every access it orders
#   would be reported as a race. The TSan build is compiled with -D LIVESWARM_TSAN, under which Sources/Locks gives
#   every module a Mutex on a pthread mutex, which TSan intercepts: no suppression is needed for our own locks.
#   The TSan suppressions (scripts/sanitize/tsan.supp) are for libraries' code we cannot rebuild so, each explained.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitize/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="suppressions=$PWD/scripts/sanitize/tsan.supp:halt_on_error=0:second_deadlock_stack=1"
# The Swift backtracer's crash handler reads memory a sanitizer then reports as a second, misleading error.
export SWIFT_BACKTRACE=enable=no

run() {
    local sanitizer=$1 scratch=$2
    shift 2
    local flags=(--sanitize="$sanitizer" --scratch-path "$scratch")
    [ "$sanitizer" = thread ] && flags+=(-Xswiftc -DLIVESWARM_TSAN)
    if [ -z "${SKIP_BUILD:-}" ]; then
        echo "== $sanitizer: building in $scratch"
        swift build --build-tests "${flags[@]}" ${JOBS:+-j "$JOBS"}
    fi
    [ -z "${BUILD_ONLY:-}" ] || return 0
    echo "== $sanitizer: unit and loopback suites"
    timeout --kill-after=30s 40m swift test --skip-build "${flags[@]}" --no-parallel --skip "$timed_suites" "$@"
}

[ "$which" = thread ] || run address .build-asan "$@"
[ "$which" = address ] || run thread .build-tsan "$@"
[ -n "${BUILD_ONLY:-}" ] && echo "sanitize.sh: built for ${which/all/address and thread}" \
    || echo "sanitize.sh: clean under ${which/all/address and thread}"
