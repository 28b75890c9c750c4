#!/usr/bin/env bash
# P2P tracker benchmark (BENCHMARKS.md): the swarm engine alone with simulated peers, then a release server with
# N real WebSocket peers in one swarm, each announcing with 2 offers every 20 s and answering what it is offered.
# Usage: scripts/bench-tracker.sh [WEBSOCKET PEER COUNTS...]   (default: 1000 5000 15000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(1000 5000 15000)
machine_line
if [ -z "${SKIP_ENGINE:-}" ]; then
    echo "## The engine alone"
    .build/release/liveswarm-bench tracker-swarm --peers 10000 --peers 100000 --offers 5
fi
# Each WebSocket peer is one file in the server and one in the load generator; this machine allows 20,000 a process.
ulimit -n 20000 2>/dev/null || true
for n in "${counts[@]}"; do
    # The server on core 0, the load generator on core 1 (the machine has two).
    taskset -c 0 .build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --stun-port 13478 --rtc-port 18000 --log-level warning --no-rate-limits &
    server=$!
    trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; kill $publisher 2>/dev/null' EXIT
    sleep 1
    # A live stream, for its swarm's info hash.
    ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=15 -c:v libx264 -preset ultrafast -g 15 \
        -f flv rtmp://127.0.0.1:11935/live/bench &
    publisher=$!
    hash=""
    for _ in $(seq 30); do
        hash=$(curl -s http://127.0.0.1:18080/api/v1/streams/live/bench/chunks | python3 -c 'import json,sys; print(json.load(sys.stdin)["swarm"]["infoHash"])' 2>/dev/null || true)
        [ -n "$hash" ] && break
        sleep 0.5
    done
    echo "## $n WebSocket peers"
    taskset -c 1 .build/release/liveswarm-bench tracker-load --url ws://127.0.0.1:18080/tracker --info-hash "$hash" --peers "$n" \
        --rate 500 --seconds 45 --pid "$server"
    kill $publisher $server 2>/dev/null || true
    wait $server 2>/dev/null || true
done
