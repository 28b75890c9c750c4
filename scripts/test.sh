#!/usr/bin/env bash
# Installs the real peers the tests drive (ffmpeg, ffprobe, headless Chromium and node to steer it), builds,
# and runs every test: unit, integration (loopback) and interop. Tests run one at a time: interop timings are not reliable with two ffmpegs and
# a build sharing two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg chromium chromium-driver nodejs
swift build --build-tests
swift test --skip-build --no-parallel "$@"
