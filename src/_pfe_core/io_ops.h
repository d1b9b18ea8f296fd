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
#include <sys/uio.h>
#include <netinet/in.h>

#define IO_MAX_BATCH 128     /* messages per recvmmsg/sendmmsg call (stack arrays) */
#define IO_TAILROOM 64
#define IO_PROTO_ESP 50
#define IO_PROTO_UDP 17

/* The header a TUN device with IFF_VNET_HDR puts before every packet in both directions
 * (struct virtio_net_hdr, virtio 1.x §5.1.6, native byte order on a legacy device). */
typedef struct io_vnet_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
} io_vnet_hdr;
#define IO_VNET_HDR_LEN 10
#define IO_VNET_F_NEEDS_CSUM 1
#define IO_VNET_GSO_NONE 0
#define IO_VNET_GSO_UDP_L4 5
/* datagrams one segmentation-offload write carries at most (the kernel allows 128) */
#define IO_GSO_MAX_SEGS 64

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
    long coalesced;          /* packets written inside multi-packet (GSO) writes */
    int last_errno;          /* the last refusal's errno, 0 if none */
    int stop_errno;          /* what ended a receive: EAGAIN normally */
    int gso_refused;         /* the device refused a GSO write (kernel without UDP GSO) */
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
 * IO_TAILROOM fit a slot, and cap exceed the device MTU). Stops at EAGAIN or any error.
 * With `vnet` the device puts a virtio-net header before each packet (IFF_VNET_HDR): it is
 * read apart (readv) and must announce a plain, fully checksummed packet, as a device with no
 * offloads enabled gives; anything else is counted in `errors` and its slot reused. */
static inline void io_read_packets(int fd, io_slots *s, size_t limit, uint32_t headroom,
                                   uint32_t cap, int vnet, io_result *r) {
    size_t n = 0;
    io_vnet_hdr hdr;
    struct iovec iov[2];
    if (limit > s->count)
        limit = s->count;
    iov[0].iov_base = &hdr;
    iov[0].iov_len = IO_VNET_HDR_LEN;
    while (n < limit) {
        uint8_t *at = s->data + n * s->slot + headroom;
        ssize_t got;
        if (vnet) {
            iov[1].iov_base = at;
            iov[1].iov_len = cap;
            got = readv(fd, iov, 2);
        } else {
            got = read(fd, at, cap);
        }
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
        if (vnet) {
            if (got <= IO_VNET_HDR_LEN || hdr.gso_type != IO_VNET_GSO_NONE
                    || (hdr.flags & IO_VNET_F_NEEDS_CSUM)) {
                r->errors++;
                continue;
            }
            got -= IO_VNET_HDR_LEN;
        }
        io_set_slot(s, n, headroom, (uint32_t)got);
        n++;
    }
    r->done = (long)n;
}

