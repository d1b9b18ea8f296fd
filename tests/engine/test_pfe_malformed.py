"""Bad input to the PFE: every length read from a packet is checked. Truncated packets, flipped
bits, bad padding, absurd header lengths, empty buffers and absurd slot offsets give a status
code and a counter: never a crash, never an exception from a burst, never a partial result
reported as good."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw, raw

from _pfe_core import Status
from helpers import V4, esp_seal, inner_packet, outer_v4, spec, trailer
from inline_ipsec import Burst, MalformedPacketError, Pfe

VALID = {int(s) for s in Status}


def setup_pair(**kw):
    pfe = Pfe()
    s = spec(**kw)
    return pfe, pfe.add_outbound(s), pfe.add_inbound(s), s


def decrypt_all(pfe: Pfe, packets: list[bytes]) -> Burst:
    burst = Burst.from_packets(packets)
    pfe.decrypt_burst(burst)
    assert set(burst.status[:burst.count].tolist()) <= VALID
    return burst


def total_drops(pfe: Pfe, h: int) -> int:
    e = pfe.engine_counters()
    return pfe.counters(h).dropped + e.malformed + e.unknown_spi + e.not_esp + e.keepalive


@pytest.mark.parametrize("kw", [dict(), dict(outer6=True), dict(udp_encap=True),
                                dict(outer6=True, udp_encap=True, esn=True)])
def test_truncated_at_every_length(kw):
    pfe, out, inb, _ = setup_pair(replay_window=0, **kw)
    wire = pfe.encrypt(out, inner_packet(size=90))
    burst = decrypt_all(pfe, [wire[:n] for n in range(len(wire))])
    assert Status.OK not in burst.status[:burst.count].tolist()
    assert pfe.counters(inb).packets == 0
    assert total_drops(pfe, inb) == len(wire)
    assert pfe.decrypt(wire) == inner_packet(size=90)  # the whole packet still opens


@pytest.mark.parametrize("outer6", [False, True])
def test_every_single_bit_flip(outer6):
    pfe, out, inb, _ = setup_pair(replay_window=0, outer6=outer6)
    inner = inner_packet(size=60)
    wire = pfe.encrypt(out, inner)
    flipped = []
    for bit in range(len(wire) * 8):
        b = bytearray(wire)
        b[bit // 8] ^= 1 << (bit % 8)
        flipped.append(bytes(b))
    burst = decrypt_all(pfe, flipped)
    hdr = 40 if outer6 else 20
    for bit in range(len(wire) * 8):
        status = burst.status[bit]
        if status == Status.OK:
            # Only fields nothing depends on may change: IPv6 traffic class, flow label, hop
            # limit and addresses (the IPv4 header has a checksum, everything after is in the
            # ICV). The result must still be the original inner packet.
            assert outer6 and bit // 8 < hdr and bit // 8 not in (4, 5, 6)
            assert burst.packet(bit) == inner
        else:
            assert status != Status.CRYPTO_ERROR
    if not outer6:
        assert (burst.status[:burst.count] != Status.OK).all()


def crafted(s, seq, plaintext, **kw):
    return outer_v4(esp_seal(s.key, s.spi, seq, plaintext), **kw)


@pytest.mark.parametrize("plaintext,status", [
    (trailer(inner_packet(), 4, pad=b"\x01\x02\x04"), Status.BAD_TRAILER),   # pad bytes wrong
    (inner_packet()[:20] + b"\x00" + bytes([200, 4]), Status.BAD_TRAILER),    # pad length too big
    (trailer(inner_packet(), 200), Status.BAD_TRAILER),                        # next header 200
    (trailer(inner_packet(), 41), Status.BAD_TRAILER),                         # says v6, is v4
    (trailer(inner_packet(v6=True), 4), Status.BAD_TRAILER),                   # says v4, is v6
    (trailer(b"\x45" + bytes(10), 4), Status.BAD_TRAILER),                     # inner too short
    (trailer(inner_packet()[:2] + b"\x7f\xff" + inner_packet()[4:], 4), Status.MALFORMED),
    (b"\x00\x04", Status.BAD_TRAILER),                                         # empty payload
])
def test_authenticated_but_bad_trailer(plaintext, status):
    pfe, _, inb, s = setup_pair()
    burst = decrypt_all(pfe, [crafted(s, 1, plaintext)])
    assert burst.status[0] == status
    c = pfe.counters(inb)
    assert c.auth_failed == 0 and c.packets == 0
    assert c.bad_trailer + c.malformed == 1
    with pytest.raises(MalformedPacketError):
        pfe.decrypt(crafted(s, 2, plaintext))


def test_tfc_padding_is_stripped_by_inner_length():
    pfe, _, _, s = setup_pair()
    inner = inner_packet()
    assert pfe.decrypt(crafted(s, 1, trailer(inner + bytes(13), 4))) == inner


def outer_variants(s, esp):
    good = raw(IP(src=V4[0], dst=V4[1], proto=50) / Raw(esp))
    ihl15 = bytearray(good)
    ihl15[0] = 0x4F
    ihl4 = bytearray(good)
    ihl4[0] = 0x44
    long_total = bytearray(good)
    long_total[2:4] = (len(good) + 1).to_bytes(2, "big")
    return {
        "ihl 15": bytes(ihl15),
        "ihl 4": bytes(ihl4),
        "total length beyond buffer": bytes(long_total),
        "bad checksum": raw(IP(src=V4[0], dst=V4[1], proto=50, chksum=1) / Raw(esp)),
        "fragment": raw(IP(src=V4[0], dst=V4[1], proto=50, flags="MF") / Raw(esp)),
        "tcp": raw(IP(src=V4[0], dst=V4[1]) / TCP() / Raw(esp)),
        "udp length absurd": raw(IP(src=V4[0], dst=V4[1]) / UDP(sport=4500, dport=4500,
                                                                len=5000) / Raw(esp)),
        "udp length short": raw(IP(src=V4[0], dst=V4[1]) / UDP(sport=4500, dport=4500,
                                                               len=3) / Raw(esp)),
        "v6 payload beyond buffer": raw(IPv6(src="::1", dst="::2", nh=50, plen=4000) / Raw(esp)),
        "version 5": b"\x55" + good[1:],
        "esp shorter than spi": raw(IP(src=V4[0], dst=V4[1], proto=50) / Raw(esp[:7])),
        "esp shorter than header+icv": raw(IP(src=V4[0], dst=V4[1], proto=50) / Raw(esp[:30])),
        "one byte": b"\x45",
    }


def test_absurd_outer_headers():
    pfe, _, inb, s = setup_pair()
    esp = esp_seal(s.key, s.spi, 1, trailer(inner_packet(), 4))
    variants = outer_variants(s, esp)
    burst = decrypt_all(pfe, list(variants.values()))
    for i, name in enumerate(variants):
        assert burst.status[i] == Status.MALFORMED, name
    assert pfe.counters(inb).packets == 0


def test_empty_buffers_and_absurd_slot_offsets():
    pfe, out, _, _ = setup_pair()
    burst = Burst(4, slot_size=256)
    burst.count = 4
    burst.length[:] = [0, 300, 10, 2**32 - 1]
    burst.offset[:] = [0, 0, 250, 2**32 - 1]
    assert pfe.decrypt_burst(burst) == 0
    assert (burst.status[:4] == Status.MALFORMED).all()
    burst.sa[:] = out
    assert pfe.encrypt_burst(burst) == 0
    assert (burst.status[:4] == Status.MALFORMED).all()


def test_burst_count_larger_than_arrays_is_refused():
    pfe, _, _, _ = setup_pair()
    burst = Burst(2)
    burst.count = 3
    with pytest.raises(ValueError):
        pfe.decrypt_burst(burst)


@pytest.mark.parametrize("inner,status", [
    (b"", Status.MALFORMED),
    (b"\x45" + bytes(10), Status.MALFORMED),
    (b"\x55" + bytes(30), Status.MALFORMED),
    (inner_packet()[:2] + b"\x00\x10" + inner_packet()[4:], Status.MALFORMED),  # length lies
    (inner_packet(v6=True)[:45], Status.MALFORMED),
])
def test_bad_inner_packets_on_encrypt(inner, status):
    pfe, out, _, _ = setup_pair()
    burst = Burst(1)
    burst.count = 1
    burst.data[0, 128:128 + len(inner)] = np.frombuffer(inner, np.uint8)
    burst.length[0], burst.sa[0] = len(inner), out
    assert pfe.encrypt_burst(burst) == 0
    assert burst.status[0] == status
    assert pfe.counters(out).packets == 0 and pfe.sequence(out) == 0


def test_no_room_for_header_or_trailer():
    pfe, out, _, _ = setup_pair()
    inner = inner_packet(size=100)
    burst = Burst(2, slot_size=256, headroom=20)  # headroom too small for IPv4 + ESP
    burst.load([inner, inner], out)
    assert pfe.encrypt_burst(burst) == 0
    assert (burst.status[:2] == Status.NO_ROOM).all()
    burst = Burst(1, slot_size=128 + 110, headroom=128)  # tailroom too small for the ICV
    burst.data[0, 128:128 + 100] = np.frombuffer(inner, np.uint8)
    burst.length[0], burst.sa[0], burst.count = 100, out, 1
    assert pfe.encrypt_burst(burst) == 0 and burst.status[0] == Status.NO_ROOM
    assert pfe.counters(out).no_room == 3


def test_encrypt_with_bad_handles():
    pfe, _, _, _ = setup_pair()
    burst = Burst.from_packets([inner_packet()] * 3, sa=[-1, 3999, 10**6])
    assert pfe.encrypt_burst(burst) == 0
    assert (burst.status[:3] == Status.NO_SA).all()
    assert pfe.engine_counters().no_sa == 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=16))
def test_random_bytes_never_crash(blobs):
    pfe, _, inb, s = setup_pair()
    # Half of them carry our SPI after a plausible outer header, to reach the deeper checks.
    packets = [b if i % 2 else outer_v4(s.spi.to_bytes(4, "big") + b) for i, b in enumerate(blobs)]
    burst = decrypt_all(pfe, packets)
    assert Status.OK not in burst.status[:burst.count].tolist()
