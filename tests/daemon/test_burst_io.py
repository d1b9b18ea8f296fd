"""The I/O stage in C (`pfe.read_packets` / `write_packets` / `recv_packets` /
`send_packets`): packets between file descriptors and burst slots, each length checked.

Packet-per-read descriptors are UNIX datagram socket pairs (a TUN device reads and writes
one packet per call the same way); raw ESP sockets on loopback need CAP_NET_RAW."""
from __future__ import annotations

import os
import socket
import struct

import pytest
from helpers import missing
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec import Burst
from inline_ipsec.pfe import (Verdict, count_packets, pipeline_arrays, read_packets,
                              recv_packets, recv_udp, send_packets, write_packets)

HEAD = 128
WIRE, DELIVER = int(Verdict.WIRE), int(Verdict.DELIVER)


def _dgram_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def _esp4(src: str, dst: str, spi: int, body: bytes) -> bytes:
    """An IPv4 packet carrying ESP (protocol 50): header checksum left 0 (the kernel fills it
    on a header-including raw socket)."""
    payload = struct.pack("!II", spi, 1) + body
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, 50, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + payload


def test_read_puts_each_packet_at_the_headroom():
    a, b = _dgram_pair()
    sent = [bytes([i]) * (20 + 7 * i) for i in range(5)]
    for p in sent:
        a.send(p)
    burst = Burst(8, 2048, HEAD)
    arrays = pipeline_arrays(burst)
    burst.verdict[:] = 77
    r = read_packets(arrays, b.fileno(), 8, HEAD, 1500)
    assert r.done == 5 and r.calls == 6 and r.stop_errno == 11      # EAGAIN ends it
    burst.count = r.done
    assert [burst.packet(i) for i in range(5)] == sent
    assert list(burst.offset[:5]) == [HEAD] * 5 and list(burst.sa[:5]) == [-1] * 5
    assert list(burst.verdict[:5]) == [0] * 5
    a.close()
    b.close()


def test_read_stops_at_the_limit_and_keeps_the_rest_queued():
    a, b = _dgram_pair()
    for i in range(6):
        a.send(bytes([i]) * 30)
    burst = Burst(8, 2048, HEAD)
    arrays = pipeline_arrays(burst)
    assert read_packets(arrays, b.fileno(), 4, HEAD, 1500).done == 4
    r = read_packets(arrays, b.fileno(), 8, HEAD, 1500)
    assert r.done == 2
    burst.count = 2
    assert burst.packet(0) == bytes([4]) * 30


def test_read_refuses_a_cap_that_overruns_the_slot():
    burst = Burst(4, 2048, HEAD)
    with pytest.raises(ValueError, match="do not fit"):
        read_packets(pipeline_arrays(burst), 0, 4, HEAD, 2048 - HEAD - 63)
    with pytest.raises(ValueError, match="negative"):
        read_packets(pipeline_arrays(burst), 0, -1, HEAD, 100)


def test_read_of_a_bad_descriptor_reports_its_errno():
    burst = Burst(4, 2048, HEAD)
    r = read_packets(pipeline_arrays(burst), 10_000, 4, HEAD, 1500)
    assert r.done == 0 and r.stop_errno == 9                       # EBADF


def test_write_sends_only_the_chosen_verdict_in_slot_order():
    a, b = _dgram_pair()
    packets = [bytes([i]) * (40 + i) for i in range(6)]
    burst = Burst.from_packets(packets)
    burst.verdict[:6] = [DELIVER, WIRE, DELIVER, 200, DELIVER, WIRE]
    r = write_packets(pipeline_arrays(burst), a.fileno(), 6, DELIVER)
    assert (r.done, r.errors, r.dropped) == (3, 0, 0)
    got = [b.recv(4096) for _ in range(3)]
    assert got == [packets[0], packets[2], packets[4]]
    assert count_packets(pipeline_arrays(burst), 6, WIRE) == 2


