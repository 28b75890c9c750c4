#!/usr/bin/env bash
# SFU forwarding benchmark (BENCHMARKS.md): a release liveswarm pinned to core 0 and `liveswarm-bench sfu` pinned
# to core 1. For each viewer count a fresh server gets one WHIP publisher (VP8 over SRTP, RATE packets/s of 1200
# bytes) and N WHEP viewers, all real DTLS-SRTP peers; MEASURE_SECONDS of measurement. The viewer counts alternate within
# each of ROUNDS rounds. Prints a Markdown table.
#   VIEWERS="1 10 50 100" ROUNDS=3 RATE=200 MEASURE_SECONDS=10 ./scripts/bench-sfu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
viewers=${VIEWERS:-"1 10 50 100"}
rounds=${ROUNDS:-3}
rate=${RATE:-200}
measure=${MEASURE_SECONDS:-10}  # not SECONDS: bash keeps its own count of seconds in it
machine_line
echo "| viewers | publisher packets/s | forwarded packets/s | delivered % | server CPU (% of a core) | CPU µs per forwarded packet | RSS per viewer (KiB) |"
echo "|---|---|---|---|---|---|---|"
bench_rounds "$rounds" "$viewers" sfu --http-port 18080 --rtc-port 18000 --rate "$rate" --seconds "$measure"
