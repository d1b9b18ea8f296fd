"""CpuEngine's engine protocol (same as Pfe's), several child SAs in one tunnel, no SA limit,
outer-header rules (DF, TTL, DS field), RFC 6040 decapsulation, transport mode details and AH
over IPv4 options and IPv6 extension headers (checked against scapy)."""
from __future__ import annotations

import ipaddress
import struct

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (
    HBHOptUnknown,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.layers.ipsec import AH, SecurityAssociation
from scapy.packet import raw

from inline_ipsec import (
    Burst,
    Engine,
    MalformedPacketError,
    ReplayError,
    SequenceOverflowError,
    Status,
    UnknownSpiError,
    UnsupportedSaError,
)
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.packet.ip import ecn_decapsulate, internet_checksum

from .helpers import V4, V6, ah_spec, esp_spec, inner_v4, inner_v6


def test_protocol_and_bookkeeping():
    cpu = CpuEngine()
    assert isinstance(cpu, Engine) and cpu.kind == "cpu" and len(cpu) == 0
    spec = esp_spec("aes-cbc-128")
    h = cpu.add_outbound(spec)
    hin = cpu.add_inbound(spec)
    assert cpu.handles() == [h, hin] and cpu.spec(hin) is spec
    assert cpu.lookup_inbound(spec.spi) == hin and cpu.lookup_inbound(0x5555) == -1
    with pytest.raises(UnsupportedSaError):
        cpu.add_inbound(esp_spec("aes-gcm-128"))            # same SPI
    with pytest.raises(UnknownSpiError):                    # NO_SA: not an outbound handle
        cpu.encrypt(hin, inner_v4())
    assert cpu.engine_counters().no_sa == 1
    wire = cpu.encrypt(h, inner_v4())
    cpu.remove(hin)
    assert cpu.lookup_inbound(spec.spi) == -1 and len(cpu) == 1
    with pytest.raises(UnknownSpiError):
        cpu.decrypt(wire)
    with pytest.raises(KeyError):
        cpu.remove(hin)
    with pytest.raises(SequenceOverflowError):
        cpu.set_sequence(h, 0xFFFFFFFF)
        cpu.encrypt(h, inner_v4())
    with pytest.raises(ValueError):
        cpu.set_sequence(h, 1 << 32)                         # no ESN: 32-bit


def test_no_sa_limit():
    cpu = CpuEngine()
    specs = [esp_spec("aes-gcm-128", spi=0x1000 + k) for k in range(4100)]
    hs = [cpu.add_inbound(s) for s in specs]
    assert len(cpu) == 4100 and cpu.lookup_inbound(0x1000 + 4099) == hs[-1]


def test_several_child_sas_in_one_tunnel():
    """Four child SAs between the same gateways (e.g. per traffic selector, plus an old and
    a new one during a rekey), mixed in one burst each way."""
    specs = [esp_spec(c, spi=0x7000 + k) for k, c in enumerate(
        ["aes-gcm-256", "aes-cbc-128", "chacha20-poly1305", "aes-gcm-256"])]
    tx, rx = CpuEngine(), CpuEngine()
    outs = [tx.add_outbound(s) for s in specs]
    ins = [rx.add_inbound(s) for s in specs]
    pkts = [inner_v4(60 + k) for k in range(20)]
    which = [k % 4 if k % 5 else 0 for k in range(20)]
    burst = Burst.from_packets(pkts, [outs[w] for w in which])
    assert tx.encrypt_burst(burst) == 20
    spis = [int.from_bytes(p[20:24], "big") for p in burst.packets()]
    assert spis == [0x7000 + w for w in which]
    wire = Burst.from_packets(burst.packets())
    assert rx.decrypt_burst(wire) == 20
    assert wire.packets() == pkts
    assert wire.sa[:20].tolist() == [ins[w] for w in which]
    for k, h in enumerate(ins):
        assert rx.counters(h).packets == which.count(k)
        assert rx.sequence(h) == tx.sequence(outs[k]) == which.count(k)
    # make-before-break: the old SA goes, its late packets are unknown, the others flow
    rx.remove(ins[0])
    late = tx.encrypt(outs[0], pkts[0])
    with pytest.raises(UnknownSpiError):
        rx.decrypt(late)
    assert rx.decrypt(tx.encrypt(outs[3], pkts[1])) == pkts[1]


@pytest.mark.parametrize("outer", [V4, V6], ids=["o4", "o6"])
@pytest.mark.parametrize("df_bit", ["clear", "set", "copy"])
def test_outer_header_rules(outer, df_bit):
    cpu = CpuEngine()
    h = cpu.add_outbound(esp_spec("aes-ctr-128", outer=outer, df_bit=df_bit, ttl=17))
    for inner, inner_df in ((inner_v4(80, tos=0xB9, df=True), True),
                            (inner_v4(80, tos=0xB9, df=False), False),
                            (inner_v6(80, tc=0xB9), True)):
        wire = cpu.encrypt(h, inner)
        if outer == V4:
            assert wire[1] == 0xB9 and wire[8] == 17 and wire[9] == 50
            want = df_bit == "set" or (df_bit == "copy" and inner_df)
            assert bool(wire[6] & 0x40) == want and wire[6] & 0xBF == 0 and wire[7] == 0
            assert internet_checksum(wire[:20]) == 0
            assert struct.unpack("!H", wire[4:6])[0] == cpu.sequence(h) & 0xFFFF
        else:
            tc = ((wire[0] & 0x0F) << 4) | (wire[1] >> 4)
            assert tc == 0xB9 and wire[7] == 17 and wire[6] == 50
            assert wire[1] & 0x0F == 0 and wire[2:4] == b"\x00\x00"   # flow label 0


def test_ecn_decapsulation_table_rfc6040():
    N, E1, E0, CE = 0, 1, 2, 3
    table = {N: [N, N, N, None], E0: [E0, E0, E1, CE], E1: [E1, E1, E1, CE],
             CE: [CE, CE, CE, CE]}
    for inner, row in table.items():
        for outer, want in zip((N, E0, E1, CE), row):
            assert ecn_decapsulate(inner, outer) == want


@pytest.mark.parametrize("copy_dscp", [False, True])
@pytest.mark.parametrize("proto", ["esp", "ah"])
def test_decap_ds_field(proto, copy_dscp):
    """Outer DS field changed in flight (a router re-marked DSCP and set CE): the inner
    packet gets CE if ECN-capable (RFC 6040 §4.2), the outer DSCP only with copy-outer-dscp;
    a Not-ECT inner packet under CE is dropped."""
    spec = (esp_spec("aes-gcm-128", copy_outer_dscp=copy_dscp) if proto == "esp"
            else ah_spec("hmac-sha1-96", copy_outer_dscp=copy_dscp))
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    hin = cpu.add_inbound(spec)

    def remark(wire: bytes, tos: int) -> bytes:
        w = bytearray(wire)
        w[1] = tos
        w[10:12] = b"\x00\x00"
        w[10:12] = internet_checksum(bytes(w[:20])).to_bytes(2, "big")
        return bytes(w)

    ect = inner_v4(70, tos=0x28 | 0x02)               # AF11, ECT(0)
    out = cpu.decrypt(remark(cpu.encrypt(h, ect), 0xB8 | 0x03))
    assert out[1] == ((0xB8 if copy_dscp else 0x28) | 0x03)
    assert internet_checksum(out[:20]) == 0 and out[2:] [:2] == ect[2:4]
    same = cpu.decrypt(cpu.encrypt(h, ect))           # untouched: returned as sent
    assert same == ect
    not_ect = inner_v4(70, tos=0x28)
    with pytest.raises(MalformedPacketError):
        cpu.decrypt(remark(cpu.encrypt(h, not_ect), 0x03))
    c = cpu.counters(hin)
    assert c.ecn_drop == 1 and c.malformed == 0


def test_transport_ipv6_with_extension_headers_scapy():
    """ESP transport over IPv6 with a hop-by-hop header: ESP goes after it (RFC 4303 §3.1.1)."""
    spec = esp_spec("aes-gcm-128", outer=V6, mode="transport")
    pkt = raw(IPv6(src=V6[0], dst=V6[1]) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) /
              UDP(sport=5, dport=6) / b"payload!")
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    wire = cpu.encrypt(h, pkt)
    assert wire[6] == 0 and wire[40] == 50                  # HBH, then ESP
    assert cpu.decrypt(wire) == pkt