def test_write_skips_a_slot_whose_length_overruns_it():
    a, b = _dgram_pair()
    burst = Burst.from_packets([b"x" * 50, b"y" * 50])
    burst.verdict[:2] = DELIVER
    burst.length[0] = 5000                        # beyond its 2048-byte slot
    r = write_packets(pipeline_arrays(burst), a.fileno(), 2, DELIVER)
    assert (r.done, r.errors) == (1, 1)
    assert b.recv(4096) == b"y" * 50


def test_write_to_a_full_queue_drops_the_rest_and_counts_them():
    a, b = _dgram_pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    burst = Burst.from_packets([b"z" * 1000] * 64)
    burst.verdict[:64] = DELIVER
    r = write_packets(pipeline_arrays(burst), a.fileno(), 64, DELIVER)
    assert r.done > 0 and r.dropped == 64 - r.done and r.last_errno == 11


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 3000)), max_size=12),
       st.integers(0, 12))
def test_count_and_write_never_read_outside_a_slot(slots, n):
    """Any offsets and lengths: counted or refused, never a read past the burst."""
    burst = Burst(12, 1024, HEAD)
    for i, (v, ln) in enumerate(slots):
        burst.verdict[i] = v
        burst.length[i] = ln
        burst.offset[i] = (ln * 7) % 1500
    arrays = pipeline_arrays(burst)
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        r = write_packets(arrays, fd, n, DELIVER)
    finally:
        os.close(fd)
    fits = [i for i in range(min(n, len(slots))) if burst.verdict[i] == DELIVER
            and burst.offset[i] <= 1024 and burst.length[i] <= 1024 - burst.offset[i]]
    assert r.done == len(fits)
    assert count_packets(arrays, n, DELIVER) == sum(1 for i in fits if burst.length[i] >= 1)


# ---------------------------------------------------------------- raw ESP on loopback
def _raw(family: int) -> socket.socket:
    try:
        s = socket.socket(family, socket.SOCK_RAW, 50)
    except PermissionError:
        missing("raw sockets need CAP_NET_RAW")
    s.setblocking(False)
    return s


def test_raw_ipv4_send_and_receive_through_the_slots():
    tx, rx = _raw(socket.AF_INET), _raw(socket.AF_INET)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    rx.bind(("127.0.0.3", 0))
    packets = [_esp4("127.0.0.2", "127.0.0.3", 0x1000 + i, bytes([i]) * (16 + i))
               for i in range(5)]
    burst = Burst.from_packets(packets)
    burst.verdict[:5] = WIRE
    burst.verdict[2] = DELIVER                      # not chosen: stays
    r = send_packets(pipeline_arrays(burst), tx.fileno(), 4, 5, WIRE)
    assert (r.done, r.errors, r.dropped) == (4, 0, 0)
    assert send_packets(pipeline_arrays(burst), tx.fileno(), 6, 5, WIRE).done == 0
    into = Burst(8, 2048, HEAD)
    got = []
    for _ in range(50):
        rr = recv_packets(pipeline_arrays(into), rx.fileno(), 8, HEAD)
        into.count = rr.done
        got += [into.packet(i) for i in range(rr.done)]
        if len(got) >= 4:
            break
        import time
        time.sleep(0.01)
    mine = [p for p in got if p[12:16] == socket.inet_aton("127.0.0.2")]
    assert [p[20:] for p in mine] == [packets[i][20:] for i in (0, 1, 3, 4)]
    assert all(p[9] == 50 and int.from_bytes(p[2:4], "big") == len(p) for p in mine)
    tx.close()
    rx.close()


