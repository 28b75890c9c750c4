#!/usr/bin/env bash
# HTTP-FLV fan-out benchmark (BENCHMARKS.md): a release server, one synthetic 2 Mbps RTMP stream, then N
# HTTP-FLV viewers from a separate load process. Prints a Markdown table.
# Usage: scripts/bench.sh [VIEWER COUNTS...]   (default: 100 250 500 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm liveswarm-bench
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(100 250 500 1000)
ulimit -n 20000 2>/dev/null || true
.build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --log-level warning &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
sleep 1
machine_line
args=()
for n in "${counts[@]}"; do args+=(--viewers "$n"); done
.build/release/liveswarm-bench fanout --pid "$server" --rtmp-port 11935 --http-port 18080 --seconds 15 "${args[@]}"