/* The Internet checksum's running sum (RFC 1071) of `len` bytes, 16-bit big-endian words. */
static inline uint64_t io_csum_add(uint64_t sum, const uint8_t *p, size_t len) {
    while (len >= 8) {
        sum += ((uint32_t)p[0] << 8 | p[1]) + ((uint32_t)p[2] << 8 | p[3])
             + ((uint32_t)p[4] << 8 | p[5]) + ((uint32_t)p[6] << 8 | p[7]);
        p += 8;
        len -= 8;
    }
    while (len >= 2) {
        sum += (uint32_t)p[0] << 8 | p[1];
        p += 2;
        len -= 2;
    }
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static inline uint16_t io_csum_fold(uint64_t sum) {
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* The IP header length if `p` (`len` bytes) is a UDP datagram the kernel can carry inside a
 * UDP segmentation-offload write and re-cut exactly as it is: IPv4 without options or
 * fragmentation, or IPv6 whose next header is UDP; lengths consistent with `len`; at least one
 * payload byte; a correct IPv4 header checksum; a UDP checksum present and correct (RFC 768; the kernel recomputes it per
 * datagram, so a wrong one would come out corrected). 0 otherwise. */
static inline uint32_t io_udp_segmentable(const uint8_t *p, uint32_t len) {
    uint32_t hl, ulen;
    uint64_t sum;
    if (len < 1)
        return 0;
    if (p[0] == 0x45) {
        if (len < 29 || p[9] != IO_PROTO_UDP || ((uint32_t)p[2] << 8 | p[3]) != len
                || ((p[6] & 0x3f) | p[7]) != 0      /* MF or a fragment offset */
                || io_csum_fold(io_csum_add(0, p, 20)) != 0xffff)
            return 0;
        hl = 20;
        sum = io_csum_add(0, p + 12, 8);
    } else if ((p[0] >> 4) == 6) {
        if (len < 49 || p[6] != IO_PROTO_UDP || ((uint32_t)p[4] << 8 | p[5]) != len - 40)
            return 0;
        hl = 40;
        sum = io_csum_add(0, p + 8, 32);
    } else {
        return 0;
    }
    ulen = (uint32_t)p[hl + 4] << 8 | p[hl + 5];
    if (ulen != len - hl || (p[hl + 6] | p[hl + 7]) == 0)
        return 0;
    sum += IO_PROTO_UDP + ulen;
    sum = io_csum_add(sum, p + hl, ulen);
    return io_csum_fold(sum) == 0xffff ? hl : 0;
}

/* Whether `q` (IP header length `hl`, already segmentable) is the datagram the kernel would
 * cut as segment `k` from a super-packet whose first datagram is `f`: same addresses, ports,
 * TOS / traffic class and flow label, TTL / hop limit, DF; an IPv4 identification k above
 * the first's (the kernel numbers the segments consecutively). */
static inline int io_same_udp_flow(const uint8_t *f, const uint8_t *q, uint32_t hl,
                                   uint32_t k) {
    if (hl == 20) {
        uint16_t id0 = (uint16_t)(f[4] << 8 | f[5]), id = (uint16_t)(q[4] << 8 | q[5]);
        return f[1] == q[1] && (f[6] & 0xc0) == (q[6] & 0xc0) && f[8] == q[8]
            && memcmp(f + 12, q + 12, 8) == 0 && memcmp(f + 20, q + 20, 4) == 0
            && (uint16_t)(id0 + k) == id;
    }
    return (q[0] >> 4) == 6 && memcmp(f, q, 4) == 0 && f[7] == q[7]
        && memcmp(f + 8, q + 8, 32) == 0 && memcmp(f + 40, q + 40, 4) == 0;
}

/* write(2) or writev(2), retried on EINTR. */
static inline ssize_t io_writev(int fd, const struct iovec *iov, int cnt) {
    ssize_t put;
    do {
        put = cnt == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, cnt);
    } while (put < 0 && errno == EINTR);
    return put;
}

/* One UDP segmentation-offload write (virtio-net GSO_UDP_L4) of the `m` datagrams at
 * pkt[0..m-1]: the first one's headers, turned into those of the whole super-packet (lengths,
 * IPv4 header checksum, the pseudo-header sum the kernel completes per segment), then every
 * datagram's payload in place. The first datagram's headers are restored afterwards, so a
 * refused write can fall back to one write per datagram. */
static inline ssize_t io_write_gso(int fd, uint8_t *const *pkt, const uint32_t *len,
                                   uint32_t m, uint32_t hl) {
    struct iovec iov[IO_GSO_MAX_SEGS + 2];
    uint8_t saved[48];
    io_vnet_hdr hdr;
    uint8_t *f = pkt[0];
    uint32_t i, payload = 0, ulen;
    uint64_t sum;
    ssize_t put;
    for (i = 0; i < m; i++) {
        payload += len[i] - hl - 8;
        iov[i + 2].iov_base = pkt[i] + hl + 8;
        iov[i + 2].iov_len = len[i] - hl - 8;
    }
    ulen = payload + 8;
    memcpy(saved, f, hl + 8);
    if (hl == 20) {
        uint32_t tot = ulen + 20;
        f[2] = (uint8_t)(tot >> 8);
        f[3] = (uint8_t)tot;
        f[10] = f[11] = 0;
        sum = io_csum_fold(io_csum_add(0, f, 20));
        f[10] = (uint8_t)(~sum >> 8);
        f[11] = (uint8_t)~sum;
        sum = io_csum_add(0, f + 12, 8);
    } else {
        f[4] = (uint8_t)(ulen >> 8);
        f[5] = (uint8_t)ulen;
        sum = io_csum_add(0, f + 8, 32);
    }
    f[hl + 4] = (uint8_t)(ulen >> 8);
    f[hl + 5] = (uint8_t)ulen;
    sum = io_csum_fold(sum + IO_PROTO_UDP + ulen);   /* not complemented: CHECKSUM_PARTIAL */
    f[hl + 6] = (uint8_t)(sum >> 8);
    f[hl + 7] = (uint8_t)sum;
    hdr.flags = IO_VNET_F_NEEDS_CSUM;
    hdr.gso_type = IO_VNET_GSO_UDP_L4;
    hdr.hdr_len = (uint16_t)(hl + 8);
    hdr.gso_size = (uint16_t)(len[0] - hl - 8);
    hdr.csum_start = (uint16_t)hl;
    hdr.csum_offset = 6;
    iov[0].iov_base = &hdr;
    iov[0].iov_len = IO_VNET_HDR_LEN;
    iov[1].iov_base = f;
    iov[1].iov_len = hl + 8;
    put = io_writev(fd, iov, (int)m + 2);
    memcpy(f, saved, hl + 8);
    return put;
}

/* Delivered packets into a TUN device: the slots among 0..n-1 whose verdict is `verdict`, in
 * slot order. Without `vnet`, one write(2) each. With `vnet` (IFF_VNET_HDR) each goes behind a
 * plain virtio-net header; with `coalesce` as well, each run of consecutive datagrams of one
 * UDP flow that the kernel can re-cut exactly (io_udp_segmentable, io_same_udp_flow, equal
 * payloads but a shorter last one) goes as one segmentation-offload write, which the kernel
 * routes and forwards once and cuts into the same datagrams where they are delivered, as GRO
 * merges them on a NIC. A device that refuses GSO (EINVAL) sets `gso_refused` and gets those
 * packets one by one. A full device queue (EAGAIN) drops the rest; any other refusal skips
 * the packet (or run). */
static inline void io_write_packets(int fd, const io_slots *s, size_t n, uint8_t verdict,
                                    int vnet, int coalesce, io_result *r) {
    static const io_vnet_hdr plain = {0, IO_VNET_GSO_NONE, 0, 0, 0, 0};
    uint8_t *pkt[IO_GSO_MAX_SEGS];
    uint32_t lens[IO_GSO_MAX_SEGS];
    size_t i = 0;
    if (n > s->count)
        n = s->count;
    while (i < n) {
        uint32_t off, len, hl = 0, m = 1, total;
        uint8_t *p;
        ssize_t put;
        size_t next;
        if (s->verdict[i] != verdict) {
            i++;
            continue;
        }
        off = s->offset[i];
        len = s->length[i];
        if (off > s->slot || len > s->slot - off) {
            r->errors++;
            i++;
            continue;
        }
        p = s->data + i * s->slot + off;
        next = i + 1;
        if (vnet && coalesce && !r->gso_refused)
            hl = io_udp_segmentable(p, len);
        if (hl) {
            /* gather the run: equal payloads, the last may be shorter */
            uint32_t seg = len - hl - 8;
            pkt[0] = p;
            lens[0] = len;
            total = len - hl;
            while (next < n && m < IO_GSO_MAX_SEGS && s->verdict[next] == verdict) {
                uint32_t qo = s->offset[next], ql = s->length[next];
                uint8_t *q;
                if (qo > s->slot || ql > s->slot - qo || ql < hl + 9 || ql - hl - 8 > seg
                        || total + (ql - hl - 8) > 65535 - 20)
                    break;
                q = s->data + next * s->slot + qo;
                if (io_udp_segmentable(q, ql) != hl || !io_same_udp_flow(p, q, hl, m))
                    break;
                pkt[m] = q;
                lens[m] = ql;
                total += ql - hl - 8;
                m++;
                next++;
                if (ql - hl - 8 < seg)
                    break;
            }
        }
        if (m > 1) {
            put = io_write_gso(fd, pkt, lens, m, hl);
            r->calls++;
            if (put < 0 && errno == EINVAL) {
                r->gso_refused = 1;     /* this run again, one by one */
                continue;
            }
        } else {
            struct iovec iov[2];
            int cnt = 0;
            if (vnet) {
                iov[cnt].iov_base = (void *)&plain;
                iov[cnt++].iov_len = IO_VNET_HDR_LEN;
            }
            iov[cnt].iov_base = p;
            iov[cnt++].iov_len = len;
            put = io_writev(fd, iov, cnt);
            r->calls++;
        }
        if (put < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                size_t j;
                for (j = i; j < n; j++)
                    r->dropped += s->verdict[j] == verdict;
                r->last_errno = errno;
                return;
            }
            r->errors += m;
            r->last_errno = errno;
        } else {
            r->done += m;
            if (m > 1)
                r->coalesced += m;
        }
        i = next;
    }
}

