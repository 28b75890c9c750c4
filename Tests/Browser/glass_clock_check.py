#!/usr/bin/env python3
"""End-to-end check of the glass clock tool, with no LiveSwarm server involved.

    Tests/Browser/glass_clock_check.py [--keep DIR] [--no-live]

1. Records a clock file with tools/glass-clock/publish.sh (12 s, real time) and measures
   the publisher's CPU time; decodes every frame offline with tools/glass-clock/probe.py.
2. Serves web-demo/ and the media over a loopback HTTP server and plays the file in
   web-demo/glass-clock/ through Tests/Browser/drive.py for 10 s, with a pause from 4 s to
   6 s (--script-at). Checks: nearly every frame decoded, none corrupt, 25-31 fps, each
   frame's decoded time equal to the offline decode of the frame at its mediaTime, and
   delay = (wall time the page showed media time 0) - (recording start) + capture jitter,
   which grows by the pause (about 2 s, timed by the page).
3. Plays a file without the pattern: every frame must count as corrupt, none decoded.
4. Unless --no-live: publishes live HLS (1 s segments) and plays it for 8 s: the delay must
   be steady (window median moves by < 200 ms) and no frame corrupt.

Prints a JSON summary on stdout, progress on stderr; exit 0 if every check passed.
Takes about a minute; run it alone (Chromium + ffmpeg on two cores make timings noisy).
"""

import argparse
import functools
import http.server
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PUBLISH = os.path.join(ROOT, 'tools', 'glass-clock', 'publish.sh')
PROBE = os.path.join(ROOT, 'tools', 'glass-clock', 'probe.py')
DRIVE = os.path.join(ROOT, 'Tests', 'Browser', 'drive.py')
FPS = 30

failures = []


def log(msg):
    print(f'check: {msg}', file=sys.stderr, flush=True)


def expect(ok, what):
    log(('ok   ' if ok else 'FAIL ') + what)
    if not ok:
        failures.append(what)


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


def record(path, seconds, env=None):
    u0, s0 = child_cpu()
    t0 = time.time()
    subprocess.run([PUBLISH, path, str(seconds)], check=True, env=dict(os.environ, **(env or {})))
    u1, s1 = child_cpu()
    return {'wall_s': round(time.time() - t0, 2), 'user_s': round(u1 - u0, 2), 'sys_s': round(s1 - s0, 2)}


def offline_times(path):
    out = subprocess.run([sys.executable, PROBE, path, '--frames'], capture_output=True, text=True, check=False)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    return [f['encodedMs'] for f in lines if 'frame' in f], lines[-1]


