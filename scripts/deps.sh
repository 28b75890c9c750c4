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

# A Markdown table's header row and separator, with a first column for the build when SERVERS names several.
bench_header() {
    local header=$1 separator
    separator=$(sed 's/[^|]\+/---/g' <<<"$header")
    local -a servers
    read -r -a servers <<<"${SERVERS:-.build/release/liveswarm}"
    if [ ${#servers[@]} -gt 1 ] || [ -n "${OTHER_SERVER:-}" ]; then
        header="| build $header"
        separator="|---$separator"
    fi
    echo "$header"
    echo "$separator"
}

# For the WebRTC benchmarks: ROUNDS rounds over the viewer counts VIEWERS, each run on a fresh release server pinned
# to core 0 (HTTP 18080, RTMP 11935, STUN 13478, media 18000) with `liveswarm-bench ARGS... --pid P --viewers N`
# pinned to core 1; a run that fails prints a row saying so. SERVERS (default .build/release/liveswarm) may name
# several server binaries (builds of other commits, scripts/bench-ab.sh): within each round and viewer count each
# runs in turn, the order rotating from round to round, and every row starts with the binary's label (LABELS).
# Another server (built outside the project, BENCHMARKS.md) joins the rotation with OTHER_SERVER, a command run by
# bash in OTHER_DIR (it must `exec` the server, whose pid is measured), OTHER_LABEL for its rows, and
# OTHER_BENCH_ARGS appended to the bench's arguments for it (its ports and paths: the last of an option wins), e.g.
#   OTHER_SERVER="exec ./objs/srs -c CONF" OTHER_DIR=SRS/trunk OTHER_LABEL=srs \
#   OTHER_BENCH_ARGS="--http-port 18082 --rtc-port 18010 --whip-path /rtc/v1/whip/?app=live&stream={stream} ..."
bench_rounds() {
    local rounds=$1 viewers=$2 round n server i k count
    shift 2
    local -a servers labels
    read -r -a servers <<<"${SERVERS:-.build/release/liveswarm}"
    read -r -a labels <<<"${LABELS:-}"
    # OTHER_DIR may name several builds of the other server (an -O2 build and its shipped default), each run with
    # OTHER_SERVER in its directory, labelled by the words of OTHER_LABEL in the same order.
    local -a other_dirs other_labels
    if [ -n "${OTHER_SERVER:-}" ]; then
        [ ${#labels[@]} -eq 0 ] && labels=("${servers[@]##*/}")
        read -r -a other_dirs <<<"${OTHER_DIR:-.}"
        read -r -a other_labels <<<"${OTHER_LABEL:-other}"
        for k in "${!other_dirs[@]}"; do
            servers+=("other:$k")
            labels+=("${other_labels[$k]:-other$k}")
        done
    fi
    count=${#servers[@]}
    for round in $(seq 1 "$rounds"); do
        for n in $viewers; do
            for k in $(seq 0 $((count - 1))); do
                i=$(((k + round - 1) % count))
                [ "$count" -gt 1 ] && printf '| %s ' "${labels[$i]:-${servers[$i]}}"
                local -a extra=()
                if [[ "${servers[$i]}" == other:* ]]; then
                    (cd "${other_dirs[${servers[$i]#other:}]}" && exec taskset -c 0 bash -c "$OTHER_SERVER") >/dev/null 2>&1 &
                    read -r -a extra <<<"${OTHER_BENCH_ARGS:-}"
                else
                    # Every viewer comes from 127.0.0.1: no per-address rate limits (builds from before them lack the flag).
                    local -a unlimited=()
                    "${servers[$i]}" serve --help 2>&1 | grep -q -- --no-rate-limits && unlimited=(--no-rate-limits)
                    taskset -c 0 "${servers[$i]}" serve --listen 127.0.0.1 --http-port 18080 --rtmp-port 11935 --stun-port 13478 \
                        --rtc-port 18000 --log-level warning "${unlimited[@]}" &
                fi
                server=$!
                sleep 1
                # PERF_DIR: each run's server profiled over the measured window (scripts/perf-split.py reads the files).
                local -a perf=()
                [ -n "${PERF_DIR:-}" ] && perf=(--perf "$PERF_DIR/${labels[$i]:-server}-$n-r$round.data")
                taskset -c 1 .build/release/liveswarm-bench "$@" "${extra[@]}" "${perf[@]}" --pid "$server" --viewers "$n" || echo "| $n | run failed |"
                kill "$server"; wait "$server" 2>/dev/null || true
            done
        done
    done
}
