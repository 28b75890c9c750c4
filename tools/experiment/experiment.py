#!/usr/bin/env python3
"""P2P experiments (docs/P2P.md, "Experiments"): N test viewers of one live stream, run through the swarm lab (/lab/)
in headless Chromium, with P2P on and off, for D seconds each, R times. Writes per-second samples, per-viewer figures
and one summary line per run as CSV, and a report with charts (report.html, and a PNG of each chart).

    experiment.py --server http://127.0.0.1:8080 --stream live/experiment --out DIR
                  [--viewers 5,10,30] [--p2p on,off] [--seconds 60] [--runs 1] [--warmup 20] [--per-page 6]
                  [--announce on|off] [--target 3] [--publisher TEXT]
    experiment.py --report DIR          (the report again, from DIR's CSV files)

scripts/experiment.sh starts a server and a publisher and calls this. Each run opens ceil(N / per-page) Chromium
processes, each with one lab page holding its share of the viewers (a page may create at most 500 RTCPeerConnections
over its life, and 30 viewers re-offering would reach that in one page). After the warm-up it samples every second:

- the origin's own count of the stream's media and playlist bytes (/api/v1/p2p), and the bytes the stream made
  (new parts in /api/v1/streams/APP/STREAM/chunks): the demand is N times what the stream made, and the P2P share of
  media is 1 - origin media / demand, which rests on nothing the viewers say;
- every viewer's own figures through the lab (delay, stalls, bytes from peers, frames presented, failed
  RTCPeerConnection creations), and the machine's CPUs (/proc/stat).

A run is starved by the house rule (Tests/ServerTests/BrowserPlayerTests.swift, CPUSampler.starved): its viewers
presented under 25 frames a second while the CPUs were 70 % busy or more, or Chromium dropped 5 % or more of the
frames it decoded. Starved runs are kept in the CSV and marked, and left out of the report's averages.
"""

import argparse
import csv
import datetime
import json
import math
import os
import shutil
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'Tests', 'Browser'))

CHART_JS = '/usr/share/javascript/chart.js/chart.min.js'

RUN_FIELDS = ['run', 'started', 'viewers', 'p2p', 'announce', 'rep', 'seconds', 'pages', 'made_bytes', 'demand_bytes',
              'origin_media_bytes', 'origin_playlist_bytes', 'peer_bytes_reported', 'share_media', 'share_all',
              'share_media_reported', 'ceiling', 'ratio_to_ceiling', 'median_delay', 'p90_delay', 'stalled_fraction',
              'stalls', 'cpu_busy', 'fps_presented', 'fps_per_page', 'dropped_share', 'starved', 'failed_pcs',
              'playlist_bytes_per_viewer_minute', 'playlists_per_viewer_minute', 'publisher']
SAMPLE_FIELDS = ['run', 'second', 'origin_kbps', 'playlist_kbps', 'peer_kbps', 'demand_kbps', 'median_delay',
                 'stalled_ms', 'cpu_busy', 'playing']
VIEWER_FIELDS = ['run', 'viewer', 'page', 'median_delay', 'stalled_ms', 'stalls', 'fps_presented', 'origin_bytes',
                 'peer_bytes', 'failed_pcs']


def log(msg):
    print(f'experiment: {msg}', file=sys.stderr, flush=True)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def cpu_times():
    with open('/proc/stat') as f:
        v = [float(x) for x in f.readline().split()[1:9]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 4) if xs else None


def quantile(xs, q):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def starved(fps, busy, dropped):
    """The house rule (CPUSampler.starved in Tests/ServerTests/BrowserPlayerTests.swift)."""
    return fps is not None and fps < 25 and (busy >= 0.7 or (dropped or 0) >= 0.05)


class Origin:
    """The origin's own counts for one stream: media and playlist bytes served, and the bytes of the parts it made."""

    def __init__(self, server, stream):
        self.server, self.stream = server, stream
        self.seen = {}

    def served(self):
        for s in get_json(f'{self.server}/api/v1/p2p').get('streams', []):
            if s['stream'] == self.stream:
                return s['originBytes']['media'], s['originBytes']['playlists']
        return 0, 0

    def made(self):
        """Bytes of parts that appeared since the last call (the first call only learns what exists)."""
        chunks = get_json(f'{self.server}/api/v1/streams/{self.stream}/chunks').get('chunks', [])
        first = not self.seen
        new = 0
        for c in chunks:
            if c['id'] not in self.seen:
                self.seen[c['id']] = c['bytes']
                new += c['bytes']
        if len(self.seen) > 2000:
            keep = {c['id'] for c in chunks}
            self.seen = {k: v for k, v in self.seen.items() if k in keep}
        return 0 if first else new