@pytest.mark.parametrize("mode", ["tunnel", "transport"])
def test_ah_covers_ipv6_extension_headers_like_scapy(mode):
    """AH over IPv6 with hop-by-hop and destination options headers (one option marked
    'may change en route', zeroed for the ICV): scapy's AH opens ours and we open scapy's."""
    spec = ah_spec("hmac-sha256-128", V6, mode=mode)
    exts = (IPv6ExtHdrHopByHop(options=[RouterAlert()]) /
            IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x3E, optdata=b"abcd")]))
    inner = inner_v6(50)
    if mode == "tunnel":
        sa = SecurityAssociation(AH, spi=spec.spi, auth_algo="SHA2-256-128",
                                 auth_key=spec.integrity_key,
                                 tunnel_header=IPv6(src=V6[0], dst=V6[1]))
        theirs = sa.encrypt(IPv6(inner), seq_num=5)
    else:
        sa = SecurityAssociation(AH, spi=spec.spi, auth_algo="SHA2-256-128",
                                 auth_key=spec.integrity_key)
        theirs = sa.encrypt(IPv6(src=V6[0], dst=V6[1]) / exts / UDP() / (b"x" * 9), seq_num=5)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    got = cpu.decrypt(raw(theirs))
    assert got == raw(sa.decrypt(IPv6(raw(theirs))))
    # mutable hop limit, flow label and "may change" option data changed in flight
    w = bytearray(raw(theirs))
    w[7] = 1
    w[3] = 0x77
    if mode == "transport":
        k = w.index(b"abcd")
        w[k:k + 4] = b"wxyz"
    cpu.set_sequence(cpu.lookup_inbound(spec.spi), 0)
    again = cpu.decrypt(bytes(w))
    if mode == "tunnel":
        assert again == got == inner
    else:                                  # the changed fields are delivered as received
        assert again[8:] == got[8:].replace(b"abcd", b"wxyz") and again[7] == 1
    if mode == "transport":
        ours = cpu.encrypt(h, raw(IPv6(src=V6[0], dst=V6[1]) / exts / UDP() / (b"x" * 9)))
        assert raw(sa.decrypt(IPv6(ours))) == raw(IPv6(src=V6[0], dst=V6[1]) / exts / UDP()
                                                  / (b"x" * 9))


