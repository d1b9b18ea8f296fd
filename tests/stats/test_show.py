"""Golden text of each show command (formats of docs/junos-formats.md §4, Junos 25.x)."""
from __future__ import annotations

import dataclasses
from typing import Any

from inline_ipsec.distribution import Placement
from inline_ipsec.stats import (
    FlowStatistics,
    IkeSaRecord,
    IpsecStatistics,
    SaSnapshot,
    TunnelSnapshot,
    algorithm_field,
    flow_statistics,
    ipsec_statistics,
    proxy_identity,
    render_flow_statistics,
    render_ike_sa_summary,
    render_ipsec_sa_detail,
    render_ipsec_sa_summary,
    render_ipsec_statistics,
    render_offload_check,
)

# -- show security ipsec security-associations -------------------------------------------------

MX_SUMMARY = """\
  Total active tunnels: 1     Total IPsec sas: 1
  ID      Algorithm       SPI      Life:sec/kb  Mon lsys Port  Gateway
  <500011 ESP:aes-gcm-256/aes256-gcm 0x6d0c6331 1222/ unlim - root 500 13.10.2.2
  >500011 ESP:aes-gcm-256/aes256-gcm 0xe1ed7345 1222/ unlim - root 500 13.10.2.2
"""


def mx_tunnel() -> TunnelSnapshot:
    sa = SaSnapshot(direction="inbound", spi=0x6D0C6331, cipher="aes-gcm-256",
                    hard_lifetime_remaining=1222)
    return TunnelSnapshot(
        tunnel_id=500011, vpn_name="mx", local_gateway="13.10.2.1", remote_gateway="13.10.2.2",
        sas=(sa, dataclasses.replace(sa, direction="outbound", spi=0xE1ED7345)))


def test_ipsec_sa_summary_golden_mx() -> None:
    assert render_ipsec_sa_summary([mx_tunnel()]) == MX_SUMMARY


def test_ipsec_sa_summary_cbc_lifesize_natt() -> None:
    sa = SaSnapshot(direction="inbound", spi=0xCA3156DE, cipher="aes-cbc-256",
                    integrity="hmac-sha256-128", hard_lifetime_remaining=3029,
                    lifesize_remaining_kb=9000)
    t = TunnelSnapshot(tunnel_id=500002, vpn_name="v", local_gateway="192.0.2.1",
                       remote_gateway="104.193.170.172", port=4500,
                       sas=(sa, dataclasses.replace(sa, direction="outbound", spi=0x94337FF7)))
    assert render_ipsec_sa_summary([mx_tunnel(), t]) == (
        "  Total active tunnels: 2     Total IPsec sas: 2\n"
        "  ID      Algorithm       SPI      Life:sec/kb  Mon lsys Port  Gateway\n"
        "  <500011 ESP:aes-gcm-256/aes256-gcm 0x6d0c6331 1222/ unlim - root 500 13.10.2.2\n"
        "  >500011 ESP:aes-gcm-256/aes256-gcm 0xe1ed7345 1222/ unlim - root 500 13.10.2.2\n"
        "  <500002 ESP:aes-cbc-256/sha256 0xca3156de 3029/9000 - root 4500 104.193.170.172\n"
        "  >500002 ESP:aes-cbc-256/sha256 0x94337ff7 3029/9000 - root 4500 104.193.170.172\n")


def test_ipsec_sa_summary_empty() -> None:
    assert render_ipsec_sa_summary([]).splitlines()[0] == \
        "  Total active tunnels: 0     Total IPsec sas: 0"


def test_algorithm_field() -> None:
    def alg(**kw: Any) -> str:
        return algorithm_field(SaSnapshot(direction="inbound", spi=256, **kw))
    assert alg(cipher="aes-gcm-128") == "ESP:aes-gcm-128/aes128-gcm"
    assert alg(cipher="3des-cbc", integrity="hmac-sha1-96") == "ESP:3des-cbc/sha1"
    assert alg(cipher="aes-cbc-128", integrity="hmac-sha512-256") == "ESP:aes-cbc-128/sha512"
    assert alg(cipher="chacha20-poly1305") == "ESP:chacha20-poly1305/chacha20-poly1305"
    assert alg(protocol="ah", cipher="null", integrity="hmac-sha256-128") == "AH:none/sha256"
    assert alg(cipher="null", integrity="hmac-md5-96") == "ESP:none/md5"


