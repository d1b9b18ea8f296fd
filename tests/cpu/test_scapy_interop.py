"""Independent cross-check with scapy (`scapy.layers.ipsec.SecurityAssociation`), both ways:
scapy opens what `CpuEngine` sends and `CpuEngine` opens what scapy sends, for every ESP
cipher and every integrity algorithm, AH, IPv4 and IPv6 outer headers, ESN on and off, NAT-T
and transport mode.

scapy gaps (so not covered here but by our own tests): scapy checks no anti-replay window
and infers no ESN high half (it is given), does not verify ESP padding bytes, zeroes only the
IPv4 flags and not the fragment offset for AH (irrelevant for unfragmented packets), and
sends a zero UDP checksum for NAT-T over IPv6 (we compute it; we do not verify it).
"""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import AH, ESP, SecurityAssociation
from scapy.packet import raw

from inline_ipsec import IntegrityError
from inline_ipsec.cpu import CpuEngine

from .helpers import (
    INTEGRITY,
    SCAPY_AUTH,
    SCAPY_CIPHER,
    V4,
    V6,
    ah_spec,
    esp_spec,
    inner_v4,
    inner_v6,
)

ESN_HIGH = 5
CIPHERS = sorted(SCAPY_CIPHER)
# every cipher with one integrity algorithm, and AES-CBC-128 / NULL with all of them
ESP_CASES = [(c, None if c.startswith(("aes-gcm", "aes-gmac", "chacha")) else
              INTEGRITY[k % len(INTEGRITY)]) for k, c in enumerate(CIPHERS)]
ESP_CASES += [("aes-cbc-128", a) for a in INTEGRITY] + [("null", a) for a in INTEGRITY]
ESP_CASES = sorted(set(ESP_CASES), key=str)


def scapy_sa(spec, esn: bool, tunnel: bool = True) -> SecurityAssociation:
    outer = IPv6 if spec.outer_ipv6 else IP
    kw = {"tunnel_header": outer(src=spec.tunnel_src, dst=spec.tunnel_dst)} if tunnel else {}
    if spec.protocol == "ah":
        return SecurityAssociation(AH, spi=spec.spi, auth_algo=SCAPY_AUTH[spec.integrity],
                                   auth_key=spec.integrity_key, esn_en=esn,
                                   esn=ESN_HIGH if esn else 0, **kw)
    return SecurityAssociation(
        ESP, spi=spec.spi, crypt_algo=SCAPY_CIPHER[spec.cipher], crypt_key=spec.key,
        auth_algo=SCAPY_AUTH[spec.integrity] if spec.integrity else "NULL",
        auth_key=spec.integrity_key or None,
        nat_t_header=UDP(sport=4500, dport=4500) if spec.udp_encap else None,
        esn_en=esn, esn=ESN_HIGH if esn else 0, **kw)


def parse(wire: bytes):
    return IPv6(wire) if wire[0] >> 4 == 6 else IP(wire)


def udp6_checksum_filled(wire: bytes) -> bytes:
    """scapy leaves the NAT-T UDP checksum zero over IPv6; RFC 8200 §8.1 makes it mandatory
    and the engines drop zero, so fill it in as a conforming sender does."""
    if wire[0] >> 4 != 6 or wire[6] != 17:
        return wire
    pkt = IPv6(wire)
    del pkt[UDP].chksum
    return raw(pkt)


