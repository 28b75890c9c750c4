#!/usr/bin/env python3
"""Drive N pages (tabs) of one headless Chromium, each a viewer of its own, and print what each measured.

    swarm.py --url URL --pages N --seconds S --stats-js 'return window.p2pStats()' \
             [--script-at PAGE:SECONDS:JS ...] [--hash-appends --chunks-url URL] [--flag FLAG ...]

Each page is a separate document with its own connections. With --hash-appends, a script installed before
any page script records the SHA-256 of every buffer the page appends to a Media Source Extensions SourceBuffer;
the driver polls --chunks-url (the origin's chunk list, /api/v1/streams/APP/STREAM/chunks) throughout the run
and fetches every init section it names, and reports for each page which appended buffers are not byte for
byte something the origin published.

stdout: one JSON line {"pages": [{"index", "stats", "check", "appended": {...}}], "scripts": [{"page", "at", "result"}],
"origin": {...}}.
stderr: "swarm: ..." lines (samples, console entries). Exit status as drive.py (0 ok, 3 browser, 4 page error,
5 stats, 6 timeout).
"""

import argparse
import base64
import hashlib
import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402  (the browser launch, cleanup and error hook are drive.py's)

# Every appended buffer's SHA-256, computed from a copy made before the append (the caller may reuse its buffer).
APPEND_HOOK = """
(() => {
  const original = SourceBuffer.prototype.appendBuffer;
  window.__appended = [];
  SourceBuffer.prototype.appendBuffer = function (data) {
    const view = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const copy = view.slice();
    const entry = { size: copy.length, hash: null };
    window.__appended.push(entry);
    crypto.subtle.digest('SHA-256', copy).then((d) => {
      let s = '';
      for (const b of new Uint8Array(d)) s += String.fromCharCode(b);
      entry.hash = btoa(s);
    });
    return original.call(this, data);
  };
})();
"""


def log(msg):
    print(f'swarm: {msg}', file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--url', required=True, help='page URL; "{i}" is replaced by the page index')
    p.add_argument('--pages', type=int, required=True)
    p.add_argument('--seconds', type=float, required=True, help='run time after the last page loaded')
    p.add_argument('--stats-js', required=True)
    p.add_argument('--check-js', default=None, help='evaluated per page at the end too (a promise is awaited)')
    p.add_argument('--script-at', action='append', default=[], help='PAGE:SECONDS:JS, seconds after the last page loaded')
    p.add_argument('--hash-appends', action='store_true')
    p.add_argument('--chunks-url', default=None)
    p.add_argument('--sample-every', type=float, default=5)
    p.add_argument('--stagger', type=float, default=0.5, help='seconds between page loads')
    p.add_argument('--timeout', type=float, default=None)
    p.add_argument('--flag', action='append', default=[])
    args = p.parse_args(argv)
    scripts = []
    for s in args.script_at:
        page, at, js = s.split(':', 2)
        scripts.append((int(page), float(at), js))
    args.scripts = sorted(scripts, key=lambda x: x[1])
    if args.hash_appends and not args.chunks_url:
        p.error('--hash-appends needs --chunks-url')
    return args


class Origin:
    """What the origin published: every chunk's and init section's SHA-256 (base64), collected by polling."""

    def __init__(self, url):
        self.url = url
        self.hashes = {}      # base64 digest -> name
        self.inits = set()
        self.polls = 0
        self.errors = 0

    def poll(self):
        if not self.url:
            return
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:
                listing = json.load(r)
            self.polls += 1
        except Exception as e:  # noqa: BLE001 - the stream may not be up yet
            self.errors += 1
            return
        for c in listing.get('chunks', []):
            self.hashes[base64.b64encode(bytes.fromhex(c['sha256'])).decode()] = 'chunk ' + c['id']
        base = self.url.split('/api/v1/streams/')[0] + '/' + listing['stream'] + '/'
        for i in listing.get('initSections', []):
            if i['uri'] in self.inits:
                continue
            try:
                with urllib.request.urlopen(base + i['uri'], timeout=5) as r:
                    data = r.read()
                self.hashes[base64.b64encode(hashlib.sha256(data).digest()).decode()] = 'init ' + i['uri']
                self.inits.add(i['uri'])
            except Exception:  # noqa: BLE001
                self.errors += 1


def run(args):
    browser = drive.Browser(args.flag, 30)
    origin = Origin(args.chunks_url)
    try:
        driver = browser.driver
        handles = []
        for i in range(args.pages):
            if i > 0:
                driver.switch_to.new_window('window')  # a tab behind another is hidden, and Chromium stops its video
            if args.hash_appends:
                driver.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': APPEND_HOOK})
            driver.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': drive.ERROR_HOOK})
            driver.get(args.url.replace('{i}', str(i)))
            problem = drive.navigation_problem(driver)
            if problem:
                raise drive.DriveError(drive.EXIT_BROWSER, f'page {i} did not load: {problem}')
            handles.append(driver.current_window_handle)
            log(f'page {i} loaded')
            origin.poll()
            time.sleep(args.stagger)
        started = time.monotonic()
        pending = list(args.scripts)
        scripted = []
        next_sample = args.sample_every
        next_poll = 0
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= args.seconds:
                break
            while pending and pending[0][1] <= elapsed:
                page, at, js = pending.pop(0)
                driver.switch_to.window(handles[page])
                result = driver.execute_script(js)
                scripted.append({'page': page, 'at': at, 'elapsed': round(elapsed, 2), 'result': result})
                log(f't={elapsed:.1f}s page {page} script-at {at}: {drive.compact(result)}')
            if elapsed >= next_poll:
                origin.poll()
                next_poll = elapsed + 2
            if args.sample_every and elapsed >= next_sample:
                next_sample += args.sample_every
                for i, h in enumerate(handles):
                    driver.switch_to.window(h)
                    try:
                        log(f't={elapsed:.1f}s page {i} sample {drive.compact(driver.execute_script(args.stats_js))}')
                    except Exception as e:  # noqa: BLE001
                        log(f't={elapsed:.1f}s page {i} sample failed: {drive.first_line(e)}')
            for line in browser.console():
                log(line)
            time.sleep(0.2)
        origin.poll()
        pages = []
        for i, h in enumerate(handles):
            driver.switch_to.window(h)
            errors = drive.page_errors(driver)
            if errors:
                raise drive.DriveError(drive.EXIT_PAGE, f'page {i} threw: {errors[0]}')
            try:
                stats = driver.execute_script(args.stats_js)
                check = driver.execute_script(args.check_js) if args.check_js else None
            except Exception as e:  # noqa: BLE001
                raise drive.DriveError(drive.EXIT_STATS, f'page {i}: stats failed: {drive.first_line(e)}')
            entry = {'index': i, 'stats': stats, 'check': check}
            if args.hash_appends:
                time.sleep(0.1)  # digests of the last appends settle
                entry['appended'] = driver.execute_script('return window.__appended || []')
            pages.append(entry)
        # The pages kept playing while they were read: what they appended last was made after the last poll.
        origin.poll()
        for entry in pages:
            if not args.hash_appends:
                continue
            appended = entry['appended']
            unmatched = [dict(a, position=n) for n, a in enumerate(appended) if a['hash'] is None or a['hash'] not in origin.hashes]
            kinds = {}
            for a in appended:
                kind = origin.hashes.get(a['hash'], 'unknown').split(' ')[0]
                kinds[kind] = kinds.get(kind, 0) + 1
            entry['appended'] = {'count': len(appended), 'bytes': sum(a['size'] for a in appended), 'kinds': kinds,
                                 'unmatched': unmatched[:20], 'unmatchedCount': len(unmatched)}
        for line in browser.console():
            log(line)
        return {'pages': pages, 'scripts': scripted, 'origin': {'hashes': len(origin.hashes), 'polls': origin.polls, 'errors': origin.errors}}
    finally:
        browser.close()


def main(argv=None):
    args = parse_args(argv)
    drive.become_subreaper()
    signal.signal(signal.SIGTERM, drive._raise_terminated)
    signal.signal(signal.SIGINT, drive._raise_terminated)
    signal.signal(signal.SIGALRM, drive._raise_timeout)
    signal.alarm(int(args.timeout or (args.seconds + args.pages * 5 + 90)))
    try:
        result = run(args)
    except drive.DriveError as e:
        log(f'FAILED: {e}')
        return e.code
    except drive.HardTimeout:
        log('FAILED: hard timeout')
        return drive.EXIT_TIMEOUT
    except drive.Terminated as e:
        log('FAILED: terminated')
        return 128 + e.signum
    finally:
        signal.alarm(0)
    print(drive.compact(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
