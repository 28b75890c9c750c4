#!/usr/bin/env python3
"""A meeting-room participant on aiortc and websockets (PyPI), written from docs/ROOMS.md alone.

    room_client.py --url ws://HOST:PORT/ws --room R --name N [--token T] [--seconds S]
                   [--luma Y --cb U --cr V] [--tone HZ] [--leave-when-alone] [--stun-only]

Joins room R, publishes a 320x240 15 fps picture of one Y'CbCr colour (with a small block moving along the top
edge, so frames differ) and a sine tone, subscribes to everyone else's tracks, and after S seconds (or once alone,
with --leave-when-alone) leaves and prints one JSON line on stdout: what it received from each participant
(frames, the colour at the picture's centre, the tone's frequency). Progress goes to stderr. aiortc offers no
loopback candidates: run it where the server is reachable on another address (the tests use a network namespace).
"""

import argparse
import array
import asyncio
import collections
import fractions
import json
import math
import sys
import time

import websockets
from aiortc import (MediaStreamTrack, RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection,
                    RTCSessionDescription)
from av import AudioFrame, VideoFrame


def log(*args):
    print('room_client:', *args, file=sys.stderr, flush=True)


class ColourTrack(MediaStreamTrack):
    kind = 'video'

    def __init__(self, y, u, v):
        super().__init__()
        self.values, self.count, self.start = (y, u, v), 0, None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        self.count += 1
        wait = self.start + self.count / 15 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame(width=320, height=240, format='yuv420p')
        for plane, value in zip(frame.planes, self.values):
            plane.update(bytes([value]) * plane.buffer_size)
        # The block stays in the top 16 rows, far from the centre the receivers measure.
        luma, x = frame.planes[0], (self.count * 4) % (320 - 16)
        buf = bytearray(bytes(luma))
        for row in range(16):
            buf[row * luma.line_size + x:row * luma.line_size + x + 16] = bytes([255 - self.values[0]]) * 16
        luma.update(bytes(buf))
        frame.pts, frame.time_base = self.count * 6000, fractions.Fraction(1, 90000)
        return frame


