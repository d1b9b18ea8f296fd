"""ESP tunnel mode through the PFE: wire format (RFC 4303, RFC 4106), outer header rules,
sequence numbers, counters and the SA table."""
from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

from helpers import V4, esp_seal, inner_packet, outer_v4, spec, trailer
from _pfe_core import HANDLE_SLOT_BITS, Status
from inline_ipsec import (
    Burst,
    CapacityError,
    IntegrityError,
    Lifetime,
    MalformedPacketError,
    NotEspError,
    Pfe,
    ReplayError,
    SaSpec,
    SequenceOverflowError,
    UnknownSaError,
    UnknownSpiError,
    UnsupportedSaError,
)
from inline_ipsec.pfe import PFE_MAX_SAS

SLOT_MASK = (1 << HANDLE_SLOT_BITS) - 1


def pair(**kw):
    pfe = Pfe()
    s = spec(**kw)
    return pfe, pfe.add_outbound(s), pfe.add_inbound(s), s


@pytest.mark.parametrize("outer6", [False, True])
@pytest.mark.parametrize("inner6", [False, True])
@pytest.mark.parametrize("bits", [128, 256])
@pytest.mark.parametrize("udp_encap", [False, True])
@pytest.mark.parametrize("esn", [False, True])
def test_roundtrip_matrix(outer6, inner6, bits, udp_encap, esn):
    pfe, out, inb, s = pair(outer6=outer6, bits=bits, udp_encap=udp_encap, esn=esn)
    for size in (0, 100, 1400):
        inner = inner_packet(v6=inner6, size=size)
        wire = pfe.encrypt(out, inner)
        assert pfe.decrypt(wire) == inner
    c = pfe.counters(inb)
    assert (c.packets, c.dropped) == (3, 0)
    assert pfe.counters(out).packets == 3


def test_wire_format_ipv4_matches_independent_gcm():
    pfe, out, _, s = pair()
    inner = inner_packet(size=61)
    wire = pfe.encrypt(out, inner)
    ip = IP(wire)
    assert ip.proto == 50 and ip.ttl == 64 and ip.len == len(wire)
    assert ip.src == V4[0] and ip.dst == V4[1]
    assert ip.id == 1 and ip.flags == 0
    del ip.chksum
    assert IP(bytes(ip)).chksum == IP(wire).chksum  # scapy recomputes the same checksum
    plain = trailer(inner, 4)
    assert len(plain) % 4 == 0
    assert wire[20:] == esp_seal(s.key, s.spi, 1, plain)


def test_sequence_numbers_start_at_one_and_iv_is_sequence():
    pfe, out, _, _ = pair()
    for expected in (1, 2, 3):
        wire = pfe.encrypt(out, inner_packet())
        spi, seq, iv = struct.unpack("!IIQ", wire[20:36])
        assert (spi, seq, iv) == (0x1001, expected, expected)


@pytest.mark.parametrize("df_bit,inner_df,expected", [
    ("clear", True, 0), ("set", False, 2), ("copy", True, 2), ("copy", False, 0)])
def test_df_bit(df_bit, inner_df, expected):
    pfe, out, _, _ = pair(df_bit=df_bit)
    wire = pfe.encrypt(out, inner_packet(df=inner_df))
    assert int(IP(wire).flags) == expected


def test_df_copy_from_inner_ipv6_is_set():
    pfe, out, _, _ = pair(df_bit="copy")
    assert int(IP(pfe.encrypt(out, inner_packet(v6=True))).flags) == 2


@pytest.mark.parametrize("outer6", [False, True])
def test_dscp_and_ecn_copied_to_outer(outer6):
    pfe, out, _, _ = pair(outer6=outer6)
    tos = (46 << 2) | 0b10  # EF, ECT(0)
    wire = pfe.encrypt(out, inner_packet(tos=tos))
    assert (IPv6(wire).tc if outer6 else IP(wire).tos) == tos


