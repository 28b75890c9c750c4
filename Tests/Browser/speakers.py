#!/usr/bin/env python3
"""Who is speaking, and how late the picture is, in a room of two Chromium participants (web-demo/meeting).

    speakers.py --base http://127.0.0.1:PORT --room R --api-token T --workdir DIR [--seconds 30]

p0 has a fake camera of its colour and a fake microphone whose WAV sounds its tone for 1.5 s, then is silent for
3.5 s, over and over. p1 publishes the page's test source with the glass clock (&source=test&clock=1), its oscillator
sounding for 1 s in every 7 s (&speak=1,6). Each page notes when its own microphone sounds
(meetingStats().voice) and every activeSpeaker event it gets. Once both decode each other, they are watched for
--seconds; then each page's highlighted tiles are read, and p0's glass-to-glass delay of p1's picture. Last, p0
shares its screen with a real click on its Share screen button: p1 must get a second video tile labelled as p0's
screen, which goes when p0 stops sharing.
Prints ONE JSON line on stdout (times are epoch milliseconds); progress on stderr. The judging is the caller's
(Tests/ServerTests/BrowserRoomTests.swift). Exit status 1 when a step failed (the JSON has "error").
"""

import argparse
import json
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402
import meeting  # noqa: E402


def log(msg):
    print(f'speakers: {msg}', file=sys.stderr, flush=True)


def alternating_wav(workdir, i, on, off):
    """p{i}.wav: its tone for `on` seconds, then `off` seconds of silence (Chromium loops it)."""
    meeting.make_media(workdir, i)
    path = os.path.join(workdir, f'p{i}.wav')
    subprocess.run(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-y',
                    '-f', 'lavfi', '-i', f'sine=frequency={meeting.TONES[i]}:sample_rate=48000:duration={on}',
                    '-f', 'lavfi', '-i', f'anullsrc=r=48000:cl=mono:d={off}',
                    '-filter_complex', '[0][1]concat=n=2:v=0:a=1', '-ac', '1', path], check=True)


def main():
    ap = argparse.ArgumentParser()
    for a in ('--base', '--room', '--api-token', '--workdir'):
        ap.add_argument(a, required=True)
    ap.add_argument('--seconds', type=float, default=30)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    drive.become_subreaper()
    out = {}
    people = []
    code = 0
    try:
        alternating_wav(args.workdir, 0, 1.5, 3.5)
        ns = types.SimpleNamespace(workdir=args.workdir, base=args.base, room=args.room, test_source=1)
        people.append(meeting.Participant(ns, 0, 'p0'))
        people.append(meeting.Participant(ns, 1, 'p1', query='&speak=1,6'))
        meeting.wait_for('each page to decode the other', 60, lambda: all(
            ((meeting.tiles_by_name(p.stats()).get(q.name) or {}).get('framesDecoded') or 0) > 0
            for p in people for q in people if q is not p))
        ids = {p.name: p.stats()['you'] for p in people}
        names = {v: k for k, v in ids.items()}
        log(f'both decode each other: {ids}; watching for {args.seconds} s')
        start = time.time() * 1000
        cpu = meeting.cpu_times()
        time.sleep(args.seconds)
        out['busy'] = round(meeting.busy_since(cpu), 2)
        end = time.time() * 1000
        out.update({'participants': ids, 'from': start, 'to': end, 'voice': {}, 'speakerEvents': {}, 'highlight': {}})
        for p in people:
            s = p.run('const s = window.meetingStats(); return Object.assign(s, {origin: performance.timeOrigin})')
            out['voice'][p.name] = s['self'].get('voice') or s.get('voice') or []
            out['speakerEvents'][p.name] = [{'at': s['origin'] + e['t'], 'participant': names.get(e.get('participant'))}
                                            for e in s['events'] if e['type'] == 'activeSpeaker']
            out['highlight'][p.name] = {'speaker': names.get(s.get('speaker')),
                                        'tiles': {t['name']: t['speaking'] for t in s['tiles']}}
            if p.name == 'p0':
                t = meeting.tiles_by_name(s)['p1']
                out['delay'] = {'medianMs': t.get('glassMs'), 'p95Ms': t.get('glassP95Ms'), 'frames': t.get('glassFrames')}
        log(f'delay: {out["delay"]}; events: ' + '; '.join(f'{k}: {len(v)}' for k, v in out['speakerEvents'].items()))

        # Screen share: p0 clicks its Share screen button (real input events through the DevTools protocol, so the
        # page has the user activation getDisplayMedia needs; the fake UI flags pick the screen).
        p0, p1 = people
        d = p0.browser.driver
        meeting.wait_for('the Share screen button enabled', 10, lambda: d.execute_script('return !document.getElementById("share").disabled'))
        x, y = d.execute_script('const r = document.getElementById("share").getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]')
        for kind in ('mousePressed', 'mouseReleased'):
            d.execute_cdp_cmd('Input.dispatchMouseEvent', {'type': kind, 'x': x, 'y': y, 'button': 'left', 'clickCount': 1})

        def screen_tile():
            t = meeting.tiles_by_name(p1.stats()).get('p0 (screen)')
            return t if t and (t.get('fps1s') or 0) > 0 and not t.get('placeholder') else None
        tile = meeting.wait_for("p1 decoding p0's screen", 30, screen_tile)
        room = meeting.api(args, f'/api/v1/rooms/{args.room}')
        tracks = next(p['tracks'] for p in room['participants'] if p['name'] == 'p0')
        own = p0.stats()['self']
        out['screen'] = {'tile': {k: tile.get(k) for k in ('name', 'source', 'of', 'videoTrack', 'framesDecoded', 'fps1s')},
                         'serverTracks': [{'id': t['id'], 'kind': t['kind'], 'source': t['source']} for t in tracks],
                         'sharing': own.get('sharing'), 'screenTrack': own.get('screenTrack'),
                         'cameraTile': (meeting.tiles_by_name(p1.stats()).get('p0') or {}).get('videoTrack')}
        p0.run('return window.meeting.share(false)')
        t0 = time.monotonic()
        meeting.wait_for("p0's screen tile gone at p1", 10, lambda: 'p0 (screen)' not in meeting.tiles_by_name(p1.stats()))
        out['screen']['goneAfterS'] = round(time.monotonic() - t0, 2)
        room = meeting.api(args, f'/api/v1/rooms/{args.room}')
        out['screen']['serverTracksAfter'] = [t['source'] for p in room['participants'] if p['name'] == 'p0' for t in p['tracks']]
        log(f'screen: {out["screen"]}')
    except BaseException as e:  # noqa: BLE001 - reported in the JSON, browsers closed below
        out['error'] = f'{type(e).__name__}: {e}'
        log(out['error'])
        code = 1
    finally:
        meeting.close_all(people)
    print(json.dumps(out), flush=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
