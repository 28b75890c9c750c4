#!/usr/bin/env python3
"""Seeds for the fuzz targets of the services (docs/RELIABILITY.md), derived from the committed corpora of the wire
codecs (real clients' bytes, capture_seeds.py) and from the protocols' documented shapes. Deterministic: running it
again writes the same files. Each seed is named by its SHA-1, as libFuzzer does.

    derive_seeds.py [--corpus Fuzz/Corpus]
"""

import argparse
import hashlib
import json
import os
import struct


def save(out, target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if data:
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
            f.write(data)


def files(out, target):
    d = os.path.join(out, target)
    return [open(os.path.join(d, n), 'rb').read() for n in sorted(os.listdir(d))] if os.path.isdir(d) else []


def rtp(seq, ts, marker, payload, pt=96):
    return struct.pack('!BBHII', 0x80, pt | (0x80 if marker else 0), seq, ts, 0x1234) + payload


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--corpus', default=os.path.join(os.path.dirname(__file__), '..', '..', 'Fuzz', 'Corpus'))
    out = p.parse_args().corpus
    stun = files(out, 'STUN')
    rtps = files(out, 'RTP')

    # Offers: the SDP seeds (Chromium's offers, ffmpeg's session).
    for sdp in files(out, 'SDP'):
        save(out, 'Offer', sdp)
    # The Binding fast path: each STUN message from an IPv4 (even scene byte) and an IPv6 (odd) source.
    for i, m in enumerate(stun[:32]):
        save(out, 'STUNFastPath', bytes([2 * i % 256 | i % 2]) + m)
    # TURN over TCP: pairs of messages back to back, cut in pieces of 7 bytes, TURN on (bit 7 clear).
    for a, b in zip(stun[:24], stun[1:25]):
        save(out, 'TURNTCP', bytes([0x06]) + a + b)
    # ICE-TCP: STUN and RTP packets each behind its 16-bit length, cut in pieces of 100 bytes.
    for a, b in zip(stun[:16], rtps[:16]):
        save(out, 'ICETCP', bytes([99]) + struct.pack('!H', len(a)) + a + struct.pack('!H', len(b)) + b)
    # The ICE-lite agent: add sessions, checks the harness signs (with and without USE-CANDIDATE, from several
    # addresses), a raw check, a restart, a forgotten address, time passing.
    tid = bytes(range(12))
    save(out, 'ICELite', bytes([2, 0, 2, 1, 1, 0, 12]) + tid + bytes([0x41, 4, 12]) + tid + bytes([0x41, 1, 12]) + tid
         + bytes([4, 0, 1, 0, 12]) + tid + bytes([5, 4, 6, 40]))
    for m in stun[:8]:
        save(out, 'ICELite', bytes([2, 4, 0, 0, len(m[:255])]) + m[:255] + bytes([1, 0, 12]) + tid)
    # H.264: single NAL units, a STAP-A of SPS and PPS, an IDR in FU-A fragments, across two timestamps.
    sps, pps = bytes([0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01, 0x40, 0x16, 0xE8]), bytes([0x68, 0xCE, 0x3C, 0x80])
    idr = bytes([0x65]) + bytes(range(1, 200))
    stap = bytes([0x78]) + struct.pack('!H', len(sps)) + sps + struct.pack('!H', len(pps)) + pps
    fu = [bytes([0x7C, 0x85]) + idr[1:80], bytes([0x7C, 0x05]) + idr[80:150], bytes([0x7C, 0x45]) + idr[150:]]
    packets = [(0, stap), (0, fu[0]), (0, fu[1]), (1, fu[2]), (3, bytes([0x41, 0x9A, 1, 2, 3])), (3, bytes([0x09, 0x10]))]
    seed = b''.join(bytes([f, len(pl)]) + pl for f, pl in packets)
    save(out, 'H264', seed)
    save(out, 'H264', b''.join(bytes([f | 0x18, len(pl)]) + pl for f, pl in packets))
    # The RTMP handshake: C1s signed at base 8 and 772, and plain ones.
    c1 = bytes((i * 7 + 3) % 256 for i in range(1536))
    for mode in (0, 1, 3):
        save(out, 'RTMPHandshake', bytes([mode]) + c1)
    save(out, 'RTMPHandshake', bytes([0]) + bytes([3]) + c1)
    # HLS requests: blocking directives, part and segment names, a viewer id and a token, over a playlist.
    playlist = ('#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0\n'
                '#EXT-X-MAP:URI="init-0.mp4"\n#EXT-X-PART:DURATION=0.33,URI="part-3.0.m4s",INDEPENDENT=YES\n'
                '#EXTINF:1.0,\nseg-3.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-4.0.m4s"\n')
    for uri in ('/live/cam/index.m3u8?_HLS_msn=4&_HLS_part=0&token=abc.def&viewer=v-1',
                '/live/cam/part-12.3.m4s?token=a%20b%2Fc', '/live/cam-7.ts', '/live/cam/init-0.mp4?viewer=x_y'):
        save(out, 'HLSParams', (uri + '\n' + playlist).encode())
    # Room messages, one of each type (docs/ROOMS.md).
    for m in ({'type': 'join', 'version': 1, 'room': 'standup', 'name': 'ann', 'token': 'x.y.z'},
              {'type': 'resume', 'version': 1, 'token': 'abc'},
              {'type': 'publish', 'sdp': 'v=0\r\n', 'sources': {'0': 'microphone', '1': 'camera'}},
              {'type': 'subscribe', 'sdp': 'v=0\r\n', 'tracks': {'0': 'p1-a'}},
              {'type': 'subscription', 'track': 'p1-v', 'enabled': True, 'width': 320, 'height': 180},
              {'type': 'mute', 'track': 'p1-a', 'muted': True}, {'type': 'ping', 'id': 7, 't': 1.5},
              {'type': 'candidate', 'candidate': 'candidate:1 1 udp 1 127.0.0.1 9 typ host'}, {'type': 'leave'}):
        save(out, 'RoomMessages', json.dumps(m).encode())
    # Tokens: a header and claims the harness signs (0xFF between them).
    for claims in ({'room': 'standup', 'sub': 'ann', 'exp': 1900000000},
                   {'room': 'standup', 'sub': 'bob', 'exp': 1900000000, 'nbf': 1700000000, 'publish': False}):
        save(out, 'Tokens', b'{"alg":"HS256","typ":"JWT"}\xff' + json.dumps(claims).encode())
    save(out, 'Tokens', b'Bearer  some-operator-token ')
    # P2P viewer reports, a clock step (first byte) before each.
    report = {'stream': 'live/cam', 'viewer': 'a1b2', 'p2p': True, 'delay': 2.5, 'stalls': 0, 'stalledMs': 0,
              'firstFrameMs': 300, 'originBytes': 1e6, 'peerBytes': 2e6, 'uploadedBytes': 5e5, 'neighbours': 3,
              'badChunks': 0, 'droppedPeers': 0}
    other = dict(report, viewer='c3d4', p2p=False, delay=None)
    save(out, 'P2PReports', b'\x01' + json.dumps(report).encode() + b'\n\x0b' + json.dumps(other).encode() + b'\n\x05' + json.dumps(report).encode())
    # The rooms' state machine: four connections' steps (docs/RELIABILITY.md, RoomService): connect, join, publish,
    # subscribe to the newest track, a lost connection resumed, time passing, a clean close.
    def msg(conn, obj, op=1):
        text = json.dumps(obj).encode()
        return bytes([op | conn << 4, len(text)]) + text
    steps = (bytes([0x00]) + msg(0, {'type': 'join', 'version': 1, 'room': 'a', 'name': 'ann'})
             + msg(0, {'type': 'publish', 'sdp': 'tracks:2'}) + bytes([0x10]) + msg(1, {'type': 'join', 'version': 1, 'room': 'a', 'name': 'bob'})
             + msg(1, {'type': 'subscribe', 'sdp': 'sub', 'tracks': {'0': '$TRACK'}}) + msg(1, {'type': 'mute', 'track': '$TRACK', 'muted': True})
             + bytes([0x04 | 0xC0, 0x05 | 0x40, 0x20]) + msg(2, {'type': 'resume', 'version': 1, 'token': '$RESUME'})
             + bytes([0x05 | 0xC0, 0x14]))
    save(out, 'RoomService', steps)
    save(out, 'RoomService', bytes([0x00, 0x10, 0x20]) + msg(0, {'type': 'join', 'version': 1, 'room': 'a', 'name': 'a'})
         + msg(1, {'type': 'join', 'version': 1, 'room': 'b', 'name': 'b'}) + msg(2, {'type': 'join', 'version': 1, 'room': 'c', 'name': 'c'})
         + bytes([0x06, 0x07, 0x04 | 0x80, 0x05 | 0xC0, 0x05 | 0xC0, 0x05 | 0xC0]))
    # The RTMP connection handler and the hub (docs/RELIABILITY.md, RTMPSession): an encoder's publish and a player's
    # play of the same stream, media of each kind, the publisher's deleteStream, then time past the republish grace.
    def op(conn, low, high=0):
        # Bits 4-7 pick the connection (mod 3), bits 6-7 the stream name or media kind: the first nibble that has both.
        nibble = next(h for h in range(high * 4, high * 4 + 4) if h % 3 == conn)
        return bytes([nibble << 4 | low])
    def media(conn, kind, body):
        return op(conn, 7, kind) + bytes([len(body)]) + body
    avcc = bytes.fromhex('01640028ffe1001967640028acd940780227e5c04400000303e80000ea60f183196001000568ebecb22c')
    rtmp = (op(0, 2) + op(0, 3) + op(0, 4) + op(0, 5) + op(1, 2) + op(1, 3) + op(1, 4) + op(1, 6)
            + media(0, 0, avcc) + media(0, 1, bytes.fromhex('00000005658884002f')) + media(0, 2, bytes.fromhex('00000004419a2238'))
            + media(0, 3, bytes.fromhex('1210')) + op(1, 13) + media(0, 1, bytes.fromhex('00000005658884002f')) + op(1, 13)
            + op(0, 9) + op(1, 13) + op(0, 12, 3) + op(0, 12, 3) + op(1, 13) + op(2, 2) + op(2, 3) + op(2, 4) + op(2, 6))
    save(out, 'RTMPSession', rtmp)
    # A republish within the grace period on another connection, and a publisher that vanishes mid-stream.
    save(out, 'RTMPSession', op(0, 2) + op(0, 3) + op(0, 4) + op(0, 5) + op(1, 2) + op(1, 3) + op(1, 4) + op(1, 6)
         + media(0, 0, avcc) + op(0, 11) + op(2, 2) + op(2, 3) + op(2, 4) + op(2, 5) + media(2, 0, avcc) + op(1, 13)
         + op(2, 11) + op(0, 12, 2) + op(1, 13) + op(0, 12, 3) + op(0, 12, 3) + op(1, 13))
    # The TURN server's allocations (docs/RELIABILITY.md, TURNAllocations): steps of (op, arg, more[, length, bytes]);
    # op % 13 is the operation, op // 13 how it is signed (0: alice, 2: bob, 6: a session-scoped REST user), more & 3
    # the client (0 and 1 UDP, 2 TCP, 3 TLS), (more >> 2) & 7 the peer.
    def turn(op, arg=0, more=0, body=None):
        return bytes([op, arg, more]) + (bytes([len(body)]) + body if body is not None else b'')
    # A client allocates, permits a peer, binds channel 0x4000 to it, sends to it both ways, hears from it, refreshes,
    # time passes past the permission, and it refreshes to 0.
    save(out, 'TURNAllocations', turn(0) + turn(2) + turn(3, 2) + turn(4, 0, 0, b'hello') + turn(5, 0, 0, b'channel')
         + turn(6, 0, 0, b'from the peer') + turn(1, 2, 4) + turn(10, 100) + turn(6, 0, 0, b'again') + turn(8, 100)
         + turn(6, 0, 0, b'too late') + turn(1, 1))
    # EVEN-PORT with R, the next port allocated by its token from the other UDP client, bob's TCP allocation, data
    # from the first relay to the other (inside the server), the TCP connection closing, time past every lifetime.
    save(out, 'TURNAllocations', turn(0, 0, 0x30) + turn(0, 0, 0x41) + turn(26, 0, 2) + turn(2, 0, 0x18)
         + turn(4, 0, 0x18, b'inside') + turn(9, 0, 2) + turn(8, 255))
    # A session-scoped user reaches the media port and not a public peer; a bind still under way when the server
    # stops completes after it.
    save(out, 'TURNAllocations', turn(78, 0, 1) + turn(80, 0, 0x11) + turn(82, 0, 0x11, b'to the SFU') + turn(80, 0, 0x01)
         + turn(0, 0, 0x04) + turn(12, 0xF0) + turn(11))
    # A reservation met past its lifetime before the sweep reaches it.
    save(out, 'TURNAllocations', turn(0, 0, 0x30) + turn(10, 255) + turn(0, 0, 0x41) + turn(8, 1))
    # Tracker messages as the P2P engine and WebTorrent clients send them (docs/P2P.md): 20-character binary strings
    # (info hash, peer ids) as JSON escapes, announces with offers, an answer, a stop, a scrape.
    info_hash = bytes.fromhex('d2474e86c95b19b8bcfdb92bc12c9d44667cfa36').decode('latin1')
    peer, other = '-LS0001-0a1b2c3d4e5f', '-LS0001-ffeeddccbbaa'
    sdp = {'type': 'offer', 'sdp': 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n'}
    for m in ({'action': 'announce', 'info_hash': info_hash, 'peer_id': peer, 'numwant': 2, 'uploaded': 0, 'downloaded': 0,
               'left': 0, 'event': 'started', 'offers': [{'offer_id': 'a' * 20, 'offer': sdp}, {'offer_id': 'b' * 20, 'offer': sdp}],
               'x_liveswarm': {'parts': True}},
              {'action': 'announce', 'info_hash': info_hash, 'peer_id': peer, 'to_peer_id': other, 'offer_id': 'a' * 20,
               'answer': {'type': 'answer', 'sdp': sdp['sdp']}},
              {'action': 'announce', 'info_hash': info_hash, 'peer_id': peer, 'event': 'stopped', 'numwant': 0},
              {'action': 'scrape', 'info_hash': [info_hash]}):
        save(out, 'Tracker', json.dumps(m).encode())
    # SRTP, differential (Fuzz/Targets/SRTP's script): both profiles; packets in order across a rollover, one lost
    # and delivered late, one delivered twice and one tampered with, SRTCP, raw bytes both ways.
    def send_rtp(seq, ssrc=1, flags=0, words=0, length=40):
        return bytes([0]) + struct.pack('!H', seq) + bytes([ssrc, flags, words, length])
    for profile in (0, 1):
        script = bytes([profile])
        for seq in range(65530, 65536):
            script += send_rtp(seq, flags=8 if seq == 65532 else 0)
        for seq in range(0, 4):
            script += send_rtp(seq, ssrc=2, flags=5 | (seq & 2), words=2)
        script += bytes([2, 2, 0, 0])                     # the lost one, late
        script += bytes([2, 3, 0, 0])                     # one delivered again
        script += bytes([2, 4, 0, 100])                   # one with a bit flipped
        script += bytes([1, 1, 3, 0, 1, 2, 0, 2, 12, 0, 0])  # SRTCP, then one redelivered
        script += bytes([3, 20]) + rtp(7, 0, False, bytes(8)) + bytes([4, 16]) + bytes(16)
        script += bytes([5, 24]) + rtp(9, 0, True, bytes(12))
        save(out, 'SRTP', script)
    # The config file: docs/CONFIG.md's examples.
    doc = open(os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'CONFIG.md')).read()
    for block in doc.split('```yaml')[1:]:
        save(out, 'Config', block.split('```')[0].strip().encode() + b'\n')


if __name__ == '__main__':
    main()
