"""Segmentation-offload writes into a TUN device with virtio-net headers
(`pfe.write_packets(vnet=True, coalesce=True)`, io_ops.h).

A run of one UDP flow's decrypted datagrams leaves as one write; the kernel cuts it back into
the same datagrams. The unit tests write to UNIX datagram sockets and cut what was written
with a small reference of the kernel's UDP segmentation (udp_offload.c: equal segments of
gso_size, consecutive IPv4 identifications, lengths and checksums per segment); the result
must be exactly the packets given, in order. The namespace tests let Linux itself do the
cutting, through a real TUN device and a forwarding hop."""
from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec import Burst
from inline_ipsec.pfe import (GSO_MAX_SEGS, VNET_HDR_LEN, Verdict, pipeline_arrays,
                              read_packets, write_packets)

HEAD = 128
DELIVER, WIRE = int(Verdict.DELIVER), int(Verdict.WIRE)
GSO_UDP_L4, NEEDS_CSUM = 5, 1


def _sum(b: bytes) -> int:
    b += bytes(len(b) % 2)
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


def _pseudo(p: bytes, hl: int, ulen: int) -> bytes:
    addrs = p[12:20] if hl == 20 else p[8:40]
    return addrs + struct.pack("!HH", 17, ulen)


def udp(payload: bytes, *, v: int = 4, src: str = "10.1.0.10", dst: str = "10.2.0.10",
        sport: int = 4000, dport: int = 9000, ident: int = 0, tos: int = 0, ttl: int = 64,
        df: bool = True, check: str = "good") -> bytes:
    """An IPv4 or IPv6 UDP datagram; `check`: good, zero (none) or bad UDP checksum, or
    badip (a wrong IPv4 header checksum)."""
    ulen = 8 + len(payload)
    fam = socket.AF_INET if v == 4 else socket.AF_INET6
    if v == 6:
        src, dst = "2001:db8:1::10", "2001:db8:2::10"
    s, d = socket.inet_pton(fam, src), socket.inet_pton(fam, dst)
    u = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = (~_sum(s + d + struct.pack("!HH", 17, ulen) + u)) & 0xFFFF or 0xFFFF
    if check == "zero":
        c = 0
    elif check == "bad":
        c = c ^ 0x0101 or 1
    u = u[:6] + struct.pack("!H", c) + u[8:]
    if v == 6:
        return struct.pack("!IHBB", (6 << 28) | (tos << 20), ulen, 17, ttl) + s + d + u
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + ulen, ident & 0xFFFF,
                    0x4000 if df else 0, ttl, 17, 0, s, d)
    ck = (~_sum(h)) & 0xFFFF
    if check == "badip":
        ck ^= 0x0F0F
    return h[:10] + struct.pack("!H", ck) + h[12:] + u


def cut(datagram: bytes) -> list[bytes]:
    """What the kernel makes of one write: the packet of a plain header, or the segments of
    a GSO_UDP_L4 one (checked as virtio_net_hdr_to_skb checks it)."""
    flags, gso, hdr_len, size, start, off = struct.unpack("=BBHHHH", datagram[:VNET_HDR_LEN])
    p = datagram[VNET_HDR_LEN:]
    if gso == 0:
        assert flags == 0 and hdr_len == size == start == off == 0
        return [p]
    hl = 20 if p[0] >> 4 == 4 else 40
    assert (flags, gso, hdr_len, start, off) == (NEEDS_CSUM, GSO_UDP_L4, hl + 8, hl, 6)
    ulen = struct.unpack("!H", p[hl + 4:hl + 6])[0]
    assert ulen == len(p) - hl and len(p) - hl - 8 > size > 0
    assert len(p) - hl - 8 <= size * GSO_MAX_SEGS
    # the checksum field holds the pseudo-header sum, which the kernel completes
    assert struct.unpack("!H", p[hl + 6:hl + 8])[0] == _sum(_pseudo(p, hl, ulen))
    if hl == 20:
        assert struct.unpack("!H", p[2:4])[0] == len(p) and _sum(p[:20]) == 0xFFFF
    else:
        assert struct.unpack("!H", p[4:6])[0] == len(p) - 40
    out = []
    body = p[hl + 8:]
    ident = struct.unpack("!H", p[4:6])[0]
    for i, at in enumerate(range(0, len(body), size)):
        chunk = body[at:at + size]
        seg_ulen = 8 + len(chunk)
        u = p[hl:hl + 4] + struct.pack("!HH", seg_ulen, 0) + chunk
        c = (~_sum(_pseudo(p, hl, seg_ulen) + u)) & 0xFFFF or 0xFFFF
        u = u[:6] + struct.pack("!H", c) + u[8:]
        if hl == 20:
            h = p[:2] + struct.pack("!HH", 20 + seg_ulen, (ident + i) & 0xFFFF) + p[6:10] \
                + b"\0\0" + p[12:20]
            h = h[:10] + struct.pack("!H", (~_sum(h)) & 0xFFFF) + h[12:]
        else:
            h = p[:4] + struct.pack("!H", seg_ulen) + p[6:40]
        out.append(h + u)
    return out


