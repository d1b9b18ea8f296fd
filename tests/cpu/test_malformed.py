"""Malformed input never raises from a burst call: it gets a status and a counter.

For several kinds of SA (ESP AES-GCM, AES-CBC+HMAC, ChaCha20, NAT-T, transport mode, AH over
IPv4 and IPv6): every truncation, every single-bit flip of a small packet, bad padding, a bad
next header, absurd header lengths, empty slots, offsets and lengths outside the slot. The
invariant: one status per packet, OK only for the untouched packet, and the drop counters
(per SA plus per engine) add up to the number of packets dropped."""
from __future__ import annotations

import dataclasses
import struct

import pytest

from inline_ipsec import Burst, Status
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.cpu.transforms import Integrity

from .helpers import V4, V6, ah_spec, esp_spec, inner_v4, inner_v6, outer_v4

KINDS = {
    "esp-gcm-o4": lambda: esp_spec("aes-gcm-128"),
    "esp-cbc-o6": lambda: esp_spec("aes-cbc-128", "hmac-sha1-96", V6),
    "esp-chacha-natt-o4": lambda: esp_spec("chacha20-poly1305", udp_encap=True),
    "esp-ctr-natt-o6": lambda: esp_spec("aes-ctr-256", "hmac-sha512-256", V6, udp_encap=True),
    "esp-gmac-transport-o4": lambda: esp_spec("aes-gmac-256", mode="transport"),
    "ah-o4": lambda: ah_spec("hmac-sha256-128"),
    "ah-o6": lambda: ah_spec("hmac-sha384-192", V6),
    "ah-transport-o6": lambda: ah_spec("hmac-md5-96", V6, mode="transport"),
}
DROPS = ("auth_failed", "replay_duplicate", "replay_below_window", "malformed", "bad_trailer",
         "dummy", "no_room", "expired", "seq_overflow")


def total_drops(cpu: CpuEngine, handles) -> int:
    n = sum(getattr(cpu.counters(h), f) for h in handles for f in DROPS)
    e = cpu.engine_counters()
    return n + e.unknown_spi + e.malformed + e.not_esp + e.keepalive + e.no_sa


def source_packet(spec) -> bytes:
    if spec.mode == "transport":
        from scapy.layers.inet import ICMP, IP, UDP
        from scapy.layers.inet6 import IPv6
        from scapy.packet import raw
        if spec.outer_ipv6:
            return raw(IPv6(src=spec.tunnel_src, dst=spec.tunnel_dst) / UDP() / (b"z" * 12))
        return raw(IP(src=spec.tunnel_src, dst=spec.tunnel_dst) / ICMP() / b"zz")
    return inner_v4(28)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_truncations_and_bit_flips(kind):
    # anti-replay off: a flip in an uncovered field may be accepted, and must not turn the
    # untouched copy into a duplicate
    spec = dataclasses.replace(KINDS[kind](), replay_window=0)
    sender = CpuEngine()
    h = sender.add_outbound(spec)
    pkt = source_packet(spec)
    wire = sender.encrypt(h, pkt)
    cases = [wire[:n] for n in range(len(wire))]
    cases += [wire[:k] + bytes([wire[k] ^ (1 << b)]) + wire[k + 1:]
              for k in range(len(wire)) for b in range(8)]
    cpu = CpuEngine()
    hin = cpu.add_inbound(spec)
    burst = Burst.from_packets(cases + [wire])
    good = cpu.decrypt_burst(burst)          # must not raise
    status = burst.status[:len(cases) + 1].tolist()
    assert status[-1] == Status.OK           # the untouched packet still opens
    assert burst.packet(len(cases)) == pkt
    assert all(s != Status.OK for s in status[:len(wire)])   # no truncation is accepted
    # a flip that yields OK can only be in a field that nothing covers
    for k, s in enumerate(status[len(wire):-1]):
        if s == Status.OK:
            pos = k // 8
            assert pos in mutable_positions(spec, wire), f"flip at byte {pos} accepted"
    assert total_drops(cpu, [hin]) == len(status) - good
    assert cpu.counters(hin).packets == good


