#!/usr/bin/env python3
"""The soak's verdict (scripts/soak.sh): reads OUT/samples.csv, quiet.csv, term.csv and server.log, writes
OUT/report.md (a table and the checks) and OUT/soak.svg (a chart), and exits 1 if a check fails.

    soak-report.py OUT --warmup-minutes W --allowed scripts/soak-allowed.txt [--build release]

Checks:
  - RSS, and glibc's heap in use, grown less than 5 % from the first minute after the warm-up to the last minute
    (medians of the samples in each);
  - in every quiet spell, the server's descriptors back to what it had idle;
  - threads in the last quiet spell no more than in the first after the warm-up;
  - every warning, error or critical line of the server's log excused by an entry of the allow-list (each entry:
    '#' lines giving its reason, then one regular expression; entries are separated by blank lines), and no line
    that is not a log line at all (a crash's);
  - SIGTERM at the end: the server gone within 5 s with status 0.
"""

import argparse
import csv
import os
import re
import statistics
import sys

LEVELS = ('trace', 'debug', 'info', 'notice', 'warning', 'error', 'critical')
# swift-log's StreamLogHandler: "2026-12-07T21:55:10+0000 warning liveswarm : key=value [Module] message".
LOG_LINE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (' + '|'.join(LEVELS) + r') ')
GROWTH_LIMIT = 0.05


def read_allowed(path):
    """[(pattern, reason)]; an entry without a reason is refused."""
    entries, reason = [], []
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip('\n')
            if not line.strip():
                reason = []
            elif line.startswith('#'):
                reason.append(line.lstrip('#').strip())
            else:
                if not reason:
                    sys.exit(f'{path}:{number}: an allowed line needs its reason in # lines above it')
                entries.append((re.compile(line), ' '.join(reason), number))
                reason = []
    return entries


def median_in(rows, key, lo, hi):
    values = [float(r[key]) for r in rows if lo <= float(r['seconds']) < hi and r[key] not in ('', None)]
    return statistics.median(values) if values else None


