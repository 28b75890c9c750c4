#!/usr/bin/env python3
"""Pages in one headless Chromium (a window each, so none is a hidden background tab), driven over stdin and stdout
by a test that decides what to do next from what it reads: open a page, run a snippet in it, click, type, take a
screenshot.

    pages.py [--seconds 300] [--flag FLAG ...]

Commands, one JSON object per line on stdin; one JSON line answers each on stdout ({"error": "..."} on failure):
    {"cmd": "open", "url": URL, "block": [PATTERN ...]}  -> {"page": N}  (block: URL patterns the page may not load,
                                                                          as Chromium's Network.setBlockedURLs takes them)
    {"cmd": "eval", "page": N, "js": "return ..."}      -> {"result": ...}  (a returned promise is awaited)
    {"cmd": "click", "page": N, "css": SELECTOR}        -> {"ok": true}     (a real click, through WebDriver)
    {"cmd": "type", "page": N, "css": SELECTOR, "text": T} -> {"ok": true}  (the field is cleared first)
    {"cmd": "screenshot", "page": N, "path": PNG}       -> {"ok": true}
    {"cmd": "errors", "page": N}                        -> {"errors": [...]} (uncaught errors and rejections)
    {"cmd": "quit"}                                     -> {"ok": true}, then the browser closes and this exits
The browser is closed after --seconds whatever happens. Progress and the browser's console go to stderr, as
"pages: ..." lines.
"""

import argparse
import json
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402  (the browser launch, cleanup and error hook are drive.py's)


def log(msg):
    print(f'pages: {msg}', file=sys.stderr, flush=True)


def reply(value):
    sys.stdout.write(json.dumps(value) + '\n')
    sys.stdout.flush()


class Pages:
    def __init__(self, browser):
        self.browser = browser
        self.driver = browser.driver
        self.handles = []

    def page(self, n):
        if not isinstance(n, int) or not 0 <= n < len(self.handles):
            raise ValueError(f'no page {n}')
        self.driver.switch_to.window(self.handles[n])
        return self.driver

    def open(self, url, block):
        d = self.driver
        if self.handles:
            d.switch_to.new_window('window')  # a tab behind another is hidden, and Chromium stops its media
        d.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': drive.ERROR_HOOK})
        if block:
            d.execute_cdp_cmd('Network.enable', {})
            d.execute_cdp_cmd('Network.setBlockedURLs', {'urls': block})
        d.get(url)
        problem = drive.navigation_problem(d)
        if problem:
            raise RuntimeError(f'{url} did not load: {problem}')
        self.handles.append(d.current_window_handle)
        log(f'page {len(self.handles) - 1}: {url}')
        return len(self.handles) - 1

    def run(self, c):
        cmd = c.get('cmd')
        if cmd == 'open':
            return {'page': self.open(c['url'], c.get('block') or [])}
        if cmd == 'eval':
            return {'result': self.page(c.get('page')).execute_script(c['js'])}
        if cmd == 'click':
            self.page(c.get('page')).find_element('css selector', c['css']).click()
            return {'ok': True}
        if cmd == 'type':
            field = self.page(c.get('page')).find_element('css selector', c['css'])
            field.clear()
            field.send_keys(c['text'])
            return {'ok': True}
        if cmd == 'screenshot':
            self.page(c.get('page')).save_screenshot(c['path'])
            return {'ok': True}
        if cmd == 'errors':
            return {'errors': drive.page_errors(self.page(c.get('page')))}
        return {'error': f'no command {cmd}'}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seconds', type=float, default=300)
    ap.add_argument('--flag', action='append', default=[])
    args = ap.parse_args()
    deadline = time.monotonic() + args.seconds
    browser = drive.Browser(args.flag, page_load_timeout=30)
    try:
        pages = Pages(browser)
        reply({'ok': True, 'ready': True})
        while time.monotonic() < deadline:
            for line in browser.console():
                log(line)
            readable, _, _ = select.select([sys.stdin], [], [], 0.5)
            if not readable:
                continue
            line = sys.stdin.readline()
            if not line:
                log('stdin closed')
                break
            try:
                c = json.loads(line)
            except ValueError:
                reply({'error': 'not JSON'})
                continue
            if c.get('cmd') == 'quit':
                reply({'ok': True})
                break
            try:
                reply(pages.run(c))
            except Exception as e:  # noqa: BLE001 - reported to the test, which decides
                reply({'error': f'{type(e).__name__}: {drive.first_line(e)}'})
        else:
            log(f'{args.seconds} s are up')
        for line in browser.console():
            log(line)
    finally:
        browser.close()


if __name__ == '__main__':
    main()