def roundtrip(spec, esn: bool, inner: bytes) -> None:
    """CpuEngine -> scapy and scapy -> CpuEngine for one tunnel-mode SA, plus a forgery."""
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    hin = cpu.add_inbound(spec)
    if esn:
        cpu.set_sequence(h, (ESN_HIGH << 32) | 40)
        cpu.set_sequence(hin, (ESN_HIGH << 32) | 10)
    sa = scapy_sa(spec, esn)
    # we send, scapy opens (and checks the ICV)
    wire = cpu.encrypt(h, inner)
    assert raw(sa.decrypt(parse(wire))) == inner
    # scapy sends, we open
    theirs = udp6_checksum_filled(raw(sa.encrypt(parse(inner), seq_num=41)))
    assert cpu.decrypt(theirs) == inner
    # a fresh packet with a flipped bit in its last byte (inside the ICV) is refused
    bad = bytearray(raw(sa.encrypt(parse(inner), seq_num=42)))
    bad[-1] ^= 1
    with pytest.raises(IntegrityError):
        cpu.decrypt(udp6_checksum_filled(bytes(bad)))
    assert cpu.counters(hin).auth_failed == 1
    assert cpu.counters(hin).packets == 1


@pytest.mark.parametrize("esn", [False, True], ids=["noesn", "esn"])
@pytest.mark.parametrize("outer", [V4, V6], ids=["o4", "o6"])
@pytest.mark.parametrize("cipher,integ", ESP_CASES, ids=[f"{c}-{a}" for c, a in ESP_CASES])
def test_esp_tunnel(cipher, integ, outer, esn):
    spec = esp_spec(cipher, integ, outer, esn=esn)
    roundtrip(spec, esn, inner_v4(101))
    roundtrip(spec, esn, inner_v6(77))


@pytest.mark.parametrize("esn", [False, True], ids=["noesn", "esn"])
@pytest.mark.parametrize("outer", [V4, V6], ids=["o4", "o6"])
@pytest.mark.parametrize("cipher", ["aes-gcm-256", "aes-cbc-256", "chacha20-poly1305"])
def test_esp_natt(cipher, outer, esn):
    spec = esp_spec(cipher, None, outer, esn=esn, udp_encap=True)
    roundtrip(spec, esn, inner_v4(64))


@pytest.mark.parametrize("esn", [False, True], ids=["noesn", "esn"])
@pytest.mark.parametrize("outer", [V4, V6], ids=["o4", "o6"])
@pytest.mark.parametrize("integ", INTEGRITY)
def test_ah_tunnel(integ, outer, esn):
    spec = ah_spec(integ, outer, esn=esn)
    roundtrip(spec, esn, inner_v4(90))
    roundtrip(spec, esn, inner_v6(61))


def _transport_packet(outer) -> bytes:
    """A packet between the two SA endpoints themselves (transport mode, RFC 4301 §4.1)."""
    from scapy.layers.inet import ICMP
    if outer == V4:
        return raw(IP(src=outer[0], dst=outer[1], id=99) / ICMP() / (b"t" * 45))
    return raw(IPv6(src=outer[0], dst=outer[1]) / UDP(sport=7, dport=9) / (b"t" * 45))


@pytest.mark.parametrize("esn", [False, True], ids=["noesn", "esn"])
@pytest.mark.parametrize("outer", [V4, V6], ids=["o4", "o6"])
@pytest.mark.parametrize("proto", ["esp-aes-gcm-128", "esp-aes-cbc-128", "ah"])
def test_transport(proto, outer, esn):
    if proto == "ah":
        spec = ah_spec("hmac-sha256-128", outer, esn=esn, mode="transport")
    else:
        spec = esp_spec(proto[4:], None, outer, esn=esn, mode="transport")
    pkt = _transport_packet(outer)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    if esn:
        cpu.set_sequence(h, (ESN_HIGH << 32) | 40)
        cpu.set_sequence(cpu.lookup_inbound(spec.spi), (ESN_HIGH << 32) | 10)
    sa = scapy_sa(spec, esn, tunnel=False)
    wire = cpu.encrypt(h, pkt)
    assert wire[9 if outer == V4 else 6] == (51 if proto == "ah" else 50)
    assert raw(sa.decrypt(parse(wire))) == pkt
    theirs = raw(sa.encrypt(parse(pkt), seq_num=41))
    assert cpu.decrypt(theirs) == pkt
