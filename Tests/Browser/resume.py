#!/usr/bin/env python3
"""A meeting participant whose network misbehaves, and one who watches (docs/ROOMS.md, Resuming a seat).

    resume.py --base http://127.0.0.1:PORT --ns-base http://HOST_ADDRESS:PORT --room R --api-token T --workdir DIR
              --ns NAME --ns-link LINK --ns-address A --ns-new-address B --http-port PORT

The mover is Chromium inside the network namespace NAME (its own process, room_mover.py, publishing the page's test
source: a canvas of its colour and an oscillator at its tone); the observer is Chromium on the host with a fake
camera and microphone of its own. Once each decodes the other, in order (each step bounded in time):
  a. reset: the mover's WebSocket gets a TCP reset (nftables `reject with tcp reset` on its connection only). The
     page resumes on a new socket; the mover's video must keep arriving at the server meanwhile, and the
     observer must see no event and send no new offer.
  b. move: the namespace's address goes away for 3 s and another one comes (the old 5-tuple is dead). The page
     restarts ICE; the time from the new address to the mover's video arriving again at the server is measured.
     The observer must see no event, keep its receivers (same track ids) and send no new offer.
  c. reload: the mover's page reloads and resumes the same seat (no participantLeft or participantJoined).
  d. cut: the namespace's link is down for 25 s, longer than the grace (20 s): the observer must get
     participantLeft within grace + 2 s, and the mover must come back as someone new, with no ghost left.
  e. removed: the operator removes the mover (DELETE): its page shows "removed" and it stays out.
Prints ONE JSON line with what was measured on stdout; progress on stderr. The judging is the caller's
(Tests/ServerTests/BrowserRoomTests.swift). Exit status 1 when a step failed (the JSON has "error").
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meeting  # noqa: E402  (participants with fake devices, the operator API, waits)

MOVER_COLOUR = (40, 60, 210)
MOVER_TONE = 550
CUT_SECONDS = 25
GRACE_SECONDS = 20
ROOM_EVENTS = ('participantLeft', 'participantJoined', 'trackUnpublished', 'trackPublished')


def log(msg):
    print(f'resume: {msg}', file=sys.stderr, flush=True)


def sh(*cmd):
    subprocess.run(list(cmd), check=True, timeout=15, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Mover:
    """room_mover.py inside the namespace, one command and one answer at a time."""

    def __init__(self, args, url):
        python = sys.executable
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'room_mover.py')
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', args.ns, python, script, '--url', url, '--seconds', '400'],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.lock = threading.Lock()
        first = self._read(60)
        if not first.get('ready'):
            raise RuntimeError(f'the mover did not start: {first}')

    def _read(self, timeout):
        result = {}

        def read():
            line = self.proc.stdout.readline()
            result['line'] = line
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        line = result.get('line')
        if not line:
            raise RuntimeError('the mover did not answer' if t.is_alive() else 'the mover exited')
        return json.loads(line)

    def ask(self, cmd, timeout=40):
        with self.lock:
            self.proc.stdin.write(json.dumps({'cmd': cmd}) + '\n')
            self.proc.stdin.flush()
            answer = self._read(timeout)
        if isinstance(answer, dict) and answer.get('error') and cmd != 'stats':
            raise RuntimeError(f'mover {cmd}: {answer["error"]}')
        return answer

    def stats(self):
        return self.ask('stats') or {}

    def close(self):
        try:
            self.ask('quit', timeout=20)
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


class Sampler:
    """The server's packetsReceived for one track, read every 100 ms (monotonic seconds, count)."""

    def __init__(self, args, name, kind):
        self.args, self.name, self.kind = args, name, kind
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                t = meeting.track(meeting.api(self.args, f'/api/v1/rooms/{self.args.room}'), self.name, self.kind)
                self.samples.append((time.monotonic(), t['packetsReceived'] if t else None))
            except Exception:  # noqa: BLE001 - a gap in the samples is what is measured
                pass
            time.sleep(0.1)

    def finish(self):
        self.stop.set()
        self.thread.join(5)
        return self.samples

    @staticmethod
    def longest_stall(samples, start, end):
        """The longest time between two rises of the count within [start, end] (the whole window when flat)."""
        rises = [start]
        last = None
        for t, n in samples:
            if n is None or t < start or t > end:
                continue
            if last is not None and n > last:
                rises.append(t)
            last = n
        rises.append(end)
        return max(b - a for a, b in zip(rises, rises[1:]))

    @staticmethod
    def first_rise_after(samples, t0):
        base = None
        for t, n in samples:
            if n is None or t < t0:
                continue
            if base is None:
                base = n
            elif n > base:
                return t - t0
        return None


