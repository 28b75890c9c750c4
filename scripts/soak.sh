#!/usr/bin/env bash
# The soak (docs/RELIABILITY.md): one server for MINUTES minutes under churn on every protocol, sampled every 10 s.
#   ./scripts/soak.sh MINUTES          (60 for the documented run; CI runs 3 with BUILD=debug)
# Each cycle of CYCLE seconds (60) everything connects and goes again:
#   - an RTMP publisher (ffmpeg, a copied 320x240 clip) and the bridge bench's synthetic RTMP publisher;
#   - RTMP, HTTP-FLV, HLS and LL-HLS viewers (ffmpeg), joining at random times for random lengths, half of them
#     killed with SIGKILL at the end instead of quitting;
#   - WHEP viewers of the RTMP stream (`liveswarm-bench bridge`), a WHIP publisher with WHEP viewers
#     (`liveswarm-bench sfu`), a meeting room of bots joining and leaving (`liveswarm-bench rooms`);
#   - TURN allocations over UDP and TCP (coturn's turnutils_uclient, to a turnutils_peer on 127.0.0.2);
#   - one headless Chromium with two P2P viewer pages of the RTMP stream (Tests/Browser/swarm.py).
# Then a quiet spell in which every client is gone: the server's descriptors must come back to what it had idle.
# Every client must have done its work (frames received, its bench's table row, TURN's messages back, the P2P pages'
# stats): a soak whose clients failed to connect would measure an idle server.
# Every 10 s: RSS, glibc's heap (mallinfo2, from /metrics: in use, and free in malloc's arenas), descriptors, threads,
# CPU, into OUT/samples.csv. At the end scripts/soak-report.py writes OUT/report.md and OUT/soak.svg and fails the run
# on: RSS or heap in use grown 5 % or more from the first minute after the warm-up (WARMUP minutes, 5 or a third of
# the run) to the last; descriptors not back to the idle count in any quiet spell; a warning or error in the server's
# log that scripts/soak-allowed.txt does not excuse; a SIGTERM at the end not ending the server within 5 s with 0.
#   BUILD=release|debug (release)  CYCLE=60  OUT=.build/soak  PORT_BASE=19000
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
minutes=${1:?usage: scripts/soak.sh MINUTES}
build=${BUILD:-release}
cycle=${CYCLE:-60}
out=${OUT:-.build/soak}
base=${PORT_BASE:-19000}
warmup=${WARMUP:-$(( minutes / 3 < 5 ? (minutes / 3 > 0 ? minutes / 3 : 1) : 5 ))}
cycles=$(( minutes * 60 / cycle ))
[ "$cycles" -ge 2 ] || { echo "soak.sh: $minutes minutes make fewer than 2 cycles of $cycle s" >&2; exit 2; }
[ "$cycle" -ge 45 ] || { echo "soak.sh: a cycle is at least 45 s (CYCLE=$cycle)" >&2; exit 2; }

need_swift
apt_install ffmpeg chromium chromium-driver coturn curl
python=$(python_venv .build/venv selenium)
if [ "$build" = release ]; then build_release liveswarm liveswarm-bench; else
    swift build --product liveswarm >/dev/null && swift build --product liveswarm-bench >/dev/null; fi
bin=.build/$build
rm -rf "$out"; mkdir -p "$out/cycles"
http=$((base + 80)) rtmp=$((base + 35)) stun=$((base + 78)) rtc=$((base + 0)) peer=$((base + 90))

# A 20 s clip (320x240, 15 fps, a keyframe a second, AAC) the publisher copies in a loop: no encoder running.
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=320x240:rate=15 -f lavfi -i sine=frequency=440 -t 20 \
    -c:v libx264 -preset veryfast -tune zerolatency -g 15 -pix_fmt yuv420p -b:v 300k -c:a aac -b:a 64k -f flv "$out/clip.flv"

