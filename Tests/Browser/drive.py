#!/usr/bin/env python3
"""Drive one page in headless Chromium and print what it measured.

    drive.py --url URL --seconds N --stats-js 'return window.glassClockStats()' \
             [--script-at SECONDS:JS ...] [--sample-every S] [--timeout S] [--screenshot PNG]

Opens URL, lets it run for N seconds (counted from the end of page load), runs each
--script-at snippet at its time, then evaluates --stats-js once more and prints its result
as ONE JSON line on stdout. Everything else (periodic samples, browser console, timings)
goes to stderr, one line each, prefixed with "drive:".

Exit status:
  0  stats printed
  2  bad arguments
  3  the browser or chromedriver did not start, or the page did not load
  4  the page threw (uncaught exception or unhandled promise rejection) or a --script-at snippet failed
  5  --stats-js threw or returned null/undefined
  6  hard timeout (--timeout) hit
  128+N  killed by signal N (SIGTERM, SIGINT), after quitting the browser
The browser is always quit (and its process group killed if quitting hangs).

Needs Python 3.9+, Selenium 4 (pip install selenium), /usr/bin/chromium and
/usr/bin/chromedriver (Debian: apt-get install chromium chromium-driver).
"""

import argparse
import ctypes
import json
import os
import subprocess
import shutil
import signal
import sys
import tempfile
import time

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('CHROMEDRIVER', '/usr/bin/chromedriver')

# Flags from /work/shared/INTEROP.md: headless, fake media devices, loopback ICE candidates,
# no throttling of background pages or timers, autoplay without a user gesture.
CHROMIUM_FLAGS = [
    '--headless=new',
    '--no-sandbox',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    '--no-first-run',
    '--disable-gpu',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-renderer-backgrounding',
    '--disable-background-timer-throttling',
    '--disable-backgrounding-occluded-windows',
    '--window-size=1280,900',
]

# Installed before any page script runs: records uncaught errors so the driver can fail
# on them (console errors alone are only reported, since a 404 favicon is one too).
ERROR_HOOK = """
window.__driveErrors = [];
window.addEventListener('error', (e) => {
  window.__driveErrors.push(String(e.message || e.type) + (e.filename ? ' at ' + e.filename + ':' + e.lineno + ':' + e.colno : ''));
});
window.addEventListener('unhandledrejection', (e) => {
  const r = e.reason;
  window.__driveErrors.push('unhandled rejection: ' + (r && r.stack ? r.stack : String(r)));
});
"""

EXIT_BROWSER, EXIT_PAGE, EXIT_STATS, EXIT_TIMEOUT = 3, 4, 5, 6  # 2: argparse's usage error


def become_subreaper():
    """Orphaned descendants (Chromium helpers whose parent died, crashpad) are reparented
    to this process instead of PID 1, so reap_descendants() can end and reap them: in a
    container whose PID 1 does not reap, they would otherwise stay as zombies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_descendants():
    """SIGKILL and reap every remaining child of this process (all of them were started by
    this driver: chromedriver, Chromium and its helpers)."""
    me = os.getpid()
    for _ in range(20):
        alive = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open(f'/proc/{entry}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != 'Z':
                alive.append(int(entry))
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        if not alive:
            time.sleep(0.05)  # zombies not yet reaped or orphans still being reparented
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    return
            except ChildProcessError:
                return
        else:
            time.sleep(0.05)


class DriveError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class HardTimeout(BaseException):
    """BaseException so that no `except Exception` in Selenium swallows it."""


class Terminated(BaseException):
    """SIGTERM/SIGINT (e.g. the test runner gave up): unwind so the browser is still quit."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def log(msg):
    print(f'drive: {msg}', file=sys.stderr, flush=True)


def parse_script_at(text):
    when, sep, js = text.partition(':')
    try:
        seconds = float(when)
    except ValueError:
        seconds = None
    if not sep or seconds is None or seconds < 0 or not js.strip():
        raise argparse.ArgumentTypeError(f'expected SECONDS:JS, got {text!r}')
    return seconds, js


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--url', required=True)
    p.add_argument('--seconds', type=float, required=True, help='how long to let the page run after load')
    p.add_argument('--stats-js', required=True, help="JS evaluated for the result, e.g. 'return window.glassClockStats()'")
    p.add_argument('--script-at', type=parse_script_at, action='append', default=[], metavar='SECONDS:JS',
                   help='run JS at SECONDS after load (repeatable); its return value is logged')
    p.add_argument('--sample-every', type=float, default=1.0, metavar='S',
                   help='log --stats-js to stderr every S seconds (0: never); default 1')
    p.add_argument('--timeout', type=float, default=None, metavar='S',
                   help='hard limit for the whole run; default seconds + 60')
    p.add_argument('--page-load-timeout', type=float, default=30.0, metavar='S')
    p.add_argument('--flag', action='append', default=[], metavar='FLAG', help='extra Chromium flag (repeatable)')
    p.add_argument('--trust-ca', metavar='PEM', help='a CA certificate the browser trusts (in an NSS database of its own)')
    p.add_argument('--screenshot', metavar='PNG', help='save a screenshot of the page at the end')
    p.add_argument('--allow-page-errors', action='store_true', help='report uncaught page errors but do not fail')
    args = p.parse_args(argv)
    if args.seconds < 0:
        p.error('--seconds must be >= 0')
    if args.timeout is None:
        args.timeout = args.seconds + 60
    return args