def counters(args):
    return meeting.api(args, '/api/v1/rooms')['counters']


def mover_events_since(stats, since_ms, mover_ids):
    """The observer's room events about the mover after `since_ms` (page time)."""
    def about(e):
        p = e.get('participant')
        return (p.get('id') if isinstance(p, dict) else p) in mover_ids
    return [e for e in stats.get('events', []) if e['t'] >= since_ms and e.get('type') in ROOM_EVENTS and about(e)]


def offers_since(stats, since_ms):
    return len([e for e in stats.get('events', []) if e['t'] >= since_ms and e.get('type') == 'subscribe' and e.get('dir') == 'out'])


def page_now(participant):
    return participant.run('return performance.now()')


def scenario(args, out, observer, mover):
    # Both see each other.
    meeting.wait_for('the observer to decode the mover and the mover the observer', 60, lambda: (
        ((meeting.tiles_by_name(observer.stats()).get('mover') or {}).get('framesDecoded') or 0) > 0
        and ((meeting.tiles_by_name(mover.stats()).get('observer') or {}).get('framesDecoded') or 0) > 0))
    m = mover.stats()
    mover_id = m['you']
    out['moverId'] = mover_id
    log(f'both decode each other; the mover is {mover_id}')

    # a. The WebSocket is reset; nothing else.
    ports = subprocess.run(['ip', 'netns', 'exec', args.ns, 'ss', '-Htn', 'state', 'established', 'dport', f'= :{args.http_port}'],
                           capture_output=True, text=True, check=True, timeout=10).stdout.split()
    local_ports = sorted({p.rsplit(':', 1)[1] for p in ports if p.startswith(args.ns_address + ':')})
    if not local_ports:
        raise RuntimeError(f'no WebSocket from the mover: {ports}')
    before, obs_t, resumes0 = counters(args), page_now(observer), m['resumes']
    sampler = Sampler(args, 'mover', 'video')
    time.sleep(1)
    table = f'liveswarm_reset_{os.getpid()}'
    t0 = time.monotonic()
    sh('nft', 'add', 'table', 'inet', table)
    sh('nft', 'add', 'chain', 'inet', table, 'in', '{ type filter hook input priority 0; }')
    sh('nft', 'add', 'rule', 'inet', table, 'in', 'ip', 'saddr', args.ns_address, 'tcp', 'sport', '{ ' + ', '.join(local_ports) + ' }',
       'tcp', 'dport', str(args.http_port), 'reject', 'with', 'tcp', 'reset')
    try:
        meeting.wait_for('the mover to resume after the reset', 20, lambda: mover.stats().get('resumes', 0) > resumes0)
    finally:
        sh('nft', 'delete', 'table', 'inet', table)
    resumed_after = time.monotonic() - t0
    time.sleep(3)
    t1 = time.monotonic()
    samples = sampler.finish()
    after, obs = counters(args), observer.stats()
    m = mover.stats()
    out['reset'] = {
        'resumedAfterS': round(resumed_after, 2),
        'resumes': after['resumes'] - before['resumes'], 'iceRestarts': after['iceRestarts'] - before['iceRestarts'],
        'longestStallS': round(Sampler.longest_stall(samples, t0 - 1, t1), 2), 'samples': len(samples),
        'observerEvents': mover_events_since(obs, obs_t, {mover_id}), 'observerOffers': offers_since(obs, obs_t),
        'moverState': m['state'], 'moverId': m['you'],
    }
    log(f'reset: {out["reset"]}')

    # b. The address changes: 3 s without one, then another.
    tile = meeting.tiles_by_name(observer.stats())['mover']
    before, obs_t, m0 = counters(args), page_now(observer), mover.stats()
    sampler = Sampler(args, 'mover', 'video')
    time.sleep(1)
    cpu = meeting.cpu_times()
    sh('ip', 'netns', 'exec', args.ns, 'ip', 'addr', 'del', f'{args.ns_address}/24', 'dev', args.ns_link)
    time.sleep(args.move_gap)
    sh('ip', 'netns', 'exec', args.ns, 'ip', 'addr', 'add', f'{args.ns_new_address}/24', 'dev', args.ns_link)
    t_new = time.monotonic()
    meeting.wait_for('the mover back after the move', 30, lambda: Sampler.first_rise_after(sampler.samples, t_new) is not None)
    busy = meeting.busy_since(cpu)
    time.sleep(4)
    samples = sampler.finish()
    after, obs = counters(args), observer.stats()
    tile_after = meeting.tiles_by_name(obs).get('mover') or {}
    m = mover.stats()
    out['move'] = {
        'mediaBackS': round(Sampler.first_rise_after(samples, t_new), 2), 'busy': round(busy, 2),
        'resumes': after['resumes'] - before['resumes'], 'iceRestarts': after['iceRestarts'] - before['iceRestarts'],
        'pairSwitches': after['icePairSwitches'] - before['icePairSwitches'],
        'pageIceRestarts': m['iceRestarts'] - m0['iceRestarts'],
        'observerEvents': mover_events_since(obs, obs_t, {mover_id}), 'observerOffers': offers_since(obs, obs_t),
        'sameReceivers': [tile.get('videoTrack'), tile.get('videoReceiverTrack'), tile.get('audioReceiverTrack')]
        == [tile_after.get('videoTrack'), tile_after.get('videoReceiverTrack'), tile_after.get('audioReceiverTrack')],
        'receiverTrack': tile_after.get('videoReceiverTrack'),
        'framesAfter': tile_after.get('framesDecoded'), 'framesBefore': tile.get('framesDecoded'),
        'moverState': m['state'], 'moverId': m['you'], 'moverIce': m.get('ice'),
    }
    log(f'move: {out["move"]}')
    log('mover during the move: ' + ', '.join(f'{e["t"]} {e["type"]} {e.get("pc", "")} {e.get("state", e.get("code", ""))}'
                                             for e in m.get('events', []) if e['type'] in ('iceConnectionState', 'connectionState', 'wsClose', 'iceRestart', 'resumed', 'state')))

    # b2. An ICE restart on both PeerConnections, as the page makes when ICE breaks: the server moves the transports
    # to the new credentials with no new DTLS handshake, so the media does not stop.
    tile = meeting.tiles_by_name(observer.stats())['mover']
    before, obs_t, m0 = counters(args), page_now(observer), mover.stats()
    sampler = Sampler(args, 'mover', 'video')
    time.sleep(1)
    t0 = time.monotonic()
    asked = mover.ask('restartIce')
    meeting.wait_for('both ICE restarts done', 15, lambda: mover.stats().get('iceRestarts', 0) >= m0['iceRestarts'] + 2)
    time.sleep(3)
    t1 = time.monotonic()
    samples = sampler.finish()
    after, obs, m = counters(args), observer.stats(), mover.stats()
    tile_after = meeting.tiles_by_name(obs).get('mover') or {}
    out['restart'] = {
        'asked': asked, 'iceRestarts': after['iceRestarts'] - before['iceRestarts'],
        'pageIceRestarts': m['iceRestarts'] - m0['iceRestarts'],
        'longestStallS': round(Sampler.longest_stall(samples, t0 - 1, t1), 2),
        'observerEvents': mover_events_since(obs, obs_t, {mover_id}), 'observerOffers': offers_since(obs, obs_t),
        'sameReceivers': [tile.get('videoTrack'), tile.get('videoReceiverTrack')] == [tile_after.get('videoTrack'), tile_after.get('videoReceiverTrack')],
        'moverIce': m.get('ice'), 'moverErrors': m.get('errors', [])[-3:],
    }
    log(f'restart: {out["restart"]}')

    # c. The page reloads: the same seat.
    before, obs_t = counters(args), page_now(observer)
    frames = (meeting.tiles_by_name(observer.stats()).get('mover') or {}).get('framesDecoded') or 0
    mover.ask('reload')
    meeting.wait_for('the reloaded page back in its seat', 30, lambda: mover.stats().get('state') == 'joined')
    def new_video():
        t = meeting.tiles_by_name(observer.stats()).get('mover') or {}
        return ((t.get('videoTrack') or '').count('-') >= 2 and t.get('videoReceiverTrack') and not t.get('placeholder')
                and (t.get('fps1s') or 0) > 0)
    meeting.wait_for('the observer decoding the reloaded page', 30, new_video)
    after, obs, m = counters(args), observer.stats(), mover.stats()
    out['reload'] = {
        'moverId': m['you'], 'resumes': after['resumes'] - before['resumes'],
        'observerEvents': [e['type'] for e in mover_events_since(obs, obs_t, {mover_id})],
        'framesBefore': frames, 'tile': meeting.tiles_by_name(obs).get('mover'),
    }
    log(f'reload: {out["reload"]}')

    # d. The link is cut for longer than the grace.
    obs_t = page_now(observer)
    t_cut = time.time()
    sh('ip', 'netns', 'exec', args.ns, 'ip', 'link', 'set', args.ns_link, 'down')
    left = None
    try:
        def left_event():
            s = observer.run('const s = window.meetingStats(); const e = s.events.find(e => e.type === "participantLeft" && '
                             f'e.participant === {json.dumps(mover_id)} && e.t >= {obs_t}); '
                             'return e ? {at: performance.timeOrigin + e.t, reason: e.reason} : null')
            return s
        left = meeting.wait_for('the observer told the mover left', GRACE_SECONDS + 10, left_event)
        time.sleep(max(0.0, t_cut + CUT_SECONDS - time.time()))
    finally:
        sh('ip', 'netns', 'exec', args.ns, 'ip', 'link', 'set', args.ns_link, 'up')
    t_up = time.monotonic()
    meeting.wait_for('the mover back as someone new', 40, lambda: (
        (lambda s: s.get('state') == 'joined' and s.get('you') not in (None, mover_id))(mover.stats())))
    new_id = mover.stats()['you']
    meeting.wait_for('the observer decoding the new mover', 40, lambda: (
        (meeting.tiles_by_name(observer.stats()).get('mover') or {}).get('participant') == new_id
        and ((meeting.tiles_by_name(observer.stats()).get('mover') or {}).get('framesDecoded') or 0) > 0))
    obs, m = observer.stats(), mover.stats()
    room = meeting.api(args, f'/api/v1/rooms/{args.room}')
    out['cut'] = {
        'leftAfterS': round((left['at'] - t_cut * 1000) / 1000, 2), 'reason': left['reason'],
        'backAfterS': round(time.monotonic() - t_up, 2), 'newId': new_id, 'rejoins': m['rejoins'],
        'observerTiles': [t['participant'] for t in obs['tiles']],
        'serverParticipants': sorted(p['name'] for p in room['participants']),
    }
    log(f'cut: {out["cut"]}')

    # e. The operator removes the mover: it stays out.
    sockets = m['sockets']
    meeting.api(args, f'/api/v1/rooms/{args.room}/participants/{new_id}', method='DELETE')
    meeting.wait_for('the mover page to show it was removed', 15, lambda: mover.stats().get('state') == 'removed')
    time.sleep(4)
    m, room = mover.stats(), meeting.api(args, f'/api/v1/rooms/{args.room}')
    out['removed'] = {'state': m['state'], 'newSockets': m['sockets'] - sockets,
                      'serverParticipants': sorted(p['name'] for p in room['participants'])}
    log(f'removed: {out["removed"]}')


