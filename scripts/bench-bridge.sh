#!/usr/bin/env bash
# RTMP-to-WebRTC bridge benchmark (BENCHMARKS.md): a release liveswarm pinned to core 0 and `liveswarm-bench bridge`
# pinned to core 1. For each viewer count a fresh server gets one RTMP publisher (synthetic H.264, BITRATE bit/s,
# 30 fps, 2 s GOPs) and N WHEP viewers, all real DTLS-SRTP peers; MEASURE_SECONDS of measurement. The viewer counts
# alternate within each of ROUNDS rounds. Prints a Markdown table.
#   VIEWERS="1 10 50 100" ROUNDS=3 BITRATE=2000000 MEASURE_SECONDS=10 ./scripts/bench-bridge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
viewers=${VIEWERS:-"1 10 50 100"}
rounds=${ROUNDS:-3}
bitrate=${BITRATE:-2000000}
measure=${MEASURE_SECONDS:-10}  # not SECONDS: bash keeps its own count of seconds in it
machine_line
bench_header "| viewers | RTP packets/s sent | delivered % | server CPU (% of a core) | CPU µs per packet | RSS per viewer (KiB) | server-added delay p50 (ms) | p99 (ms) |"
bench_rounds "$rounds" "$viewers" bridge --http-port 18080 --rtmp-port 11935 --rtc-port 18000 --bitrate "$bitrate" --seconds "$measure"
