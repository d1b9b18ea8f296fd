"""Golden text of each show command against a running gateway (Junos 25.x formats, docs/junos-formats.md §4,
rendered by `inline_ipsec.stats`). Gateway gw-b of the manual-SA pair, fixed clock, after:
10 packets a->b on each tunnel, 3 packets b->a on v-pfe, a forged v-cpu packet, a packet with an
unknown SPI, and a 1500-byte DF-set packet at gw-b."""
from __future__ import annotations

from gw_helpers import FIXED, small_config

from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.pfe import Pfe
from inline_ipsec.sa import SaSpec


def scenario():
    a = Gateway.from_text(small_config("a"), name="gw-a", clock=lambda: FIXED)
    b = Gateway.from_text(small_config("b"), name="gw-b", clock=lambda: FIXED)
    link = WireLink(a, b)
    for i in range(10):
        link.send(a, [udp_packet("10.1.0.5", "10.2.0.5", bytes(100)),
                      udp_packet("10.1.1.5", "10.2.1.5", bytes(200))])
    link.send(b, [udp_packet("10.2.0.5", "10.1.0.5", bytes(72))] * 3)
    forged = bytearray(a.outbound([udp_packet("10.1.1.5", "10.2.1.5", b"forged")]).wire[0])
    forged[-1] ^= 0x80
    stray = Pfe()
    h = stray.add_outbound(SaSpec(spi=0x7777, cipher="aes-gcm-128", key=bytes(20),
                                  tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1"))
    b.inbound([bytes(forged), stray.encrypt(h, udp_packet("10.1.0.5", "10.2.0.5", b"?"))])
    b.outbound([udp_packet("10.2.0.5", "10.1.0.5", bytes(1472), df=True)])
    return a, b


SUMMARY = """\
  Total active tunnels: 2     Total IPsec sas: 2
  ID      Algorithm       SPI      Life:sec/kb  Mon lsys Port  Gateway
  <500001 ESP:aes-gcm-128/aes128-gcm 0x000003e8 -/ unlim - root 500 192.0.2.1
  >500001 ESP:aes-gcm-128/aes128-gcm 0x000003e8 -/ unlim - root 500 192.0.2.1
  <500002 ESP:aes-cbc-256/sha256 0x000007d0 -/ unlim - root 500 192.0.2.1
  >500002 ESP:aes-cbc-256/sha256 0x000007d0 -/ unlim - root 500 192.0.2.1
"""


DETAIL = """\
ID: 500001 Virtual-system: root, VPN Name: v-pfe
  Local Gateway: 198.51.100.1, Remote Gateway: 192.0.2.1
  Local Identity: ipv4(0.0.0.0-255.255.255.255)
  Remote Identity: ipv4(0.0.0.0-255.255.255.255)
  TS Type: proxy-id
  Version: N/A
  Quantum Secured: No
  Hardware Offloaded: Yes
  PFS group: N/A, Packet Encapsulation: None, Dest port: 0
  Passive mode tunneling: Disabled
  DF-bit: clear, Copy-Outer-DSCP: Disabled, Bind-interface: st0.0, Policy-name:\x20
  Port: 500, Nego#: 0, Fail#: 0, Def-Del#: 0 Flag: 0
  Tunnel events:
    Sun Mar 01 2026 12:00:00: IPsec SA negotiation succeeds (1 times)
    Sun Mar 01 2026 12:00:00: IPsec SA offloaded to hardware (FPC 0, PIC 0) (1 times)
  Location: FPC 0, PIC 0
  Anchorship: Thread 0
  Crypto backend: openssl
  Distribution-Profile: default-profile
  Direction: inbound, SPI: 0x000003e8, AUX-SPI: 0
                              , VPN Monitoring: -
    Hard lifetime: Unlimited
    Lifesize Remaining:  Unlimited
    Soft lifetime: Unlimited
    Mode: Tunnel(0 0), Type: manual, State: installed
    Protocol: ESP, Authentication: aes128-gcm, Encryption: aes-gcm (128 bits)
    Anti-replay service: disabled
    Extended-Sequence-Number: Disabled
    tunnel-establishment: establish-tunnels-immediately
    IKE SA Index: 0
  Direction: outbound, SPI: 0x000003e8, AUX-SPI: 0
                              , VPN Monitoring: -
    Hard lifetime: Unlimited
    Lifesize Remaining:  Unlimited
    Soft lifetime: Unlimited
    Mode: Tunnel(0 0), Type: manual, State: installed
    Protocol: ESP, Authentication: aes128-gcm, Encryption: aes-gcm (128 bits)
    Anti-replay service: disabled
    Extended-Sequence-Number: Disabled
    tunnel-establishment: establish-tunnels-immediately
    IKE SA Index: 0
ID: 500002 Virtual-system: root, VPN Name: v-cpu
  Local Gateway: 198.51.100.1, Remote Gateway: 192.0.2.1
  Local Identity: ipv4(0.0.0.0-255.255.255.255)
  Remote Identity: ipv4(0.0.0.0-255.255.255.255)
  TS Type: proxy-id
  Version: N/A
  Quantum Secured: No
  Hardware Offloaded: No
    Offload failure reason: encryption algorithm aes-cbc-256 not supported by PFE (AES-GCM 128/256 only)
  PFS group: N/A, Packet Encapsulation: None, Dest port: 0
  Passive mode tunneling: Disabled
  DF-bit: clear, Copy-Outer-DSCP: Disabled, Bind-interface: st0.1, Policy-name:\x20
  Port: 500, Nego#: 0, Fail#: 0, Def-Del#: 0 Flag: 0
  Tunnel events:
    Sun Mar 01 2026 12:00:00: IPsec SA negotiation succeeds (1 times)
    Sun Mar 01 2026 12:00:00: IPsec SA not offloaded to hardware: encryption algorithm aes-cbc-256 not supported by PFE (AES-GCM 128/256 only) (1 times)
  Location: CPU
  Distribution-Profile: default-profile
  Direction: inbound, SPI: 0x000007d0, AUX-SPI: 0
                              , VPN Monitoring: -
    Hard lifetime: Unlimited
    Lifesize Remaining:  Unlimited
    Soft lifetime: Unlimited
    Mode: Tunnel(0 0), Type: manual, State: installed
    Protocol: ESP, Authentication: hmac-sha256-128, Encryption: aes-cbc (256 bits)
    Anti-replay service: disabled
    Extended-Sequence-Number: Disabled
    tunnel-establishment: establish-tunnels-immediately
    IKE SA Index: 0
  Direction: outbound, SPI: 0x000007d0, AUX-SPI: 0
                              , VPN Monitoring: -
    Hard lifetime: Unlimited
    Lifesize Remaining:  Unlimited
    Soft lifetime: Unlimited
    Mode: Tunnel(0 0), Type: manual, State: installed
    Protocol: ESP, Authentication: hmac-sha256-128, Encryption: aes-cbc (256 bits)
    Anti-replay service: disabled
    Extended-Sequence-Number: Disabled
    tunnel-establishment: establish-tunnels-immediately
    IKE SA Index: 0
"""


IPSEC_STATISTICS = """\
ESP Statistics:
  Encrypted bytes:              300
  Decrypted bytes:             3560
  Encrypted packets:              3
  Decrypted packets:             20
AH Statistics:
  Input bytes:                    0
  Output bytes:                   0
  Input packets:                  0
  Output packets:                 0
Errors:
  AH authentication failures: 0, Replay errors: 0
  ESP authentication failures: 1, ESP decryption failures: 0
  Bad headers: 0, Bad trailers: 0
  Invalid SPI: 1, TS check fail: 0
  Exceeds tunnel MTU: 1
  Discarded: 0
"""


# Every packet of the IPsec flows in (4 inner + 22 outer) and out (3 ESP + 20 delivered + 1
# ICMP error); the 13 the offloaded tunnel carried again as services-offload packets.
FLOW_STATISTICS = """\
    Current sessions: 3
    Packets received: 26
    Packets transmitted: 24
    Packets forwarded/queued: 0
    Packets copied: 0
    Packets dropped: 3
    Services-offload packets processed: 13
    Fragment packets: 0
    Pre fragments generated: 0
    Post fragments generated: 0
"""


IPSEC_STATISTICS_V_CPU = """\
ESP Statistics:
  Encrypted bytes:                0
  Decrypted bytes:             2280
  Encrypted packets:              0
  Decrypted packets:             10
AH Statistics:
  Input bytes:                    0
  Output bytes:                   0
  Input packets:                  0
  Output packets:                 0
Errors:
  AH authentication failures: 0, Replay errors: 0
  ESP authentication failures: 1, ESP decryption failures: 0
  Bad headers: 0, Bad trailers: 0
  Invalid SPI: 0, TS check fail: 0
  Exceeds tunnel MTU: 0
  Discarded: 0
"""


def test_summary_golden() -> None:
    _, b = scenario()
    assert b.show("security ipsec security-associations") == SUMMARY


def test_detail_golden() -> None:
    _, b = scenario()
    assert b.show("show security ipsec security-associations detail") == DETAIL
    one = b.show("security ipsec security-associations detail vpn-name v-pfe")
    assert one == DETAIL[:DETAIL.index("ID: 500002")]


def test_ipsec_statistics_golden() -> None:
    _, b = scenario()
    assert b.show("security ipsec statistics") == IPSEC_STATISTICS
    assert b.show("security ipsec statistics vpn-name v-cpu") == IPSEC_STATISTICS_V_CPU


def test_flow_statistics_golden() -> None:
    _, b = scenario()
    assert b.show("security flow statistics") == FLOW_STATISTICS


def test_ike_security_associations_empty_without_ike() -> None:
    _, b = scenario()
    assert b.show("security ike security-associations") == (
        "Index   State  Initiator cookie  Responder cookie  Mode           Remote Address\n")


def test_pfe_backend_is_shown_and_both_backends_interoperate() -> None:
    from inline_ipsec.pfe import PFE_BACKENDS
    other = "ipsec-mb" if "ipsec-mb" in PFE_BACKENDS else "openssl"
    a = Gateway.from_text(small_config("a"), name="gw-a", clock=lambda: FIXED,
                          pfe_backend=other)
    b = Gateway.from_text(small_config("b"), name="gw-b", clock=lambda: FIXED,
                          pfe_backend="openssl")
    link = WireLink(a, b)
    link.send(a, [udp_packet("10.1.0.5", "10.2.0.5", bytes(100))] * 4)
    link.send(b, [udp_packet("10.2.0.5", "10.1.0.5", bytes(100))] * 4)
    assert f"Crypto backend: {other}" in a.show("security ipsec security-associations detail")
    assert "Crypto backend: openssl" in b.show("security ipsec security-associations detail")
    assert "Crypto backend" not in a.show(
        "security ipsec security-associations detail vpn-name v-cpu")
    for gw in (a, b):  # each opened the other's 4 packets, whatever the backends
        rec = gw.tunnel("v-pfe")
        assert rec.engine.counters(rec.pairs[0].inbound_handle).packets == 4