# -- show security ipsec security-associations detail ------------------------------------------

SRX4700_DETAIL = """\
ID: 500002 Virtual-system: root, VPN Name: 4700
  Local Gateway: 192.168.3.1, Remote Gateway: 192.168.3.2
  Local Identity: ipv4(0.0.0.0-255.255.255.255)
  Remote Identity: ipv4(0.0.0.0-255.255.255.255)
  TS Type: proxy-id
  Version: IKEv2
  Quantum Secured: Yes
  Hardware Offloaded: Yes
  PFS group: DH-group-20, Packet Encapsulation: None, Dest port: 0
  Passive mode tunneling: Disabled
  DF-bit: clear, Copy-Outer-DSCP: Disabled, Bind-interface: st0.0, Policy-name: ipsec-1
  Port: 500, Nego#: 0, Fail#: 0, Def-Del#: 0 Flag: 0
  Tunnel events:
    Sun Sep 14 2025 09:34:29: IPsec SA negotiation succeeds (1 times)
  Location: FPC 0, PIC 0
  Anchorship: Thread 4
  Distribution-Profile: default-profile
  Direction: inbound, SPI: 0x6304b842, AUX-SPI: 0
                              , VPN Monitoring: -
    Hard lifetime: Expires in 3179 seconds
    Lifesize Remaining:  Unlimited
    Soft lifetime: Expires in 2559 seconds
    Mode: Tunnel(0 0), Type: dynamic, State: installed
    Protocol: ESP, Authentication: aes256-gcm, Encryption: aes-gcm (256 bits)
    Anti-replay service: counter-based enabled, Replay window size: 4096
    Extended-Sequence-Number: Enabled
    tunnel-establishment: establish-tunnels-immediately
    IKE SA Index: 5
  Direction: outbound, SPI: 0xa6ffa623, AUX-SPI: 0
                              , VPN Monitoring: -
    Hard lifetime: Expires in 3179 seconds
    Lifesize Remaining:  Unlimited
    Soft lifetime: Expires in 2559 seconds
    Mode: Tunnel(0 0), Type: dynamic, State: installed
    Protocol: ESP, Authentication: aes256-gcm, Encryption: aes-gcm (256 bits)
    Anti-replay service: counter-based enabled, Replay window size: 4096
    Extended-Sequence-Number: Enabled
    tunnel-establishment: establish-tunnels-immediately
    IKE SA Index: 5
"""


def srx4700_tunnel() -> TunnelSnapshot:
    sa = SaSnapshot(direction="inbound", spi=0x6304B842, cipher="aes-gcm-256",
                    hard_lifetime_remaining=3179, soft_lifetime_remaining=2559,
                    replay_window=4096, esn=True)
    return TunnelSnapshot(
        tunnel_id=500002, vpn_name="4700", local_gateway="192.168.3.1",
        remote_gateway="192.168.3.2", local_identity=proxy_identity("0.0.0.0/0"),
        remote_identity=proxy_identity("0.0.0.0/0"), quantum_secured=True,
        hardware_offloaded=True, pfs_group=20, bind_interface="st0.0", policy_name="ipsec-1",
        events=("Sun Sep 14 2025 09:34:29: IPsec SA negotiation succeeds (1 times)",),
        location="FPC 0, PIC 0", anchorship="Thread 4", ike_sa_index=5,
        sas=(sa, dataclasses.replace(sa, direction="outbound", spi=0xA6FFA623)))


def test_ipsec_sa_detail_golden_srx4700() -> None:
    assert render_ipsec_sa_detail([srx4700_tunnel()]) == SRX4700_DETAIL