def test_ah_transport_ipv4_with_options_like_scapy():
    from scapy.layers.inet import IPOption_NOP, IPOption_Router_Alert, IPOption_RR
    spec = ah_spec("hmac-sha1-96", V4, mode="transport")
    pkt = IP(src=V4[0], dst=V4[1], options=[IPOption_Router_Alert(), IPOption_NOP(),
                                             IPOption_RR(routers=["1.2.3.4"])]) / UDP() / b"o"
    sa = SecurityAssociation(AH, spi=spec.spi, auth_algo="HMAC-SHA1-96",
                             auth_key=spec.integrity_key)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    ours = cpu.encrypt(h, raw(pkt))
    assert raw(sa.decrypt(IP(ours))) == raw(IP(raw(pkt)))
    theirs = raw(sa.encrypt(IP(raw(pkt)), seq_num=9))
    assert cpu.decrypt(theirs) == raw(pkt)
    # the record-route option is mutable: a router filling it in does not break the ICV
    w = bytearray(theirs)
    k = w.index(bytes([7]), 20)            # RR option type
    w[k + 3:k + 7] = bytes([9, 9, 9, 9])
    w[10:12] = b"\x00\x00"
    w[10:12] = internet_checksum(bytes(w[:(w[0] & 15) * 4])).to_bytes(2, "big")
    cpu.set_sequence(cpu.lookup_inbound(spec.spi), 0)
    assert cpu.decrypt(bytes(w))[-9:] == raw(pkt)[-9:]


def test_burst_status_for_dummy_and_single_call():
    spec = esp_spec("null", "hmac-md5-96")
    cpu = CpuEngine()
    cpu.add_outbound(spec)
    h = cpu.add_inbound(spec)
    assert Burst(1).count == 0 and cpu.decrypt_burst(Burst(1)) == 0
    assert cpu.counters(h).dummy == 0
    assert Status.DUMMY == 8