def mutable_positions(spec, wire) -> set[int]:
    """Bytes no check covers. IPv4: none (a single flip breaks the header checksum, RFC 791).
    IPv6: traffic class, flow label, hop limit, and for ESP the addresses too (ESP does not
    cover the outer header, RFC 4303 §3.1; AH does, RFC 4302 §3.3.3). NAT-T: the UDP ports
    and checksum (RFC 3948 §2.1)."""
    v6 = wire[0] >> 4 == 6
    pos = {0, 1, 2, 3, 7} if v6 else set()
    if v6 and spec.protocol == "esp":
        pos |= set(range(8, 40))
    if spec.udp_encap:
        u = 40 if v6 else 20
        pos |= {u, u + 1, u + 2, u + 3, u + 6, u + 7}
    return pos


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_garbage_never_raises(kind):
    spec = KINDS[kind]()
    cpu = CpuEngine()
    hin = cpu.add_inbound(spec)
    hout = cpu.add_outbound(spec)
    junk = [b"", b"\x00", b"\x45", b"\x60" + bytes(38), b"\xff" * 64, bytes(1800),
            b"\x4f" + bytes(70),                               # IHL 60 > packet
            struct.pack("!BBH", 0x45, 0, 0xFFFF) + bytes(60),  # total length > packet
            struct.pack("!BBH", 0x45, 0, 10) + bytes(60),      # total length < IHL
            b"\x60\x00\x00\x00\xff\xff\x32\x40" + bytes(60),   # payload length > packet
            b"\x60\x00\x00\x00\x00\x10\x00\x40" + bytes(56),   # hop-by-hop runs past the end
            outer_v4(b"\x00\x00\x10\x01" + bytes(3)),         # ESP shorter than 8
            outer_v4(bytes(20), proto=51),                     # AH length 8 < 12
            outer_v4(b"\x00\x00" + bytes(10), proto=17)]      # UDP length 0
    burst = Burst.from_packets(junk)
    assert cpu.decrypt_burst(burst) == 0
    assert all(s != Status.OK for s in burst.status[:len(junk)])
    assert total_drops(cpu, [hin, hout]) == len(junk)
    burst = Burst.from_packets(junk, hout)     # the same garbage as inner packets: the last
    assert cpu.encrypt_burst(burst) == 3       # three are valid IPv4 packets, so they travel
    assert all(s != Status.OK for s in burst.status[:len(junk) - 3])
    assert total_drops(cpu, [hin, hout]) == 2 * len(junk) - 3
    # offsets and lengths outside the slot
    burst = Burst.from_packets([inner_v4(60)] * 3, hout)
    burst.offset[0] = burst.slot_size + 5
    burst.length[1] = burst.slot_size
    burst.length[2] = 0
    assert cpu.encrypt_burst(burst) == 0
    assert burst.status[:3].tolist() == [Status.MALFORMED] * 3
    burst.sa[:3] = -1
    assert cpu.decrypt_burst(burst) == 0
    assert burst.status[:3].tolist() == [Status.MALFORMED] * 3


def _sealed(spec, plain: bytes, seq: int = 1) -> bytes:
    """An ESP packet with a chosen plaintext (trailer included), sealed with the SA's keys."""
    from inline_ipsec.cpu.transforms import make_transform
    t = make_transform(spec)
    hdr8 = struct.pack("!LL", spec.spi, seq)
    return outer_v4(hdr8 + t.seal(seq, hdr8, plain), src=V4[0], dst=V4[1])


