"""The inner header of a tunnel-mode packet is validated before anything reads it, on both
engines alike (same status, same counter), and on both PFE crypto backends.

The packets here are authenticated: a peer holding the key can send any inner header, so the
ICV proves nothing about it. Over IPv4 IHL must be 5..15 with IHL x 4 <= total length <=
plaintext (RFC 791 §3.1); over IPv6 40 + payload length <= plaintext (RFC 8200 §3). The outer
header carries ECN CE over an ECT(0) inner packet, so the RFC 6040 §4.2 rewrite, which sums IHL x
4 bytes for the inner checksum, runs on every packet that gets that far."""
from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP
from scapy.packet import Raw, raw

from helpers import V4, esp_seal, inner_packet, spec, trailer
from inline_ipsec import Burst, CpuEngine, MalformedPacketError, Pfe, Status

ENGINES = {"pfe": Pfe, "cpu": CpuEngine}
ECT0, CE = 0b10, 0b11


def ones_sum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4(ihl: int = 5, total: int | None = None, body: bytes = bytes(8), tos: int = ECT0
         ) -> bytes:
    """An inner IPv4 packet with any IHL and total length: 20 fixed bytes, then `body`
    (options first, if IHL says so), with a correct checksum over min(IHL x 4, 20 + body)."""
    n = 20 + len(body)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, n if total is None else total,
                                1, 0, 64, 17, 0, bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1])))
    pkt = bytearray(hdr + body)
    covered = min(max(ihl, 5) * 4, len(pkt))
    struct.pack_into("!H", pkt, 10, ~ones_sum(bytes(pkt[:covered])) & 0xFFFF)
    return bytes(pkt)


def ipv6(plen: int, body: bytes = bytes(8), tc: int = ECT0) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000 | (tc << 20), plen, 17, 64,
                       b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01",
                       b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02") + body


def sealed(s, seq: int, plaintext: bytes, outer_tos: int = CE) -> bytes:
    esp = esp_seal(s.key, s.spi, seq, plaintext)
    return raw(IP(src=V4[0], dst=V4[1], proto=50, tos=outer_tos) / Raw(esp))


LIES = {
    # name: (plaintext with trailer, status)
    **{f"ihl {ihl}": (trailer(ipv4(ihl=ihl), 4), Status.MALFORMED) for ihl in range(5)},
    "ihl 15, total length 20": (trailer(ipv4(ihl=15, total=20, body=b""), 4), Status.MALFORMED),
    "ihl 15, total length 28": (trailer(ipv4(ihl=15, total=28), 4), Status.MALFORMED),
    "ihl 6, total length 20": (trailer(ipv4(ihl=6, total=20, body=b""), 4), Status.MALFORMED),
    "total length beyond the plaintext": (trailer(ipv4(total=29), 4), Status.MALFORMED),
    "total length below 20": (trailer(ipv4(total=19), 4), Status.MALFORMED),
    "ipv6 payload length beyond the plaintext": (trailer(ipv6(plen=9), 41), Status.MALFORMED),
    "ipv6 header cut short": (trailer(ipv6(plen=0)[:39], 41), Status.BAD_TRAILER),
    "ipv4 header cut short": (trailer(ipv4()[:19], 4), Status.BAD_TRAILER),
    "next header 4, version 6": (trailer(ipv6(plen=8), 4), Status.BAD_TRAILER),
    "next header 41, version 4": (trailer(ipv4(body=bytes(28)), 41), Status.BAD_TRAILER),
}


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("case", sorted(LIES))
def test_inner_header_lies_are_dropped_alike(engine, case):
    plaintext, status = LIES[case]
    eng = ENGINES[engine]()
    s = spec(replay_window=64)
    h = eng.add_inbound(s)
    burst = Burst.from_packets([sealed(s, 1, plaintext)])
    assert eng.decrypt_burst(burst) == 0
    assert burst.status[0] == status
    c = eng.counters(h)
    assert (c.malformed, c.bad_trailer) == ((1, 0) if status == Status.MALFORMED else (0, 1))
    assert c.packets == 0 and c.dropped == 1
    with pytest.raises(MalformedPacketError):
        eng.decrypt(sealed(s, 2, plaintext))


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("ihl", [5, 6, 15])
def test_honest_options_and_tfc_padding_pass_with_the_checksum_fixed(engine, ihl):
    """IHL 6 and 15 with the options inside the total length are fine; the ECN rewrite
    (ECT(0) under an outer CE becomes CE) recomputes the checksum over the whole header."""
    options = b"\x01" * (ihl * 4 - 20)                          # NOPs (RFC 791)
    inner = ipv4(ihl=ihl, body=options + b"payload!")
    assert ones_sum(inner[:ihl * 4]) == 0xFFFF
    eng = ENGINES[engine]()
    s = spec()
    eng.add_inbound(s)
    got = eng.decrypt(sealed(s, 1, trailer(inner + bytes(7), 4)))   # 7 bytes of TFC padding
    assert len(got) == len(inner)
    assert got[0] == inner[0] and got[1] == (inner[1] & 0xFC) | CE and got[12:] == inner[12:]
    assert ones_sum(got[:ihl * 4]) == 0xFFFF                          # checksum fixed


def at_buffer_end(packet: bytes) -> Burst:
    """A burst whose only packet ends where its numpy buffer ends: a read past the packet
    leaves the allocation (AddressSanitizer reports it, tests/fuzz)."""
    burst = Burst(1, slot_size=len(packet), headroom=0)
    burst.data[0, :] = list(packet)
    burst.offset[0], burst.length[0], burst.count = 0, len(packet), 1
    return burst


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_ihl_15_at_the_end_of_the_buffer(engine):
    """The case that read 40 bytes past the burst buffer: inner IHL 15, total length 20,
    the packet flush with the end of its buffer."""
    eng = ENGINES[engine]()
    s = spec()
    h = eng.add_inbound(s)
    burst = at_buffer_end(sealed(s, 1, trailer(ipv4(ihl=15, total=20, body=b""), 4)))
    assert eng.decrypt_burst(burst) == 0 and burst.status[0] == Status.MALFORMED
    assert eng.counters(h).malformed == 1


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("inner", [ipv4(ihl=6, total=20, body=b""), ipv4(ihl=15, total=28),
                                   ipv4(ihl=3), ipv6(plen=9)],
                         ids=["ihl6-total20", "ihl15-total28", "ihl3", "v6-plen-long"])
def test_encrypt_refuses_the_same_lies(engine, inner):
    eng = ENGINES[engine]()
    h = eng.add_outbound(spec())
    burst = Burst.from_packets([inner, inner_packet()], h)
    assert eng.encrypt_burst(burst) == 1
    assert burst.status[:2].tolist() == [Status.MALFORMED, Status.OK]
    assert eng.counters(h).malformed == 1 and eng.sequence(h) == 1
