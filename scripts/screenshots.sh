#!/usr/bin/env bash
# Takes the dashboard's screenshots for docs/DASHBOARD.md (docs/images/dashboard*.png): a server on ports of its own,
# an ffmpeg test stream watched over RTMP, HTTP-FLV and LL-HLS, two P2P viewers and two meeting participants in
# headless Chromium, and the dashboard after a minute of it (and once more, P2P switched off for the stream). Then
# the swarm lab's for docs/P2P.md (docs/images/lab*.png): ten test viewers of the stream after a minute, and again
# with one switched to the origin and one paused.
#
#   scripts/screenshots.sh [SECONDS] [dashboard|lab]   (default 60: how long the charts fill before the first
#                                                       picture; both sets unless one is named)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
need_swift
apt_install ffmpeg chromium chromium-driver libjs-chart.js
PYTHON=$(python_venv .build/venv selenium)
seconds=${1:-60}
only=${2:-}
swift build --product liveswarm >/dev/null
mkdir -p docs/images
http=18280 rtmp=11955 token=screenshots
.build/debug/liveswarm serve --listen 127.0.0.1 --http-port $http --rtmp-port $rtmp --stun-port 13498 --rtc-port 18020 \
    --api-token $token --turn-user demo:demo-password --log-level warning &
server=$!
pids=()
cleanup() { kill "${pids[@]}" "$server" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
sleep 1
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440 \
    -c:v libx264 -preset veryfast -tune zerolatency -g 30 -b:v 800k -pix_fmt yuv420p -c:a aac -b:a 64k \
    -f flv rtmp://127.0.0.1:$rtmp/live/demo &
pids+=($!)
until curl -sf http://127.0.0.1:$http/live/demo/index.m3u8 | grep -q EXTINF; do sleep 0.5; done
for url in rtmp://127.0.0.1:$rtmp/live/demo http://127.0.0.1:$http/live/demo.flv http://127.0.0.1:$http/live/demo/index.m3u8; do
    ffmpeg -hide_banner -loglevel error -i "$url" -f null - &
    pids+=($!)
done
[ "$only" = lab ] || "$PYTHON" - "$http" "$seconds" "$token" <<'EOF'
import sys, time
sys.path.insert(0, 'Tests/Browser')
import drive, pages
http, seconds, token = sys.argv[1], float(sys.argv[2]), sys.argv[3]
base = f'http://127.0.0.1:{http}'
browser = drive.Browser(['--window-size=1300,1500'], page_load_timeout=30)
try:
    p = pages.Pages(browser)
    for _ in range(2):
        p.open(f'{base}/p2p/?stream=live/demo&target=3', [])
    for name in ('ana', 'ben'):
        p.open(f'{base}/meeting/?room=ops&name={name}', [])
    dash = p.open(f'{base}/dashboard/', [])
    p.run({'cmd': 'eval', 'page': dash, 'js': "document.getElementById('window').value = '60'; "
                                               "document.getElementById('window').dispatchEvent(new Event('change'))"})
    time.sleep(seconds)
    p.run({'cmd': 'screenshot', 'page': dash, 'path': 'docs/images/dashboard.png'})
    p.run({'cmd': 'type', 'page': dash, 'css': '#token', 'text': token})
    p.run({'cmd': 'click', 'page': dash, 'css': 'button[data-switch="live/demo"]'})
    time.sleep(20)
    p.run({'cmd': 'eval', 'page': dash, 'js': "document.getElementById('scope').value = 'live/demo'; "
                                               "document.getElementById('scope').dispatchEvent(new Event('change'))"})
    time.sleep(2)
    p.run({'cmd': 'screenshot', 'page': dash, 'path': 'docs/images/dashboard-p2p-off.png'})
    print('screenshots: docs/images/dashboard.png, docs/images/dashboard-p2p-off.png')
finally:
    browser.close()
EOF
[ "$only" = dashboard ] || "$PYTHON" - "$http" "$seconds" <<'EOF'
import sys, time
sys.path.insert(0, 'Tests/Browser')
import drive, pages
http, seconds = sys.argv[1], float(sys.argv[2])
browser = drive.Browser(['--window-size=1300,1650'], page_load_timeout=30)
try:
    p = pages.Pages(browser)
    lab = p.open(f'http://127.0.0.1:{http}/lab/?stream=live/demo&target=3', [])
    p.run({'cmd': 'click', 'page': lab, 'css': 'button[data-add="10"]'})
    time.sleep(seconds)
    p.run({'cmd': 'screenshot', 'page': lab, 'path': 'docs/images/lab.png'})
    p.run({'cmd': 'click', 'page': lab, 'css': 'button[data-n="2"][data-action="p2p-off"]'})
    p.run({'cmd': 'click', 'page': lab, 'css': 'button[data-n="5"][data-action="pause"]'})
    time.sleep(20)
    p.run({'cmd': 'screenshot', 'page': lab, 'path': 'docs/images/lab-switched.png'})
    print('screenshots: docs/images/lab.png, docs/images/lab-switched.png')
finally:
    browser.close()
EOF
