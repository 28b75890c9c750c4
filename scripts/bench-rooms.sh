#!/usr/bin/env bash
# Rooms benchmark (BENCHMARKS.md): a release liveswarm pinned to core 0 and `liveswarm-bench rooms` pinned to core 1.
# For each room size a fresh server gets one room of N bots, each a real WebRTC participant over /ws (audio 50
# packets/s, video FPS frames/s of two 1000-byte packets, both ways DTLS-SRTP), answering PLI with a keyframe;
# MEASURE_SECONDS of measurement; then one bot leaves and LATE_JOINS bots join and leave in turn, a second apart, for
# join times. The sizes alternate within each
# of ROUNDS rounds. Prints a Markdown table.
#   SIZES="4 8 16" ROUNDS=3 FPS=30 MEASURE_SECONDS=10 LATE_JOINS=8 ./scripts/bench-rooms.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
sizes=${SIZES:-"4 8 16"}
rounds=${ROUNDS:-3}
fps=${FPS:-30}
measure=${MEASURE_SECONDS:-10}
late=${LATE_JOINS:-8}
machine_line
echo "| participants | tracks forwarded | forwarded packets/s | delivered % | server CPU (% of a core) | CPU µs per forwarded packet | RSS per participant (KiB) | join p50 (ms) | join p99 (ms) | joins |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
    for n in $sizes; do
        taskset -c 0 .build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --stun-port 13478 \
            --rtc-port 18000 --log-level warning --no-rate-limits &
        server=$!
        sleep 1
        taskset -c 1 .build/release/liveswarm-bench rooms --http-port 18080 --pid "$server" --participants "$n" --fps "$fps" \
            --seconds "$measure" --late-joins "$late" || echo "| $n | run failed |"
        kill "$server"; wait "$server" 2>/dev/null || true
    done
done
