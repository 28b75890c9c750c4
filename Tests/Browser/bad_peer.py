#!/usr/bin/env python3
"""A test-only P2P peer that forges chunks, written apart from web-demo/shared/p2p-engine.js from the protocol in
docs/P2P.md: it joins a stream's swarm through the tracker with aiortc, claims every chunk the origin lists the
moment it appears (so viewers ask it first), and answers each request with the chunk's real size but forged bytes.

    bad_peer.py --origin http://127.0.0.1:8080 --stream live/cam --seconds 40

stdout: one JSON line when done: {"peerId": HEX, "served": N, "forged": N, "forgedTo": {VIEWER_HEX: N},
"channelsOpened": N, "channelsClosed": N, "offersAnswered": N, "answersTaken": N}. A viewer that drops this peer at its
first forged chunk may still be sent a second one it had asked for (the requests cross on the wire): forgedTo says which
viewers were sent anything, so the test can tell "caught at the first" from "missed one". stderr: "bad-peer: ..." lines.
aiortc offers no loopback candidates: the viewers must reach this machine's own address (Chromium offers it too).
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import urllib.request

import websocket
from aiortc import RTCPeerConnection, RTCSessionDescription

PIECE = 16 * 1024


def log(msg):
    print(f'bad-peer: {msg}', file=sys.stderr, flush=True)


class BadPeer:
    def __init__(self, args):
        self.args = args
        self.peer_id = '-BAD001-' + os.urandom(6).hex()
        self.chunks = {}            # id -> uri
        self.channels = []
        self.pcs = {}               # offer id -> (pc, dc)
        self.stats = {'served': 0, 'forged': 0, 'channelsOpened': 0, 'channelsClosed': 0,
                      'offersAnswered': 0, 'answersTaken': 0}
        self.forged_to = {}         # viewer peer id (hex) -> forged chunks sent to it
        self.remote = {}            # channel -> viewer peer id (hex)
        self.loop = None
        self.ws = None

    def listing(self):
        with urllib.request.urlopen(f'{self.args.origin}/api/v1/streams/{self.args.stream}/chunks', timeout=5) as r:
            return json.load(r)

    def send_ws(self, obj):
        self.ws.send(json.dumps(obj))

    async def announce(self):
        offers = []
        for _ in range(2):
            pc = RTCPeerConnection()
            dc = pc.createDataChannel('liveswarm', ordered=True)
            self.attach(dc)
            await pc.setLocalDescription(await pc.createOffer())
            offer_id = os.urandom(20).hex()
            self.pcs[offer_id] = (pc, dc)
            offers.append({'offer_id': offer_id, 'offer': {'type': 'offer', 'sdp': pc.localDescription.sdp}})
        self.send_ws({'action': 'announce', 'info_hash': self.info_hash, 'peer_id': self.peer_id, 'numwant': len(offers),
                      'uploaded': self.stats['served'] * 60000, 'offers': offers})

    async def on_tracker(self, text):
        m = json.loads(text)
        if 'failure reason' in m:
            log(f'tracker: {m["failure reason"]}')
            return
        if m.get('offer') and m.get('peer_id'):
            pc = RTCPeerConnection()
            remote = m['peer_id'].encode('latin1').hex()
            pc.on('datachannel', lambda dc: self.attach(dc, remote))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=m['offer']['sdp'], type='offer'))
            await pc.setLocalDescription(await pc.createAnswer())
            self.pcs[m['offer_id'] + '-in'] = (pc, None)
            self.send_ws({'action': 'announce', 'info_hash': self.info_hash, 'peer_id': self.peer_id, 'to_peer_id': m['peer_id'],
                          'offer_id': m['offer_id'], 'answer': {'type': 'answer', 'sdp': pc.localDescription.sdp}})
            self.stats['offersAnswered'] += 1
        elif m.get('answer') and m.get('offer_id') in self.pcs:
            pc, dc = self.pcs[m['offer_id']]
            if m.get('peer_id'):
                self.remote[dc] = m['peer_id'].encode('latin1').hex()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=m['answer']['sdp'], type='answer'))
            self.stats['answersTaken'] += 1

    def attach(self, dc, remote=None):
        if remote:
            self.remote[dc] = remote
        @dc.on('open')
        def on_open():
            self.stats['channelsOpened'] += 1
            self.channels.append(dc)
            dc.send(json.dumps({'t': 'hello', 'have': list(self.chunks)}))

        @dc.on('close')
        def on_close():
            self.stats['channelsClosed'] += 1
            if dc in self.channels:
                self.channels.remove(dc)

        @dc.on('message')
        def on_message(message):
            if isinstance(message, str):
                try:
                    m = json.loads(message)
                except ValueError:
                    return
                if m.get('t') == 'req':
                    asyncio.ensure_future(self.serve(dc, m.get('id')))

        if dc.readyState == 'open':
            on_open()

    async def serve(self, dc, chunk_id):
        uri = self.chunks.get(chunk_id)
        if uri is None:
            dc.send(json.dumps({'t': 'none', 'id': chunk_id}))
            return
        # The real chunk, so its size is right, with every 1000th byte flipped: only its hash gives it away.
        data = await asyncio.get_running_loop().run_in_executor(
            None, lambda: urllib.request.urlopen(f'{self.args.origin}/{self.args.stream}/{uri}', timeout=5).read())
        forged = bytearray(data)
        for i in range(0, len(forged), 1000):
            forged[i] ^= 0xFF
        dc.send(json.dumps({'t': 'data', 'id': chunk_id, 'size': len(forged)}))
        for off in range(0, len(forged), PIECE):
            dc.send(bytes(forged[off:off + PIECE]))
        self.stats['served'] += 1
        self.stats['forged'] += 1
        viewer = self.remote.get(dc, '?')
        self.forged_to[viewer] = self.forged_to.get(viewer, 0) + 1
        log(f'sent forged chunk {chunk_id} ({len(forged)} bytes) to {viewer}')

    async def poll(self):
        """Claims each new chunk as soon as the origin lists it."""
        while True:
            try:
                listing = await asyncio.get_running_loop().run_in_executor(None, self.listing)
                for c in listing['chunks']:
                    if c['id'] not in self.chunks:
                        self.chunks[c['id']] = c['uri']
                        for dc in list(self.channels):
                            if dc.readyState == 'open':
                                dc.send(json.dumps({'t': 'have', 'id': c['id']}))
            except Exception as e:  # noqa: BLE001
                log(f'chunk list: {e}')
            await asyncio.sleep(0.1)

    async def run(self):
        self.loop = asyncio.get_running_loop()
        listing = self.listing()
        self.info_hash = bytes.fromhex(listing['swarm']['infoHash']).decode('latin1')
        host = self.args.origin.split('://', 1)[1]
        self.ws = websocket.create_connection(f'ws://{host}/tracker', timeout=10)
        self.ws.settimeout(None)

        def reader():
            while True:
                try:
                    text = self.ws.recv()
                except Exception:  # noqa: BLE001 - closed
                    return
                if not text:
                    return
                asyncio.run_coroutine_threadsafe(self.on_tracker(text), self.loop)

        threading.Thread(target=reader, daemon=True).start()
        poller = asyncio.ensure_future(self.poll())
        end = time.monotonic() + self.args.seconds
        while time.monotonic() < end:
            await self.announce()
            await asyncio.sleep(3)
        poller.cancel()
        for pc, _ in self.pcs.values():
            await pc.close()
        self.ws.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--origin', required=True)
    p.add_argument('--stream', required=True)
    p.add_argument('--seconds', type=float, default=40)
    args = p.parse_args()
    peer = BadPeer(args)
    asyncio.run(peer.run())
    print(json.dumps(dict(peer.stats, peerId=peer.peer_id.encode('latin1').hex(), forgedTo=peer.forged_to)), flush=True)


if __name__ == '__main__':
    main()