def test_copy_outer_dscp_on_decrypt_fixes_checksum():
    s_plain = spec()
    s_copy = spec(copy_outer_dscp=True)
    sender, receiver = Pfe(), Pfe()
    out = sender.add_outbound(s_plain)
    receiver.add_inbound(s_copy)
    inner = inner_packet(tos=0b01)  # DSCP 0, ECT(1)
    wire = bytearray(sender.encrypt(out, inner))
    wire[1] = (10 << 2) | 0b11  # a router re-marked the outer: AF11, CE
    ip = IP(bytes(wire))
    del ip.chksum
    got = IP(receiver.decrypt(bytes(IP(bytes(ip)))))
    assert got.tos == (10 << 2) | 0b11  # DSCP copied, CE propagated (RFC 6040)
    want = got.chksum
    del got.chksum
    assert IP(bytes(got)).chksum == want


def remark(wire: bytes, tos: int) -> bytes:
    """What a router on the path may do: rewrite the outer DS field (and fix the checksum)."""
    ip = IP(wire)
    ip.tos = tos
    del ip.chksum
    return bytes(IP(bytes(ip)))


def test_inner_dscp_untouched_without_copy_outer_dscp():
    pfe, out, _, _ = pair()
    inner = inner_packet(tos=(10 << 2) | 0b10)  # AF11, ECT(0)
    assert pfe.decrypt(remark(pfe.encrypt(out, inner), (46 << 2) | 0b10)) == inner


@pytest.mark.parametrize("inner_ecn,outer_ecn,result", [
    (0b10, 0b11, 0b11),   # ECT(0) + CE -> CE
    (0b01, 0b11, 0b11),   # ECT(1) + CE -> CE
    (0b10, 0b01, 0b01),   # ECT(0) + ECT(1) -> ECT(1)
    (0b01, 0b10, 0b01),   # ECT(1) + ECT(0) -> ECT(1)
    (0b11, 0b00, 0b11),   # CE stays CE
    (0b00, 0b10, 0b00),   # Not-ECT stays Not-ECT
])
def test_ecn_decapsulation_rfc6040(inner_ecn, outer_ecn, result):
    pfe, out, _, _ = pair()
    inner = inner_packet(tos=(10 << 2) | inner_ecn)
    got = IP(pfe.decrypt(remark(pfe.encrypt(out, inner), outer_ecn)))
    assert got.tos == (10 << 2) | result
    chk = got.chksum
    del got.chksum
    assert IP(bytes(got)).chksum == chk


def test_outer_ce_over_not_ect_is_dropped():
    pfe, out, inb, _ = pair()
    burst = Burst.from_packets([remark(pfe.encrypt(out, inner_packet(tos=0)), 0b11)])
    assert pfe.decrypt_burst(burst) == 0 and burst.status[0] == Status.ECN_DROP
    assert pfe.counters(inb).ecn_drop == 1
    with pytest.raises(MalformedPacketError, match="RFC 6040"):
        pfe.decrypt(remark(pfe.encrypt(out, inner_packet(tos=0)), 0b11))


def test_natt_ipv6_bad_or_zero_udp_checksum_is_dropped():
    pfe, out, inb, _ = pair(outer6=True, udp_encap=True)
    wire = bytearray(pfe.encrypt(out, inner_packet()))
    zero = bytearray(wire)
    zero[46:48] = b"\x00\x00"
    wrong = bytearray(wire)
    wrong[46] ^= 0x01
    burst = Burst.from_packets([bytes(zero), bytes(wrong), bytes(wire)])
    assert pfe.decrypt_burst(burst) == 1
    assert list(burst.status[:3]) == [Status.MALFORMED, Status.MALFORMED, Status.OK]
    assert pfe.engine_counters().malformed == 2


def test_natt_ipv4_zero_checksum_and_ports():
    pfe, out, _, _ = pair(udp_encap=True, udp_sport=4501, udp_dport=4502)
    wire = pfe.encrypt(out, inner_packet())
    udp = IP(wire)[UDP]
    assert (udp.sport, udp.dport, udp.chksum) == (4501, 4502, 0)
    assert udp.len == len(wire) - 20


def test_natt_ipv6_real_checksum():
    pfe, out, _, _ = pair(outer6=True, udp_encap=True)
    wire = pfe.encrypt(out, inner_packet(size=77))
    pkt = IPv6(wire)
    got = pkt[UDP].chksum
    assert got != 0
    del pkt[UDP].chksum
    assert IPv6(bytes(pkt))[UDP].chksum == got