def compact(value):
    return json.dumps(value, separators=(',', ':'), allow_nan=False, default=str)


def lower_priority(niceness):
    """In a child before exec: `niceness` more, for good. Chromium raises the priority of its own UI, IO and GPU
    threads (nice -8), which it can as root: a browser started at nice 10 then ran at -8, above the server under
    test. Dropping CAP_SYS_NICE from the bounding set (prctl PR_CAPBSET_DROP) keeps it from every program this
    child executes, so the browser stays at or below the niceness it was given."""
    os.nice(niceness)
    PR_CAPBSET_DROP, CAP_SYS_NICE = 24, 23
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) != 0 and os.geteuid() == 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_CAPBSET_DROP, CAP_SYS_NICE)')


def nss_home(ca_pem):
    """A HOME whose NSS database (~/.pki/nssdb, where Chromium on Linux keeps the user's certificates, outside the
    profile) trusts `ca_pem` to identify servers: for TURN over TLS (`turns:`), whose certificate Chromium checks."""
    home = tempfile.mkdtemp(prefix='drive-home-')
    db = os.path.join(home, '.pki', 'nssdb')
    os.makedirs(db)
    subprocess.run(['certutil', '-N', '-d', f'sql:{db}', '--empty-password'], check=True, capture_output=True)
    subprocess.run(['certutil', '-A', '-d', f'sql:{db}', '-n', 'liveswarm-test-ca', '-t', 'C,,', '-i', ca_pem],
                   check=True, capture_output=True)
    return home


class Browser:
    def __init__(self, extra_flags, page_load_timeout, niceness=0, trust_ca=None):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix='drive-chromium-')
        self.home = nss_home(trust_ca) if trust_ca else None
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS + extra_flags + [f'--user-data-dir={self.profile}']:
            options.add_argument(flag)
        options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        # Own process group: on a hang, the whole chromedriver + Chromium tree is killed
        # with one signal, without touching any other Chromium on the machine.
        # `niceness` lowers the browser's CPU priority (meeting.py: the participants already in a room, so that a
        # late joiner's page and the server are measured rather than the other browsers' contention).
        popen_kw = {'start_new_session': True}
        if niceness:
            popen_kw['preexec_fn'] = lambda: lower_priority(niceness)
        env = dict(os.environ, HOME=self.home) if self.home else None
        self.service = Service(CHROMEDRIVER, popen_kw=popen_kw, env=env)
        self.driver = None
        try:
            self._start(options, page_load_timeout)
        except BaseException:  # including HardTimeout and KeyboardInterrupt: never leak a browser
            self.close()
            raise

    def _start(self, options, page_load_timeout):
        from selenium import webdriver

        started = time.monotonic()
        try:
            self.driver = webdriver.Chrome(service=self.service, options=options)
        except Exception as e:
            raise DriveError(EXIT_BROWSER, f'browser did not start: {type(e).__name__}: {first_line(e)}')
        log(f'browser started in {time.monotonic() - started:.2f} s '
            f'(Chromium {self.driver.capabilities.get("browserVersion", "?")})')
        self.driver.set_page_load_timeout(page_load_timeout)
        self.driver.set_script_timeout(30)
        self.driver.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': ERROR_HOOK})

    def console(self):
        """New browser console entries since the last call, as log lines."""
        try:
            entries = self.driver.get_log('browser')
        except Exception as e:
            return [f'(console log unavailable: {first_line(e)})']
        return [f'console {e.get("level")} {e.get("source", "")}: {e.get("message")}' for e in entries]

    def close(self):
        # A SIGTERM now (a test runner ending a page whose run just finished, or a second signal) must not cut the
        # cleanup short: the browser would outlive this process (seen in CI as an orphaned chromedriver).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        pid = None
        if self.service is not None and getattr(self.service, 'process', None) is not None:
            pid = self.service.process.pid
        if self.driver is not None:
            old = signal.signal(signal.SIGALRM, _raise_timeout)
            signal.alarm(10)
            try:
                self.driver.quit()
            except BaseException as e:  # noqa: BLE001 - falls back to killing the group below
                log(f'quit failed ({type(e).__name__}), killing the browser')
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, old)
            self.driver = None
        elif self.service is not None:
            try:
                self.service.stop()
            except Exception:  # noqa: BLE001
                pass
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # leftovers only; normally the group is gone
            except (ProcessLookupError, PermissionError):
                pass
        reap_descendants()
        shutil.rmtree(self.profile, ignore_errors=True)
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)


