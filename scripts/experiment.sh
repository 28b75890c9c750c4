#!/usr/bin/env bash
# P2P experiments (docs/P2P.md, "Experiments"): N test viewers of one live stream through the swarm lab in headless
# Chromium, P2P on and off, D seconds each, R times; CSV and a report with charts (HTML and PNG) in --out.
#
#   scripts/experiment.sh [--viewers 5,10,30] [--p2p on,off] [--seconds 60] [--runs 1] [--warmup 20] [--per-page 6]
#                         [--announce on|off] [--target 3] [--out DIR]
#                         [--server http://HOST:PORT --stream APP/STREAM | --binary PATH] [--release]
#
# Defaults: N = 5, P2P on, one run of 60 s after 20 s of warm-up (about two minutes), into
# .build/experiment/DATE-TIME. Without --server it runs its own server (the debug build, --release for the release
# one, or --binary) on free loopback ports, and ffmpeg publishes the low-rate rendition the experiments use:
# 320x180 at 30 fps, 300 kbit/s H.264 and 48 kbit/s AAC. Half an hour, three times each:
#   scripts/experiment.sh --viewers 5,10,30 --p2p on,off --seconds 1800 --runs 3
# and overnight, e.g. --seconds 3600 --runs 4. The report of an output folder again: scripts/experiment.sh --report --out DIR
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
apt_install ffmpeg chromium chromium-driver libjs-chart.js
PYTHON=$(python_venv .build/venv selenium)
server="" stream="" binary="" release="" out="" args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --server) server=$2; shift 2 ;;
        --stream) stream=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --release) release=1; shift ;;
        --out) out=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
out=${out:-.build/experiment/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
case " ${args[*]-} " in *" --report "*) exec "$PYTHON" tools/experiment/experiment.py --out "$out" "${args[@]}" ;; esac
pids=()
cleanup() { [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
publisher="given stream $stream"
if [ -z "$server" ]; then
    if [ -z "$binary" ]; then
        need_swift
        if [ -n "$release" ]; then build_release liveswarm; binary=.build/release/liveswarm
        else swift build --product liveswarm >/dev/null; binary=.build/debug/liveswarm; fi
    fi
    read -r http rtmp stun rtc < <(python3 -c '
import socket
s = [socket.socket() for _ in range(4)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
    # Every viewer comes from 127.0.0.1: no per-address rate limits (builds from before them lack the flag).
    unlimited=()
    "$binary" serve --help 2>&1 | grep -q -- --no-rate-limits && unlimited=(--no-rate-limits)
    "$binary" serve --listen 127.0.0.1 --http-port "$http" --rtmp-port "$rtmp" --stun-port "$stun" --rtc-port "$rtc" \
        --web-root web-demo --log-level warning "${unlimited[@]}" >"$out/server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$http/api/v1/streams" >/dev/null && break; sleep 0.2; done
    ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x180:rate=30 -f lavfi -i sine=frequency=440 \
        -c:v libx264 -preset veryfast -tune zerolatency -g 30 -b:v 300k -maxrate 300k -bufsize 300k -pix_fmt yuv420p \
        -c:a aac -b:a 48k -f flv "rtmp://127.0.0.1:$rtmp/live/experiment" 2>"$out/publisher.log" &
    pids+=($!)
    server="http://127.0.0.1:$http" stream=live/experiment
    publisher="ffmpeg testsrc2 320x180 30 fps; H.264 300 kbit/s (GOP 1 s) + AAC 48 kbit/s; server $binary"
    # Viewers start at their target delay only once the stream is older than it: 6 s of parts first.
    for _ in $(seq 100); do
        n=$(curl -sf "$server/api/v1/streams/$stream/chunks" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["chunks"]))' 2>/dev/null || echo 0)
        [ "$n" -ge 12 ] && break
        sleep 0.2
    done
fi
[ -n "$stream" ] || { echo "scripts/experiment.sh: --server needs --stream APP/STREAM" >&2; exit 2; }
"$PYTHON" tools/experiment/experiment.py --server "$server" --stream "$stream" --out "$out" --publisher "$publisher" "${args[@]}"
