#!/usr/bin/env python3
"""A meeting participant in Firefox ESR (Debian's firefox-esr), driven headless over Marionette (marionette-driver,
PyPI): the second browser engine in the room tests.

    firefox_participant.py --url URL --expect N [--seconds 150]

URL is the meeting page with `&source=test` (Firefox has no file-based fake camera: the page's canvas and oscillator
are its camera and microphone), with a PulseAudio of its own (a null sink) to play into. The profile turns on fake streams and no permission prompts, loopback ICE
candidates and plain host addresses (media.navigator.streams.fake, media.navigator.permission.disabled,
media.peerconnection.ice.loopback, media.peerconnection.ice.obfuscate_host_addresses=false), and lets media and
Web Audio start without a gesture (Firefox still wants one for Web Audio: the page is clicked). Once the page decodes N other participants, it takes a snapshot
of its tiles (frame rate, colour, tone) every second while they are all there, keeping the last; once the others
have left (or --seconds ran out) it prints ONE JSON line on stdout: {"joined", "tiles", "self", "errors"}. Progress goes to stderr.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PREFS = {
    'media.navigator.streams.fake': True,
    'media.navigator.permission.disabled': True,
    'media.peerconnection.ice.loopback': True,
    'media.peerconnection.ice.obfuscate_host_addresses': False,
    'media.autoplay.default': 0,
    'media.autoplay.blocking_policy': 0,
    'media.autoplay.block-webaudio': False,
    'browser.shell.checkDefaultBrowser': False,
    'datareporting.policy.dataSubmissionEnabled': False,
    'toolkit.telemetry.reportingpolicy.firstRun': False,
    'browser.startup.homepage_override.mstone': 'ignore',
    'browser.aboutwelcome.enabled': False,
    'app.update.enabled': False,
}


def log(msg):
    print(f'firefox: {msg}', file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True)
    ap.add_argument('--expect', type=int, required=True, help='other participants to wait for')
    ap.add_argument('--seconds', type=float, default=150)
    args = ap.parse_args()
    from marionette_driver.marionette import Marionette

    deadline = time.monotonic() + args.seconds
    profile = tempfile.mkdtemp(prefix='firefox-meeting-')
    port = free_port()
    with open(os.path.join(profile, 'user.js'), 'w') as f:
        for k, v in dict(PREFS, **{'marionette.port': port}).items():
            f.write(f'user_pref({json.dumps(k)}, {json.dumps(v)});\n')
    err = open(os.path.join(profile, 'stderr.log'), 'w')
    # Without a sound server Firefox cannot open an audio output, and its Web Audio never leaves "suspended" (the
    # page's oscillator stays silent and its analysers get nothing): a private PulseAudio with a null sink.
    socket_path = os.path.join(profile, 'pulse-native')
    pulse = subprocess.Popen(['pulseaudio', '-n', '--daemonize=no', '--exit-idle-time=-1', '--use-pid-file=no',
                              '--disable-shm=yes', '--log-target=stderr', '-L', 'module-null-sink sink_name=null',
                              '-L', f'module-native-protocol-unix socket={socket_path} auth-anonymous=1'],
                             stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                             env=dict(os.environ, HOME=profile, XDG_RUNTIME_DIR=profile))
    for _ in range(100):
        if os.path.exists(socket_path):
            break
        time.sleep(0.05)
    firefox = subprocess.Popen(['firefox-esr', '-headless', '-marionette', '-no-remote', '-profile', profile],
                               stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                               env=dict(os.environ, PULSE_SERVER=f'unix:{socket_path}'))
    out = {'joined': False, 'tiles': [], 'errors': []}
    try:
        m = Marionette(host='127.0.0.1', port=port)
        m.start_session(timeout=60)
        log(f'Firefox {m.session_capabilities.get("browserVersion")} started')
        m.navigate(args.url)
        # Firefox keeps Web Audio suspended until a user gesture, whatever the prefs: click the page, as a person
        # would (a real click through Marionette), and "Play sound" if the page offers it.
        from marionette_driver.by import By
        m.find_element(By.TAG_NAME, 'h1').click()

        def stats():
            # Page globals are behind Xray wrappers in Marionette's sandbox: read them through wrappedJSObject.
            return m.execute_script('const w = window.wrappedJSObject; '
                                    'return w.meetingStats ? JSON.parse(JSON.stringify(w.meetingStats())) : null') or {}

        s = {}
        while time.monotonic() < deadline:
            s = stats()
            decoding = [t for t in s.get('tiles', []) if (t.get('framesDecoded') or 0) > 0]
            if s.get('state') == 'joined' and len(decoding) >= args.expect:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f'decodes {len([t for t in s.get("tiles", []) if (t.get("framesDecoded") or 0) > 0])} of '
                               f'{args.expect} participants; state {s.get("state")}, errors {s.get("errors")}')
        out['joined'] = True
        sound = m.find_element(By.ID, 'sound')
        if sound.is_displayed():
            sound.click()
        log(f'decodes all {args.expect}; audio context {stats().get("self", {}).get("audioContext")}')
        # Snapshots while everyone is there, the last one kept (the page's frame rate is over its last 10 s).
        first = time.monotonic()
        while time.monotonic() < deadline:
            s = stats()
            tiles = s.get('tiles', [])
            if not tiles:
                break
            if len([t for t in tiles if (t.get('framesDecoded') or 0) > 0]) >= args.expect and time.monotonic() - first >= 3:
                out['tiles'] = [{k: t.get(k) for k in ('name', 'fps', 'framesDecoded', 'seenColor', 'heardHz', 'freezeCount')}
                                for t in tiles]
                out['self'] = s.get('self')
            time.sleep(1)
        log(f'tiles: {out["tiles"]}; self: {out.get("self")}')
        s = stats()
        out['errors'] = s.get('errors', [])
    except Exception as e:  # noqa: BLE001 - reported in the JSON, judged by the caller
        out['error'] = f'{type(e).__name__}: {e}'
        log(out['error'])
    finally:
        for proc in (firefox, pulse):
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        err.close()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(out), flush=True)
    return 0 if 'error' not in out else 1


if __name__ == '__main__':
    sys.exit(main())