def _write(packets: list[bytes], verdicts: list[int] | None = None, **kw):
    """write_packets of `packets` to a UNIX datagram socket: (result, datagrams written)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    b.setblocking(False)
    burst = Burst.from_packets(packets)
    burst.verdict[:len(packets)] = verdicts if verdicts is not None else DELIVER
    r = write_packets(pipeline_arrays(burst), a.fileno(), len(packets), DELIVER,
                      kw.get("vnet", True), kw.get("coalesce", True))
    got = []
    while True:
        try:
            got.append(b.recv(1 << 17))
        except BlockingIOError:
            break
    # the slots are left as they were (the first datagram's headers restored)
    assert [burst.packet(i) for i in range(len(packets))] == packets
    a.close()
    b.close()
    return r, got


def test_a_run_of_one_flow_is_one_write_cut_back_exactly():
    pk = [udp(bytes([i]) * 36, ident=100 + i) for i in range(10)] + [udp(b"x" * 20, ident=110)]
    r, got = _write(pk)
    assert (r.done, r.calls, r.coalesced, r.errors) == (11, 1, 11, 0)
    assert len(got) == 1 and cut(got[0]) == pk


def test_runs_are_capped_and_the_identification_may_wrap():
    pk = [udp(b"abcd", ident=65530 + i) for i in range(GSO_MAX_SEGS + 3)]
    r, got = _write(pk)
    assert r.calls == 2 and r.coalesced == GSO_MAX_SEGS + 3
    assert [len(cut(g)) for g in got] == [GSO_MAX_SEGS, 3]
    assert [x for g in got for x in cut(g)] == pk


def test_ipv6_runs_too():
    pk = [udp(bytes([i]) * 100, v=6) for i in range(5)]
    r, got = _write(pk)
    assert r.calls == 1 and [x for g in got for x in cut(g)] == pk


@pytest.mark.parametrize("odd,why", [
    (udp(b"y" * 36, ident=3, check="zero"), "no UDP checksum: the kernel would add one"),
    (udp(b"y" * 36, ident=3, check="bad"), "a wrong checksum: the kernel would correct it"),
    (udp(b"y" * 36, ident=3, check="badip"), "a wrong IPv4 header checksum"),
    (udp(b"y" * 36, ident=9), "an identification out of sequence"),
    (udp(b"y" * 36, ident=3, ttl=9), "another TTL"),
    (udp(b"y" * 36, ident=3, tos=4), "another TOS"),
    (udp(b"y" * 36, ident=3, df=False), "another DF bit"),
    (udp(b"y" * 36, ident=3, sport=1), "another flow"),
    (udp(b"y" * 40, ident=3), "a longer payload"),
    (udp(b"y" * 36, v=6), "another IP version"),
    (udp(b"", ident=3), "an empty payload"),
])
def test_what_the_kernel_could_not_cut_back_as_it_was_ends_the_run(odd, why):
    pk = [udp(b"x" * 36, ident=i) for i in range(3)] + [odd]
    r, got = _write(pk)
    assert [x for g in got for x in cut(g)] == pk, why
    assert r.done == 4 and r.coalesced == 3 and len(got) == 2, why


def test_fragments_options_and_other_protocols_go_alone():
    frag = bytearray(udp(b"x" * 36, ident=1))
    frag[6] |= 0x20                                     # more fragments
    frag[10:12] = b"\0\0"
    frag[10:12] = struct.pack("!H", (~_sum(bytes(frag[:20]))) & 0xFFFF)
    icmp = bytes(udp(b"x" * 36, ident=2))
    icmp = icmp[:9] + b"\x01" + icmp[10:]
    pk = [udp(b"x" * 36, ident=0), bytes(frag), icmp, udp(b"x" * 36, ident=3)]
    r, got = _write(pk)
    assert r.coalesced == 0 and r.calls == 4 and [cut(g)[0] for g in got] == pk


def test_other_verdicts_are_skipped_and_end_a_run():
    pk = [udp(b"x" * 36, ident=i) for i in range(6)]
    r, got = _write(pk, [DELIVER, DELIVER, WIRE, DELIVER, DELIVER, DELIVER])
    assert [len(cut(g)) for g in got] == [2, 3]
    assert [x for g in got for x in cut(g)] == pk[:2] + pk[3:]


def test_plain_headers_without_coalescing_and_none_without_vnet():
    pk = [udp(b"x" * 36, ident=i) for i in range(3)]
    r, got = _write(pk, coalesce=False)
    assert r.calls == 3 and all(g[:VNET_HDR_LEN] == bytes(VNET_HDR_LEN) for g in got)
    r, got = _write(pk, vnet=False, coalesce=True)
    assert r.calls == 3 and got == pk


def test_read_takes_the_header_apart_and_drops_what_it_cannot_take():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.setblocking(False)
    p = udp(b"z" * 50)
    gso = struct.pack("=BBHHHH", NEEDS_CSUM, GSO_UDP_L4, 28, 10, 20, 6)
    for d in (bytes(10) + p, gso + p, bytes(10), bytes(4), struct.pack("=BBHHHH", 1, 0, 0, 0,
                                                                       20, 6) + p,
              bytes(10) + p[:30]):
        a.send(d)
    burst = Burst(8, 2048, HEAD)
    r = read_packets(pipeline_arrays(burst), b.fileno(), 8, HEAD, 1500, True)
    burst.count = r.done
    assert r.done == 2 and r.errors == 4
    assert [burst.packet(i) for i in range(2)] == [p, p[:30]]


_flows = st.sampled_from([dict(v=4), dict(v=4, sport=5), dict(v=6)])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_flows, st.sampled_from([1, 7, 36, 36, 36, 300]),
                          st.sampled_from(["good"] * 6 + ["zero", "bad"]),
                          st.booleans(), st.sampled_from([DELIVER] * 9 + [WIRE])),
                min_size=1, max_size=90))
def test_whatever_the_mix_the_kernel_gets_back_exactly_the_delivered_packets(specs):
    ids: dict = {}
    pk, verdicts = [], []
    for flow, size, check, jump, verdict in specs:
        key = tuple(sorted(flow.items()))
        ids[key] = ids.get(key, 0) + (7 if jump else 1)
        pk.append(udp(bytes([len(pk) & 0xFF]) * size, ident=ids[key], check=check, **flow))
        verdicts.append(verdict)
    r, got = _write(pk, verdicts)
    want = [p for p, v in zip(pk, verdicts) if v == DELIVER]
    assert [x for g in got for x in cut(g)] == want
    assert r.done == len(want) and r.errors == 0 and r.calls == len(got)
    assert r.coalesced == sum(len(cut(g)) for g in got if g[1] == GSO_UDP_L4)


# ----------------------------------------------------------------- through Linux itself
WRITER = textwrap.dedent(r"""
    import json, select, sys, time, os
    from inline_ipsec import Burst
    from inline_ipsec.io.tun import Tun
    from inline_ipsec.pfe import Verdict, pipeline_arrays, write_packets
    pk = [bytes.fromhex(h) for h in json.loads(sys.stdin.read())]
    t = Tun("gsot0", 1400, vnet_hdr=True)
    t.add_address("10.99.0.1/32")
    if sys.argv[1] == "wire":       # a device without offloads: Linux cuts before sending
        out = Tun("gsot1", 1400)
        out.add_route("10.98.0.0/24")
    b = Burst.from_packets(pk)
    b.verdict[:len(pk)] = int(Verdict.DELIVER)
    r = write_packets(pipeline_arrays(b), t.fileno(), len(pk), int(Verdict.DELIVER), True, True)
    seen = []
    if sys.argv[1] == "wire":
        end = time.monotonic() + 5
        while time.monotonic() < end and len(seen) < len(pk):
            if select.select([out.fd], [], [], 0.5)[0]:
                got = os.read(out.fd, 70000)
                if got[0] == 0x45 and got[9] == 17:     # not the device's own IPv6 chatter
                    seen.append(got.hex())
    print(json.dumps([[r.done, r.calls, r.coalesced, r.errors, r.gso_refused], seen]))
    t.close()