@pytest.mark.parametrize("outer", [V4, V6], ids=["o4", "o6"])
def test_natt_transport_fixes_the_l4_checksum(outer):
    """RFC 3948 §3.1.2: after transport-mode decapsulation behind a NAT, the TCP/UDP
    checksum (computed by the sender over its private address) is recomputed for the
    addresses the packet arrives with."""
    from scapy.layers.inet import TCP
    spec = esp_spec("aes-gcm-128", outer=outer, mode="transport", udp_encap=True)
    family = IP if outer == V4 else IPv6
    private = "10.9.9.9" if outer == V4 else "fd00::9"
    sent = raw(family(src=private, dst=outer[1]) / TCP(sport=1, dport=2) / b"data")
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    wire = bytearray(cpu.encrypt(h, sent))
    # the NAT rewrites the source address (and, for IPv4, the header checksum)
    if outer == V4:
        wire[12:16] = ipaddress.ip_address(outer[0]).packed
        wire[10:12] = b"\x00\x00"
        wire[10:12] = internet_checksum(bytes(wire[:20])).to_bytes(2, "big")
    else:  # an IPv6 NAT updates the UDP checksum, which covers the addresses
        wire[8:24] = ipaddress.ip_address(outer[0]).packed
        pkt = IPv6(bytes(wire))
        del pkt[UDP].chksum
        wire = bytearray(raw(pkt))
    got = cpu.decrypt(bytes(wire))
    parsed = family(got)
    assert parsed.src == outer[0] and parsed[TCP].load == b"data"
    want = family(src=outer[0], dst=outer[1]) / TCP(sport=1, dport=2) / b"data"
    assert parsed[TCP].chksum == family(raw(want))[TCP].chksum


def test_outer_extension_headers_and_options_on_receive():
    """ESP behind an IPv6 destination-options header, and AH under an outer IPv4 header with
    options (scapy's AH tunnel): the CPU engine walks both (the PFE refuses the first)."""
    from scapy.layers.inet import IPOption_Router_Alert
    from scapy.layers.ipsec import ESP
    spec = esp_spec("aes-gcm-256", outer=V6)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    wire = cpu.encrypt(h, inner_v4(64))
    opt = raw(IPv6ExtHdrDestOpt(nh=50))
    with_ext = bytearray(wire[:40] + opt + wire[40:])
    with_ext[6] = 60
    with_ext[4:6] = struct.pack("!H", len(with_ext) - 40)
    assert cpu.decrypt(bytes(with_ext)) == inner_v4(64)
    assert isinstance(IPv6(bytes(with_ext))[ESP], ESP)

    ah = ah_spec("hmac-sha512-256", V4)
    sa = SecurityAssociation(AH, spi=ah.spi, auth_algo="SHA2-512-256",
                             auth_key=ah.integrity_key,
                             tunnel_header=IP(src=V4[0], dst=V4[1],
                                              options=[IPOption_Router_Alert()]))
    theirs = raw(sa.encrypt(IP(inner_v4(70)), seq_num=3))
    assert theirs[0] & 0x0F == 6
    cpu2 = CpuEngine()
    cpu2.add_inbound(ah)
    assert cpu2.decrypt(theirs) == inner_v4(70)


def test_update_applies_df_and_dscp_copy_at_once_and_keeps_state():
    import dataclasses
    spec = esp_spec("aes-cbc-128", "hmac-sha1-96", V4)
    cpu = CpuEngine()
    out, inb = cpu.add_outbound(spec), cpu.add_inbound(spec)
    for _ in range(3):
        cpu.decrypt(cpu.encrypt(out, inner_v4(60)))
    assert IP(cpu.encrypt(out, inner_v4(60))).flags == 0
    changed = dataclasses.replace(spec, df_bit="set", copy_outer_dscp=True)
    cpu.update(out, changed)
    cpu.update(inb, changed)
    wire = cpu.encrypt(out, inner_v4(60))
    assert IP(wire).flags == 2                     # DF now set
    assert cpu.sequence(out) == 5                  # sequence numbers kept
    cpu.decrypt(wire)
    assert cpu.counters(inb).packets == 4          # counters and replay window kept
    with pytest.raises(ReplayError):
        cpu.decrypt(wire)
    assert cpu.spec(out).df_bit == "set"
    with pytest.raises(UnsupportedSaError, match="spi"):
        cpu.update(out, dataclasses.replace(spec, spi=0x7777))
