#!/usr/bin/env bash
# SRTP throughput benchmark (BENCHMARKS.md): protect and unprotect on one core (pinned to core 1), both profiles,
# five alternating runs of 200,000 packets of 1200 bytes. Prints a Markdown table and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
swift build -c release --product liveswarm-bench >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
taskset -c 1 .build/release/liveswarm-bench srtp "$@"
