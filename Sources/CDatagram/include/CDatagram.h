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

/// Sends up to LS_SENDMMSG_MAX datagrams with sendmmsg(2) (Glibc's Swift module lacks it: it needs _GNU_SOURCE),
/// retrying after EINTR. Returns how many were sent before the first the kernel refused; *error is 0 if none was
/// refused, else that datagram's errno.
int ls_sendmmsg(int fd, const ls_datagram *datagrams, unsigned count, int *error);

#endif
