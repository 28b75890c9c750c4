#!/usr/bin/env python3
"""A WHIP publisher or WHEP player built on aiortc (PyPI), a WebRTC stack nobody here wrote.

    aiortc_peer.py publish URL [--seconds N] [--luma Y --cb U --cr V] [--tone HZ] [--srtp aes-cm]
    aiortc_peer.py play URL [--seconds N] [--srtp aes-cm]

publish: sends a 320x240 picture of one colour (Y'CbCr values given) and a sine tone to URL (a WHIP endpoint).
play:    receives from URL (a WHEP endpoint) and reports frames and audio received, the colour at the picture's
         centre (Y'CbCr) and the tone's frequency (from zero crossings).
--srtp aes-cm offers only SRTP_AES128_CM_SHA1_80 in DTLS (aiortc otherwise negotiates AES-GCM); the SRTP profile
the handshake chose is reported either way.
Prints one JSON line on stdout. aiortc offers no loopback candidates: run it where the server is reachable on
another address (the tests use a network namespace).
"""

import argparse
import array
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.request

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame, VideoFrame


class ColourTrack(MediaStreamTrack):
    kind = 'video'

    def __init__(self, y, u, v):
        super().__init__()
        self.values = (y, u, v)
        self.count = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        self.count += 1
        wait = self.start + self.count / 30 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame(width=320, height=240, format='yuv420p')
        for plane, value in zip(frame.planes, self.values):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = self.count * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneTrack(MediaStreamTrack):
    kind = 'audio'

    def __init__(self, hz):
        super().__init__()
        self.hz = hz
        self.sample = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.sample / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        samples = array.array('h', (int(8000 * math.sin(2 * math.pi * self.hz * (self.sample + i) / 48000)) for i in range(960)))
        frame = AudioFrame(format='s16', layout='mono', samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48000
        frame.pts = self.sample
        frame.time_base = fractions.Fraction(1, 48000)
        self.sample += 960
        return frame


def post(url, sdp):
    req = urllib.request.Request(url, data=sdp.encode(), method='POST', headers={'Content-Type': 'application/sdp'})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode(), r.headers.get('Location')


async def run(args):
    if args.srtp == 'aes-cm':
        # aiortc offers the profiles of this module-level list (RTCDtlsTransport keeps a reference to it).
        from aiortc import rtcdtlstransport
        rtcdtlstransport.SRTP_PROFILES[:] = [rtcdtlstransport.SRTP_AES128_CM_SHA1_80]
    pc = RTCPeerConnection()
    result = {'mode': args.mode, 'videoFrames': 0, 'audioFrames': 0}
    connected = asyncio.Event()

    @pc.on('connectionstatechange')
    async def on_state():
        result['connection'] = pc.connectionState
        if pc.connectionState == 'connected':
            connected.set()

    if args.mode == 'publish':
        pc.addTransceiver(ColourTrack(args.luma, args.cb, args.cr), direction='sendonly')
        pc.addTransceiver(ToneTrack(args.tone), direction='sendonly')
    else:
        pc.addTransceiver('video', direction='recvonly')
        pc.addTransceiver('audio', direction='recvonly')
        crossings = {'n': 0, 'samples': 0, 'last': 0}

        async def consume(track):
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if track.kind == 'video':
                    result['videoFrames'] += 1
                    w, h = frame.width, frame.height
                    planes = [bytes(p) for p in frame.planes[:3]]
                    result['size'] = [w, h]
                    result['colour'] = [planes[0][(h // 2) * frame.planes[0].line_size + w // 2],
                                        planes[1][(h // 4) * frame.planes[1].line_size + w // 4],
                                        planes[2][(h // 4) * frame.planes[2].line_size + w // 4]]
                else:
                    result['audioFrames'] += 1
                    channels = len(frame.layout.channels)
                    # The plane is padded beyond the samples: read only what the frame holds.
                    data = array.array('h', bytes(frame.planes[0])[:frame.samples * channels * 2])
                    for s in data[::channels]:
                        if (s >= 0) != (crossings['last'] >= 0):
                            crossings['n'] += 1
                        crossings['last'] = s
                    crossings['samples'] += len(data) // channels
                    if crossings['samples']:
                        result['toneHz'] = round(crossings['n'] / 2 * frame.sample_rate / crossings['samples'])

        @pc.on('track')
        def on_track(track):
            asyncio.ensure_future(consume(track))

    await pc.setLocalDescription(await pc.createOffer())
    answer, location = post(args.url, pc.localDescription.sdp)
    result['resource'] = location
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type='answer'))
    try:
        await asyncio.wait_for(connected.wait(), 15)
    except asyncio.TimeoutError:
        result['error'] = f'not connected after 15 s: {pc.connectionState}'
    try:
        # aiortc 1.x keeps its pyOpenSSL connection private; the profile is only reported, never relied on here.
        result['srtp'] = pc.getTransceivers()[0].sender.transport._ssl.get_selected_srtp_profile().decode()
    except Exception as e:
        result['srtp'] = f'unknown ({e})'
    await asyncio.sleep(args.seconds)
    for sender in pc.getSenders():
        stats = await sender.getStats()
        for s in stats.values():
            if s.type == 'outbound-rtp':
                result[f'{s.kind}PacketsSent'] = s.packetsSent
    await pc.close()
    print(json.dumps(result))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=['publish', 'play'])
    p.add_argument('url')
    p.add_argument('--seconds', type=float, default=10)
    p.add_argument('--luma', type=int, default=81)
    p.add_argument('--cb', type=int, default=90)
    p.add_argument('--cr', type=int, default=240)
    p.add_argument('--tone', type=float, default=440)
    p.add_argument('--srtp', choices=['any', 'aes-cm'], default='any')
    asyncio.run(run(p.parse_args()))


if __name__ == '__main__':
    sys.exit(main())