def svg_chart(rows, warmup_seconds, path, title):
    """Two panels over time: memory (RSS, heap in use, heap free, MiB) and counts (descriptors, threads)."""
    width, height, left, right, top, panel, gap = 900, 520, 70, 70, 40, 190, 60
    xs = [float(r['seconds']) for r in rows]
    x_max = max(xs) or 1

    def x(t):
        return left + (width - left - right) * t / x_max

    def panel_svg(y0, series, unit):
        values = [v for _, _, vals in series for v in vals if v is not None]
        v_max = max(values) * 1.1 if values else 1
        v_max = v_max or 1

        def y(v):
            return y0 + panel - panel * v / v_max
        out = [f'<rect x="{left}" y="{y0}" width="{width - left - right}" height="{panel}" fill="none" stroke="#999"/>']
        for i in range(5):
            v = v_max * i / 4
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.0f}</text>')
            out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="14" y="{y0 + panel / 2}" font-size="12" transform="rotate(-90 14 {y0 + panel / 2})" '
                   f'text-anchor="middle">{unit}</text>')
        for i, (name, colour, vals) in enumerate(series):
            points = ' '.join(f'{x(t):.1f},{y(v):.1f}' for t, v in zip(xs, vals) if v is not None)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
            out.append(f'<text x="{left + 10 + i * 150}" y="{y0 - 8}" font-size="12" fill="{colour}">{name}</text>')
        return out

    def mib(key):
        return [float(r[key]) / 1048576 if r[key] else None for r in rows]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    parts += panel_svg(top + 10, [('RSS', '#c0392b', [float(r['rss_kib']) / 1024 for r in rows]),
                                  ('heap in use', '#2471a3', mib('heap_in_use_bytes')),
                                  ('heap free (malloc)', '#7fb3d5', mib('heap_free_bytes'))], 'MiB')
    y1 = top + 10 + panel + gap
    parts += panel_svg(y1, [('descriptors', '#1e8449', [float(r['fds']) for r in rows]),
                            ('threads', '#7d3c98', [float(r['threads']) for r in rows])], 'count')
    wx = x(warmup_seconds)
    parts.append(f'<line x1="{wx:.1f}" x2="{wx:.1f}" y1="{top}" y2="{y1 + panel}" stroke="#888" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{wx + 4:.1f}" y="{y1 + panel - 6}" font-size="11" fill="#666">end of warm-up</text>')
    for m in range(0, int(x_max // 60) + 1, max(1, int(x_max // 60) // 12)):
        parts.append(f'<text x="{x(m * 60):.1f}" y="{y1 + panel + 16}" text-anchor="middle" font-size="11">{m}</text>')
    parts.append(f'<text x="{width / 2}" y="{y1 + panel + 34}" text-anchor="middle" font-size="12">minutes</text>')
    parts.append('</svg>')
    with open(path, 'w') as f:
        f.write('\n'.join(parts) + '\n')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('--warmup-minutes', type=float, required=True)
    p.add_argument('--allowed', required=True)
    p.add_argument('--build', default='release')
    a = p.parse_args()
    with open(os.path.join(a.out, 'samples.csv')) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(a.out, 'quiet.csv')) as f:
        quiet = list(csv.DictReader(f))
    with open(os.path.join(a.out, 'term.csv')) as f:
        term = f.read().strip().split(',', 1)[1]
    failures, lines = [], []
    warm = a.warmup_minutes * 60
    end = max(float(r['seconds']) for r in rows)
    minutes = end / 60

    # Growth after the warm-up: RSS and the heap in use are judged; RSS's anonymous part (the heap, stacks) and its
    # file pages (code touched for the first time) are shown, where the samples have them.
    split = 'rss_anon_kib' in rows[0] and rows[0]['rss_anon_kib'] not in ('', None)
    for key, name in (('rss_kib', 'RSS'), ('heap_in_use_bytes', 'heap in use'), ('rss_anon_kib', 'anonymous RSS'),
                      ('rss_file_kib', 'file-backed RSS')):
        judged = key in ('rss_kib', 'heap_in_use_bytes')
        if not judged and not split:
            continue
        first, last = median_in(rows, key, warm, warm + 60), median_in(rows, key, end - 60, end + 1)
        if not first or last is None:
            lines.append(f'- {name}: not measured (no samples{" from mallinfo2: an ASan build?" if "heap" in key else ""})')
            continue
        growth = last / first - 1
        ok = growth < GROWTH_LIMIT or not judged
        scale = 1 / 1048576 if key.endswith('_bytes') else 1 / 1024
        verdict = f'{"ok" if ok else "FAILED"}, limit {GROWTH_LIMIT * 100:.0f} %' if judged else 'shown, not judged'
        lines.append(f'- {name}: {first * scale:.1f} MiB in the first minute after the warm-up, {last * scale:.1f} MiB in the '
                     f'last: {growth * 100:+.1f} % ({verdict})')
        if not ok:
            failures.append(f'{name} grew {growth * 100:.1f} %')

    # Descriptors back to the idle count in every quiet spell; threads not growing.
    high = [q for q in quiet if int(q['quiet_fds']) > int(q['idle_fds'])]
    settles = sorted(int(q['settle_seconds']) for q in quiet)
    lines.append(f'- descriptors: {len(quiet) - len(high)} of {len(quiet)} quiet spells back to the idle '
                 f'{quiet[0]["idle_fds"] if quiet else "?"} (longest wait {settles[-1] if settles else "?"} s)'
                 + ('' if not high else ': FAILED in cycles ' + ', '.join(f'{q["cycle"]} ({q["quiet_fds"]})' for q in high)))
    if high:
        failures.append(f'descriptors not back to idle in {len(high)} quiet spells')
    after = [q for q in quiet if float(q['seconds']) > warm]
    if after:
        t_first, t_last = int(after[0]['threads']), int(after[-1]['threads'])
        ok = t_last <= t_first
        lines.append(f'- threads: {t_first} in the first quiet spell after the warm-up, {t_last} in the last '
                     f'({"ok" if ok else "FAILED"})')
        if not ok:
            failures.append(f'threads grew from {t_first} to {t_last}')

    # Every client did its work.
    done, failed = 0, []
    for cycle in sorted(os.listdir(os.path.join(a.out, 'cycles')), key=int):
        d = os.path.join(a.out, 'cycles', cycle)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            with open(path, errors='replace') as f:
                text = f.read()
            if name.endswith('.progress'):
                frames = [int(m) for m in re.findall(r'^frame=(\d+)', text, re.M)]
                ok = bool(frames) and max(frames) > 0
            elif name in ('whip.log', 'bridge.log', 'rooms.log'):
                ok = re.search(r'^\| 3 \|', text, re.M) is not None and 'run failed' not in text
            elif name.startswith('turn-'):
                ok = 'Total lost packets 0 ' in text and 'error' not in text.lower()
            elif name == 'p2p.log':
                ok = '"pages"' in text
            else:
                continue
            if ok:
                done += 1
            else:
                failed.append(f'cycle {cycle} {name.rsplit(".", 1)[0]}')
    lines.append(f'- clients: {done} of {done + len(failed)} runs did their work (ffmpeg viewers got frames, the benches '
                 f'their rows, TURN all messages back, the P2P pages their stats)'
                 + ('' if not failed else ': FAILED: ' + ', '.join(failed[:20])))
    if failed:
        failures.append(f'{len(failed)} client runs did not do their work')

    # The log.
    allowed = read_allowed(a.allowed)
    used = [0] * len(allowed)
    unexpected, counted = [], 0
    with open(os.path.join(a.out, 'server.log'), errors='replace') as f:
        for raw in f:
            line = raw.rstrip('\n')
            if not line:
                continue
            m = LOG_LINE.match(line)
            if m and LEVELS.index(m.group(1)) < LEVELS.index('warning'):
                continue
            counted += 1
            for i, (pattern, _, _) in enumerate(allowed):
                if pattern.search(line):
                    used[i] += 1
                    break
            else:
                unexpected.append(line)
    lines.append(f'- log: {counted} lines of warning or worse, {counted - len(unexpected)} excused by the allow-list, '
                 f'{len(unexpected)} unexpected' + (' (FAILED)' if unexpected else ''))
    for (pattern, reason, number), n in zip(allowed, used):
        if n:
            lines.append(f'  - {n} x `{pattern.pattern}` (allow-list line {number}: {reason})')
    if unexpected:
        failures.append(f'{len(unexpected)} unexpected log lines')
        lines += ['  - unexpected: `' + u[:300] + '`' for u in unexpected[:20]]
    term_ok = term.startswith('exit 0 after ') and int(term.split()[3]) <= 5
    lines.append(f'- SIGTERM at the end: {term} ({"ok" if term_ok else "FAILED"})')
    if not term_ok:
        failures.append(f'SIGTERM: {term}')

    # The table: a row every minute, or every 5 in an hour's run.
    step = max(1, round(minutes / 12))
    table = ['| minute | RSS (MiB) | heap in use (MiB) | heap free in malloc (MiB) | descriptors | threads | CPU (% of a core) |',
             '|---|---|---|---|---|---|---|']
    previous = None
    for m in [0] + list(range(step, int(minutes) + 1, step)):
        rs = [r for r in rows if (m - 1) * 60 < float(r['seconds']) <= m * 60] if m else rows[:1]
        if not rs:
            continue
        r = rs[-1]
        cpu = ''
        if previous is not None and float(r['seconds']) > float(previous['seconds']):
            cpu = f'{(float(r["cpu_seconds"]) - float(previous["cpu_seconds"])) / (float(r["seconds"]) - float(previous["seconds"])) * 100:.0f}'

        def mib(v):
            return f'{float(v) / 1048576:.1f}' if v else 'n/a'
        table.append(f'| {m}{" (idle)" if m == 0 else ""} | {float(r["rss_kib"]) / 1024:.1f} | {mib(r["heap_in_use_bytes"])} | '
                     f'{mib(r["heap_free_bytes"])} | {r["fds"]} | {r["threads"]} | {cpu} |')
        previous = r
    verdict = 'passed' if not failures else 'FAILED: ' + '; '.join(failures)
    report = [f'Soak of {minutes:.0f} minutes ({a.build} build), warm-up {a.warmup_minutes:g} min: {verdict}', ''] + lines + [''] + table
    with open(os.path.join(a.out, 'report.md'), 'w') as f:
        f.write('\n'.join(report) + '\n')
    svg_chart(rows, warm, os.path.join(a.out, 'soak.svg'), f'LiveSwarm soak, {minutes:.0f} minutes ({a.build} build)')
    print('\n'.join(report))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
