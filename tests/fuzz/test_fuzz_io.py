"""The I/O stage's C code (io_ops.h) on garbled input, run under AddressSanitizer in CI:
TUN writes that look for UDP runs to coalesce over slots holding any bytes at any offsets and
lengths, virtio-net header reads of any datagram, NAT-T receives of any size. Each call must
count or refuse what it cannot take, never read or write outside a slot.

The packets derive from one seed, mutated from valid UDP datagrams (lengths, version and
header length bytes, checksums, identifications), so a failure names a reproducible case."""
from __future__ import annotations

import os
import random
import socket
import struct

from inline_ipsec import Burst
from inline_ipsec.pfe import Verdict, pipeline_arrays, read_packets, recv_udp, write_packets

SEED = 20261206
DELIVER = int(Verdict.DELIVER)
SLOT = 1024
HEAD = 64


def _fold(b: bytes) -> int:
    b += bytes(len(b) % 2)
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


def _udp4(payload: bytes, ident: int) -> bytes:
    """A valid datagram (checksums right), so that runs form before the mutations."""
    ulen = 8 + len(payload)
    src, dst = bytes([10, 1, 0, 10]), bytes([10, 2, 0, 10])
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ident & 0xFFFF, 0, 64, 17, 0, src,
                    dst)
    h = h[:10] + struct.pack("!H", ~_fold(h) & 0xFFFF) + h[12:]
    u = struct.pack("!HHHH", 4000, 9000, ulen, 0) + payload
    c = ~_fold(src + dst + struct.pack("!HH", 17, ulen) + u) & 0xFFFF or 0xFFFF
    return h + u[:6] + struct.pack("!H", c) + u[8:]


def _mutated(rng: random.Random, i: int) -> bytes:
    p = bytearray(_udp4(bytes(rng.choice([1, 8, 36, 36, 36, 36, 200])), i))
    for _ in range(rng.choice([0, 0, 0, 0, 1, 2, 4])):
        at = rng.randrange(len(p))
        p[at] = rng.choice([0, 0xFF, 0x45, 0x60, 17, rng.randrange(256)])
    if rng.random() < 0.1:
        p = p[:rng.randrange(len(p) + 1)]
    if rng.random() < 0.05:
        p[:1] = b"\x60"
        p += bytes(rng.randrange(64))
    return bytes(p)


def test_coalescing_writes_over_any_slot_contents_stay_inside_the_slots():
    rng = random.Random(SEED)
    fd = os.open(os.devnull, os.O_WRONLY)
    coalesced = 0
    try:
        for _ in range(300):
            n = rng.randrange(1, 40)
            burst = Burst(40, SLOT, HEAD)
            for i in range(n):
                p = _mutated(rng, i)
                off = rng.choice([HEAD] * 8 + [0, SLOT - len(p), SLOT - 1, SLOT, SLOT + 9])
                off = max(0, off)
                if off + len(p) <= SLOT:
                    burst.data[i, off:off + len(p)] = memoryview(p)
                burst.offset[i] = off
                burst.length[i] = rng.choice([len(p)] * 12 + [0, 1, SLOT, 70000, len(p) + 3])
                burst.verdict[i] = rng.choice([DELIVER] * 12 + [0])
            before = bytes(burst.data)
            r = write_packets(pipeline_arrays(burst), fd, n, DELIVER, True, True)
            delivered = sum(1 for i in range(n) if burst.verdict[i] == DELIVER)
            fits = sum(1 for i in range(n) if burst.verdict[i] == DELIVER
                       and burst.offset[i] <= SLOT
                       and burst.length[i] <= SLOT - burst.offset[i])
            # /dev/null takes every write: what fits its slot is written, the rest refused
            assert (r.done, r.errors, r.dropped) == (fits, delivered - fits, 0)
            assert r.coalesced <= r.done and not r.gso_refused
            assert bytes(burst.data) == before        # the run's first headers restored
            coalesced += r.coalesced
    finally:
        os.close(fd)
    assert coalesced > 0                              # the gathering code did run


def test_virtio_reads_of_any_datagram_stay_inside_the_slots():
    rng = random.Random(SEED + 1)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    b.setblocking(False)
    sent = 0
    for i in range(200):
        # (never empty: a TUN read does not return 0 bytes, and read_packets takes 0 as the
        # end of what is queued)
        d = bytes(rng.randrange(256) for _ in range(rng.choice([1, 9, 10, 11, 64])))
        d += bytes(rng.choice([0, 1, 100, 900, 2000]))
        a.send(d)
        sent += 1
    burst = Burst(32, SLOT, HEAD)
    arrays = pipeline_arrays(burst)
    taken = 0
    while True:
        r = read_packets(arrays, b.fileno(), 32, HEAD, SLOT - HEAD - 64, True)
        assert all(burst.offset[i] == HEAD and 0 < burst.length[i] <= SLOT - HEAD - 64
                   for i in range(r.done))
        taken += r.done + r.errors
        if r.stop_errno:
            break
    assert taken == sent
    a.close()
    b.close()


def test_nat_t_receives_of_any_size_stay_inside_the_slots():
    rng = random.Random(SEED + 2)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sizes = [rng.choice([0, 1, 4, 8, 100, 900, 903, 904, 905, 1500, 9000]) for _ in range(150)]
    for s in sizes:
        tx.sendto(bytes(s), rx.getsockname())
    burst = Burst(16, SLOT, HEAD)
    arrays = pipeline_arrays(burst)
    got = truncated = 0
    while True:
        r = recv_udp(arrays, rx.fileno(), 16, HEAD, bytes([127, 0, 0, 1]), 4500)
        if r.stop_errno:
            break
        for i in range(r.done):
            assert burst.length[i] == 0 or burst.length[i] <= SLOT - HEAD - 64
        got += r.done
        truncated += r.truncated
    assert got == len(sizes)
    assert truncated == sum(1 for s in sizes if s > SLOT - HEAD - 64 - 28)
    rx.close()
    tx.close()
