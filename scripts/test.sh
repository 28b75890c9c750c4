#!/usr/bin/env bash
# Installs the real peers the tests drive (ffmpeg, ffprobe, headless Chromium with Selenium, node, coturn's
# client tools), builds, and runs every test: unit, integration (loopback) and interop. Tests run one at a
# time: interop timings are not reliable with two ffmpegs, a browser and a build sharing two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg chromium chromium-driver nodejs coturn nftables iproute2
# Selenium drives headless Chromium (Tests/Browser/drive.py); aiortc is a second WebRTC peer (aiortc_peer.py).
LIVESWARM_PYTHON=$(python_venv .build/venv selenium aiortc)
export LIVESWARM_PYTHON
swift build --build-tests
swift test --skip-build --no-parallel "$@"
# The glass-to-glass tool on its own: codec unit tests (node), then publisher, reader and driver end to end
# (a file with a pause, a video without the pattern, ffmpeg's own live HLS).
if [ $# -eq 0 ]; then
    node --test Tests/Browser/glass-clock-codec.test.mjs
    "$LIVESWARM_PYTHON" Tests/Browser/glass_clock_check.py
fi
