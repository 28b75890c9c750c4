#!/usr/bin/env python3
"""Read the glass clock with ffmpeg instead of a browser.

    probe.py INPUT [--seconds N] [--realtime] [--frames]

INPUT is anything ffmpeg opens: rtmp://HOST/APP/STREAM, http://HOST:8080/APP/STREAM.flv,
an .m3u8, a file. ffmpeg decodes the top strip only, as 8-bit grey; each frame's cells are
decoded as in tools/glass-clock/README.md and its delay is (wall clock when the decoded frame
reached this script) - (time encoded in the frame). That is the delay to a player with no
jitter buffer and no display, so it is a lower bound for what a browser shows.

For a file, use --realtime (ffmpeg -re) for delays that mean something; without it the
file is read as fast as possible and only the decoded times are of interest (--frames).

Prints one JSON summary line on stdout; --frames also prints one JSON line per frame.
Exit status 0 if at least one frame decoded, 1 otherwise, 2 on bad arguments.
"""

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time

COLS, ROWS, DATA_BITS = 32, 2, 48
MIN_VALID_MS = 1577836800000  # 2020-01-01
MAX_VALID_MS = 4102444800000  # 2100-01-01


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


assert crc16(b'123456789') == 0x29B1  # the catalogued check value


def decode_cells(lumas):
    """64 cell lumas (0..255) in cell order -> (ms or None, reason or None, min margin)."""
    word = 0
    for v in lumas:
        word = (word << 1) | (1 if v >= 128 else 0)
    ms, crc = word >> 16, word & 0xFFFF
    margin = min(abs(v - 128) for v in lumas)
    if crc16(ms.to_bytes(6, 'big')) != crc:
        return None, 'checksum', margin
    if not MIN_VALID_MS <= ms < MAX_VALID_MS:
        return None, 'range', margin
    return ms, None, margin


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    x = (len(sorted_values) - 1) * p
    i = int(x)
    if i + 1 >= len(sorted_values):
        return sorted_values[i]
    return sorted_values[i] + (x - i) * (sorted_values[i + 1] - sorted_values[i])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('input')
    p.add_argument('--seconds', type=float, default=0, help='stop after N seconds (0: until the input ends)')
    p.add_argument('--realtime', action='store_true', help='read the input at its frame rate (ffmpeg -re), for files')
    p.add_argument('--frames', action='store_true', help='print one JSON line per frame too')
    p.add_argument('--loglevel', default='fatal',
                   help="ffmpeg -loglevel (default fatal: joining a live stream mid-GOP logs decode errors until the first keyframe)")
    args = p.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet exit when piped into head

    # The strip is the top iw/16 rows whatever the frame size; ffmpeg crops it and scales
    # it to 640x40 (20 px cells), so only a few KB per frame reach this script.
    width, cell = 640, 20
    strip_h = cell * ROWS
    # Low-delay decoding: one decoder thread (frame threads would hold back a frame each).
    # Not -fflags nobuffer: with MP4 files it loses or repeats frames.
    cmd = ['ffmpeg', '-hide_banner', '-nostdin', '-loglevel', args.loglevel, '-flags', 'low_delay', '-threads', '1']
    if args.realtime:
        cmd += ['-re']
    cmd += ['-i', args.input, '-map', '0:v:0', '-vf', f'crop=iw:iw/{COLS // ROWS}:0:0,scale={width}:{strip_h},format=gray',
            '-fps_mode', 'passthrough',  # one output frame per decoded frame: never duplicate or drop
            '-f', 'rawvideo', '-']
    frame_bytes = width * strip_h
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    seen = decoded = 0
    reasons = {'checksum': 0, 'range': 0}
    delays = []
    started = time.monotonic()
    try:
        while args.seconds <= 0 or time.monotonic() - started < args.seconds:
            buf = proc.stdout.read(frame_bytes)
            now_ms = time.time() * 1000
            if len(buf) < frame_bytes:
                break
            seen += 1
            lumas = [buf[(r * cell + cell // 2) * width + c * cell + cell // 2] for r in range(ROWS) for c in range(COLS)]
            ms, reason, margin = decode_cells(lumas)
            if ms is None:
                reasons[reason] += 1
            else:
                decoded += 1
                delays.append(now_ms - ms)
            if args.frames:
                print(json.dumps({'frame': seen - 1, 'encodedMs': ms, 'delayMs': None if ms is None else round(now_ms - ms, 1),
                                  'reason': reason, 'minMargin': margin}), flush=True)
    finally:
        proc.kill()
        proc.wait()
    s = sorted(delays)
    r1 = lambda v: None if v is None else round(v, 1)  # noqa: E731
    print(json.dumps({
        'framesSeen': seen, 'framesDecoded': decoded, 'framesCorrupt': seen - decoded, 'corruptByReason': reasons,
        'medianMs': r1(percentile(s, 0.5)), 'p95Ms': r1(percentile(s, 0.95)),
        'minMs': r1(s[0] if s else None), 'maxMs': r1(s[-1] if s else None),
        'meanMs': r1(statistics.fmean(s) if s else None),
        'fps': r1(seen / (time.monotonic() - started)) if seen else None,
    }), flush=True)
    return 0 if decoded else 1


if __name__ == '__main__':
    sys.exit(main())