def test_ipsec_sa_detail_not_offloaded_with_reasons() -> None:
    sa = SaSnapshot(direction="inbound", spi=0x1234, protocol="ah", cipher="null",
                    integrity="hmac-sha256-128", hard_lifetime_remaining=100,
                    soft_lifetime_remaining=0, lifesize_remaining_kb=512, replay_window=0)
    t = dataclasses.replace(
        srx4700_tunnel(), hardware_offloaded=False, quantum_secured=False, pfs_group=None,
        offload_reasons=("AH protocol not supported by PFE", "lifetime-kilobytes configured"),
        df_bit="copy", copy_outer_dscp=True, udp_encap=True, dest_port=4500, port=4500,
        location="CPU", anchorship=None, tunnel_establishment="establish-tunnels-on-traffic",
        sas=(sa,))
    lines = render_ipsec_sa_detail([t]).splitlines()
    assert lines[6:10] == [
        "  Quantum Secured: No",
        "  Hardware Offloaded: No",
        "    Offload failure reason: AH protocol not supported by PFE",
        "    Offload failure reason: lifetime-kilobytes configured",
    ]
    assert "  PFS group: N/A, Packet Encapsulation: UDP, Dest port: 4500" in lines
    assert ("  DF-bit: copy, Copy-Outer-DSCP: Enabled, Bind-interface: st0.0, "
            "Policy-name: ipsec-1") in lines
    assert "  Location: CPU" in lines and not any("Anchorship" in x for x in lines)
    assert lines[-11:] == [
        "  Direction: inbound, SPI: 0x00001234, AUX-SPI: 0",
        "                              , VPN Monitoring: -",
        "    Hard lifetime: Expires in 100 seconds",
        "    Lifesize Remaining:  512 kilobytes",
        "    Soft lifetime: Expired",
        "    Mode: Tunnel(0 0), Type: dynamic, State: installed",
        "    Protocol: AH, Authentication: hmac-sha256-128, Encryption: None",
        "    Anti-replay service: disabled",
        "    Extended-Sequence-Number: Disabled",
        "    tunnel-establishment: establish-tunnels-on-traffic",
        "    IKE SA Index: 5",
    ]


def test_ipsec_sa_detail_cbc_encryption_line() -> None:
    sa = SaSnapshot(direction="outbound", spi=0x999, cipher="aes-cbc-128",
                    integrity="hmac-sha1-96", sa_type="manual")
    t = dataclasses.replace(srx4700_tunnel(), sas=(sa,))
    text = render_ipsec_sa_detail([t])
    assert "    Protocol: ESP, Authentication: hmac-sha1-96, Encryption: aes-cbc (128 bits)\n" \
        in text
    assert "    Mode: Tunnel(0 0), Type: manual, State: installed\n" in text
    assert "    Hard lifetime: Unlimited\n" in text


def test_proxy_identity_ipv6() -> None:
    assert proxy_identity("2001:db8::/126") == "ipv6(2001:db8::-2001:db8::3)"
    assert proxy_identity("10.1.0.0/16") == "ipv4(10.1.0.0-10.1.255.255)"


# -- show security ipsec statistics ------------------------------------------------------------

SRX4700_STATS = """\
ESP Statistics:
  Encrypted bytes:     564503159752
  Decrypted bytes:                0
  Encrypted packets:    10080413567
  Decrypted packets:              0
AH Statistics:
  Input bytes:                    0
  Output bytes:                   0
  Input packets:                  0
  Output packets:                 0
Errors:
  AH authentication failures: 0, Replay errors: 0
  ESP authentication failures: 0, ESP decryption failures: 0
  Bad headers: 0, Bad trailers: 0
  Invalid SPI: 0, TS check fail: 0
  Exceeds tunnel MTU: 0
  Discarded: 0
"""


def test_ipsec_statistics_golden_srx4700() -> None:
    stats = IpsecStatistics(esp_encrypted_bytes=564503159752,
                            esp_encrypted_packets=10080413567)
    assert render_ipsec_statistics(stats) == SRX4700_STATS


def test_ipsec_statistics_mx_has_three_error_lines() -> None:
    text = render_ipsec_statistics(IpsecStatistics(), platform="mx")
    assert text.splitlines()[-3:] == [
        "  AH authentication failures: 0, Replay errors: 0",
        "  ESP authentication failures: 0, ESP decryption failures: 0",
        "  Bad headers: 0, Bad trailers: 0",
    ]


def test_ipsec_statistics_wide_number_keeps_a_space() -> None:
    text = render_ipsec_statistics(IpsecStatistics(esp_decrypted_bytes=10 ** 20))
    assert "  Decrypted bytes: 100000000000000000000\n" in text