def test_natt_keepalive_and_ike_are_not_esp():
    pfe, _, _, _ = pair(udp_encap=True)
    keepalive = bytes(IP(src=V4[1], dst=V4[0]) / UDP(sport=4500, dport=4500) / b"\xff")
    ike = bytes(IP(src=V4[1], dst=V4[0]) / UDP(sport=4500, dport=4500) / (bytes(4) + b"ike" * 10))
    for pkt in (keepalive, ike):
        with pytest.raises(NotEspError):
            pfe.decrypt(pkt)
    e = pfe.engine_counters()
    assert (e.keepalive, e.not_esp) == (1, 1)


def test_dummy_packet_is_dropped_silently_and_counted():
    pfe, _, inb, s = pair()
    wire = outer_v4(esp_seal(s.key, s.spi, 1, trailer(b"\x00" * 10, 59)))
    assert pfe.decrypt(wire) == b""
    assert pfe.counters(inb).dummy == 1 and pfe.counters(inb).packets == 0


def test_sequence_overflow_without_esn_stops_and_needs_rekey():
    pfe, out, _, _ = pair()
    pfe.set_sequence(out, 0xFFFFFFFE)
    wire = pfe.encrypt(out, inner_packet())
    assert struct.unpack("!I", wire[24:28])[0] == 0xFFFFFFFF
    assert not pfe.rekey_needed(out)
    with pytest.raises(SequenceOverflowError):
        pfe.encrypt(out, inner_packet())
    assert pfe.rekey_needed(out)
    assert pfe.counters(out).seq_overflow == 1
    with pytest.raises(SequenceOverflowError):  # it stays stopped, never wraps to 0
        pfe.encrypt(out, inner_packet())


def test_esn_crosses_2_32_and_receiver_infers_high_bits():
    pfe, out, inb, s = pair(esn=True)
    pfe.set_sequence(out, 0xFFFFFFFE)
    pfe.set_sequence(inb, 0xFFFFFFFE)
    wires = [pfe.encrypt(out, inner_packet()) for _ in range(3)]
    lows = [struct.unpack("!I", w[24:28])[0] for w in wires]
    assert lows == [0xFFFFFFFF, 0, 1]
    assert struct.unpack("!Q", wires[2][28:36])[0] == (1 << 32) | 1  # IV is the full ESN
    for w in wires:
        assert pfe.decrypt(w) == inner_packet()
    assert pfe.sequence(inb) == (1 << 32) | 1
    assert wires[1][20:] == esp_seal(s.key, s.spi, 1 << 32, trailer(inner_packet(), 4), esn=True)


def test_wrong_key_fails_integrity():
    sender, receiver = Pfe(), Pfe()
    out = sender.add_outbound(spec())
    receiver.add_inbound(spec(key=bytes(20)))
    with pytest.raises(IntegrityError):
        receiver.decrypt(sender.encrypt(out, inner_packet()))
    assert receiver.counters(receiver.lookup_inbound(0x1001)).auth_failed == 1


def test_unknown_spi():
    pfe, out, _, _ = pair()
    other = Pfe()
    with pytest.raises(UnknownSpiError):
        other.decrypt(pfe.encrypt(out, inner_packet()))
    assert other.engine_counters().unknown_spi == 1


def test_replay_raises_and_counts():
    pfe, out, inb, _ = pair(replay_window=64)
    wires = [pfe.encrypt(out, inner_packet()) for _ in range(70)]
    pfe.decrypt(wires[69])
    with pytest.raises(ReplayError, match="duplicate"):
        pfe.decrypt(wires[69])
    with pytest.raises(ReplayError, match="below"):
        pfe.decrypt(wires[0])
    pfe.decrypt(wires[10])  # inside the window, not seen yet
    c = pfe.counters(inb)
    assert (c.replay_duplicate, c.replay_below_window, c.packets) == (1, 1, 2)


def test_replay_window_off_accepts_duplicates():
    pfe, out, _, _ = pair(replay_window=0)
    wire = pfe.encrypt(out, inner_packet())
    assert pfe.decrypt(wire) == pfe.decrypt(wire)


