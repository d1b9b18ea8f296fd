"""`then reject`: the packet is dropped and its sender told, as Junos does (TCP reset for TCP,
ICMP port unreachable for UDP, nothing for other protocols; `policy/reject.py`). The answers
are checked field by field with scapy, and through two gateways: a packet rejected at the far
gateway is answered back through the tunnel it came on."""
from __future__ import annotations

import pytest
from gw_helpers import FIXED, small_config
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

from inline_ipsec.gateway import Gateway
from inline_ipsec.policy.reject import reject_reply


def _ok_checksums(pkt: bytes) -> None:
    """scapy recomputes every checksum of the answer to the same value."""
    cls = IP if pkt[0] >> 4 == 4 else IPv6
    parsed = cls(pkt)
    again = cls(pkt)
    for layer in (IP, TCP, ICMP):
        if again.haslayer(layer) and hasattr(again[layer], "chksum"):
            del again[layer].chksum
    if again.haslayer(ICMPv6DestUnreach):
        del again[ICMPv6DestUnreach].cksum
    assert bytes(cls(bytes(again))) == bytes(parsed)


def test_tcp_syn_gets_rst_ack_for_seq_plus_one() -> None:
    syn = bytes(IP(src="10.1.0.5", dst="10.2.0.9") / TCP(sport=40000, dport=22, flags="S",
                                                         seq=1000))
    ans = reject_reply(syn)
    assert ans is not None
    p = IP(ans)
    assert (p.src, p.dst, p[TCP].sport, p[TCP].dport) == ("10.2.0.9", "10.1.0.5", 22, 40000)
    assert p[TCP].flags == "RA" and p[TCP].seq == 0 and p[TCP].ack == 1001
    _ok_checksums(ans)


def test_tcp_with_ack_gets_rst_at_its_ack_number() -> None:
    seg = bytes(IP(src="10.1.0.5", dst="10.2.0.9") / TCP(sport=1, dport=80, flags="PA",
                                                         seq=7, ack=555) / (b"x" * 30))
    p = IP(reject_reply(seg))
    assert p[TCP].flags == "R" and p[TCP].seq == 555 and p[TCP].ack == 0
    _ok_checksums(bytes(p))


def test_udp_gets_icmp_port_unreachable_quoting_the_datagram() -> None:
    dgram = bytes(IP(src="10.1.0.5", dst="10.2.0.9") / UDP(sport=5000, dport=53) / b"q")
    p = IP(reject_reply(dgram))
    assert (p.src, p.dst, p.proto) == ("10.2.0.9", "10.1.0.5", 1)
    assert (p[ICMP].type, p[ICMP].code) == (3, 3)
    assert p[IPerror].dst == "10.2.0.9" and p[UDPerror].dport == 53
    _ok_checksums(bytes(p))


def test_udp_over_ipv6_gets_icmpv6_port_unreachable() -> None:
    dgram = bytes(IPv6(src="2001:db8:1::5", dst="2001:db8:2::9") / UDP(sport=5000, dport=53))
    ans = reject_reply(dgram)
    p = IPv6(ans)
    assert (p.src, p.dst) == ("2001:db8:2::9", "2001:db8:1::5")
    assert (p[ICMPv6DestUnreach].type, p[ICMPv6DestUnreach].code) == (1, 4)
    _ok_checksums(ans)


@pytest.mark.parametrize("pkt", [
    bytes(IP(src="10.1.0.5", dst="10.2.0.9") / ICMP()),                         # echo
    bytes(IP(src="10.1.0.5", dst="10.2.0.9") / TCP(flags="R")),                 # a reset
    bytes(IP(src="10.1.0.5", dst="10.2.0.9", frag=10, proto=17) / (b"z" * 16)),  # later frag
    b"\x45\x00",                                                                # no header
])
def test_no_answer(pkt: bytes) -> None:
    assert reject_reply(pkt) is None


def _gateway(side: str, action_out: str, action_in: str) -> Gateway:
    mine, theirs = ("10.1", "10.2") if side == "a" else ("10.2", "10.1")
    p = "set security policies"
    lines = [
        f"set interfaces ge-0/0/1 unit 0 family inet address {mine}.255.1/16",
        "set security zones security-zone trust interfaces ge-0/0/1.0",
        "set security zones security-zone untrust interfaces ge-0/0/0.0",
        "set security zones security-zone vpn interfaces st0.0",
        "set security zones security-zone vpn interfaces st0.1",
    ]
    for name, frm, to, then in (("out", "trust", "vpn", action_out),
                                ("in", "vpn", "trust", action_in)):
        lines += [f"{p} from-zone {frm} to-zone {to} policy {name} match source-address any",
                  f"{p} from-zone {frm} to-zone {to} policy {name} match destination-address any",
                  f"{p} from-zone {frm} to-zone {to} policy {name} match application any",
                  f"{p} from-zone {frm} to-zone {to} policy {name} then {then}"]
    return Gateway.from_text(small_config(side, "\n".join(lines) + "\n"), name=f"gw-{side}",
                             clock=lambda: FIXED)


@pytest.mark.parametrize("dst", ["10.2.0.9", "10.2.1.9"])     # v-pfe (PFE), v-cpu (CPU)
def test_reject_outbound_tells_the_local_sender(dst: str) -> None:
    a = _gateway("a", "reject", "permit")
    syn = bytes(IP(src="10.1.0.5", dst=dst) / TCP(sport=40000, dport=22, flags="S", seq=9))
    out = a.outbound([syn])
    assert out.wire == [] and out.dropped == 1 and len(out.local) == 1
    assert IP(out.local[0])[TCP].flags == "RA" and IP(out.local[0])[TCP].ack == 10
    assert a.policy.counters.reject_replies == 1 and a.counters.policy_denied_out == 1


def test_deny_tells_nobody() -> None:
    a = _gateway("a", "deny", "permit")
    out = a.outbound([bytes(IP(src="10.1.0.5", dst="10.2.0.9") / TCP(flags="S"))])
    assert out.local == [] and out.wire == [] and a.policy.counters.reject_replies == 0


@pytest.mark.parametrize("dst", ["10.2.0.9", "10.2.1.9"])
def test_reject_inbound_answers_through_the_tunnel(dst: str) -> None:
    a = _gateway("a", "permit", "permit")
    b = _gateway("b", "permit", "reject")
    dgrams = [bytes(IP(src="10.1.0.5", dst=dst) / UDP(sport=5000 + i, dport=53) / b"q")
              for i in range(3)]
    wire = a.outbound(dgrams).wire
    assert len(wire) == 3
    at_b = b.inbound(wire)
    assert at_b.delivered == [] and at_b.dropped == 3 and len(at_b.wire) == 3
    back = a.inbound(at_b.wire).delivered                 # decrypted where they came from
    assert len(back) == 3
    for i, pkt in enumerate(back):
        p = IP(pkt)
        assert (p.src, p.dst, p[ICMP].type, p[ICMP].code) == (dst, "10.1.0.5", 3, 3)
        assert p[UDPerror].sport == 5000 + i
