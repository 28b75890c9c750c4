#ifndef LS_CDATAGRAM_H
#define LS_CDATAGRAM_H

#include <stddef.h>
#include <sys/socket.h>

/// One datagram for ls_sendmmsg: its bytes and its destination.
typedef struct ls_datagram {
    const void *bytes;
    size_t length;
    const struct sockaddr *to;
    socklen_t to_length;
} ls_datagram;

/// The most datagrams one ls_sendmmsg call takes.
#define LS_SENDMMSG_MAX 256
/// The most datagrams, and bytes, in one segmented (GSO) message: Linux takes 64 segments (UDP_MAX_SEGMENTS before
/// 6.2; 128 since) and a UDP payload under 64 KiB.
#define LS_SEGMENTS_MAX 64
#define LS_SEGMENTED_BYTES_MAX 60000

/// Sends up to LS_SENDMMSG_MAX datagrams with sendmmsg(2) (Glibc's Swift module lacks it: it needs _GNU_SOURCE),
/// retrying after EINTR.
///
/// With `segment` set, a run of consecutive datagrams to one destination, all of the first's length but the last
/// (which may be shorter), leaves as one message with UDP_SEGMENT (generic segmentation offload, Linux 4.18): the
/// kernel's UDP and IP output runs once for the run and the datagrams are cut apart as late as the device allows,
/// each still its own datagram on the wire.
///
/// Returns how many datagrams were sent before the first message the kernel refused; *error is 0 if none was
/// refused, else that message's errno, and *refused how many datagrams the refused message held (1 unless it was
/// segmented). *segmented counts the datagrams sent in segmented messages.
int ls_sendmmsg(int fd, const ls_datagram *datagrams, unsigned count, int segment, int *error, unsigned *refused,
                unsigned *segmented);

#endif