@pytest.mark.parametrize("kw,reason", [
    (dict(replay_window=8192), "8192 > 4096"),
    (dict(replay_window=16), "16 < 32"),
    (dict(lifetime=Lifetime(hard_kilobytes=1000)), "kilobytes"),
])
def test_pfe_refuses_what_belongs_on_the_cpu(kw, reason):
    with pytest.raises(UnsupportedSaError, match=reason):
        Pfe().add_inbound(spec(**kw))


@pytest.mark.parametrize("kw,reason", [
    (dict(cipher="aes-cbc-128", key=bytes(16), integrity="hmac-sha1-96",
          integrity_key=bytes(20)), "AES-GCM"),
    (dict(cipher="aes-gcm-192", key=bytes(28)), "AES-GCM"),
    (dict(protocol="ah", cipher="null", key=b"", integrity="hmac-sha256-128",
          integrity_key=bytes(32)), "ESP only"),
    (dict(cipher="aes-gcm-128", key=bytes(20), mode="transport"), "tunnel mode"),
])
def test_pfe_refuses_other_ciphers_and_protocols(kw, reason):
    s = SaSpec(spi=0x2000, tunnel_src=V4[0], tunnel_dst=V4[1], **kw)
    with pytest.raises(UnsupportedSaError, match=reason):
        Pfe().add_outbound(s)


def test_duplicate_inbound_spi_refused_outbound_allowed():
    pfe = Pfe()
    pfe.add_inbound(spec())
    with pytest.raises(UnsupportedSaError, match="SPI 0x00001001"):
        pfe.add_inbound(spec())
    pfe.add_outbound(spec())
    pfe.add_outbound(spec())


def test_capacity_exactly_4000_and_remove_frees_a_slot():
    pfe = Pfe()
    handles = [pfe.add_inbound(spec(spi=0x10000 + i)) for i in range(PFE_MAX_SAS)]
    assert len(pfe) == PFE_MAX_SAS == 4000
    with pytest.raises(CapacityError):
        pfe.add_outbound(spec(spi=0x9999))
    # O(1) lookup still finds every SPI
    assert all(pfe.lookup_inbound(0x10000 + i) == h for i, h in enumerate(handles))
    pfe.remove(handles[1234])
    assert pfe.lookup_inbound(0x10000 + 1234) == -1
    h = pfe.add_inbound(spec(spi=0x9999))
    # the one free slot again, under its next generation: a different handle
    assert h & SLOT_MASK == handles[1234] & SLOT_MASK and h != handles[1234]
    assert pfe.lookup_inbound(0x9999) == h
    with pytest.raises(UnknownSaError):
        pfe.counters(handles[1234])
    with pytest.raises(CapacityError):
        pfe.add_inbound(spec(spi=0x9998))


def test_removed_sa_no_longer_decrypts_and_handle_is_gone():
    pfe, out, inb, _ = pair()
    wire = pfe.encrypt(out, inner_packet())
    pfe.remove(inb)
    with pytest.raises(UnknownSpiError):
        pfe.decrypt(wire)
    with pytest.raises(KeyError):
        pfe.counters(inb)
    with pytest.raises(KeyError):
        pfe.remove(inb)


def test_encrypt_with_inbound_handle_is_refused():
    pfe, _, inb, _ = pair()
    with pytest.raises(UnknownSpiError):
        pfe.encrypt(inb, inner_packet())
    assert pfe.engine_counters().no_sa == 1


def test_keys_never_in_repr():
    s = spec()
    assert s.key.hex() not in repr(s) and "key=" not in repr(s)


def test_independent_gcm_opens_pfe_output_ipv6():
    pfe, out, _, s = pair(outer6=True, bits=256)
    inner = inner_packet(v6=True, size=333)
    wire = pfe.encrypt(out, inner)
    esp = wire[40:]
    plain = AESGCM(s.key[:-4]).decrypt(s.key[-4:] + esp[8:16], esp[16:], esp[:8])
    assert plain == trailer(inner, 41)
    assert IPv6(wire).plen == len(wire) - 40 and IPv6(wire).nh == 50 and IPv6(wire).hlim == 64