@dataclasses.dataclass
class Counters:
    packets: int = 0
    bytes: int = 0
    auth_failed: int = 0
    replay_duplicate: int = 0
    replay_below_window: int = 0
    malformed: int = 0
    bad_trailer: int = 0
    seq_overflow: int = 0
    dummy: int = 0
    no_room: int = 0
    expired: int = 0


@dataclasses.dataclass
class EngineCounters:
    unknown_spi: int = 0
    malformed: int = 0


def test_ipsec_statistics_from_counters() -> None:
    stats = ipsec_statistics(
        [("outbound", "esp", Counters(packets=10, bytes=1000, seq_overflow=1, no_room=2)),
         ("inbound", "esp", Counters(packets=7, bytes=700, auth_failed=3, replay_duplicate=1,
                                     replay_below_window=2, malformed=4, bad_trailer=5,
                                     dummy=6)),
         ("inbound", "ah", Counters(packets=2, bytes=200, auth_failed=1)),
         ("outbound", "ah", Counters(packets=3, bytes=300))],
        [EngineCounters(unknown_spi=9, malformed=1)])
    assert stats == IpsecStatistics(
        esp_encrypted_bytes=1000, esp_decrypted_bytes=700, esp_encrypted_packets=10,
        esp_decrypted_packets=7, ah_input_bytes=200, ah_output_bytes=300, ah_input_packets=2,
        ah_output_packets=3, ah_authentication_failures=1, replay_errors=3,
        esp_authentication_failures=3, bad_headers=5, bad_trailers=5, invalid_spi=9,
        exceeds_tunnel_mtu=2, discarded=7)
    assert (stats + stats).esp_encrypted_packets == 20


# -- show security flow statistics -------------------------------------------------------------

SRX4700_FLOW = """\
    Current sessions: 3
    Packets received: 6143
    Packets transmitted: 6148
    Packets forwarded/queued: 0
    Packets copied: 0
    Packets dropped: 0
    Services-offload packets processed: 9794771735
    Fragment packets: 0
    Pre fragments generated: 0
    Post fragments generated: 0
"""


def test_flow_statistics_golden() -> None:
    stats = FlowStatistics(current_sessions=3, packets_received=6143, packets_transmitted=6148,
                           services_offload_packets=9794771735)
    assert render_flow_statistics(stats) == SRX4700_FLOW


def test_flow_statistics_count_every_ipsec_packet_and_offloaded_ones_again() -> None:
    """The flow module counts the packets of IPsec flows in and out; those an offloaded tunnel
    carried count again as services-offload packets (docs/junos-formats.md §4.6)."""
    from inline_ipsec.gateway.counters import GatewayCounters
    c = GatewayCounters(inner_received=100, outer_received=50, transmitted_outer=97,
                        delivered_inner=44, icmp_sent=2, no_route=1, malformed_inner=1,
                        malformed_outer=1, invalid_spi=3, ts_check_fail=1,
                        exceeds_tunnel_mtu=2, pre_fragments=4, fragments_received=5,
                        ike_packets=2, nat_keepalives=1)
    c.paths["pfe"].encrypted, c.paths["pfe"].decrypted = 60, 30
    c.paths["cpu"].encrypted, c.paths["cpu"].decrypted = 37, 14
    c.paths["cpu"].decrypt_drops, c.paths["pfe"].encrypt_drops = 2, 1
    stats = flow_statistics(c, sessions=3)
    assert stats == FlowStatistics(
        current_sessions=3, packets_received=150, packets_transmitted=97 + 44 + 2,
        packets_dropped=1 + 1 + 1 + 3 + 1 + 2 + 2 + 1, services_offload_packets=90,
        fragment_packets=5, pre_fragments_generated=4)
    text = render_flow_statistics(stats)
    assert "    Packets received: 150\n" in text
    assert "    Services-offload packets processed: 90\n" in text


# -- show security ike security-associations ---------------------------------------------------

IKE_SUMMARY = """\
Index   State  Initiator cookie  Responder cookie  Mode           Remote Address
75      UP     e0b71d9e1c29c324  1ace68c4dcfa427b  IKEv2          13.10.2.2
10827726 UP    0f33732903bd3ed7  ed31e2cf6088415f  Main           50.233.235.222
"""