def test_raw_ipv6_receive_rebuilds_the_stripped_header():
    tx, rx = _raw(socket.AF_INET6), _raw(socket.AF_INET6)
    body = struct.pack("!II", 0x2222, 9) + b"q" * 40
    tx.sendto(body, ("::1", 0))
    into = Burst(4, 2048, HEAD)
    local = socket.inet_pton(socket.AF_INET6, "::1")
    import time
    for _ in range(50):
        rr = recv_packets(pipeline_arrays(into), rx.fileno(), 4, HEAD, local)
        if rr.done:
            break
        time.sleep(0.01)
    into.count = rr.done
    pkts = [into.packet(i) for i in range(rr.done)]
    mine = [p for p in pkts if p[40:] == body]
    assert mine, pkts
    p = mine[0]
    assert p[0] >> 4 == 6 and p[6] == 50 and int.from_bytes(p[4:6], "big") == len(body)
    assert p[8:24] == local and p[24:40] == local
    with pytest.raises(ValueError, match="16 bytes"):
        recv_packets(pipeline_arrays(into), rx.fileno(), 4, HEAD, b"\0" * 4)
    tx.close()
    rx.close()


def test_raw_receive_of_a_datagram_longer_than_a_slot_is_counted():
    tx, rx = _raw(socket.AF_INET), _raw(socket.AF_INET)
    rx.bind(("127.0.0.5", 0))
    tx.sendto(struct.pack("!II", 0x3333, 1) + bytes(1200), ("127.0.0.5", 0))
    small = Burst(2, 512, HEAD)                     # room for 512 - 128 - 64 bytes
    import time
    for _ in range(50):
        rr = recv_packets(pipeline_arrays(small), rx.fileno(), 2, HEAD)
        if rr.done:
            break
        time.sleep(0.01)
    assert rr.done >= 1 and rr.truncated >= 1
    assert small.length[0] == 0                     # the pipeline drops it as malformed
    tx.close()
    rx.close()


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_udp_receive_rebuilds_the_ip_and_udp_header(family, host):
    """NAT-T datagrams (RFC 3948) behind the header they arrived with: the sender's address
    and port, the local ones, lengths; an IPv4 header checksum that verifies."""
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.bind((host, 0))
    rx.setblocking(False)
    tx = socket.socket(family, socket.SOCK_DGRAM)
    tx.bind((host, 0))
    port, sport = rx.getsockname()[1], tx.getsockname()[1]
    sent = [struct.pack("!II", 0x1234, i) + bytes(i) for i in range(5)] + [b"\xff",
                                                                           bytes(4) + b"ike"]
    for d in sent:
        tx.sendto(d, rx.getsockname()[:2])
    burst = Burst(16, 2048, HEAD)
    local = socket.inet_pton(family, host)
    r = recv_udp(pipeline_arrays(burst), rx.fileno(), 16, HEAD, local, port)
    assert r.done == len(sent) and r.calls == 1 and r.truncated == 0
    burst.count = r.done
    hl = 20 if family == socket.AF_INET else 40
    for i, d in enumerate(sent):
        p = burst.packet(i)
        assert p[hl + 8:] == d
        assert struct.unpack("!HHH", p[hl:hl + 6]) == (sport, port, 8 + len(d))
        if hl == 20:
            assert p[0] == 0x45 and p[9] == 17 and struct.unpack("!H", p[2:4])[0] == len(p)
            assert p[12:16] == local and p[16:20] == local
            words = struct.unpack("!10H", p[:20])
            total = sum(words)
            while total >> 16:
                total = (total & 0xFFFF) + (total >> 16)
            assert total == 0xFFFF
        else:
            assert p[0] >> 4 == 6 and p[6] == 17 and struct.unpack("!H", p[4:6])[0] == 8 + len(d)
            assert p[8:24] == local and p[24:40] == local
    with pytest.raises(ValueError):
        recv_udp(pipeline_arrays(burst), rx.fileno(), 16, HEAD, b"abc", port)
    rx.close()
    tx.close()


def test_udp_receive_of_a_datagram_longer_than_a_slot_is_counted():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.sendto(bytes(3000), rx.getsockname())
    tx.sendto(bytes(100), rx.getsockname())
    burst = Burst(4, 1024, HEAD)
    r = recv_udp(pipeline_arrays(burst), rx.fileno(), 4, HEAD, bytes([127, 0, 0, 1]),
                 rx.getsockname()[1])
    assert r.done == 2 and r.truncated == 1
    assert burst.length[0] == 0 and burst.length[1] == 128
    rx.close()
    tx.close()
