#!/usr/bin/env bash
# SRTP throughput benchmark (BENCHMARKS.md): protect and unprotect on one core (pinned to core 1), both profiles,
# five alternating runs of 200,000 packets of 1200 bytes. Prints a Markdown table and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
build_release liveswarm-bench
machine_line
taskset -c 1 .build/release/liveswarm-bench srtp "$@"