PAGE_SAMPLE = """
const rs = window.lab.rows();
return rs.map((r) => ({ n: r.n, id: r.id, state: r.state, delay: r.delay, stalledMs: r.stalledMs, stalls: r.stalls,
  frames: r.framesPresented, decoded: r.framesDecoded, dropped: r.framesDropped, playing: r.playingSeconds,
  peers: r.peers, origin: r.originMedia, playlists: r.playlists, failed: r.pcFailures, p2p: r.p2p }));
"""


def run_once(args, run_id, n, p2p, rep, origin, progress):
    import drive  # noqa: E402 (Tests/Browser/drive.py: the browser launch and cleanup)

    per = args.per_page
    shares = [per] * (n // per) + ([n % per] if n % per else [])
    browsers = []
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    try:
        for k in shares:
            b = drive.Browser(['--window-size=1280,900'], page_load_timeout=30)
            browsers.append(b)
            b.driver.get(f'{args.server}/lab/?stream={args.stream}&viewers={k}&p2p={1 if p2p else 0}&target={args.target}'
                         f'&announce={1 if args.announce == "on" else 0}')
            problem = drive.navigation_problem(b.driver)
            if problem:
                raise RuntimeError(f'the lab did not load: {problem}')

        def sample_pages():
            out = []
            for i, b in enumerate(browsers):
                for r in b.driver.execute_script(PAGE_SAMPLE):
                    r['page'] = i
                    out.append(r)
            return out

        for s in range(args.warmup):
            time.sleep(1)
            progress(f'warming up {s + 1}/{args.warmup} s')
        origin.made()
        media0, playlists0 = origin.served()
        rows0 = {r['id']: r for r in sample_pages() if r['id']}
        cpu0 = cpu_times()
        t0 = time.monotonic()
        samples, delays = [], {}
        made = 0
        last = (media0, playlists0, sum(r['peers'] or 0 for r in rows0.values()), 0, t0)
        for second in range(1, args.seconds + 1):
            time.sleep(max(0, t0 + second - time.monotonic()))
            media, playlists = origin.served()
            made += origin.made()
            rows = sample_pages()
            now = time.monotonic()
            peers = sum(r['peers'] or 0 for r in rows)
            dt = now - last[4]
            c = cpu_times()
            busy = (c[0] - cpu0[0]) / max(1e-9, c[1] - cpu0[1])
            for r in rows:
                if r['id'] and r['delay'] is not None and r['state'] in ('playing', 'solo'):
                    delays.setdefault(r['id'], []).append(r['delay'])
            stalled = sum((r['stalledMs'] or 0) - (rows0.get(r['id'], {}).get('stalledMs') or 0) for r in rows if r['id'])
            sample = {
                'run': run_id, 'second': second,
                'origin_kbps': round((media - last[0]) * 8 / 1000 / dt, 1),
                'playlist_kbps': round((playlists - last[1]) * 8 / 1000 / dt, 1),
                'peer_kbps': round(max(0, peers - last[2]) * 8 / 1000 / dt, 1),
                'demand_kbps': round(n * (made - last[3]) * 8 / 1000 / dt, 1),
                'median_delay': median([r['delay'] for r in rows if r['state'] in ('playing', 'solo')]),
                'stalled_ms': round(stalled), 'cpu_busy': round(busy, 3),
                'playing': sum(1 for r in rows if r['state'] in ('playing', 'solo')),
            }
            samples.append(sample)
            last = (media, playlists, peers, made, now)
            share = 1 - (media - media0) / (n * made) if made else None
            progress(f'{second}/{args.seconds} s · share {"-" if share is None else f"{share * 100:.1f} %"} · '
                     f'delay {sample["median_delay"] if sample["median_delay"] is not None else "-"} s · CPU {busy * 100:.0f} %')
        media, playlists = origin.served()
        rows = sample_pages()
        elapsed = time.monotonic() - t0
        c = cpu_times()
        busy = (c[0] - cpu0[0]) / max(1e-9, c[1] - cpu0[1])
    finally:
        for b in browsers:
            b.close()

    viewers = []
    for r in rows:
        if not r['id']:
            continue
        r0 = rows0.get(r['id'], {})
        frames = (r['frames'] or 0) - (r0.get('frames') or 0)
        played = (r['playing'] or 0) - (r0.get('playing') or 0)
        viewers.append({
            'run': run_id, 'viewer': r['id'], 'page': r['page'], 'median_delay': median(delays.get(r['id'], [])),
            'stalled_ms': round((r['stalledMs'] or 0) - (r0.get('stalledMs') or 0)),
            'stalls': (r['stalls'] or 0) - (r0.get('stalls') or 0),
            'fps_presented': round(frames / played, 2) if played > 0 else None,
            'origin_bytes': (r['origin'] or 0) - (r0.get('origin') or 0),
            'peer_bytes': (r['peers'] or 0) - (r0.get('peers') or 0),
            'failed_pcs': r['failed'] or 0,
        })
    decoded = sum((r['decoded'] or 0) - (rows0.get(r['id'], {}).get('decoded') or 0) for r in rows if r['id'])
    dropped = sum((r['dropped'] or 0) - (rows0.get(r['id'], {}).get('dropped') or 0) for r in rows if r['id'])
    fpss = [v['fps_presented'] for v in viewers if v['fps_presented'] is not None]
    fps = statistics.mean(fpss) if fpss else None
    dropped_share = dropped / decoded if decoded > 0 else None
    demand = n * made
    om, op = media - media0, playlists - playlists0
    peers = sum(v['peer_bytes'] for v in viewers)
    ceiling = (n - 1) / n if p2p else 0.0
    share_media = 1 - om / demand if demand else None
    all_delays = [d for ds in delays.values() for d in ds]
    summary = {
        'run': run_id, 'started': started, 'viewers': n, 'p2p': 'on' if p2p else 'off', 'announce': args.announce,
        'rep': rep, 'seconds': round(elapsed), 'pages': len(shares), 'made_bytes': made, 'demand_bytes': demand,
        'origin_media_bytes': om, 'origin_playlist_bytes': op, 'peer_bytes_reported': peers,
        'share_media': round(share_media, 4) if share_media is not None else None,
        'share_all': round((demand - om) / (demand + op), 4) if demand + op else None,
        'share_media_reported': round(peers / (peers + om), 4) if peers + om else None,
        'ceiling': round(ceiling, 4),
        'ratio_to_ceiling': round(share_media / ceiling, 4) if ceiling and share_media is not None else None,
        'median_delay': median(all_delays), 'p90_delay': quantile(all_delays, 0.9),
        'stalled_fraction': round(sum(v['stalled_ms'] for v in viewers) / (n * elapsed * 1000), 5),
        'stalls': sum(v['stalls'] for v in viewers), 'cpu_busy': round(busy, 3),
        'fps_presented': round(fps, 2) if fps is not None else None,
        # Frames presented a second, the mean of each page's viewers: a starved Chromium process shows here.
        'fps_per_page': ';'.join(f'{statistics.mean(p):.1f}' for p in (
            [v['fps_presented'] for v in viewers if v['page'] == i and v['fps_presented'] is not None] for i in range(len(shares))) if p),
        'dropped_share': round(dropped_share, 4) if dropped_share is not None else None,
        'starved': 1 if starved(fps, busy, dropped_share) else 0,
        'failed_pcs': sum(v['failed_pcs'] for v in viewers),
        'playlist_bytes_per_viewer_minute': round(op / n / (elapsed / 60)),
        'playlists_per_viewer_minute': round(sum((r['playlists'] or 0) - (rows0.get(r['id'], {}).get('playlists') or 0)
                                                 for r in rows if r['id']) / n / (elapsed / 60), 1),
        'publisher': args.publisher,
    }
    return summary, samples, viewers


def write_csv(path, fields, rows, append):
    new = not append or not os.path.exists(path)
    with open(path, 'a' if append else 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator='\n')
        if new:
            w.writeheader()
        for r in rows:
            w.writerow({k: '' if r.get(k) is None else r.get(k) for k in fields})


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def run_all(args):
    os.makedirs(args.out, exist_ok=True)
    ns = [int(x) for x in args.viewers.split(',')]
    modes = [m.strip() == 'on' for m in args.p2p.split(',')]
    plan = [(rep, n, p2p) for rep in range(1, args.runs + 1) for n in ns for p2p in modes]
    origin = Origin(args.server, args.stream)
    for f in ('runs.csv', 'samples.csv', 'viewers.csv'):
        if os.path.exists(os.path.join(args.out, f)):
            os.remove(os.path.join(args.out, f))
    width = 0
    for i, (rep, n, p2p) in enumerate(plan, 1):
        run_id = f'N{n}-{"on" if p2p else "off"}-{rep}'

        def progress(text, i=i, run_id=run_id):
            # A line that rewrites itself on a terminal; elsewhere (CI logs) one line every 10 s.
            nonlocal width
            line = f'run {i}/{len(plan)} {run_id}: {text}'
            step = text.split(' ')[0] if text[0].isdigit() else text.split(' ')[2]
            if sys.stderr.isatty():
                sys.stderr.write('\r' + line.ljust(width))
                width = len(line)
            elif step.split('/')[0].endswith('0') or step.startswith('1/'):
                sys.stderr.write(line + '\n')
            sys.stderr.flush()

        summary, samples, viewers = run_once(args, run_id, n, p2p, rep, origin, progress)
        if sys.stderr.isatty():
            sys.stderr.write('\n')
        log(f'{run_id}: share of media {summary["share_media"]}, with playlists {summary["share_all"]}, median delay '
            f'{summary["median_delay"]} s, stalled {summary["stalled_fraction"]}, CPU {summary["cpu_busy"]}, '
            f'{summary["fps_presented"]} fps{" (STARVED)" if summary["starved"] else ""}')
        write_csv(os.path.join(args.out, 'runs.csv'), RUN_FIELDS, [summary], append=True)
        write_csv(os.path.join(args.out, 'samples.csv'), SAMPLE_FIELDS, samples, append=True)
        write_csv(os.path.join(args.out, 'viewers.csv'), VIEWER_FIELDS, viewers, append=True)
        time.sleep(3)  # the tracker forgets the closed pages' peers; the next run starts with an empty swarm


# --- the report ----------------------------------------------------------------------------------------------

REPORT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LiveSwarm P2P experiment</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.3rem; } figure { margin: 1rem 0; border: 1px solid #e3e3e3; padding: .5rem; }
figcaption { color: #444; } .box { position: relative; height: 320px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; } th, td { padding: .15rem .5rem; border-bottom: 1px solid #eee; text-align: right; }
th { font-size: 12px; color: #555; } .starved { color: #b00; }
</style></head><body>
<h1>LiveSwarm P2P experiment</h1>
<p id="about"></p>
<figure><figcaption>P2P share of media against N (the origin's own count against N times what the stream made): the
mean of the runs that were not starved, with the lowest and highest; the share counting playlists too; the (N-1)/N
ceiling and 90 % of it</figcaption><div class="box"><canvas id="share"></canvas></div></figure>
<figure><figcaption>Origin against peers over time, every run (kbit/s; origin: its own count of media; peers: what
viewers say)</figcaption><div class="box"><canvas id="traffic"></canvas></div></figure>
<figure><figcaption>Viewers' median delay: the fraction of viewers at or under each delay, by N and P2P</figcaption>
<div class="box"><canvas id="delay"></canvas></div></figure>
<figure><figcaption>Viewers' stalled time: the fraction of viewers at or under each share of the run stalled (%)</figcaption>
<div class="box"><canvas id="stalls"></canvas></div></figure>
<figure><figcaption>Each run's share of media as a fraction of the (N-1)/N ceiling (P2P on); starved runs in red</figcaption>
<div class="box"><canvas id="ratio"></canvas></div></figure>
<h2>Runs</h2><table id="runs"></table>
<script src="chart.min.js"></script>
<script>
const DATA = __DATA__;
const num = (v) => (v === '' || v == null ? null : Number(v));
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const runs = DATA.runs, samples = DATA.samples, viewers = DATA.viewers;
const config = (r) => `N=${r.viewers} P2P ${r.p2p}`;
const configs = [...new Set(runs.map(config))];
const charts = {};
const base = (x, y, extra = {}) => ({ animation: false, maintainAspectRatio: false, parsing: true,
  scales: { x: { type: 'linear', title: { display: true, text: x } }, y: { beginAtZero: true, title: { display: true, text: y } } }, ...extra });

// P2P share against N.
{
  const on = runs.filter((r) => r.p2p === 'on' && r.starved !== '1');
  const ns = [...new Set(on.map((r) => num(r.viewers)))].sort((a, b) => a - b);
  const by = (n) => on.filter((r) => num(r.viewers) === n);
  const pct = (v) => Math.round(v * 10000) / 100;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const pts = (f) => ns.map((n) => ({ x: n, y: pct(f(by(n))) }));
  charts.share = new Chart(document.getElementById('share'), { type: 'line', options: base('viewers (N)', '%', { scales: {
      x: { type: 'linear', title: { display: true, text: 'viewers (N)' } }, y: { min: 0, max: 100, title: { display: true, text: '%' } } } }),
    data: { datasets: [
      { label: 'share of media, mean', data: pts((rs) => mean(rs.map((r) => num(r.share_media)))), borderColor: '#2ca02c', backgroundColor: '#2ca02c' },
      { label: 'lowest', data: pts((rs) => Math.min(...rs.map((r) => num(r.share_media)))), showLine: false, pointStyle: 'triangle', borderColor: '#2ca02c', backgroundColor: '#2ca02c' },
      { label: 'highest', data: pts((rs) => Math.max(...rs.map((r) => num(r.share_media)))), showLine: false, pointStyle: 'triangle', rotation: 180, borderColor: '#2ca02c', backgroundColor: '#2ca02c' },
      { label: 'share counting playlists, mean', data: pts((rs) => mean(rs.map((r) => num(r.share_all)))), borderColor: '#1f77b4', backgroundColor: '#1f77b4' },
      { label: '(N-1)/N ceiling', data: ns.map((n) => ({ x: n, y: pct((n - 1) / n) })), borderColor: '#7f7f7f', borderDash: [6, 4] },
      { label: '90 % of the ceiling', data: ns.map((n) => ({ x: n, y: pct(0.9 * (n - 1) / n) })), borderColor: '#bbb', borderDash: [2, 3] },
    ] } });
}

// Origin against peers over time.
{
  const ds = [];
  runs.forEach((r, i) => {
    const ss = samples.filter((s) => s.run === r.run);
    const c = COLOURS[i % COLOURS.length];
    ds.push({ label: `${r.run} origin`, data: ss.map((s) => ({ x: num(s.second), y: num(s.origin_kbps) })), borderColor: c, backgroundColor: c, pointRadius: 0, borderWidth: 1.5 });
    ds.push({ label: `${r.run} peers`, data: ss.map((s) => ({ x: num(s.second), y: num(s.peer_kbps) })), borderColor: c, backgroundColor: c, pointRadius: 0, borderWidth: 1.5, borderDash: [5, 3] });
  });
  charts.traffic = new Chart(document.getElementById('traffic'), { type: 'line', options: base('seconds into the run', 'kbit/s'), data: { datasets: ds } });
}

// Distributions over viewers (runs that were not starved), as cumulative fractions.
function cdf(id, field, scale, xTitle) {
  const ds = configs.map((cfg, i) => {
    const ids = new Set(runs.filter((r) => config(r) === cfg && r.starved !== '1').map((r) => r.run));
    const xs = viewers.filter((v) => ids.has(v.run) && v[field] !== '').map((v) => scale(v)).sort((a, b) => a - b);
    return { label: cfg, data: xs.map((x, k) => ({ x, y: (k + 1) / xs.length })), borderColor: COLOURS[i % COLOURS.length],
             backgroundColor: COLOURS[i % COLOURS.length], stepped: true, pointRadius: 0 };
  });
  charts[id] = new Chart(document.getElementById(id), { type: 'line', options: base(xTitle, 'fraction of viewers'), data: { datasets: ds } });
}
cdf('delay', 'median_delay', (v) => num(v.median_delay), 'median delay (s)');
cdf('stalls', 'stalled_ms', (v) => {
  const r = runs.find((x) => x.run === v.run);
  return Math.round(num(v.stalled_ms) / (num(r.seconds) * 1000) * 100 * 1000) / 1000;
}, 'stalled (% of the run)');

// Ratio to the ceiling, per run.
{
  const on = runs.filter((r) => r.p2p === 'on');
  charts.ratio = new Chart(document.getElementById('ratio'), { type: 'bar',
    options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 1.1, title: { display: true, text: 'share / ceiling' } } } },
    data: { labels: on.map((r) => r.run), datasets: [{ label: 'share of media / (N-1)/N', data: on.map((r) => num(r.ratio_to_ceiling)),
      backgroundColor: on.map((r) => (r.starved === '1' ? '#d62728' : '#2ca02c')) }] } });
}

// The runs table and what this is.
{
  const cols = ['run', 'viewers', 'p2p', 'seconds', 'share_media', 'share_all', 'ratio_to_ceiling', 'median_delay', 'p90_delay',
                'stalled_fraction', 'cpu_busy', 'fps_presented', 'fps_per_page', 'starved', 'failed_pcs', 'playlist_bytes_per_viewer_minute'];
  document.getElementById('runs').innerHTML = '<tr>' + cols.map((c) => `<th>${c}</th>`).join('') + '</tr>'
    + runs.map((r) => `<tr class="${r.starved === '1' ? 'starved' : ''}">` + cols.map((c) => `<td>${r[c] ?? ""}</td>`).join('') + '</tr>').join('');
  document.getElementById('about').textContent = `${runs.length} runs of ${configs.join(', ')}; ${DATA.machine}; publisher: ${runs[0] ? runs[0].publisher : '-'}. `
    + 'Starved runs (the house rule: under 25 frames a second presented with the CPUs 70 % busy, or 5 % of frames dropped) are marked and left out of the averages.';
}
window.report = { charts, ready: true };
</script></body></html>
"""


def machine():
    cores = os.cpu_count()
    mem = 0
    try:
        with open('/proc/meminfo') as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        pass
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{cores} cores, {mem:.0f} GiB, {model}'


def report(out, pngs=True):
    """report.html from the CSV files in `out` (exactly their values), Chart.js beside it, and a PNG of each chart."""
    data = {'runs': read_csv(os.path.join(out, 'runs.csv')), 'samples': read_csv(os.path.join(out, 'samples.csv')),
            'viewers': read_csv(os.path.join(out, 'viewers.csv')), 'machine': machine()}
    html = REPORT.replace('__DATA__', json.dumps(data).replace('</', '<\\/'))
    with open(os.path.join(out, 'report.html'), 'w') as f:
        f.write(html)
    if os.path.exists(CHART_JS):
        shutil.copy(CHART_JS, os.path.join(out, 'chart.min.js'))
    else:
        log(f'{CHART_JS} is missing (apt install libjs-chart.js): the report has no charts')
        return
    if not pngs:
        return
    import drive  # noqa: E402

    b = drive.Browser(['--window-size=1280,2600'], page_load_timeout=30)
    try:
        d = b.driver
        d.get('file://' + os.path.abspath(os.path.join(out, 'report.html')))
        for _ in range(50):
            if d.execute_script('return !!(window.report && window.report.ready)'):
                break
            time.sleep(0.1)
        for name in ('share', 'traffic', 'delay', 'stalls', 'ratio'):
            d.find_element('id', name).screenshot(os.path.join(out, f'{name}.png'))
        d.save_screenshot(os.path.join(out, 'report.png'))
        errors = drive.page_errors(d)
        if errors:
            log(f'the report page threw: {errors}')
    finally:
        b.close()
    log(f'report: {os.path.join(out, "report.html")} and share.png, traffic.png, delay.png, stalls.png, ratio.png, report.png')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--server', help='the LiveSwarm server, http://HOST:PORT')
    ap.add_argument('--stream', help='APP/STREAM, live')
    ap.add_argument('--out', required=True)
    ap.add_argument('--viewers', default='5', help='comma-separated N (default 5)')
    ap.add_argument('--p2p', default='on', help='on, off or on,off (default on)')
    ap.add_argument('--seconds', type=int, default=60, help='measured seconds per run (default 60)')
    ap.add_argument('--runs', type=int, default=1, help='repetitions of each N and P2P setting (default 1)')
    ap.add_argument('--warmup', type=int, default=20, help='seconds before measuring, for viewers to join (default 20)')
    ap.add_argument('--per-page', type=int, default=6, help='viewers per Chromium process (default 6)')
    ap.add_argument('--announce', choices=['on', 'off'], default='on', help='part announcements (default on)')
    ap.add_argument('--target', type=float, default=3, help="viewers' target delay, s (default 3)")
    ap.add_argument('--publisher', default='given stream', help='what publishes the stream, for the record')
    ap.add_argument('--report', action='store_true', help='only make the report from --out\'s CSV files')
    args = ap.parse_args()
    if not args.report:
        if not args.server or not args.stream:
            ap.error('--server and --stream are needed to run')
        drive_env_check()
        run_all(args)
    report(args.out)


def drive_env_check():
    import drive  # noqa: E402, F401 (fails early when selenium is missing)


if __name__ == '__main__':
    main()
