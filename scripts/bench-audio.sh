#!/usr/bin/env bash
# RTMP-to-WebRTC audio benchmark (BENCHMARKS.md): the AAC-to-Opus transcoder on one core (pinned to core 1), on
# inputs ffmpeg makes here: pink noise (the hardest for a codec) as AAC 44.1 kHz stereo at 128 kbit/s and 48 kHz
# stereo at 160 kbit/s, and a 22.05 kHz mono tone at 64 kbit/s. Each looped to SECONDS of audio, ROUNDS runs.
#   KBPS=96 SECONDS_OF_AUDIO=60 ROUNDS=5 ./scripts/bench-audio.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg
build_release liveswarm-bench
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ff() { ffmpeg -v error -y "$@"; }
ff -f lavfi -i "anoisesrc=color=pink:amplitude=0.3:sample_rate=44100" -ac 2 -t 10 -c:a aac -b:a 128k -f flv "$dir/noise-44100-stereo.flv"
ff -f lavfi -i "anoisesrc=color=pink:amplitude=0.3:sample_rate=48000" -ac 2 -t 10 -c:a aac -b:a 160k -f flv "$dir/noise-48000-stereo.flv"
ff -f lavfi -i "sine=frequency=440:sample_rate=22050" -t 10 -c:a aac -b:a 64k -f flv "$dir/tone-22050-mono.flv"
machine_line
taskset -c 1 .build/release/liveswarm-bench transcode --kbps "${KBPS:-96}" --seconds "${SECONDS_OF_AUDIO:-60}" --rounds "${ROUNDS:-5}" \
    --input "$dir/noise-44100-stereo.flv" --input "$dir/noise-48000-stereo.flv" --input "$dir/tone-22050-mono.flv"
