#!/usr/bin/env bash
# SFU forwarding benchmark (BENCHMARKS.md): a release liveswarm pinned to core 0 and `liveswarm-bench sfu` pinned
# to core 1. For each viewer count a fresh server gets one WHIP publisher (VP8 over SRTP, RATE packets/s of 1200
# bytes) and N WHEP viewers, all real DTLS-SRTP peers; SECONDS of measurement. The viewer counts alternate within
# each of ROUNDS rounds. Prints a Markdown table.
#   VIEWERS="1 10 50 100" ROUNDS=3 RATE=200 SECONDS=10 ./scripts/bench-sfu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
viewers=${VIEWERS:-"1 10 50 100"}
rounds=${ROUNDS:-3}
rate=${RATE:-200}
measure=${SECONDS:-10}
machine_line
echo "| viewers | publisher packets/s | forwarded packets/s | delivered % | server CPU (% of a core) | CPU µs per forwarded packet | RSS per viewer (KiB) |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
    for n in $viewers; do
        taskset -c 0 .build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --stun-port 13478 \
            --rtc-port 18000 --log-level warning &
        server=$!
        sleep 1
        taskset -c 1 .build/release/liveswarm-bench sfu --pid "$server" --http-port 18080 --rtc-port 18000 --viewers "$n" \
            --rate "$rate" --seconds "$measure" || echo "| $n | run failed |"
        kill $server; wait $server 2>/dev/null || true
    done
done
