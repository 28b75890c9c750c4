#!/usr/bin/env bash
# Low-latency HLS benchmark (BENCHMARKS.md): a release server, the memory of N streams' HLS windows, then one
# synthetic 2 Mbps stream followed by C blocking-reload clients, plus connections fetching flat out.
# Usage: scripts/bench-hls.sh [CLIENT COUNTS...]   (default: 100 500 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(100 500 1000)
ulimit -n 20000 2>/dev/null || true
.build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --log-level warning &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
sleep 1
machine_line
args=()
for n in "${counts[@]}"; do args+=(--clients "$n"); done
.build/release/liveswarm-bench hls --pid "$server" --rtmp-port 11935 --http-port 18080 --seconds 15 "${args[@]}"
