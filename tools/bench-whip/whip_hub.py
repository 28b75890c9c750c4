#!/usr/bin/env python3
"""The server's CPU for one browser stream made into a hub stream, and for one push (BENCHMARKS.md).

    whip_hub.py --binary .build/release/liveswarm [--seconds 30] [--rounds 3] [--warmup 12]

Each round runs three phases, each on a fresh server pinned to core 1 (Chromium and ffmpeg on core 0):
  sfu   rtc.whip_to_hub false: Chromium publishes H.264 (codec=h264) and Opus over WHIP; the SFU receives it
        (SRTP, NACK, reports) and nobody watches.
  hub   rtc.whip_to_hub true, the same publisher: the ingest (frames, depacketizing, Opus to AAC, the hub, the HLS
        segmenter) runs on top. hub - sfu is the cost of bridging one stream.
  push  as hub, plus one push to `ffmpeg -listen 1` (copying to nothing). push - hub is the cost of one push.
The publisher is the WHIP page's canvas at 1280x720 with noise (the encoder uses all the bitrate it is allowed) and
a tone. CPU is the server process's user+system time over `--seconds` after `--warmup` (the bitrate ramp).
Prints one JSON line per phase and round, then the medians.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DRIVE = os.path.join(ROOT, 'Tests', 'Browser', 'drive.py')
TICKS = os.sysconf('SC_CLK_TCK')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_for(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f'whip_hub: timed out waiting for {what}')


def phase(args, name, python):
    http, rtmp, stun, rtc = free_port(), free_port(), free_port(), free_port()
    with tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False) as f:
        f.write(f'rtc:\n  whip_to_hub: {"false" if name == "sfu" else "true"}\n')
        config = f.name
    token = 'bench'
    server = subprocess.Popen(['taskset', '-c', '1', args.binary, 'serve', '--config', config, '--http-port', str(http),
                               '--rtmp-port', str(rtmp), '--stun-port', str(stun), '--rtc-port', str(rtc), '--host', '127.0.0.1',
                               '--api-token', token, '--web-root', os.path.join(ROOT, 'web-demo'), '--log-level', 'warning'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    others = []
    try:
        wait_for('the server', lambda: get(f'http://127.0.0.1:{http}/api/v1/streams') is not None)
        total = args.warmup + args.seconds + 20
        url = (f'http://127.0.0.1:{http}/webrtc/?role=publish&stream=live/bench&size=1280x720&noise=1&tone=440&codec=h264')
        others.append(subprocess.Popen(['taskset', '-c', '0', python, DRIVE, '--url', url, '--seconds', str(total),
                                        '--stats-js', 'return window.webrtcStats()',
                                        '--flag=--autoplay-policy=no-user-gesture-required'],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
        wait_for('the WHIP stream', lambda: any(s['stream'] == 'live/bench' and s['packetsIn'] > 100
                                                for s in get(f'http://127.0.0.1:{http}/api/v1/webrtc/streams')['streams']))
        if name == 'push':
            target = free_port()
            others.append(subprocess.Popen(['taskset', '-c', '0', 'ffmpeg', '-v', 'error', '-listen', '1', '-i',
                                            f'rtmp://127.0.0.1:{target}/live/t', '-c', 'copy', '-f', 'null', '-'],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)
            req = urllib.request.Request(f'http://127.0.0.1:{http}/api/v1/streams/live/bench/pushes', method='POST',
                                         data=json.dumps({'url': f'rtmp://127.0.0.1:{target}/live/t'}).encode(),
                                         headers={'Authorization': f'Bearer {token}'})
            urllib.request.urlopen(req, timeout=5).read()
        time.sleep(args.warmup)
        streams = get(f'http://127.0.0.1:{http}/api/v1/webrtc/streams')['streams']
        before = (cpu_seconds(server.pid), time.monotonic(), streams[0]['packetsIn'], (streams[0].get('hub') or {}).get('frames', 0))
        time.sleep(args.seconds)
        streams = get(f'http://127.0.0.1:{http}/api/v1/webrtc/streams')['streams']
        after = (cpu_seconds(server.pid), time.monotonic(), streams[0]['packetsIn'], (streams[0].get('hub') or {}).get('frames', 0))
        pushes = get(f'http://127.0.0.1:{http}/api/v1/streams/live/bench/pushes')['pushes'] if name == 'push' else []
        hub = streams[0].get('hub')
        wall = after[1] - before[1]
        return {
            'phase': name, 'cpuPercent': round((after[0] - before[0]) / wall * 100, 2),
            'packetsPerSecond': round((after[2] - before[2]) / wall),
            'hubFramesPerSecond': round((after[3] - before[3]) / wall, 1) if hub else None,
            'pushState': pushes[0]['state'] if pushes else None,
            'pushKbps': round(pushes[0]['bytesSent'] * 8 / 1000 / (args.warmup + args.seconds)) if pushes else None,
        }
    finally:
        for p in others:
            p.send_signal(signal.SIGTERM)
        server.send_signal(signal.SIGTERM)
        for p in others + [server]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        os.unlink(config)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--binary', required=True)
    p.add_argument('--python', default=sys.executable, help='a Python with Selenium (for drive.py)')
    p.add_argument('--seconds', type=float, default=30)
    p.add_argument('--warmup', type=float, default=12)
    p.add_argument('--rounds', type=int, default=3)
    args = p.parse_args()
    rows = []
    for r in range(args.rounds):
        for name in ('sfu', 'hub', 'push'):
            row = phase(args, name, args.python)
            row['round'] = r + 1
            print(json.dumps(row), flush=True)
            rows.append(row)
    med = {n: statistics.median(x['cpuPercent'] for x in rows if x['phase'] == n) for n in ('sfu', 'hub', 'push')}
    print(json.dumps({'median': med, 'bridgingOneStream': round(med['hub'] - med['sfu'], 2),
                      'onePush': round(med['push'] - med['hub'], 2)}), flush=True)


if __name__ == '__main__':
    main()
