#!/usr/bin/env bash
# STUN Binding benchmark (BENCHMARKS.md): LiveSwarm and coturn's turnserver side by side, each pinned to core 0,
# the same load generator pinned to core 1, alternating three times. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install coturn
build_release liveswarm liveswarm-bench
machine_line
echo "| server | Binding responses/s | server CPU (% of a core) | responses/s per core |"
echo "|---|---|---|---|"
for round in 1 2 3; do
    taskset -c 0 .build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --stun-port 13478 \
        --log-level warning &
    server=$!
    sleep 1
    taskset -c 1 .build/release/liveswarm-bench stun --pid "$server" --port 13478 --seconds 8 --label "liveswarm ($round)"
    kill $server; wait $server 2>/dev/null || true
    taskset -c 0 turnserver -n --listening-ip 127.0.0.1 --listening-port 13479 --no-tls --no-dtls --no-cli --stun-only \
        --log-file stdout --simple-log --no-stdout-log >/dev/null 2>&1 &
    server=$!
    sleep 1
    taskset -c 1 .build/release/liveswarm-bench stun --pid "$server" --port 13479 --seconds 8 --label "coturn ($round)"
    kill $server; wait $server 2>/dev/null || true
done