""")

CATCHER = textwrap.dedent(r"""
    import json, select, socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9000))
    print("ready", flush=True)
    got, end = [], time.monotonic() + 5
    while time.monotonic() < end:
        if select.select([s], [], [], 0.5)[0]:
            got.append(s.recv(70000).hex())
        elif got:
            break
    print(json.dumps(got))
""")


def _through_linux(lab, pk: list[bytes], how: str) -> tuple[list, list]:
    res = subprocess.run(["ip", "netns", "exec", lab.ns["gb"], sys.executable, "-c", WRITER,
                          how],
                         input=json.dumps([p.hex() for p in pk]), capture_output=True,
                         text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    counts, seen = json.loads(res.stdout)
    return counts, [bytes.fromhex(h) for h in seen]


def _forwarded(p: bytes) -> bytes:
    """`p` as a router forwards it: TTL one less, header checksum updated."""
    h = bytearray(p[:20])
    h[8] -= 1
    h[10:12] = b"\0\0"
    h[10:12] = struct.pack("!H", (~_sum(bytes(h))) & 0xFFFF)
    return bytes(h) + p[20:]


def test_linux_cuts_the_run_into_the_same_datagrams_on_the_wire(lab):
    """Written into a TUN in one write and forwarded to a device without offloads: Linux
    cuts the run before it sends, and each datagram leaves byte for byte as it was given
    (TTL one less, header checksum updated)."""
    pk = [udp(bytes([i]) * 36, dst="10.98.0.5", ident=500 + i) for i in range(20)]
    pk += [udp(b"tail", dst="10.98.0.5", ident=520)]
    counts, seen = _through_linux(lab, pk, "wire")
    assert counts == [21, 1, 21, 0, False]
    assert seen == [_forwarded(p) for p in pk]


def test_a_run_crosses_a_forwarding_hop_whole_and_the_host_receives_each_datagram(lab):
    """Written into a TUN in one gateway namespace and forwarded over a veth to the host
    behind it: the host's UDP socket receives the datagrams one by one, in order."""
    from lab import RIGHT
    pk = [udp(bytes([i]) * 36, dst=RIGHT[4][1], ident=500 + i) for i in range(20)]
    pk += [udp(b"tail", dst=RIGHT[4][1], ident=520)]
    catcher = lab.popen("hr", [sys.executable, "-c", CATCHER], stdout=subprocess.PIPE,
                        text=True)
    try:
        assert catcher.stdout.readline().strip() == "ready"
        counts, _ = _through_linux(lab, pk, "socket")
        out, _ = catcher.communicate(timeout=20)
    finally:
        catcher.kill()
    assert counts == [21, 1, 21, 0, False]
    assert [bytes.fromhex(h) for h in json.loads(out.splitlines()[-1])] == [p[28:] for p in pk]
