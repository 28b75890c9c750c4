#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "CDatagram.h"

int ls_sendmmsg(int fd, const ls_datagram *datagrams, unsigned count, int *error) {
    struct mmsghdr messages[LS_SENDMMSG_MAX];
    struct iovec vectors[LS_SENDMMSG_MAX];
    if (count > LS_SENDMMSG_MAX) count = LS_SENDMMSG_MAX;
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = (void *)datagrams[i].bytes;
        vectors[i].iov_len = datagrams[i].length;
        memset(&messages[i], 0, sizeof messages[i]);
        messages[i].msg_hdr.msg_name = (void *)datagrams[i].to;
        messages[i].msg_hdr.msg_namelen = datagrams[i].to_length;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned sent = 0;
    while (sent < count) {
        int r = sendmmsg(fd, messages + sent, count - sent, 0);
        if (r > 0) {
            sent += (unsigned)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        *error = r < 0 ? errno : EIO;
        return (int)sent;
    }
    *error = 0;
    return (int)sent;
}