class ToneTrack(MediaStreamTrack):
    kind = 'audio'

    def __init__(self, hz):
        super().__init__()
        self.hz, self.sample, self.start = hz, 0, None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.sample / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        step = 2 * math.pi * self.hz / 48000
        samples = array.array('h', (int(8000 * math.sin(step * (self.sample + i))) for i in range(960)))
        frame = AudioFrame(format='s16', layout='mono', samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.sample, fractions.Fraction(1, 48000)
        self.sample += 960
        return frame


class Received:
    """What one remote participant's tracks delivered."""

    def __init__(self, name):
        self.name, self.video, self.audio, self.size = name, 0, 0, None
        self.colours = collections.deque(maxlen=15)      # centre samples of the last second of frames
        self.samples = collections.deque(maxlen=48000)   # the last second of audio (first channel)

    def on_video(self, frame):
        self.video += 1
        if frame.format.name != 'yuv420p':
            frame = frame.reformat(format='yuv420p')
        w, h = frame.width, frame.height
        self.size = (w, h)
        planes = [(bytes(p), p.line_size) for p in frame.planes[:3]]
        y, ls = planes[0]
        # A 4x4 luma patch and its 2x2 chroma patch: a single pixel is too sensitive to codec noise.
        luma = sum(y[(h // 2 - 2 + r) * ls + w // 2 - 2 + c] for r in range(4) for c in range(4)) / 16
        chroma = [sum(p[(h // 4 - 1 + r) * ls + w // 4 - 1 + c] for r in range(2) for c in range(2)) / 4
                  for p, ls in planes[1:]]
        self.colours.append([luma] + chroma)

    def on_audio(self, frame):
        self.audio += 1
        channels = len(frame.layout.channels)
        if frame.format.name != 's16':   # aiortc decodes Opus to packed s16; anything else is not measured
            return
        # The plane is padded beyond the samples: read only what the frame holds.
        data = array.array('h', bytes(frame.planes[0])[:frame.samples * channels * 2])
        self.samples.extend(data[::channels])

    def tone_hz(self):
        # Zero crossings with hysteresis, so codec noise around silence counts as no tone.
        crossings, sign = 0, 0
        for s in self.samples:
            new = 1 if s > 200 else -1 if s < -200 else sign
            if sign and new != sign:
                crossings += 1
            sign = new
        return round(crossings / 2 * 48000 / len(self.samples)) if self.samples else 0

    def report(self):
        n = len(self.colours)
        colour = [round(sum(c[i] for c in self.colours) / n) for i in range(3)] if n else None
        return {'name': self.name, 'videoFrames': self.video, 'audioFrames': self.audio, 'colour': colour,
                'toneHz': self.tone_hz(), 'width': self.size and self.size[0], 'height': self.size and self.size[1]}


class Client:
    def __init__(self, args, ws):
        self.args, self.ws = args, ws
        self.me, self.errors = None, []
        self.participants = {}      # id -> name, the others now in the room
        self.received = {}          # participant id -> Received
        self.tracks = {}            # remote track id -> {'participant', 'kind', 'transceiver', 'ended'}
        self.sub_pc = self.pub_pc = None
        self.sub_in_flight = False  # ROOMS.md: at most one offer in flight per PeerConnection
        self.sub_dirty = False      # something changed since the last subscribe offer
        self.consumed = set()       # transceivers whose remote track has a consumer
        self.alone = asyncio.Event()  # everyone else has left (after at least one was here)

    async def send(self, message):
        await self.ws.send(json.dumps(message))

    def make_pc(self, ice_servers):
        servers = [RTCIceServer(urls=s['urls'], username=s.get('username'), credential=s.get('credential'))
                   for s in ice_servers if not (self.args.stun_only and s.get('username'))]
        # max-bundle: every m-line shares one ICE/DTLS transport from the start, so a re-offer's new m-lines
        # carry the ufrag and fingerprint already in use (aiortc's default would make a new transport per kind).
        return RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))

    async def on_joined(self, msg):
        self.me = msg['you']['id']
        log(f"joined {msg['room']} as {self.me}; codecs {msg.get('codecs')}; {len(msg['participants'])} others")
        self.pub_pc, self.sub_pc = self.make_pc(msg.get('iceServers', [])), self.make_pc(msg.get('iceServers', []))
        for p in (self.pub_pc, self.sub_pc):
            p.on('connectionstatechange', lambda p=p: log(f"{'publish' if p is self.pub_pc else 'subscribe'} "
                                                           f"PeerConnection {p.connectionState}"))
        for p in msg['participants']:
            self.add_participant(p)
        if msg['you'].get('canPublish', True):
            a = self.args
            self.pub_pc.addTransceiver(ToneTrack(a.tone), direction='sendonly')
            self.pub_pc.addTransceiver(ColourTrack(a.luma, a.cb, a.cr), direction='sendonly')
            await self.pub_pc.setLocalDescription(await self.pub_pc.createOffer())
            await self.send({'type': 'publish', 'sdp': self.pub_pc.localDescription.sdp})
        else:
            log('joined without the right to publish')
        await self.negotiate_subscribe()

    def add_participant(self, p):
        if p['id'] == self.me:   # never expected, but subscribing to ourselves would be nonsense
            return
        self.participants[p['id']] = p['name']
        self.received.setdefault(p['id'], Received(p['name']))
        for t in p.get('tracks', []):
            self.add_track(p['id'], t)

    def add_track(self, participant, track):
        if track['id'] not in self.tracks:
            self.tracks[track['id']] = dict(participant=participant, kind=track['kind'], transceiver=None, ended=False)
            self.sub_dirty = True

    def end_track(self, track_id):
        t = self.tracks.get(track_id)
        if t and not t['ended']:
            t['ended'] = True
            # Never stop() or reuse it: its mid stays in the SDP, inactive, for the life of the PeerConnection.
            if t['transceiver']:
                t['transceiver'].direction = 'inactive'
                self.sub_dirty = True

    async def negotiate_subscribe(self):
        if self.sub_in_flight or not self.sub_dirty:
            return
        self.sub_dirty = False
        for t in self.tracks.values():
            if not t['ended'] and t['transceiver'] is None:
                t['transceiver'] = self.sub_pc.addTransceiver(t['kind'], direction='recvonly')
        if not self.sub_pc.getTransceivers():
            return   # nothing to receive yet: an offer without m-lines helps no one
        await self.sub_pc.setLocalDescription(await self.sub_pc.createOffer())
        # mids exist only once the offer is applied; inactive (ended) mids are left out of the map.
        mids = {t['transceiver'].mid: tid for tid, t in self.tracks.items() if t['transceiver'] and not t['ended']}
        self.sub_in_flight = True
        log(f'subscribe offer: {mids}')
        await self.send({'type': 'subscribe', 'sdp': self.sub_pc.localDescription.sdp, 'tracks': mids})

    async def on_subscribe_answer(self, msg):
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(sdp=msg['sdp'], type='answer'))
        self.sub_in_flight = False
        # aiortc's 'track' event carries no transceiver: find new remote tracks through our own transceivers.
        for t in self.tracks.values():
            tr = t['transceiver']
            if tr and tr.receiver.track and tr not in self.consumed:
                self.consumed.add(tr)
                asyncio.ensure_future(self.consume(tr.receiver.track, self.received[t['participant']]))
        await self.negotiate_subscribe()   # the changes queued while this offer was in flight

    async def consume(self, track, into):
        try:
            while True:
                (into.on_video if track.kind == 'video' else into.on_audio)(await track.recv())
        except Exception:
            return   # the track ended (the PeerConnection closed)

    async def handle(self, msg):
        kind = msg.get('type')
        if kind == 'publishAnswer':
            await self.pub_pc.setRemoteDescription(RTCSessionDescription(sdp=msg['sdp'], type='answer'))
            log(f"published {msg.get('tracks')}")
        elif kind == 'subscribeAnswer':
            await self.on_subscribe_answer(msg)
        elif kind == 'participantJoined':
            log(f"participant joined: {msg['participant']['id']} {msg['participant']['name']}")
            self.add_participant(msg['participant'])
        elif kind == 'participantLeft':
            pid = msg['participant']
            log(f"participant left: {pid} ({msg.get('reason')})")
            self.participants.pop(pid, None)
            if self.args.leave_when_alone and not self.participants:
                self.alone.set()
            for tid, t in self.tracks.items():
                if t['participant'] == pid:
                    self.end_track(tid)
        elif kind == 'trackPublished':
            log(f"track published: {msg['participant']} {msg['track']}")
            if msg['participant'] != self.me:
                self.add_track(msg['participant'], msg['track'])
        elif kind == 'trackUnpublished':
            log(f"track unpublished: {msg['participant']} {msg['track']}")
            self.end_track(msg['track'])
        elif kind == 'error':
            log(f"error {msg.get('code')} ({msg.get('request')}): {msg.get('message')}")
            self.errors.append({k: msg.get(k) for k in ('code', 'message', 'request')})
            # A rejected subscribe offer gets no answer. codecUnsupported comes with one (its track answered
            # inactive). Retrying at once would loop; the next event (e.g. trackUnpublished) offers again.
            if msg.get('request') == 'subscribe' and msg.get('code') != 'codecUnsupported':
                self.sub_in_flight = False
        else:
            log(f'{kind}: {msg}')
        if kind != 'subscribeAnswer':
            await self.negotiate_subscribe()

    async def run(self):
        a = self.args
        await self.send({'type': 'join', 'version': 1, 'room': a.room, 'name': a.name,
                         **({'token': a.token} if a.token else {})})
        try:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        except asyncio.TimeoutError:
            raise RuntimeError('no answer to join in 10 s') from None
        if msg.get('type') != 'joined':
            raise RuntimeError(f"join refused: {msg.get('code')}: {msg.get('message')}")
        await self.on_joined(msg)
        reader = asyncio.ensure_future(self.read())
        # With --leave-when-alone, the last other participant leaving ends the stay early, as the time running out
        # does: leave, then report.
        alone = asyncio.ensure_future(self.alone.wait())
        done, _ = await asyncio.wait([reader, alone], timeout=a.seconds, return_when=asyncio.FIRST_COMPLETED)
        alone.cancel()
        if reader in done:   # the WebSocket closed (or handling a message failed) before the time was up
            e = reader.exception()
            self.errors.append({'code': 'closed' if e is None or isinstance(e, ConnectionError) else 'client',
                                'message': str(e or 'closed by the server'), 'request': None})
        else:
            await self.send({'type': 'leave'})
            try:
                await asyncio.wait_for(reader, 3)   # the server answers leave by closing (1000)
            except asyncio.TimeoutError:
                reader.cancel()
                self.errors.append({'code': 'client', 'message': 'not closed 3 s after leave', 'request': 'leave'})

    async def read(self):
        try:
            async for raw in self.ws:   # ends quietly on a 1000/1001 close
                await self.handle(json.loads(raw))
        except websockets.ConnectionClosedError:
            pass   # 1008 flood, 1009 too big, 4001 removed...: reported below
        log(f'WebSocket closed: {self.ws.close_code} {self.ws.close_reason}')
        if self.ws.close_code not in (1000, 1001):
            raise ConnectionError(f'closed {self.ws.close_code} {self.ws.close_reason}')

    async def close(self):
        for p in (self.pub_pc, self.sub_pc):
            if p:
                await p.close()


async def main_async(args):
    try:
        ws = await websockets.connect(args.url, open_timeout=10, max_size=2 ** 22)
    except Exception as e:
        log(f'cannot connect to {args.url}: {e}')
        print(json.dumps({'you': None, 'joined': False, 'errors': [{'code': 'connect', 'message': str(e)}]}))
        return 2
    client = Client(args, ws)
    try:
        await client.run()
    except Exception as e:
        log(f'failed: {e}')
        print(json.dumps({'you': client.me, 'joined': client.me is not None,
                          'errors': client.errors + [{'code': 'client', 'message': str(e), 'request': None}]}))
        return 1
    finally:
        await ws.close()
        await client.close()
    print(json.dumps({'you': client.me, 'joined': True, 'errors': client.errors,
                      'participants': client.participants,
                      'received': {pid: r.report() for pid, r in client.received.items()}}))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for flag in ('--url', '--room', '--name'):
        p.add_argument(flag, required=True)
    p.add_argument('--token')
    p.add_argument('--seconds', type=float, default=10)
    for flag, default in (('--luma', 81), ('--cb', 90), ('--cr', 240)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument('--tone', type=float, default=440)
    p.add_argument('--leave-when-alone', action='store_true',
                   help='leave (and report) as soon as the last other participant has left')
    p.add_argument('--stun-only', action='store_true', help='leave out the TURN servers the room hands out')
    return asyncio.run(main_async(p.parse_args()))


if __name__ == '__main__':
    sys.exit(main())
