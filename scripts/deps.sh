#!/usr/bin/env bash
# Installs what LiveSwarm needs from Debian, only what is missing (idempotent). Sourced by run.sh and test.sh.
set -euo pipefail

# The Swift toolchain, and the C libraries the build links: OpenSSL (DTLS), libsrtp2 (SRTP), libavcodec,
# libswresample and libopus (AAC to Opus for WebRTC viewers of RTMP streams).
need_swift() {
    apt_install pkg-config libssl-dev libsrtp2-dev libavcodec-dev libswresample-dev libavutil-dev libopus-dev
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "Swift 6 is not installed: get the Linux toolchain from swift.org (Debian 12) and put it on PATH." >&2
            exit 1
        fi
    fi
}

# apt_install PACKAGE... : installs the packages that are not installed yet.
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "Installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# python_venv DIR PACKAGE... : a virtualenv with the PyPI packages the tests use (Debian's own Python refuses
# pip installs outside one). Prints the venv's python. Installs only what is missing.
python_venv() {
    local dir=$1; shift
    if [ ! -x "$dir/bin/python" ]; then
        command -v python3 >/dev/null 2>&1 || apt_install python3
        python3 -m venv "$dir" >/dev/null 2>&1 || { apt_install python3-venv; rm -rf "$dir"; python3 -m venv "$dir"; }
    fi
    local missing=()
    for p in "$@"; do "$dir/bin/python" -c "import $p" 2>/dev/null || missing+=("$p"); done
    if [ ${#missing[@]} -ne 0 ]; then
        echo "Installing PyPI packages: ${missing[*]}" >&2
        "$dir/bin/pip" install -q "${missing[@]}" >&2
    fi
    echo "$dir/bin/python"
}

# For the benchmarks: release builds of the products named, and the line saying what machine ran them.
build_release() {
    local product
    for product in "$@"; do swift build -c release --product "$product" >/dev/null; done
}
machine_line() {
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
}

# For the WebRTC benchmarks: ROUNDS rounds over the viewer counts VIEWERS, each run on a fresh release server pinned
# to core 0 (HTTP 18080, RTMP 11935, STUN 13478, media 18000) with `liveswarm-bench ARGS... --pid P --viewers N`
# pinned to core 1; a run that fails prints a row saying so.
bench_rounds() {
    local rounds=$1 viewers=$2 round n server
    shift 2
    for round in $(seq 1 "$rounds"); do
        for n in $viewers; do
            taskset -c 0 .build/release/liveswarm serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --stun-port 13478 \
                --rtc-port 18000 --log-level warning &
            server=$!
            sleep 1
            taskset -c 1 .build/release/liveswarm-bench "$@" --pid "$server" --viewers "$n" || echo "| $n | run failed |"
            kill "$server"; wait "$server" 2>/dev/null || true
        done
    done
}
