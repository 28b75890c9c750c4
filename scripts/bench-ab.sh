#!/usr/bin/env bash
# A/B: a WebRTC benchmark (BENCH=sfu, the default, or bridge) against release builds of two or more commits in one
# run, alternating within each round (scripts/deps.sh bench_rounds), with HEAD's load generator for all of them.
# Each commit is built in a worktree of its own under .build/ab/COMMIT (kept for the next run).
#   ./scripts/bench-ab.sh 317b70c HEAD
#   BENCH=bridge VIEWERS="50 100" ROUNDS=3 ./scripts/bench-ab.sh 0a3f78c HEAD
# Other variables go to the benchmark's script as usual (RATE, BITRATE, CODEC, SRTP, JOIN, MEASURE_SECONDS).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
[ $# -ge 2 ] || { echo "usage: $0 COMMIT COMMIT [COMMIT...]" >&2; exit 2; }
servers=() labels=()
for commit in "$@"; do
    sha=$(git rev-parse --short "$commit")
    dir=.build/ab/$sha
    if [ ! -d "$dir" ]; then
        git worktree add --detach "$dir" "$sha" >/dev/null
    fi
    (cd "$dir" && swift build -c release --product liveswarm >/dev/null)
    servers+=("$dir/.build/release/liveswarm")
    labels+=("$sha")
done
SERVERS="${servers[*]}" LABELS="${labels[*]}" exec "./scripts/bench-${BENCH:-sfu}.sh"
