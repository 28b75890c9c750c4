#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (Fuzz/Corpus/TARGET/), from real clients on loopback (docs/RELIABILITY.md).

    capture_seeds.py --binary .build/release/liveswarm [--out Fuzz/Corpus]

- STUN: coturn's turnutils_stunclient and turnutils_uclient (Binding, Allocate with long-term credentials,
  CreatePermission, ChannelBind, Send, ChannelData, Refresh) talking to a liveswarm TURN server through a UDP relay
  that records every datagram both ways.
- RTP, RTCP: ffmpeg's RTP muxer (H.264 and Opus payloaders) and its sender reports, received on UDP sockets.
- RTMPChunks, AMF0: ffmpeg publishing over RTMP to a recorder that answers the handshake plainly and keeps the
  chunk stream after C2 (seeds are its first kilobytes; the AMF0 seeds are the command payloads at chunk size 128).
- SDP: the SDP ffmpeg writes for its RTP session.
Files already in the corpus (fixtures copied by hand) are kept. Each seed is named by its SHA-1, as libFuzzer does.
"""

import argparse
import hashlib
import select
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def save(out, target, data, limit=64):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if len(os.listdir(d)) >= limit or not data:
        return
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), 'wb') as f:
        f.write(data)


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stun(args):
    """A UDP relay between coturn's clients and a liveswarm TURN server; every datagram is a seed."""
    stun_port = free_port()
    http = free_port(socket.SOCK_STREAM)
    server = subprocess.Popen([args.binary, 'serve', '--http-port', str(http), '--rtmp-port', str(free_port(socket.SOCK_STREAM)),
                               '--stun-port', str(stun_port), '--rtc-port', str(free_port()), '--host', '127.0.0.1',
                               '--turn-user', 'fuzz:seeds', '--turn-allow-loopback', '--log-level', 'error'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(('127.0.0.1', 0))
    relay_port = relay.getsockname()[1]
    upstream = {}  # client address -> its own socket towards the server, so that answers go back to the right one
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            socks = [relay] + list(upstream.values())
            ready, _, _ = select.select(socks, [], [], 0.2)
            for sock in ready:
                data, addr = sock.recvfrom(65536)
                save(args.out, 'STUN', data)
                if sock is relay:
                    up = upstream.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.bind(('127.0.0.1', 0))
                        upstream[addr] = up
                    up.sendto(data, ('127.0.0.1', stun_port))
                else:
                    client = next(a for a, u in upstream.items() if u is sock)
                    relay.sendto(data, client)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        time.sleep(1.5)
        subprocess.run(['turnutils_stunclient', '-p', str(relay_port), '127.0.0.1'], capture_output=True, timeout=20)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('127.0.0.2', 0))  # a loopback address that is not the server's own
        peer_port = s.getsockname()[1]
        s.close()
        peer = subprocess.Popen(['turnutils_peer', '-L', '127.0.0.2', '-p', str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for extra in ([], ['-c']):  # with and without channels (ChannelBind and ChannelData, or Send indications)
                # uclient does not always finish through the relay (it waits for its own totals); what it sent and
                # got until then is what is wanted.
                try:
                    subprocess.run(['turnutils_uclient', '-u', 'fuzz', '-w', 'seeds', '-p', str(relay_port), '-e', '127.0.0.2',
                                    '-r', str(peer_port), '-n', '5', '-l', '120', '-z', '5'] + extra + ['127.0.0.1'],
                                   capture_output=True, timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            peer.kill()
    finally:
        stop.set()
        t.join()
        server.terminate()
        server.wait(timeout=10)


def rtp(args):
    """ffmpeg's RTP muxer: H.264 and Opus packets, and its RTCP sender reports; its SDP."""
    for codec, target_args, seconds in ((['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=15', '-c:v', 'libx264', '-g', '15',
                                          '-bsf:v', 'h264_mp4toannexb'], 'video', 3),
                                        (['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-c:a', 'libopus'], 'audio', 3)):
        port = free_port()
        while port % 2:
            port = free_port()
        socks = []
        for p in (port, port + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(('127.0.0.1', p))
            s.settimeout(0.2)
            socks.append(s)
        sdp = tempfile.NamedTemporaryFile(suffix='.sdp', delete=False).name
        ff = subprocess.Popen(['ffmpeg', '-hide_banner', '-loglevel', 'error', '-re'] + codec + ['-t', str(seconds),
                              '-sdp_file', sdp, '-f', 'rtp', f'rtp://127.0.0.1:{port}?rtcpport={port + 1}&pkt_size=1200'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + seconds + 5
        while time.time() < deadline and (ff.poll() is None or time.time() < deadline - 4):
            for s, target in zip(socks, ('RTP', 'RTCP')):
                try:
                    data, _ = s.recvfrom(65536)
                    save(args.out, target, data, limit=48)
                except socket.timeout:
                    pass
            if ff.poll() is not None:
                break
        ff.wait(timeout=10)
        with open(sdp, 'rb') as f:
            save(args.out, 'SDP', f.read())
        os.unlink(sdp)
        for s in socks:
            s.close()


def rtmp(args):
    """ffmpeg publishing over RTMP to liveswarm through a TCP relay: the client's chunk stream after the handshake
    (connect, createStream, publish, metadata, media), and the AMF0 bodies of its first command messages."""
    rtmp_port = free_port(socket.SOCK_STREAM)
    server = subprocess.Popen([args.binary, 'serve', '--http-port', str(free_port(socket.SOCK_STREAM)), '--rtmp-port', str(rtmp_port),
                               '--stun-port', str(free_port()), '--rtc-port', str(free_port()), '--host', '127.0.0.1', '--log-level', 'error'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    time.sleep(1.5)
    ff = subprocess.Popen(['ffmpeg', '-hide_banner', '-loglevel', 'quiet', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=10',
                           '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '3', '-c:v', 'libx264', '-g', '10', '-c:a', 'aac', '-f', 'flv',
                           f'rtmp://127.0.0.1:{port}/live/seed'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c, _ = srv.accept()
    up = socket.create_connection(('127.0.0.1', rtmp_port))
    sent = b''
    deadline = time.time() + 8
    while time.time() < deadline:
        ready, _, _ = select.select([c, up], [], [], 0.5)
        done = False
        for sock in ready:
            d = sock.recv(65536)
            if not d:
                done = True
                break
            if sock is c:
                sent += d
                up.sendall(d)
            else:
                c.sendall(d)
        if done or ff.poll() is not None:
            break
    for sock in (c, up, srv):
        sock.close()
    ff.kill()
    server.terminate()
    server.wait(timeout=10)
    stream = sent[1537 + 1536:]
    for n in (512, 4096, 32768):
        save(args.out, 'RTMPChunks', b'\x7f' + stream[:n])  # first byte: the fuzz target's piece size (128)
    # The first messages' AMF0 bodies (type 20 commands, type 18 metadata), walking chunks of the default size
    # 128 until ffmpeg's Set Chunk Size.
    i = 0
    while i + 12 <= len(stream) and i < 4096:
        if stream[i] >> 6 != 0:
            break
        length = int.from_bytes(stream[i + 4:i + 7], 'big')
        mtype = stream[i + 7]
        body, j = b'', i + 12
        while len(body) < length and j < len(stream):
            take = min(128, length - len(body))
            body += stream[j:j + take]
            j += take
            if len(body) < length:
                j += 1  # a type 3 chunk header
        if mtype in (18, 20):
            save(args.out, 'AMF0', body)
        if mtype == 1:
            break  # Set Chunk Size: the walk's chunk size no longer holds
        i = j


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--binary', required=True)
    p.add_argument('--out', default=os.path.join(ROOT, 'Fuzz', 'Corpus'))
    args = p.parse_args()
    stun(args)
    rtp(args)
    rtmp(args)
    for t in sorted(os.listdir(args.out)):
        print(t, len(os.listdir(os.path.join(args.out, t))), 'seeds', file=sys.stderr)


if __name__ == '__main__':
    main()