@pytest.mark.parametrize("cipher", ["aes-gcm-256", "aes-cbc-192", "null", "aes-gmac-192"])
def test_bad_trailers(cipher):
    spec = esp_spec(cipher)
    inner = inner_v4(46)
    align = 16 if cipher.startswith("aes-cbc") else 4
    pad = (-(len(inner) + 2)) % align or align
    good_pad = bytes(range(1, pad + 1))
    bad = {
        "pad bytes not 1,2,3": inner + bytes(pad) + bytes((pad, 4)),
        "pad length too long": inner[:2] + bytes((250, 4)) if align == 4 else
        inner[:14] + bytes((250, 4)),
        "next header 6 in tunnel mode": inner + good_pad + bytes((pad, 6)),
        "next header 41, IPv4 inside": inner + good_pad + bytes((pad, 41)),
        "inner length beyond payload": inner[:2] + b"\x7f\xff" + inner[4:] + good_pad +
        bytes((pad, 4)),
    }
    dummy = inner + good_pad + bytes((pad, 59))
    cpu = CpuEngine()
    h = cpu.add_inbound(spec)
    pkts = [_sealed(spec, p, seq) for seq, p in enumerate([*bad.values(), dummy], 1)]
    burst = Burst.from_packets(pkts)
    assert cpu.decrypt_burst(burst) == 0
    st = burst.status[:len(pkts)].tolist()
    assert st[:4] == [Status.BAD_TRAILER] * 4
    assert st[4] == Status.MALFORMED and st[5] == Status.DUMMY
    c = cpu.counters(h)
    assert (c.bad_trailer, c.malformed, c.dummy, c.packets) == (4, 1, 1, 0)
    assert cpu.sequence(h) == len(pkts)    # the window advanced: these packets were genuine
    # a dummy packet through the single-packet call returns b""
    cpu2 = CpuEngine()
    cpu2.add_inbound(spec)
    assert cpu2.decrypt(pkts[-1]) == b""


def test_cbc_ciphertext_not_a_block_multiple_is_malformed():
    spec = esp_spec("aes-cbc-128", "hmac-sha1-96")
    cpu = CpuEngine()
    h = cpu.add_inbound(spec)
    integ = Integrity("hmac-sha1-96", spec.integrity_key)
    body = struct.pack("!LL", spec.spi, 1) + bytes(16) + bytes(17)   # IV + 17 bytes
    pkt = outer_v4(body + integ.mac(body))
    burst = Burst.from_packets([pkt])
    assert cpu.decrypt_burst(burst) == 0 and burst.status[0] == Status.MALFORMED
    assert cpu.counters(h).malformed == 1


def test_keepalive_ike_and_unknown_spi():
    spec = esp_spec("aes-gcm-128", udp_encap=True)
    cpu = CpuEngine()
    cpu.add_inbound(spec)
    udp = lambda payload: outer_v4(struct.pack("!HHHH", 4500, 4500, 8 + len(payload), 0)
                                   + payload, proto=17)
    pkts = [udp(b"\xff"), udp(bytes(4) + b"ike message"), udp(b"\x00\x00\x99\x99" + bytes(40)),
            outer_v4(b"\x00\x00\x10\x01" + bytes(40), proto=51)]   # AH with an ESP SA's SPI
    burst = Burst.from_packets(pkts)
    assert cpu.decrypt_burst(burst) == 0
    assert burst.status[:4].tolist() == [Status.KEEPALIVE, Status.NOT_ESP, Status.UNKNOWN_SPI,
                                         Status.UNKNOWN_SPI]
    assert burst.sa[:4].tolist() == [-1] * 4
    e = cpu.engine_counters()
    assert (e.keepalive, e.not_esp, e.unknown_spi) == (1, 1, 2)


def test_inner_ipv6_too_short_for_encrypt_and_headroom():
    spec = esp_spec("aes-cbc-256", "hmac-sha512-256", V6, udp_encap=True)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    pkt = inner_v6(80)
    burst = Burst.from_packets([pkt, pkt[:-1], pkt], h, headroom=72)   # exactly enough
    burst.offset[2] = 10
    burst.data[2, 10:10 + len(pkt)] = list(pkt)
    assert cpu.encrypt_burst(burst) == 1
    assert burst.status[:3].tolist() == [Status.OK, Status.MALFORMED, Status.NO_ROOM]
    c = cpu.counters(h)
    assert (c.packets, c.malformed, c.no_room) == (1, 1, 1)
