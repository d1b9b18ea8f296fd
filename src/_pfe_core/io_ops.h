/* The I/O stage of the burst pipeline: packets move between file descriptors and burst slots
 * with no Python object and no allocation per packet (DPDK's rx_burst / tx_burst over Linux
 * syscalls). Called by burst_io.pyx with the GIL released.
 *
 * A slot is `slot` bytes; a packet lives at offset[i] for length[i] bytes. Receive functions
 * leave 64 bytes of tailroom (the ESP trailer and ICV of an encapsulation in place, as
 * PipelineArrays.load does) and write each packet at `headroom`. Every length the kernel
 * reports is checked against the slot before it is stored. */
#ifndef INLINE_IPSEC_IO_OPS_H
#define INLINE_IPSEC_IO_OPS_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#define IO_MAX_BATCH 128     /* messages per recvmmsg/sendmmsg call (stack arrays) */
#define IO_TAILROOM 64
#define IO_PROTO_ESP 50

typedef struct io_slots {
    uint8_t *data;
    size_t slot;
    size_t count;            /* slots in the burst */
    uint32_t *offset;
    uint32_t *length;
    int32_t *sa;
    uint8_t *status;
    uint8_t *verdict;
} io_slots;

typedef struct io_result {
    long done;               /* packets moved */
    long errors;             /* packets the kernel refused (counted, skipped) */
    long dropped;            /* packets left unsent: a full socket or device queue */
    long truncated;          /* datagrams longer than a slot (dropped as malformed) */
    long calls;              /* syscalls made */
    int last_errno;          /* the last refusal's errno, 0 if none */
    int stop_errno;          /* what ended a receive: EAGAIN normally */
} io_result;

static inline void io_set_slot(io_slots *s, size_t i, uint32_t off, uint32_t len) {
    s->offset[i] = off;
    s->length[i] = len;
    s->sa[i] = -1;
    s->status[i] = 0;
    s->verdict[i] = 0;
}

/* Non-blocking read(2)s, one packet each (a TUN device with IFF_NO_PI), into slots
 * 0..limit-1 at `headroom`, each at most `cap` bytes (the caller makes cap + headroom +
 * IO_TAILROOM fit a slot, and cap exceed the device MTU). Stops at EAGAIN or any error. */
static inline void io_read_packets(int fd, io_slots *s, size_t limit, uint32_t headroom,
                                   uint32_t cap, io_result *r) {
    size_t n = 0;
    if (limit > s->count)
        limit = s->count;
    while (n < limit) {
        ssize_t got = read(fd, s->data + n * s->slot + headroom, cap);
        r->calls++;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            r->stop_errno = errno;
            break;
        }
        if (got == 0) {
            r->stop_errno = EAGAIN;
            break;
        }
        io_set_slot(s, n, headroom, (uint32_t)got);
        n++;
    }
    r->done = (long)n;
}

/* A write(2) per slot among 0..n-1 whose verdict is `verdict` (decrypted packets into a TUN
 * device). A full device queue (EAGAIN) drops the rest; any other refusal skips the packet. */
static inline void io_write_packets(int fd, const io_slots *s, size_t n, uint8_t verdict,
                                    io_result *r) {
    size_t i;
    if (n > s->count)
        n = s->count;
    for (i = 0; i < n; i++) {
        uint32_t off, len;
        ssize_t put;
        if (s->verdict[i] != verdict)
            continue;
        off = s->offset[i];
        len = s->length[i];
        if (off > s->slot || len > s->slot - off) {
            r->errors++;
            continue;
        }
        do {
            put = write(fd, s->data + i * s->slot + off, len);
            r->calls++;
        } while (put < 0 && errno == EINTR);
        if (put < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                size_t j;
                for (j = i; j < n; j++)
                    r->dropped += s->verdict[j] == verdict;
                r->last_errno = errno;
                return;
            }
            r->errors++;
            r->last_errno = errno;
            continue;
        }
        r->done++;
    }
}

/* One recvmmsg(2) from a raw ESP socket into slots 0..limit-1 at `headroom`. IPv4 raw sockets
 * deliver the whole IP packet. IPv6 raw sockets strip the IPv6 header (RFC 3542 §3): with
 * `v6_local` (16 bytes) the header is written back in front of the payload from the sender's
 * address and the local one (next header 50, hop limit 64), as the data path expects whole
 * outer packets. A datagram longer than its slot is truncated by the kernel: its slot gets
 * length 0, which the pipeline drops as malformed, and it is counted here. */