def test_ike_sa_summary_golden() -> None:
    records = [
        IkeSaRecord(75, "UP", 0xE0B71D9E1C29C324, 0x1ACE68C4DCFA427B, "IKEv2", "13.10.2.2"),
        IkeSaRecord(10827726, "UP", 0x0F33732903BD3ED7, 0xED31E2CF6088415F, "Main",
                    "50.233.235.222"),
    ]
    assert render_ike_sa_summary(records) == IKE_SUMMARY


def test_ike_sa_summary_aggressive_and_down() -> None:
    text = render_ike_sa_summary([IkeSaRecord(3, "DOWN", 1, 0, "Aggressive", "2001:db8::1")])
    assert text.splitlines()[1] == (
        "3       DOWN   0000000000000001  0000000000000000  Aggressive     2001:db8::1")


# -- inline-ipsec check FILE -------------------------------------------------------------------

def test_offload_check() -> None:
    text = render_offload_check({
        "4700": Placement("pfe"),
        "slow": Placement("cpu", ("AH protocol not supported by PFE",
                                  "anti-replay window 8192 > 4096")),
    })
    assert text == (
        "VPN Name: 4700\n"
        "  Hardware Offloaded: Yes\n"
        "VPN Name: slow\n"
        "  Hardware Offloaded: No\n"
        "    Offload failure reason: AH protocol not supported by PFE\n"
        "    Offload failure reason: anti-replay window 8192 > 4096\n")


# -- from distributor records (what the gateway feeds the renderers) ---------------------------

def test_tunnel_snapshot_from_distributor_record() -> None:
    import datetime as dt

    from inline_ipsec.config import License
    from inline_ipsec.cpu import CpuEngine
    from inline_ipsec.distribution import Distributor, Tunnel
    from inline_ipsec.pfe import Pfe
    from inline_ipsec.sa import Lifetime, SaSpec
    from inline_ipsec.stats import tunnel_snapshot

    now = [dt.datetime(2025, 9, 14, 9, 34, 29)]
    d = Distributor([Pfe("pfe0")], CpuEngine("cpu0"), license=License(),
                    clock=lambda: now[0])
    life = Lifetime(soft_seconds=3000, hard_seconds=3600)

    def spec(spi: int, src: str, dst: str, **kw: Any) -> SaSpec:
        return SaSpec(spi=spi, cipher="aes-gcm-256", key=bytes(36), tunnel_src=src,
                      tunnel_dst=dst, replay_window=4096, esn=True, lifetime=life, **kw)

    d.install("4700", Tunnel(replay_window=4096),
              spec(0xA6FFA623, "192.168.3.1", "192.168.3.2"),
              spec(0x6304B842, "192.168.3.2", "192.168.3.1"))
    now[0] += dt.timedelta(seconds=421)
    snap = tunnel_snapshot(d.tunnel("4700"), now[0], quantum_secured=True, pfs_group=20,
                           bind_interface="st0.0", policy_name="ipsec-1", ike_sa_index=5,
                           anchorship="Thread 4")
    text = render_ipsec_sa_detail([snap])
    lines = text.splitlines()
    assert lines[0] == "ID: 500001 Virtual-system: root, VPN Name: 4700"
    assert lines[1] == "  Local Gateway: 192.168.3.1, Remote Gateway: 192.168.3.2"
    assert "  Hardware Offloaded: Yes" in lines
    assert "  Location: FPC 0, PIC 0" in lines
    assert "    Sun Sep 14 2025 09:34:29: IPsec SA negotiation succeeds (1 times)" in lines
    assert lines.count("    Hard lifetime: Expires in 3179 seconds") == 2
    assert lines.count("    Soft lifetime: Expires in 2579 seconds") == 2
    assert "  Direction: inbound, SPI: 0x6304b842, AUX-SPI: 0" in lines
    assert render_ipsec_sa_summary([snap]).splitlines()[2] == (
        "  <500001 ESP:aes-gcm-256/aes256-gcm 0x6304b842 3179/ unlim - root 500 192.168.3.2")

    # the same tunnel refused by the offload rules shows why
    d.install("slow", Tunnel(replay_window=8192),
              dataclasses.replace(spec(0x1111, "192.168.3.1", "192.168.3.2"),
                                  replay_window=8192, udp_encap=True),
              spec(0x2222, "192.168.3.2", "192.168.3.1"))
    slow = tunnel_snapshot(d.tunnel("slow"), now[0])
    assert (slow.hardware_offloaded, slow.offload_reasons) == (
        False, ("anti-replay window 8192 > 4096",))
    assert (slow.port, slow.dest_port, slow.udp_encap, slow.location) == (4500, 4500, True, "CPU")
    assert "    Offload failure reason: anti-replay window 8192 > 4096" in \
        render_ipsec_sa_detail([slow]).splitlines()