# coturn's uclient leaves without deleting its UDP allocations (it asks for 777 s), and the server cannot tell it
# went: each holds its relay until its lifetime ends. The shortest lifetime allowed (30 s) ends them within the cycle.
printf 'turn:\n  max_lifetime: 30\n  default_lifetime: 30\n' >"$out/config.yaml"
"$bin/liveswarm" serve --config "$out/config.yaml" --listen 127.0.0.1 --http-port "$http" --rtmp-port "$rtmp" --stun-port "$stun" \
    --rtc-port "$rtc" --no-rate-limits --turn-user soak:soak-pass --turn-allow-loopback >"$out/server.log" 2>&1 &
server=$!
turnutils_peer -L 127.0.0.2 -p "$peer" >/dev/null 2>&1 &
echo_peer=$!
# Whatever ends this script takes every client with it (each runs in this script's process group).
trap 'kill "$server" "$echo_peer" 2>/dev/null; pkill -P $$ 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/api/v1/streams" >/dev/null && break; sleep 0.2; done
kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; echo "soak.sh: the server did not start" >&2; exit 1; }

# sample PHASE: one CSV row from /proc and /metrics.
start=$(date +%s)
sample() {
    local status fds rss threads cpu metrics heap_use heap_free heap_system
    status=$(cat "/proc/$server/status") || return 0
    rss=$(awk '/^VmRSS:/ {print $2}' <<<"$status")
    threads=$(awk '/^Threads:/ {print $2}' <<<"$status")
    fds=$(ls "/proc/$server/fd" | wc -l)
    cpu=$(awk -v t="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / t}' "/proc/$server/stat")
    metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$http/metrics") || metrics=""
    heap_use=$(awk '/^process_heap_bytes\{state="in_use"\}/ {print $2}' <<<"$metrics")
    heap_free=$(awk '/^process_heap_bytes\{state="free"\}/ {print $2}' <<<"$metrics")
    heap_system=$(awk '/^process_heap_bytes\{state="from_system"\}/ {print $2}' <<<"$metrics")
    # RSS is anonymous memory (the heap, stacks) and file pages (the binary's and libraries' code as it is touched).
    echo "$(( $(date +%s) - start )),$1,$rss,${heap_use:-},${heap_free:-},${heap_system:-},$fds,$threads,$cpu,$(awk '/^RssAnon:/ {print $2}' <<<"$status"),$(awk '/^RssFile:/ {print $2}' <<<"$status")"
}
echo "seconds,phase,rss_kib,heap_in_use_bytes,heap_free_bytes,heap_from_system_bytes,fds,threads,cpu_seconds,rss_anon_kib,rss_file_kib" >"$out/samples.csv"
sleep 2
sample idle >>"$out/samples.csv"
idle_fds=$(ls "/proc/$server/fd" | wc -l)
( while sleep 10; do sample run >>"$out/samples.csv"; done ) &
sampler=$!

# run NAME SECONDS SIGNAL CMD...: CMD in the background for at most SECONDS, then SIGNAL; its output in the cycle's log.
run() {
    local name=$1 seconds=$2 signal=$3; shift 3
    timeout -s "$signal" -k 5 "$seconds" "$@" >"$log_dir/$name.log" 2>&1 &
}
rand() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
echo "cycle,seconds,quiet_fds,idle_fds,settle_seconds,rss_kib,heap_in_use_bytes,threads" >"$out/quiet.csv"
active=$((cycle - 15))
echo "soak: $cycles cycles of $cycle s ($active s of clients, then quiet), warm-up $warmup min, the $build build, idle at $idle_fds descriptors"
for c in $(seq 1 "$cycles"); do
    log_dir="$out/cycles/$c"; mkdir -p "$log_dir"
    t0=$SECONDS
    run publisher "$active" INT ffmpeg -hide_banner -loglevel warning -nostdin -re -stream_loop -1 -i "$out/clip.flv" \
        -c copy -f flv "rtmp://127.0.0.1:$rtmp/live/soak"
    run whip 60 INT "$bin/liveswarm-bench" sfu --http-port "$http" --rtc-port "$rtc" --pid "$server" --viewers 3 --rate 100 \
        --seconds $((active - 20)) --stream soakwhip --codec h264 --join crowd
    run bridge 60 INT "$bin/liveswarm-bench" bridge --rtmp-port "$rtmp" --http-port "$http" --rtc-port "$rtc" --pid "$server" \
        --viewers 3 --bitrate 300000 --fps 15 --gop 15 --seconds $((active - 20))
    run rooms 60 INT "$bin/liveswarm-bench" rooms --http-port "$http" --pid "$server" --participants 3 --fps 15 \
        --seconds $((active - 25)) --late-joins 3 --room soak
    for transport in udp tcp; do
        flags=(); [ "$transport" = tcp ] && flags=(-t)
        run "turn-$transport" 40 INT turnutils_uclient "${flags[@]}" -u soak -w soak-pass -n 40 -m 2 -l 160 -z 20 \
            -e 127.0.0.2 -r "$peer" -p "$stun" 127.0.0.1
    done
    sleep 4
    # DataChannel-only pages gather mDNS names instead of addresses otherwise (INTEROP.md).
    run p2p $((active - 4)) TERM "$python" Tests/Browser/swarm.py --url "http://127.0.0.1:$http/p2p/?stream=live/soak&p2p=1" \
        --pages 2 --seconds $((active - 20)) --stats-js 'return window.p2pStats()' --sample-every 10 \
        --flag=--disable-features=WebRtcHideLocalIpsWithMdns
    for i in 1 2; do
        for kind in rtmp flv hls llhls; do
            case $kind in
                rtmp) url="rtmp://127.0.0.1:$rtmp/live/soak" ;;
                flv) url="http://127.0.0.1:$http/live/soak.flv" ;;
                hls) url="http://127.0.0.1:$http/live/soak.m3u8" ;;
                llhls) url="http://127.0.0.1:$http/live/soak/index.m3u8" ;;
            esac
            signal=INT; [ "$i" = 2 ] && signal=KILL
            ( sleep "$(rand 2 16)"; exec timeout -s "$signal" -k 5 "$(rand 10 $((active - 25)))" ffmpeg -hide_banner \
                -loglevel warning -nostdin -progress "$log_dir/$kind-$i.progress" -i "$url" -c copy -f null - ) \
                >"$log_dir/$kind-$i.log" 2>&1 &
        done
    done
    # Every client of the cycle is gone by the end of its active spell (each has its bound): wait for them.
    for job in $(jobs -p); do
        case " $sampler $server $echo_peer " in *" $job "*) ;; *) wait "$job" 2>/dev/null || true ;; esac
    done
    settle=0
    while [ "$(ls "/proc/$server/fd" | wc -l)" -gt "$idle_fds" ] && [ $((t0 + cycle - SECONDS)) -gt 1 ]; do
        sleep 1; settle=$((settle + 1))
    done
    q=$(sample quiet)
    echo "$q" >>"$out/samples.csv"
    IFS=, read -r q_seconds _ q_rss q_heap _ _ q_fds q_threads _ <<<"$q"
    echo "$c,$q_seconds,$q_fds,$idle_fds,$settle,$q_rss,$q_heap,$q_threads" >>"$out/quiet.csv"
    echo "soak: cycle $c of $cycles: $q_fds descriptors after $settle s quiet (idle $idle_fds), RSS $q_rss KiB, $q_threads threads"
    kill -0 "$server" 2>/dev/null || { echo "soak.sh: the server died" >&2; break; }
    [ $((t0 + cycle - SECONDS)) -gt 0 ] && sleep $((t0 + cycle - SECONDS))
done
kill "$sampler" 2>/dev/null || true
sample end >>"$out/samples.csv"

# SIGTERM: the server must be gone within 5 s, with status 0.
kill -TERM "$server"
stopped=$SECONDS status=0
for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server" 2>/dev/null; then echo "term,still running after 5 s" >"$out/term.csv"; kill -KILL "$server"; fi
wait "$server" || status=$?
[ -f "$out/term.csv" ] || echo "term,exit $status after $((SECONDS - stopped)) s" >"$out/term.csv"
"$python" scripts/soak-report.py "$out" --warmup-minutes "$warmup" --allowed scripts/soak-allowed.txt --build "$build"
