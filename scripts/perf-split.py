#!/usr/bin/env python3
"""Where a server's CPU goes while it forwards: the split of a `perf record -e cpu-clock -g` profile (BENCHMARKS.md).

    ./scripts/perf-split.py FILE.data [FILE.data ...] [--us 6.5]

Each sample's whole stack (user and kernel) is read from `perf script` and put in the first category below whose
pattern it matches, checked in order: a sample in the kernel by the system call it is under; a sample in user space
by the deepest LiveSwarm path it is on (protecting inside a viewer's forward counts as protect, not forward);
crypto libraries' samples that come without a caller (their assembly keeps no frame pointer) count as protect.
Patterns match Swift's mangled names as perf prints them. With several files the samples are pooled; with --us (the
run's CPU µs per forwarded packet) each share is also given in µs per forwarded packet. Prints a Markdown table.
"""
import argparse
import re
import subprocess
import sys

SEND_SYSCALL = re.compile(r"__sys_sendmmsg|__sys_sendmsg|__sys_sendto|__x64_sys_sendmmsg|__x64_sys_sendmsg|__x64_sys_sendto")
RECV_SYSCALL = re.compile(r"__sys_recvmmsg|__sys_recvmsg|__sys_recvfrom|__x64_sys_recvmmsg|__x64_sys_recvmsg|__x64_sys_recvfrom")
# On loopback the sender's system call also delivers the datagram to the receiving socket (a network card would
# leave that to the other host): counted apart.
LOOPBACK = re.compile(r"loopback_xmit|__netif_receive_skb|process_backlog|net_rx_action|__do_softirq|udp_rcv|ip_rcv")
# Crypto libraries' assembly keeps no frame pointer (OpenSSL's; NSS's under Debian's libsrtp2, before LiveSwarm's own SRTP).
CRYPTO = re.compile(r"libcrypto|libsoftokn3|libfreeblpriv3|libnss3|libsrtp2")
TCP = re.compile(r"tcp_sendmsg|tcp_recvmsg|tcp_v4_rcv|tcp_write_xmit")

USER = [
    ("control: DTLS, ICE checks, RTCP", re.compile(
        r"DTLS|SSL_do_handshake|handleSTUN|sendTransportFeedback|TransportFeedback|protectRTCP|senderReport|receptionReport"
        r"|requestMissing|requestKeyframe")),
    ("unprotect (the publisher's packets)", re.compile(r"unprotectRTP|ls_srtp_gcm_open|srtp_unprotect")),
    ("protect (each copy)", re.compile(r"(?<!un)protectRTP|WebRTCTransportC7protect|ls_srtp_gcm_seal|srtp_protect")),
    # LiveSwarm's own sendmmsg batches, and swift-nio's channel writes (ICE-TCP; UDP too before DatagramWriter).
    ("send: user (sendmmsg batches, swift-nio's writes)", re.compile(
        r"DatagramWriter|__sendmmsg|ls_sendmmsg|_write0|WriteAndFlush|BaseStreamSocketChannel|PendingWritesManager"
        r"|PendingDatagramWritesManager|flushNow")),
    ("rewrite and queue (each copy)", re.compile(r"sendUnflushed|C7forward_7counted|MediaPortC5route|MediaPortC4send|MediaSession|ConsumerC")),
    ("route (each publisher packet)", re.compile(r"ProducerC7receive|RouterC15publisherPacket|HubIngest|FrameAssembler")),
    ("receive: user (recvmmsg, the pipeline)", re.compile(r"readFromSocket|channelRead|__recvmmsg")),
]
ORDER = (["send: kernel (UDP, IP, the device)", "kernel: loopback delivery to the viewers' sockets", "receive: kernel",
          "ICE-TCP: kernel", "kernel, other (epoll, scheduling, timers, interrupts)"]
         + [name for name, _ in USER] + ["other (event loop, timers, allocation outside the paths above)"])


def samples(path):
    """Each sample's frames, leaf first: (symbol, dso) pairs."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"], capture_output=True, text=True, check=True).stdout
    stack = []
    for line in out.splitlines():
        line = line.strip()
        if not line:
            if stack:
                yield stack
            stack = []
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1]
        dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else ""
        stack.append((rest, dso))
    if stack:
        yield stack


def category(stack):
    text = " ".join(s for s, _ in stack)
    if stack[0][1] == "[kernel.kallsyms]":
        if SEND_SYSCALL.search(text):
            return ORDER[1] if LOOPBACK.search(text) else ORDER[0]
        if RECV_SYSCALL.search(text):
            return ORDER[2]
        if TCP.search(text):
            return ORDER[3]
        return ORDER[4]
    for name, pattern in USER:
        if pattern.search(text):
            return name
    # Crypto samples that come without a caller: the server protects N copies for each packet it unprotects, so
    # they go to protect.
    if CRYPTO.search(stack[0][1]) and not any("liveswarm" in d for _, d in stack):
        return USER[2][0]
    return ORDER[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--us", type=float, help="the run's CPU µs per forwarded packet")
    args = parser.parse_args()
    counts = {name: 0 for name in ORDER}
    total = 0
    for path in args.files:
        for stack in samples(path):
            counts[category(stack)] += 1
            total += 1
    if total == 0:
        sys.exit("perf-split: no samples")
    header = "| where | share of the server's CPU |" + (" µs per forwarded packet |" if args.us else "")
    print(header)
    print("|---|---|" + ("---|" if args.us else ""))
    for name in ORDER:
        share = counts[name] / total
        if counts[name] == 0:
            continue
        row = f"| {name} | {share * 100:.1f} % |"
        if args.us:
            row += f" {share * args.us:.2f} |"
        print(row)
    print(f"\n{total} samples ({', '.join(args.files)})")


if __name__ == "__main__":
    main()
