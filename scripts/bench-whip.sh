#!/usr/bin/env bash
# WHIP to the hub benchmark (BENCHMARKS.md): the release server's CPU (pinned to core 1) for one Chromium WHIP stream
# (1280x720 canvas with noise, H.264, Opus) received by the SFU alone, then also made into a hub stream, then also
# pushed to `ffmpeg -listen`; Chromium and ffmpeg on core 0.
#   SECONDS_PER_PHASE=30 WARMUP=12 ROUNDS=3 ./scripts/bench-whip.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg chromium chromium-driver
PYTHON=$(python_venv .build/venv selenium)
build_release liveswarm
machine_line
echo "commit: $(git rev-parse --short HEAD)"
"$PYTHON" tools/bench-whip/whip_hub.py --binary .build/release/liveswarm --python "$PYTHON" \
    --seconds "${SECONDS_PER_PHASE:-30}" --warmup "${WARMUP:-12}" --rounds "${ROUNDS:-3}"