def main():
    ap = argparse.ArgumentParser()
    for a in ('--base', '--ns-base', '--room', '--api-token', '--workdir', '--ns', '--ns-link', '--ns-address', '--ns-new-address'):
        ap.add_argument(a, required=True)
    ap.add_argument('--http-port', type=int, required=True)
    ap.add_argument('--move-gap', type=float, default=3, help='seconds without an address in step b')
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    out = {}
    observer = mover = None
    code = 0
    try:
        observer = meeting.Participant(types.SimpleNamespace(workdir=args.workdir, base=args.base, room=args.room, test_source=None),
                                       0, 'observer')
        colour = '{:02x}{:02x}{:02x}'.format(*MOVER_COLOUR)
        mover = Mover(args, f'{args.ns_base}/meeting/?room={args.room}&name=mover&source=test&color={colour}'
                            f'&tone={MOVER_TONE}&audioProcessing=0')
        scenario(args, out, observer, mover)
    except Exception as e:  # noqa: BLE001 - reported in the JSON, judged by the caller
        out['error'] = f'{type(e).__name__}: {e}'
        log(out['error'])
        code = 1
        for who, p in (('observer', observer), ('mover', mover)):
            try:
                if p is not None:
                    s = p.stats()
                    log(f'{who}: state {s.get("state")}, errors {s.get("errors", [])[-5:]}, '
                        f'last events {[(e["t"], e["type"], e.get("state") or e.get("code") or "") for e in s.get("events", [])[-25:]]}')
            except Exception as e2:  # noqa: BLE001
                log(f'{who}: no stats ({e2})')
    finally:
        if mover is not None:
            mover.close()
        if observer is not None:
            observer.close()
    print(json.dumps(out), flush=True)
    sys.exit(code)


if __name__ == '__main__':
    main()
