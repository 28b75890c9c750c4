#!/usr/bin/env python3
"""One meeting participant in headless Chromium, driven over stdin and stdout: for tests that run the browser in a
network namespace (resume.py) while the driver that changes the network runs outside it. Signals do not reach a
process started with `ip netns exec` reliably, so every command, quitting included, comes as a line.

    room_mover.py --url URL [--seconds 300]

Commands, one JSON object per line on stdin; one JSON line answers each on stdout:
    {"cmd": "stats"}    -> window.meetingStats()
    {"cmd": "reload"}   -> {"ok": true} once the reloaded page has loaded
    {"cmd": "restartIce"} -> window.meeting.restartIce()
    {"cmd": "quit"}     -> {"ok": true}, then the browser closes and this exits
The browser is closed after --seconds whatever happens; progress goes to stderr.
"""

import argparse
import json
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402


def log(msg):
    print(f'room_mover: {msg}', file=sys.stderr, flush=True)


def reply(value):
    sys.stdout.write(json.dumps(value) + '\n')
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True)
    ap.add_argument('--seconds', type=float, default=300)
    args = ap.parse_args()
    deadline = time.monotonic() + args.seconds
    browser = drive.Browser([], page_load_timeout=30)
    try:
        browser.driver.get(args.url)
        log(f'opened {args.url}')
        reply({'ok': True, 'ready': True})
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sys.stdin], [], [], 0.5)
            if not readable:
                continue
            line = sys.stdin.readline()
            if not line:
                log('stdin closed')
                break
            try:
                cmd = json.loads(line).get('cmd')
            except ValueError:
                reply({'error': 'not JSON'})
                continue
            try:
                if cmd == 'stats':
                    reply(browser.driver.execute_script('return window.meetingStats ? window.meetingStats() : null'))
                elif cmd == 'reload':
                    browser.driver.refresh()
                    log('reloaded')
                    reply({'ok': True})
                elif cmd == 'restartIce':
                    reply(browser.driver.execute_script('return window.meeting.restartIce()'))
                elif cmd == 'quit':
                    reply({'ok': True})
                    break
                else:
                    reply({'error': f'no command {cmd}'})
            except Exception as e:  # noqa: BLE001 - reported to the driver, which decides
                reply({'error': f'{type(e).__name__}: {drive.first_line(e)}'})
        for line in browser.console()[-20:]:
            log(line)
    finally:
        browser.close()


if __name__ == '__main__':
    main()
