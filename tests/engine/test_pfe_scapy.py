"""Independent cross-check with scapy's ESP (`scapy.layers.ipsec.SecurityAssociation`):
over {IPv4, IPv6 outer} x {IPv4, IPv6 inner} x {GCM-128, GCM-256} x {ESP, UDP-encapsulated ESP}
x {ESN off, on}, scapy decrypts what the PFE encrypts and the PFE decrypts what scapy encrypts."""
from __future__ import annotations

import itertools

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import raw

from helpers import inner_packet, spec
from inline_ipsec import Pfe

MATRIX = list(itertools.product([False, True], [False, True], [128, 256], [False, True],
                                [False, True]))
IDS = [f"{'o6' if o else 'o4'}-{'i6' if i else 'i4'}-gcm{b}-{'udp' if u else 'esp'}-"
       f"{'esn' if e else 'noesn'}" for o, i, b, u, e in MATRIX]
ESN_HIGH = 7  # both ends start in the 8th 2^32 block of the ESN space


def scapy_sa(s, esn: bool) -> SecurityAssociation:
    outer = IPv6 if s.outer_ipv6 else IP
    return SecurityAssociation(
        ESP, spi=s.spi, crypt_algo="AES-GCM", crypt_key=s.key, auth_algo="NULL",
        tunnel_header=outer(src=s.tunnel_src, dst=s.tunnel_dst),
        nat_t_header=UDP(sport=4500, dport=4500) if s.udp_encap else None,
        esn_en=esn, esn=ESN_HIGH if esn else 0)


def with_udp6_checksum(wire: bytes) -> bytes:
    """scapy leaves the NAT-T UDP checksum zero over IPv6; RFC 8200 §8.1 makes it mandatory
    (the PFE drops zero), so fill it in as a conforming sender does."""
    pkt = IPv6(wire)
    del pkt[UDP].chksum
    return raw(pkt)


@pytest.mark.parametrize("outer6,inner6,bits,udp,esn", MATRIX, ids=IDS)
def test_scapy_opens_pfe_packets(outer6, inner6, bits, udp, esn):
    s = spec(outer6=outer6, bits=bits, udp_encap=udp, esn=esn)
    pfe = Pfe()
    h = pfe.add_outbound(s)
    if esn:
        pfe.set_sequence(h, (ESN_HIGH << 32) | 41)
    sa = scapy_sa(s, esn)
    for size in (0, 333, 1400):
        inner = inner_packet(v6=inner6, size=size)
        wire = pfe.encrypt(h, inner)
        outer = (IPv6 if outer6 else IP)(wire)
        if udp:
            assert outer[UDP].dport == 4500
        assert raw(sa.decrypt(outer)) == inner


@pytest.mark.parametrize("outer6,inner6,bits,udp,esn", MATRIX, ids=IDS)
def test_pfe_opens_scapy_packets(outer6, inner6, bits, udp, esn):
    s = spec(outer6=outer6, bits=bits, udp_encap=udp, esn=esn)
    pfe = Pfe()
    h = pfe.add_inbound(s)
    if esn:
        pfe.set_sequence(h, (ESN_HIGH << 32) | 40)
    sa = scapy_sa(s, esn)
    for n, size in enumerate((0, 333, 1400)):
        inner = inner_packet(v6=inner6, size=size)
        wire = raw(sa.encrypt((IPv6 if inner6 else IP)(inner), seq_num=41 + n))
        if outer6 and udp:
            wire = with_udp6_checksum(wire)
        assert pfe.decrypt(wire) == inner
    assert pfe.counters(h).packets == 3
