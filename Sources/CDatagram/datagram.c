#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "CDatagram.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/// Whether datagram `d` may join a segmented message that began at `first`, holds `segments` datagrams of
/// `first`'s length and `bytes` bytes so far: the same destination, no longer than the first, the message's
/// previous datagram not shorter (only the last may be), and within the segment and size limits.
static int joins(const ls_datagram *first, const ls_datagram *previous, const ls_datagram *d, unsigned segments, size_t bytes) {
    return segments < LS_SEGMENTS_MAX && bytes + d->length <= LS_SEGMENTED_BYTES_MAX && d->length > 0
        && previous->length == first->length && d->length <= first->length
        && d->to_length == first->to_length && memcmp(d->to, first->to, d->to_length) == 0;
}

int ls_sendmmsg(int fd, const ls_datagram *datagrams, unsigned count, int segment, int *error, unsigned *refused,
                unsigned *segmented) {
    struct mmsghdr messages[LS_SENDMMSG_MAX];
    struct iovec vectors[LS_SENDMMSG_MAX];
    /// Where each message's datagrams start, and one control buffer per message for its UDP_SEGMENT.
    unsigned starts[LS_SENDMMSG_MAX + 1];
    union {
        char bytes[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } controls[LS_SENDMMSG_MAX];
    if (count > LS_SENDMMSG_MAX) count = LS_SENDMMSG_MAX;
    unsigned m = 0;
    for (unsigned i = 0; i < count;) {
        unsigned n = 1;
        size_t bytes = datagrams[i].length;
        while (segment && i + n < count && joins(&datagrams[i], &datagrams[i + n - 1], &datagrams[i + n], n, bytes)) {
            bytes += datagrams[i + n].length;
            n++;
        }
        memset(&messages[m], 0, sizeof messages[m]);
        messages[m].msg_hdr.msg_name = (void *)datagrams[i].to;
        messages[m].msg_hdr.msg_namelen = datagrams[i].to_length;
        messages[m].msg_hdr.msg_iov = &vectors[i];
        messages[m].msg_hdr.msg_iovlen = n;
        if (n > 1) {
            memset(&controls[m], 0, sizeof controls[m]);
            messages[m].msg_hdr.msg_control = controls[m].bytes;
            messages[m].msg_hdr.msg_controllen = sizeof controls[m].bytes;
            struct cmsghdr *c = CMSG_FIRSTHDR(&messages[m].msg_hdr);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t size = (uint16_t)datagrams[i].length;
            memcpy(CMSG_DATA(c), &size, sizeof size);
        }
        for (unsigned k = 0; k < n; k++) {
            vectors[i + k].iov_base = (void *)datagrams[i + k].bytes;
            vectors[i + k].iov_len = datagrams[i + k].length;
        }
        starts[m++] = i;
        i += n;
    }
    starts[m] = count;
    unsigned sent = 0;
    *segmented = 0;
    while (sent < m) {
        int r = sendmmsg(fd, messages + sent, m - sent, 0);
        if (r > 0) {
            for (unsigned k = sent; k < sent + (unsigned)r; k++) {
                if (starts[k + 1] - starts[k] > 1) *segmented += starts[k + 1] - starts[k];
            }
            sent += (unsigned)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        *error = r < 0 ? errno : EIO;
        *refused = starts[sent + 1] - starts[sent];
        return (int)starts[sent];
    }
    *error = 0;
    *refused = 0;
    return (int)count;
}