def test_sa_snapshot_lifetimes() -> None:
    import datetime as dt

    from inline_ipsec.sa import Lifetime, SaSpec
    from inline_ipsec.stats import sa_snapshot

    t0 = dt.datetime(2026, 1, 1)
    spec = SaSpec(spi=0x300, cipher="aes-cbc-128", key=bytes(16), integrity="hmac-sha1-96",
                  integrity_key=bytes(20), tunnel_src="192.0.2.1", tunnel_dst="192.0.2.2",
                  lifetime=Lifetime(soft_seconds=100, hard_seconds=200, hard_kilobytes=100))
    snap = sa_snapshot("outbound", spec, t0 + dt.timedelta(seconds=150), t0,
                       Counters(bytes=50 * 1024 + 1000))
    assert (snap.hard_lifetime_remaining, snap.soft_lifetime_remaining,
            snap.lifesize_remaining_kb) == (50, 0, 50)
    assert snap.integrity == "hmac-sha1-96" and snap.cipher == "aes-cbc-128"
    t = dataclasses.replace(srx4700_tunnel(), sas=(snap,))
    lines = render_ipsec_sa_detail([t]).splitlines()
    assert "    Soft lifetime: Expired" in lines
    assert "    Lifesize Remaining:  50 kilobytes" in lines
    assert render_ipsec_sa_summary([t]).splitlines()[2].split()[3] == "50/50"


IKE_DETAIL = """\
IKE peer Y.Y.Y.Y, Index 6226807, Gateway Name: azure-gateway
 Role: Responder, State: UP
 Initiator cookie: 77034040d34a7428, Responder cookie: 2dfe60279d917d73
 Exchange type: IKEv2, Authentication method: Pre-shared-keys
 Local: X.X.X.X:500, Remote: Y.Y.Y.Y:500
 Lifetime: Expires in 2148 seconds
 Reauth Lifetime: Disabled
 IKE Fragmentation: Disabled, Size: 0
 Remote Access Client Info: Unknown Client
 Peer ike-id: Y.Y.Y.Y
 AAA assigned IP: 0.0.0.0
 Algorithms:
  Authentication        : hmac-sha1-96
  Encryption            : aes256-cbc
  Pseudo random function: hmac-sha1
  Diffie-Hellman group  : DH-group-2
 Traffic statistics:
  Input  bytes  :               171220
  Output bytes  :               171204
  Input  packets:                 2251
  Output packets:                 2251
  Input  fragmentated packets:       0
  Output fragmentated packets:       0
 IPSec security associations: 2 created, 0 deleted
 Phase 2 negotiations in progress: 1
"""


def test_ike_sa_detail_golden() -> None:
    from inline_ipsec.stats import IkeSaDetail, render_ike_sa_detail

    record = IkeSaDetail(
        remote_address="Y.Y.Y.Y", index=6226807, gateway_name="azure-gateway",
        role="Responder", state="UP", initiator_cookie=0x77034040D34A7428,
        responder_cookie=0x2DFE60279D917D73, exchange_type="IKEv2",
        authentication_method="Pre-shared-keys", local_address="X.X.X.X",
        lifetime_remaining=2148, authentication="hmac-sha1-96", encryption="aes256-cbc",
        prf="hmac-sha1", dh_group="DH-group-2", input_bytes=171220, output_bytes=171204,
        input_packets=2251, output_packets=2251, ipsec_sas_created=2, phase2_in_progress=1)
    assert render_ike_sa_detail([record]) == IKE_DETAIL
    two = render_ike_sa_detail([record, record])
    assert two == IKE_DETAIL + "\n" + IKE_DETAIL
