#!/usr/bin/env bash
# Installs the real peers the tests drive (ffmpeg, ffprobe, headless Chromium with Selenium, node, coturn's
# client tools), builds, and runs every test: unit, integration (loopback) and interop, the first two under
# AddressSanitizer, then every fuzz target for 10 s. Tests run one at a time: interop timings are not reliable with
# two ffmpegs, a browser and a build sharing two cores (the builds made beside them run at idle priority, below).
# Each step prints when it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg chromium chromium-driver firefox-esr pulseaudio nodejs coturn nftables iproute2 openssl libnss3-tools libjs-chart.js faketime
# Selenium drives headless Chromium (Tests/Browser/drive.py), marionette-driver Firefox ESR
# (firefox_participant.py); aiortc is a second WebRTC peer (aiortc_peer.py, room_client.py).
LIVESWARM_PYTHON=$(python_venv .build/venv selenium aiortc websockets marionette-driver)
export LIVESWARM_PYTHON
step() { echo "== scripts/test.sh: $1 ($((SECONDS / 60)) min $((SECONDS % 60)) s in)"; }
step "building"
swift build --build-tests
# With no arguments (CI): the suites whose timings are what they test (scripts/suites.sh: browsers, ffmpeg, coturn,
# aiortc, the lab; about 27 minutes on 2 cores) run on this build; every other suite runs under AddressSanitizer and
# LeakSanitizer below, not twice; then every fuzz target for 10 s (docs/RELIABILITY.md). With arguments (a --filter,
# say) they go to `swift test` on this build and nothing else runs.
if [ $# -eq 0 ]; then
    . scripts/suites.sh
    set -- --filter "$timed_suites"
    everything=1
    # The AddressSanitizer build and the fuzz build (9 minutes of two cores) are made beside the timed suites, at
    # idle priority: under SCHED_IDLE the kernel gives them a core only when no test, browser or ffmpeg wants it, so
    # they use what those suites leave (the suites wait on real time much of the while) and the suites' timings
    # stay theirs. setsid: a process group of their own, stopped with this script if it stops early.
    step "the AddressSanitizer and fuzz builds, at idle priority, beside the timed suites"
    setsid chrt --idle 0 nice -n 19 bash -c 'BUILD_ONLY=1 ./scripts/sanitize.sh address && BUILD_ONLY=1 CONFIG=debug ./scripts/fuzz.sh' \
        > .build/beside.log 2>&1 &
    beside=$!
    trap 'kill -- -$beside 2>/dev/null || true' EXIT
fi
# Every server test has a time limit (Swift Testing's timeLimit trait names the test that overran); a hang that
# ignores cancellation is stopped here, with the whole process group, well inside CI's budget.
step "the tests"
status=0
timeout --kill-after=30s 40m swift test --skip-build --no-parallel "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: the test run was stopped after 40 minutes; the test that hung is the last one 'started' above" >&2
fi
[ "$status" -eq 0 ] || exit "$status"
[ -n "${everything:-}" ] || exit 0
# The pages' JavaScript units (node: the glass clock codec, the SHA-256 fallback), then the glass-to-glass tool
# end to end: publisher, reader and driver
# (a file with a pause, a video without the pattern, ffmpeg's own live HLS).
node --test Tests/Browser/glass-clock-codec.test.mjs Tests/Browser/sha256.test.mjs
"$LIVESWARM_PYTHON" Tests/Browser/glass_clock_check.py
step "waiting for the builds beside the tests"
if ! wait "$beside"; then
    tail -40 .build/beside.log >&2
    echo "scripts/test.sh: the AddressSanitizer or fuzz build failed (.build/beside.log)" >&2
    exit 1
fi
trap - EXIT
# Every other suite (unit and loopback integration) under AddressSanitizer and LeakSanitizer.
step "AddressSanitizer"
SKIP_BUILD=1 ./scripts/sanitize.sh address
# Every fuzz target for 10 s on its corpus (a regression check; the long runs are docs/RELIABILITY.md's), two at a
# time, built for debugging (a faster build).
step "the fuzz targets"
JOBS=2 CONFIG=debug ./scripts/fuzz.sh all 10
step "done"
