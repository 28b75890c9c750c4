#!/usr/bin/env bash
# SFU forwarding benchmark (BENCHMARKS.md): a release liveswarm pinned to core 0 and `liveswarm-bench sfu` pinned
# to core 1. For each viewer count a fresh server gets one WHIP publisher (RATE packets/s of 1200 bytes, or BITRATE
# bits/s; VP8 or H.264 with CODEC) and N WHEP viewers, all real DTLS-SRTP peers (SRTP=aes-cm holds them to AES-CM),
# joining one after another or all at once (JOIN=crowd), the first TCP_VIEWERS (default 1) over ICE-TCP (they share
# the send path, which must not regress for them); MEASURE_SECONDS of measurement. The viewer counts alternate
# within each of ROUNDS rounds. Prints a Markdown table.
#   VIEWERS="1 10 50 100" ROUNDS=3 RATE=200 MEASURE_SECONDS=10 ./scripts/bench-sfu.sh
#   VIEWERS="300 1000" BITRATE=600000 CODEC=h264 JOIN=crowd ./scripts/bench-sfu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
viewers=${VIEWERS:-"1 10 50 100"}
rounds=${ROUNDS:-3}
measure=${MEASURE_SECONDS:-10}  # not SECONDS: bash keeps its own count of seconds in it
load=(--rate "${RATE:-200}")
[ -n "${BITRATE:-}" ] && load=(--bitrate "$BITRATE")
machine_line
bench_header "| viewers | codec | join | publisher packets/s | forwarded packets/s | delivered % | server CPU (% of a core) | CPU µs per forwarded packet | RSS per viewer (KiB) | SRTP | bench CPU (% of a core) | samples authentic | joins/s | last joined (ms) | last first packet (ms) | failed joins |"
bench_rounds "$rounds" "$viewers" sfu --http-port 18080 --rtc-port 18000 "${load[@]}" --seconds "$measure" \
    --codec "${CODEC:-vp8}" --srtp "${SRTP:-any}" --join "${JOIN:-sequential}" --tcp-viewers "${TCP_VIEWERS:-1}"