/* The receive half both socket readers share: one recvmmsg(2) of up to `limit` datagrams (at
 * most IO_MAX_BATCH) into slots 0.., each at headroom + pre (room for a header written in front
 * later), at most *cap bytes (set here: what a slot holds after IO_TAILROOM, at most
 * 65535 - pre), with the sender's address in names[i]. Returns the datagrams received, or -1
 * with r->stop_errno set (EINVAL: no slot, or slots too small). */
static inline int io_recvmmsg(int fd, io_slots *s, size_t limit, uint32_t headroom,
                              uint32_t pre, struct mmsghdr *msgs, struct iovec *iov,
                              struct sockaddr_in6 *names, size_t *cap, io_result *r) {
    size_t i;
    int got;
    if (limit > s->count)
        limit = s->count;
    if (limit > IO_MAX_BATCH)
        limit = IO_MAX_BATCH;
    if (limit == 0 || s->slot < (size_t)headroom + pre + IO_TAILROOM + 1) {
        r->stop_errno = EINVAL;
        return -1;
    }
    *cap = s->slot - headroom - pre - IO_TAILROOM;
    if (*cap > 65535 - pre)
        *cap = 65535 - pre;
    memset(msgs, 0, limit * sizeof(msgs[0]));
    for (i = 0; i < limit; i++) {
        iov[i].iov_base = s->data + i * s->slot + headroom + pre;
        iov[i].iov_len = *cap;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &names[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
    }
    do {
        got = recvmmsg(fd, msgs, (unsigned int)limit, MSG_DONTWAIT, NULL);
        r->calls++;
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        r->stop_errno = errno;
    return got;
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
    got = io_recvmmsg(fd, s, limit, headroom, pre, msgs, iov, names, &cap, r);
    if (got < 0)
        return;
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

/* One recvmmsg(2) from a UDP socket bound to `local` (4 or 16 bytes, by `version`) port
 * `port` (RFC 3948 NAT-T: ESP in UDP, IKE behind the non-ESP marker, keepalives) into slots
 * 0..limit-1 at `headroom`, each datagram behind the IP and UDP header it arrived with,
 * rebuilt from the sender's address and port and the local ones (the data path classifies
 * whole outer packets: RFC 3948 §2 demux, SPI lookup). The kernel has verified the UDP
 * checksum; the rebuilt one is 0, the IPv4 header checksum is computed. A datagram longer
 * than its slot is counted in `truncated` and its slot gets length 0 (dropped as malformed),
 * as is one from another address family. */
static inline void io_recv_udp(int fd, io_slots *s, size_t limit, uint32_t headroom,
                               int version, const uint8_t *local, uint16_t port,
                               io_result *r) {
    struct mmsghdr msgs[IO_MAX_BATCH];
    struct iovec iov[IO_MAX_BATCH];
    struct sockaddr_in6 names[IO_MAX_BATCH];
    uint32_t pre = version == 6 ? 48 : 28;
    size_t i, cap;
    int got;
    if (version != 4 && version != 6) {
        r->stop_errno = EINVAL;
        return;
    }
    got = io_recvmmsg(fd, s, limit, headroom, pre, msgs, iov, names, &cap, r);
    if (got < 0)
        return;
    for (i = 0; i < (size_t)got; i++) {
        uint32_t len = msgs[i].msg_len, ulen = len + 8;
        uint8_t *p = s->data + i * s->slot + headroom, *u = p + pre - 8;
        if ((msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len > cap) {
            r->truncated++;
            io_set_slot(s, i, headroom, 0);
            continue;
        }
        if (version == 4) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&names[i];
            uint16_t ck;
            if (msgs[i].msg_hdr.msg_namelen < sizeof(struct sockaddr_in)
                    || a->sin_family != AF_INET) {
                io_set_slot(s, i, headroom, 0);
                continue;
            }
            p[0] = 0x45;
            p[1] = 0;
            p[2] = (uint8_t)((ulen + 20) >> 8);
            p[3] = (uint8_t)(ulen + 20);
            p[4] = p[5] = p[6] = p[7] = 0;
            p[8] = 64;
            p[9] = IO_PROTO_UDP;
            p[10] = p[11] = 0;
            memcpy(p + 12, &a->sin_addr, 4);
            memcpy(p + 16, local, 4);
            ck = (uint16_t)~io_csum_fold(io_csum_add(0, p, 20));
            p[10] = (uint8_t)(ck >> 8);
            p[11] = (uint8_t)ck;
            memcpy(u, &a->sin_port, 2);
        } else {
            if (msgs[i].msg_hdr.msg_namelen < sizeof(struct sockaddr_in6)
                    || names[i].sin6_family != AF_INET6) {
                io_set_slot(s, i, headroom, 0);
                continue;
            }
            p[0] = 0x60;
            p[1] = p[2] = p[3] = 0;
            p[4] = (uint8_t)(ulen >> 8);
            p[5] = (uint8_t)ulen;
            p[6] = IO_PROTO_UDP;
            p[7] = 64;
            memcpy(p + 8, &names[i].sin6_addr, 16);
            memcpy(p + 24, local, 16);
            memcpy(u, &names[i].sin6_port, 2);
        }
        u[2] = (uint8_t)(port >> 8);
        u[3] = (uint8_t)port;
        u[4] = (uint8_t)(ulen >> 8);
        u[5] = (uint8_t)ulen;
        u[6] = u[7] = 0;
        io_set_slot(s, i, headroom, len + pre);
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
