#!/usr/bin/env bash
# Builds LiveSwarm (release) and runs it with the built-in defaults: RTMP on 1935, HTTP on 8080.
# Extra arguments go to `liveswarm serve` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
# Chart.js for the operator dashboard (/dashboard/), served from Debian's package, never a CDN.
apt_install libjs-chart.js
swift build -c release --product liveswarm
exec .build/release/liveswarm serve "$@"