static inline void io_recv_packets(int fd, io_slots *s, size_t limit, uint32_t headroom,
                                   const uint8_t *v6_local, io_result *r) {
    struct mmsghdr msgs[IO_MAX_BATCH];
    struct iovec iov[IO_MAX_BATCH];
    struct sockaddr_in6 names[IO_MAX_BATCH];
    uint32_t pre = v6_local != NULL ? 40 : 0;
    size_t i, cap;
    int got;
    if (limit > s->count)
        limit = s->count;
    if (limit > IO_MAX_BATCH)
        limit = IO_MAX_BATCH;
    if (limit == 0 || s->slot < (size_t)headroom + pre + IO_TAILROOM + 1) {
        r->stop_errno = EINVAL;
        return;
    }
    cap = s->slot - headroom - pre - IO_TAILROOM;
    if (cap > 65535 - pre)
        cap = 65535 - pre;
    memset(msgs, 0, limit * sizeof(msgs[0]));
    for (i = 0; i < limit; i++) {
        iov[i].iov_base = s->data + i * s->slot + headroom + pre;
        iov[i].iov_len = cap;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &names[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
    }
    do {
        got = recvmmsg(fd, msgs, (unsigned int)limit, MSG_DONTWAIT, NULL);
        r->calls++;
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        r->stop_errno = errno;
        return;
    }
    for (i = 0; i < (size_t)got; i++) {
        uint32_t len = msgs[i].msg_len;
        uint8_t *p = s->data + i * s->slot + headroom;
        if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len > cap) {
            r->truncated++;
            io_set_slot(s, i, headroom, 0);
            continue;
        }
        if (v6_local != NULL) {
            if (msgs[i].msg_hdr.msg_namelen < sizeof(struct sockaddr_in6)
                    || names[i].sin6_family != AF_INET6) {
                io_set_slot(s, i, headroom, 0);
                continue;
            }
            p[0] = 0x60;
            p[1] = p[2] = p[3] = 0;
            p[4] = (uint8_t)(len >> 8);
            p[5] = (uint8_t)len;
            p[6] = IO_PROTO_ESP;
            p[7] = 64;
            memcpy(p + 8, &names[i].sin6_addr, 16);
            memcpy(p + 24, v6_local, 16);
            len += 40;
        }
        io_set_slot(s, i, headroom, len);
    }
    r->done = got;
}

/* How many of slots 0..n-1 have verdict `verdict` and hold a packet of IP version `version`
 * (0: any): what a send on a family without a raw socket must leave to another path. */
static inline size_t io_count_packets(const io_slots *s, size_t n, uint8_t verdict,
                                      int version) {
    size_t i, c = 0;
    if (n > s->count)
        n = s->count;
    for (i = 0; i < n; i++) {
        uint32_t off = s->offset[i], len = s->length[i];
        if (s->verdict[i] != verdict || off > s->slot || len < 1 || len > s->slot - off)
            continue;
        if (version == 0 || (s->data[i * s->slot + off] >> 4) == version)
            c++;
    }
    return c;
}

/* Outer packets of slots 0..n-1 whose verdict is `verdict` and whose IP version is `version`,
 * whole (the socket has IP_HDRINCL / IPV6_HDRINCL, so the header the engines built leaves as
 * built), to the destination address each packet names, with sendmmsg(2). Slots of the other
 * version are left alone; a packet too short for its header is refused. A full socket buffer
 * (EAGAIN, ENOBUFS) drops the rest, as a router drops on a full queue. */
static inline void io_send_packets(int fd, int version, const io_slots *s, size_t n,
                                   uint8_t verdict, io_result *r) {
    struct mmsghdr msgs[IO_MAX_BATCH];
    struct iovec iov[IO_MAX_BATCH];
    struct sockaddr_in6 names[IO_MAX_BATCH];   /* large enough for either family */
    size_t i = 0, m, k;
    if (n > s->count)
        n = s->count;
    while (i < n) {
        m = 0;
        for (; i < n && m < IO_MAX_BATCH; i++) {
            uint32_t off = s->offset[i], len = s->length[i];
            const uint8_t *p;
            if (s->verdict[i] != verdict)
                continue;
            if (off > s->slot || len > s->slot - off || len < 1) {
                r->errors++;
                continue;
            }
            p = s->data + i * s->slot + off;
            if ((p[0] >> 4) != version)
                continue;
            memset(&msgs[m], 0, sizeof(msgs[m]));
            memset(&names[m], 0, sizeof(names[m]));
            if (version == 4) {
                struct sockaddr_in *a = (struct sockaddr_in *)&names[m];
                if (len < 20) {
                    r->errors++;
                    continue;
                }
                a->sin_family = AF_INET;
                memcpy(&a->sin_addr, p + 16, 4);
                msgs[m].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
            } else {
                if (len < 40) {
                    r->errors++;
                    continue;
                }
                names[m].sin6_family = AF_INET6;
                memcpy(&names[m].sin6_addr, p + 24, 16);
                msgs[m].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
            }
            iov[m].iov_base = (void *)p;
            iov[m].iov_len = len;
            msgs[m].msg_hdr.msg_name = &names[m];
            msgs[m].msg_hdr.msg_iov = &iov[m];
            msgs[m].msg_hdr.msg_iovlen = 1;
            m++;
        }
        k = 0;
        while (k < m) {
            int sent = sendmmsg(fd, msgs + k, (unsigned int)(m - k), MSG_DONTWAIT);
            r->calls++;
            if (sent < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                    size_t j;
                    r->dropped += (long)(m - k);
                    r->last_errno = errno;
                    /* and everything not yet batched */
                    for (j = i; j < n; j++) {
                        uint32_t off = s->offset[j], len = s->length[j];
                        if (s->verdict[j] == verdict && off <= s->slot && len >= 1
                                && len <= s->slot - off
                                && (s->data[j * s->slot + off] >> 4) == version)
                            r->dropped++;
                    }
                    return;
                }
                r->errors++;              /* this one refused (no route, too big): skip it */
                r->last_errno = errno;
                k++;
                continue;
            }
            if (sent == 0) {
                r->dropped += (long)(m - k);
                break;
            }
            r->done += sent;
            k += (size_t)sent;
        }
    }
}

#endif
