# cython: language_level=3
"""The I/O stage of the burst pipeline: a burst's slots filled from and drained to file
descriptors in one call each, GIL released, no Python object per packet (io_ops.h).

- `read_packets`: a TUN device's packets (one IP packet per read(2), IFF_NO_PI; with `vnet`
  the virtio-net header of an IFF_VNET_HDR device read apart);
- `write_packets`: the slots with a given verdict into a TUN device (decrypted packets); with
  `vnet` and `coalesce`, runs of one UDP flow's datagrams as single UDP segmentation-offload
  writes that the kernel cuts back into the same datagrams;
- `recv_packets`: one recvmmsg(2) from a raw ESP socket (RFC 4303 over IP protocol 50), the
  IPv6 header rebuilt where the kernel strips it;
- `recv_udp`: one recvmmsg(2) from a NAT-T UDP socket (RFC 3948), each datagram behind the
  IP and UDP header it arrived with, rebuilt;
- `count_packets`: how many slots a send of one IP version would take;
- `send_packets`: the slots with a given verdict, of one IP version, whole, on a raw socket
  with IP_HDRINCL / IPV6_HDRINCL (sendmmsg(2)), to the destination each packet names.

Each returns an `IoResult`: packets moved, refused, dropped on a full queue, truncated, and
the errno that ended or last refused the call."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t
from _pfe_core.pipeline cimport PipelineArrays

cdef extern from "io_ops.h" nogil:
    ctypedef struct io_slots:
        uint8_t *data
        size_t slot
        size_t count
        uint32_t *offset
        uint32_t *length
        int32_t *sa
        uint8_t *status
        uint8_t *verdict
    ctypedef struct io_result:
        long done
        long errors
        long dropped
        long truncated
        long calls
        long coalesced
        int last_errno
        int stop_errno
        int gso_refused
    enum:
        IO_TAILROOM
        IO_MAX_BATCH
        IO_VNET_HDR_LEN
        IO_GSO_MAX_SEGS
    void io_read_packets(int fd, io_slots *s, size_t limit, uint32_t headroom, uint32_t cap,
                         int vnet, io_result *r)
    void io_write_packets(int fd, const io_slots *s, size_t n, uint8_t verdict, int vnet,
                          int coalesce, io_result *r)
    void io_recv_packets(int fd, io_slots *s, size_t limit, uint32_t headroom,
                         const uint8_t *v6_local, io_result *r)
    void io_recv_udp(int fd, io_slots *s, size_t limit, uint32_t headroom, int version,
                     const uint8_t *local, uint16_t port, io_result *r)
    size_t io_count_packets(const io_slots *s, size_t n, uint8_t verdict, int version)
    void io_send_packets(int fd, int version, const io_slots *s, size_t n, uint8_t verdict,
                         io_result *r)

MAX_BATCH = IO_MAX_BATCH
TAILROOM = IO_TAILROOM
VNET_HDR_LEN = IO_VNET_HDR_LEN
GSO_MAX_SEGS = IO_GSO_MAX_SEGS


cdef class IoResult:
    """What one I/O call did (module docstring)."""
    cdef readonly long done, errors, dropped, truncated, calls, coalesced
    cdef readonly int last_errno, stop_errno
    cdef readonly bint gso_refused

    def __repr__(self) -> str:
        return (f"IoResult(done={self.done}, errors={self.errors}, dropped={self.dropped}, "
                f"truncated={self.truncated}, calls={self.calls}, coalesced={self.coalesced}, "
                f"last_errno={self.last_errno}, stop_errno={self.stop_errno}, "
                f"gso_refused={self.gso_refused})")


cdef IoResult _result(const io_result *r):
    cdef IoResult out = IoResult.__new__(IoResult)
    out.done, out.errors, out.dropped = r.done, r.errors, r.dropped
    out.truncated, out.last_errno, out.stop_errno = r.truncated, r.last_errno, r.stop_errno
    out.calls, out.coalesced, out.gso_refused = r.calls, r.coalesced, r.gso_refused != 0
    return out


cdef int _slots(PipelineArrays b, io_slots *s) except -1:
    cdef Py_ssize_t n = b.data.shape[0]
    b.check(n)              # every per-slot array covers every slot
    if n == 0 or b.data.shape[1] == 0:
        raise ValueError("a burst without slots")
    s.data = &b.data[0, 0]
    s.slot = b.data.shape[1]
    s.count = n
    s.offset = &b.offset[0]
    s.length = &b.length[0]
    s.sa = &b.sa[0]
    s.status = &b.status[0]
    s.verdict = &b.verdict[0]
    return 0


def read_packets(PipelineArrays b not None, int fd, Py_ssize_t limit, uint32_t headroom,
                 uint32_t cap, bint vnet=False) -> IoResult:
    """Up to `limit` packets from `fd` (non-blocking), each into its slot at `headroom`, at
    most `cap` bytes each; `done` is the number read (slots 0..done-1). With `vnet` each
    packet follows a virtio-net header (a TUN device with IFF_VNET_HDR and no offloads): a
    header announcing GSO or a partial checksum drops the packet (`errors`)."""
    cdef io_slots s
    cdef io_result r
    _slots(b, &s)
    if limit < 0:
        raise ValueError("negative limit")
    if cap == 0 or <size_t>headroom + cap + IO_TAILROOM > s.slot:
        raise ValueError(f"{cap} bytes at headroom {headroom} and {IO_TAILROOM} of tailroom "
                         f"do not fit a {s.slot}-byte slot")
    r = io_result(0, 0, 0, 0, 0, 0, 0, 0, 0)
    with nogil:
        io_read_packets(fd, &s, <size_t>limit, headroom, cap, vnet, &r)
    return _result(&r)


def write_packets(PipelineArrays b not None, int fd, Py_ssize_t n, uint8_t verdict,
                  bint vnet=False, bint coalesce=False) -> IoResult:
    """Write each of slots 0..n-1 whose verdict is `verdict` to `fd`, one write(2) each, in
    slot order. With `vnet` (a TUN device with IFF_VNET_HDR) each follows a plain virtio-net
    header; with `coalesce` too, consecutive datagrams of one UDP flow that the kernel can cut
    back exactly (equal payloads but a shorter last one, consecutive IPv4 identifications,
    correct checksums) go as one UDP segmentation-offload write of up to GSO_MAX_SEGS
    (`coalesced` counts them). If the device refuses such a write (EINVAL: a kernel before
    6.2) those packets go one by one and `gso_refused` is set."""
    cdef io_slots s
    cdef io_result r
    _slots(b, &s)
    if n < 0:
        raise ValueError("negative count")
    r = io_result(0, 0, 0, 0, 0, 0, 0, 0, 0)
    with nogil:
        io_write_packets(fd, &s, <size_t>n, verdict, vnet, coalesce, &r)
    return _result(&r)


def recv_packets(PipelineArrays b not None, int fd, Py_ssize_t limit, uint32_t headroom,
                 bytes v6_local=None) -> IoResult:
    """One recvmmsg(2) of up to `limit` datagrams (at most MAX_BATCH) from the raw ESP
    socket `fd` into slots 0..done-1 at `headroom`. For an IPv6 socket pass the local
    address (16 bytes): the IPv6 header the kernel stripped is rebuilt in front."""
    cdef io_slots s
    cdef io_result r
    cdef const uint8_t *local = NULL
    _slots(b, &s)
    if limit < 0:
        raise ValueError("negative limit")
    if v6_local is not None:
        if len(v6_local) != 16:
            raise ValueError("an IPv6 address has 16 bytes")
        local = <const uint8_t *><const char *>v6_local
    r = io_result(0, 0, 0, 0, 0, 0, 0, 0, 0)
    with nogil:
        io_recv_packets(fd, &s, <size_t>limit, headroom, local, &r)
    return _result(&r)


def recv_udp(PipelineArrays b not None, int fd, Py_ssize_t limit, uint32_t headroom,
             bytes local not None, int port) -> IoResult:
    """One recvmmsg(2) of up to `limit` datagrams (at most MAX_BATCH) from the UDP socket
    `fd`, bound to address `local` (4 or 16 bytes) and `port`, into slots 0..done-1 at
    `headroom`: each behind an IPv4 or IPv6 header and a UDP header rebuilt from the sender's
    address and port and the local ones (the UDP checksum left 0: the kernel checked it)."""
    cdef io_slots s
    cdef io_result r
    cdef int version
    cdef const uint8_t *addr
    _slots(b, &s)
    if limit < 0:
        raise ValueError("negative limit")
    if len(local) not in (4, 16):
        raise ValueError("an IPv4 address has 4 bytes, an IPv6 address 16")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    version = 4 if len(local) == 4 else 6
    addr = <const uint8_t *><const char *>local
    r = io_result(0, 0, 0, 0, 0, 0, 0, 0, 0)
    with nogil:
        io_recv_udp(fd, &s, <size_t>limit, headroom, version, addr, <uint16_t>port, &r)
    return _result(&r)


def send_packets(PipelineArrays b not None, int fd, int version, Py_ssize_t n,
                 uint8_t verdict) -> IoResult:
    """Send each of slots 0..n-1 whose verdict is `verdict` and whose IP version is
    `version` (4 or 6) whole on the raw socket `fd` (which must have IP_HDRINCL or
    IPV6_HDRINCL), to its destination address; sendmmsg(2) in batches of MAX_BATCH."""
    cdef io_slots s
    cdef io_result r
    _slots(b, &s)
    if version not in (4, 6):
        raise ValueError("IP version 4 or 6")
    if n < 0:
        raise ValueError("negative count")
    r = io_result(0, 0, 0, 0, 0, 0, 0, 0, 0)
    with nogil:
        io_send_packets(fd, version, &s, <size_t>n, verdict, &r)
    return _result(&r)


def count_packets(PipelineArrays b not None, Py_ssize_t n, uint8_t verdict,
                  int version=0) -> int:
    """How many of slots 0..n-1 have verdict `verdict` and hold an IPv`version` packet (0:
    any version)."""
    cdef io_slots s
    cdef size_t c
    _slots(b, &s)
    if n < 0:
        raise ValueError("negative count")
    with nogil:
        c = io_count_packets(&s, <size_t>n, verdict, version)
    return c