def first_line(e):
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _raise_timeout(signum, frame):
    raise HardTimeout()


def page_errors(driver):
    try:
        return driver.execute_script('const e = window.__driveErrors || []; window.__driveErrors = []; return e;') or []
    except Exception as e:  # noqa: BLE001
        return [f'cannot read page errors: {first_line(e)}']


def navigation_problem(driver):
    """Chromium shows an error page instead of raising for refused connections and HTTP errors."""
    try:
        # current_url reports the requested URL; the document knows it is an error page.
        url, status = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return [document.URL, n ? n.responseStatus : null];")
        if url.startswith('chrome-error://'):
            return 'network error (connection refused, DNS, ...)'
    except Exception as e:  # noqa: BLE001
        return f'cannot inspect the page: {first_line(e)}'
    if isinstance(status, int) and status >= 400:
        return f'HTTP {status}'
    return None


def run(args):
    browser = Browser(args.flag, args.page_load_timeout, trust_ca=args.trust_ca)
    try:
        driver = browser.driver

        def drain_console():
            for line in browser.console():
                log(line)

        def check_page():
            errors = page_errors(driver)
            for err in errors:
                log(f'page error: {err}')
            if errors and not args.allow_page_errors:
                drain_console()
                raise DriveError(EXIT_PAGE, f'page threw: {errors[0]}')

        def stats():
            try:
                value = driver.execute_script(args.stats_js)
            except Exception as e:  # noqa: BLE001
                raise DriveError(EXIT_STATS, f'--stats-js threw: {first_line(e)}')
            if value is None:
                raise DriveError(EXIT_STATS, '--stats-js returned null/undefined (stats unavailable)')
            return value

        started = time.monotonic()
        try:
            driver.get(args.url)
        except Exception as e:  # noqa: BLE001
            drain_console()
            raise DriveError(EXIT_BROWSER, f'page did not load: {first_line(e)}')
        t0 = time.monotonic()
        problem = navigation_problem(driver)
        if problem:
            drain_console()
            raise DriveError(EXIT_BROWSER, f'page did not load: {problem}: {args.url}')
        log(f'page loaded in {t0 - started:.2f} s: {args.url}')
        drain_console()
        check_page()

        pending = sorted(args.script_at, key=lambda s: s[0])
        next_sample = args.sample_every if args.sample_every > 0 else float('inf')
        while True:
            now = time.monotonic() - t0
            while pending and pending[0][0] <= now:
                at, js = pending.pop(0)
                try:
                    result = driver.execute_script(js)
                except Exception as e:  # noqa: BLE001
                    raise DriveError(EXIT_PAGE, f'--script-at {at:g} failed: {first_line(e)}')
                log(f't={now:.1f}s script-at {at:g} ran, returned {compact(result)}')
            check_page()
            drain_console()
            if now >= args.seconds:
                break
            if now >= next_sample:
                try:
                    log(f't={now:.1f}s sample {compact(stats())}')
                except DriveError as e:  # only the final stats must exist; a page may set them up late
                    log(f't={now:.1f}s sample unavailable: {e}')
                next_sample += args.sample_every
            wake = min([args.seconds, next_sample] + [p[0] for p in pending[:1]])
            time.sleep(max(0.0, min(0.25, wake - (time.monotonic() - t0))))

        final = stats()
        if args.screenshot:
            if driver.save_screenshot(args.screenshot):
                log(f'screenshot saved to {args.screenshot}')
            else:
                log(f'screenshot to {args.screenshot} failed')
        check_page()
        drain_console()
        return final
    finally:
        browser.close()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    become_subreaper()
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGINT, _raise_terminated)
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    try:
        final = run(args)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except HardTimeout:
        log(f'FAILED: hard timeout of {args.timeout:g} s')
        return EXIT_TIMEOUT
    except Terminated as e:
        log(f'FAILED: terminated by signal {e.signum}')
        return 128 + e.signum
    except DriveError as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        log(f'FAILED: {e}')
        return e.code
    except ImportError as e:
        log(f'FAILED: {e} (pip install selenium)')
        return EXIT_BROWSER
    try:
        line = compact(final)
    except ValueError as e:
        log(f'FAILED: stats are not JSON-serialisable: {e}')
        return EXIT_STATS
    print(line, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
