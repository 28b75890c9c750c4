#!/usr/bin/env bash
# Installs the real peers the tests drive (ffmpeg, ffprobe, headless Chromium with Selenium, node, coturn's
# client tools), builds, and runs every test: unit, integration (loopback) and interop. Tests run one at a time: interop timings are not reliable
# with two ffmpegs, a browser and a build sharing two cores. Each step prints when it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg chromium chromium-driver firefox-esr pulseaudio nodejs coturn nftables iproute2 openssl libnss3-tools libjs-chart.js
# Selenium drives headless Chromium (Tests/Browser/drive.py), marionette-driver Firefox ESR
# (firefox_participant.py); aiortc is a second WebRTC peer (aiortc_peer.py, room_client.py).
LIVESWARM_PYTHON=$(python_venv .build/venv selenium aiortc websockets marionette-driver)
export LIVESWARM_PYTHON
step() { echo "== scripts/test.sh: $1 ($((SECONDS / 60)) min $((SECONDS % 60)) s in)"; }
step "building"
swift build --build-tests
# Every server test has a time limit (Swift Testing's timeLimit trait names the test that overran); a hang that
# ignores cancellation is stopped here, with the whole process group, well inside CI's budget (a full run of the
# tests takes about 31 minutes on 2 cores, most of it the browser suites). The sanitizers and the fuzz targets are
# not in this command yet (scripts/sanitize.sh, scripts/fuzz.sh; docs/RELIABILITY.md says why).
step "the tests"
status=0
timeout --kill-after=30s 40m swift test --skip-build --no-parallel "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: the test run was stopped after 40 minutes; the test that hung is the last one 'started' above" >&2
fi
[ "$status" -eq 0 ] || exit "$status"
[ $# -eq 0 ] || exit 0
# The pages' JavaScript units (node: the glass clock codec, the SHA-256 fallback), then the glass-to-glass tool
# end to end: publisher, reader and driver
# (a file with a pause, a video without the pattern, ffmpeg's own live HLS).
node --test Tests/Browser/glass-clock-codec.test.mjs Tests/Browser/sha256.test.mjs
"$LIVESWARM_PYTHON" Tests/Browser/glass_clock_check.py
step "done"