def cpu_times():
    """(busy, total) jiffies of all CPUs from /proc/stat, for every process on the machine."""
    with open('/proc/stat') as f:
        v = [float(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


LAST_BUSY = [0.0]


def drive(url, seconds, stats_js, script_at=()):
    cmd = [sys.executable, DRIVE, '--url', url, '--seconds', str(seconds), '--stats-js', stats_js, '--sample-every', '0']
    for s in script_at:
        cmd += ['--script-at', s]
    t0 = time.time()
    busy0, total0 = cpu_times()
    out = subprocess.run(cmd, capture_output=True, text=True)
    busy1, total1 = cpu_times()
    LAST_BUSY[0] = (busy1 - busy0) / max(1.0, total1 - total0)
    for line in out.stderr.splitlines():
        log(f'  {line}')
    log(f'  machine CPUs {LAST_BUSY[0]:.0%} busy during the run')
    if out.returncode != 0:
        raise SystemExit(f'check: drive.py failed with {out.returncode}')
    return json.loads(out.stdout), round(time.time() - t0, 2)


def expect_timing(condition, message, fps):
    """A check of frame rate, frame count or delay: judged unless the machine was starved during the page run,
    by the house rule of the Swift browser tests (CPUSampler.starved): the page presented under 25 fps while the
    machine's CPUs were 70 % busy or more (two cores shared by ffmpeg, Chromium and whatever else runs, on a VM
    whose CPU is sometimes stolen). Then the page cannot keep real time and the figure says nothing about the
    tool; it is reported, not judged. Corruption and decoded times are always judged."""
    if LAST_BUSY[0] >= 0.7 and (fps or 0) < 25 and not condition:
        log(f'not judged (machine CPUs {LAST_BUSY[0]:.0%} busy, {fps} fps presented): {message}')
        return
    expect(condition, message)


def serve(root):
    handler = functools.partial(QuietHandler, directory=root)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f'http://127.0.0.1:{server.server_address[1]}'


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def median(values):
    s = sorted(values)
    return s[len(s) // 2] if s else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--keep', metavar='DIR', help='work in DIR and keep the recordings')
    p.add_argument('--no-live', action='store_true', help='skip the live HLS step')
    args = p.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix='glass-clock-check-')
    media = os.path.join(work, 'media')
    os.makedirs(media, exist_ok=True)
    www = os.path.join(work, 'www')
    os.makedirs(www, exist_ok=True)
    for name, target in (('web-demo', os.path.join(ROOT, 'web-demo')), ('media', media)):
        link = os.path.join(www, name)
        if not os.path.islink(link):
            os.symlink(target, link)
    server, base = serve(www)
    summary = {}
    try:
        # 1. Record and decode offline.
        clock = os.path.join(media, 'clock.mp4')
        log('recording 12 s with publish.sh')
        summary['publisher_cpu'] = record(clock, 12)
        times, probe_summary = offline_times(clock)
        recorded_at = times[0]
        expect(probe_summary['framesDecoded'] == len(times) == 12 * FPS,
               f'offline decode: {probe_summary["framesDecoded"]}/{len(times)} frames')
        gaps = [b - a for a, b in zip(times, times[1:])]
        summary['capture_interval_ms'] = {'min': min(gaps), 'max': max(gaps), 'mean': round(sum(gaps) / len(gaps), 2)}

        # 2. Play it, with a 2 s pause.
        stats_js = ('return {stats: window.glassClockStats(), samples: window.glassClock.samples(), '
                    'pause: [window.__pausedAt, window.__playedAt]}')
        log('playing the recording for 10 s, paused from 4 s to 6 s')
        result, drive_s = drive(f'{base}/web-demo/glass-clock/index.html?src=/media/clock.mp4', 10, stats_js,
                                ['4:window.__pausedAt = Date.now(); document.getElementById("video").pause()',
                                 '6:return document.getElementById("video").play()'
                                 '.then(() => { window.__playedAt = Date.now(); return "playing"; })'])
        st, samples = result['stats'], result['samples']
        summary['file'] = {k: st[k] for k in ('framesSeen', 'framesDecoded', 'framesCorrupt', 'framesMissed',
                                              'repeats', 'backwards', 'weakFrames', 'fps')}
        summary['file']['window'] = st['window']
        summary['file']['overall'] = st['overall']
        summary['file']['drive_wall_s'] = drive_s
        expect(st['framesCorrupt'] == 0, f'no corrupt frames ({st["framesCorrupt"]})')
        fps = st['window']['fps']
        expect(st['framesDecoded'] >= 0.97 * st['framesSeen'], f'decoded {st["framesDecoded"]} of {st["framesSeen"]} callbacks')
        expect_timing(st['framesSeen'] >= 200, f'{st["framesSeen"]} frames presented in 8 s of playing', fps)
        # Headless Chromium on two shared cores presents 27-30 of the 30 fps even when idle (measured 27.8 with the
        # machine 47 % busy); below 25 the page is losing frames, above 31 it counts some twice.
        expect(fps is None or fps <= 31, f'window fps {fps} (above 31: frames counted twice)')
        expect_timing(25 <= (fps or 0), f'window fps {fps}', fps)
        mismatched = sum(1 for s in samples if s['ok'] and times[round(s['mediaTime'] * FPS)] != s['encodedMs'])
        summary['file']['frame_mismatches'] = mismatched
        expect(mismatched <= 0.02 * len(samples),
               f'decoded time = offline time of the frame at mediaTime for {len(samples) - mismatched}/{len(samples)} frames')
        # delay = (display - mediaTime) - recording start - (capture lag of that frame): the
        # residual below is the capture lag (publisher scheduling jitter), reported, not judged.
        before = [s for s in samples if s['ok'] and s['displayMs'] - st['startedAt'] < 3500]
        after = [s for s in samples if s['ok'] and s['displayMs'] - st['startedAt'] > 7000]
        anchor_before = median([s['displayMs'] - 1000 * s['mediaTime'] for s in before])
        anchor_after = median([s['displayMs'] - 1000 * s['mediaTime'] for s in after])
        residual = [s['delayMs'] - (s['displayMs'] - 1000 * s['mediaTime'] - recorded_at) for s in samples if s['ok']]
        lag = [t - recorded_at - 1000 * n / FPS for n, t in enumerate(times)]
        summary['file']['age_of_recording_at_play_ms'] = round(anchor_before - recorded_at, 1)
        summary['file']['median_delay_before_pause_ms'] = round(median([s['delayMs'] for s in before]), 1)
        summary['file']['median_delay_after_pause_ms'] = round(median([s['delayMs'] for s in after]), 1)
        summary['file']['pause_ms_seen_by_page'] = round(anchor_after - anchor_before, 1)
        summary['file']['residual_ms'] = {'min': round(min(residual), 1), 'max': round(max(residual), 1)}
        summary['capture_lag_ms'] = {'min': round(min(lag), 1), 'max': round(max(lag), 1)}
        expect(abs(summary['file']['median_delay_before_pause_ms'] - summary['file']['age_of_recording_at_play_ms'])
               < 100 + max(abs(x) for x in lag),
               'median delay = age of the recording when playback started (+ capture lag)')
        growth = summary['file']['median_delay_after_pause_ms'] - summary['file']['median_delay_before_pause_ms']
        # The pause as the page's clock saw it, from pause() to play() resolving: the driver runs each script when
        # it gets to it, and on a busy machine the second one has come 300 ms late.
        paused_at, played_at = result['pause']
        pause_ms = played_at - paused_at
        summary['file']['pause_ms'] = pause_ms
        expect_timing(abs(growth - pause_ms) < 300, f'delay grew by {growth:.0f} ms over a pause of {pause_ms:.0f} ms', fps)

        # 3. No pattern: nothing may decode.
        plain = os.path.join(media, 'plain.mp4')
        subprocess.run(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-f', 'lavfi',
                        '-i', f'testsrc2=size=640x360:rate={FPS}', '-t', '6', '-c:v', 'libx264', '-preset', 'veryfast',
                        '-pix_fmt', 'yuv420p', '-movflags', '+faststart', plain], check=True)
        log('playing a video without the pattern for 5 s')
        st, _ = drive(f'{base}/web-demo/glass-clock/index.html?src=/media/plain.mp4', 5, 'return window.glassClockStats()')
        summary['no_pattern'] = {k: st[k] for k in ('framesSeen', 'framesDecoded', 'framesCorrupt', 'corruptByReason')}
        expect(st['framesDecoded'] == 0 and st['framesCorrupt'] == st['framesSeen'] > 100,
               f'no pattern: {st["framesDecoded"]} decoded, {st["framesCorrupt"]}/{st["framesSeen"]} corrupt')

        # 4. Live HLS.
        if not args.no_live:
            live = os.path.join(media, 'live')
            shutil.rmtree(live, ignore_errors=True)
            os.makedirs(live)
            env = dict(os.environ, FORMAT='hls',
                       EXTRA_OUTPUT_ARGS='-hls_time 1 -hls_list_size 6 -hls_flags delete_segments')
            pub = subprocess.Popen([PUBLISH, os.path.join(live, 'clock.m3u8'), '16'], env=env)
            try:
                time.sleep(3.5)  # three segments in the playlist
                log('playing live HLS for 8 s')
                st, _ = drive(f'{base}/web-demo/glass-clock/index.html?src=/media/live/clock.m3u8', 8,
                              'return window.glassClockStats()')
            finally:
                pub.terminate()
                pub.wait()
            summary['live_hls'] = {k: st[k] for k in ('framesSeen', 'framesDecoded', 'framesCorrupt', 'fps')}
            summary['live_hls']['window'] = st['window']
            summary['live_hls']['overall'] = st['overall']
            live_fps = st['window']['fps']
            expect(st['framesCorrupt'] == 0, f'live: {st["framesCorrupt"]} corrupt')
            expect_timing(st['framesDecoded'] > 150, f'live: {st["framesDecoded"]} decoded in 8 s', live_fps)
            spread = st['window']['medianMs'] - st['overall']['medianMs']
            expect_timing(abs(spread) < 200, f'live delay steady: window median {st["window"]["medianMs"]} vs overall {st["overall"]["medianMs"]}',
                          live_fps)
    finally:
        server.shutdown()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    summary['failures'] = failures
    print(json.dumps(summary))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
