"""Security policy on the data path, with two whole SRX configurations (tests/data/configs/
pair-a.conf, pair-b.conf): a policy-based VPN `pb` (10.1.0.0/24 <-> 10.2.0.0/24, proxy IDs
from the policy) and a route-based VPN `rb` on st0.0 (10.x.128.0/17, HTTP and ping only)."""
from __future__ import annotations

from pathlib import Path

import pytest

from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.policy import five_tuple

CONFIGS = Path(__file__).parent.parent / "data" / "configs"


@pytest.fixture
def pair() -> tuple[Gateway, Gateway, WireLink]:
    a = Gateway.from_file(str(CONFIGS / "pair-a.conf"), name="a")
    b = Gateway.from_file(str(CONFIGS / "pair-b.conf"), name="b")
    return a, b, WireLink(a, b)


def tcp(src: str, dst: str, dport: int) -> bytes:
    """A minimal IPv4 TCP SYN (the policy reads only the ports)."""
    import struct
    from inline_ipsec.packet.ip import internet_checksum
    import ipaddress
    seg = struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, 0x50, 0x02, 8192, 0, 0)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 1, 0, 64, 6, 0,
                                ipaddress.ip_address(src).packed,
                                ipaddress.ip_address(dst).packed))
    struct.pack_into("!H", hdr, 10, internet_checksum(bytes(hdr)))
    return bytes(hdr) + seg


def test_policy_based_vpn_carries_its_proxy_ids_both_ways(pair) -> None:
    a, b, _ = pair
    assert a.selectors("pb")[0].describe() == "10.1.0.0/24 <-> 10.2.0.0/24"
    out = a.outbound([udp_packet("10.1.0.5", "10.2.0.7", b"x" * 40)])
    assert len(out.wire) == 1 and a.tunnel_flow("pb").out_encrypted == 1
    back = b.inbound(out.wire)
    assert len(back.delivered) == 1 and b.tunnel_flow("pb").in_delivered == 1
    reply = b.outbound([udp_packet("10.2.0.7", "10.1.0.5", b"y" * 40)])
    assert len(a.inbound(reply.wire).delivered) == 1
    ta, tb = a.policy.table, b.policy.table
    assert ta.hits[[p.name for p in ta.policies].index("to-b")] == 1
    assert ta.hits[[p.name for p in ta.policies].index("from-b")] == 1
    assert tb.hits[[p.name for p in tb.policies].index("from-a")] == 1


def test_traffic_without_a_permitting_policy_is_dropped_and_counted(pair) -> None:
    a, _, _ = pair
    # trust -> untrust to an address no policy names: Junos's default deny
    out = a.outbound([udp_packet("10.1.0.5", "10.2.5.7", b"x" * 40)])
    assert out.wire == [] and out.dropped == 1
    assert a.counters.policy_denied_out == 1 and a.policy.table.default_hits == 1
    assert a.counters.no_route == 0


def test_route_based_tunnel_only_for_the_policy_applications(pair) -> None:
    a, b, _ = pair
    web = a.outbound([tcp("10.1.200.1", "10.2.200.1", 80)])
    assert len(web.wire) == 1
    assert len(b.inbound(web.wire).delivered) == 1
    ssh = a.outbound([tcp("10.1.200.1", "10.2.200.1", 22)])
    assert ssh.wire == [] and a.counters.policy_denied_out == 1
    assert a.tunnel_flow("rb").out_packets == 1


def test_decrypted_packet_needs_a_permitting_policy(pair) -> None:
    a, b, _ = pair
    # a without policy would send anything into rb; b's web-in permits http and ping only
    a.policy = None
    wire = a.outbound([tcp("10.1.200.1", "10.2.200.1", 22)]).wire
    assert len(wire) == 1
    got = b.inbound(wire)
    assert got.delivered == [] and b.counters.policy_denied_in == 1
    assert b.tunnel_flow("rb").in_policy_drops == 1


def test_ike_accepted_only_where_host_inbound_allows_it(pair) -> None:
    _, b, _ = pair
    ike = udp_packet("192.0.2.1", "198.51.100.1", b"\x00" * 28, 500, 500)
    assert len(b.inbound([ike]).ike) == 1
    assert b.policy.zones.host_inbound_allows("198.51.100.1", "ike")
    assert not b.policy.zones.host_inbound_allows("10.2.255.1", "ike")
    to_trust = udp_packet("192.0.2.1", "10.2.255.1", b"\x00" * 28, 500, 500)
    assert b.inbound([to_trust]).ike == [] and b.counters.host_inbound_denied == 1


def test_show_commands(pair) -> None:
    a, b, _ = pair
    b.inbound(a.outbound([udp_packet("10.1.0.5", "10.2.0.7", b"x" * 40)]).wire)
    text = a.show("security policies")
    assert text.startswith("Default policy: deny-all\n")
    assert "From zone: trust, To zone: untrust\n  Policy: to-b, State: enabled" in text
    assert "    Action: permit, tunnel\n" in text
    detail = a.show("security policies detail")
    assert "  Tunnel: pb, Type: IPSec, Index: 1\n" in detail
    assert "    lan-pb: 10.1.0.0-10.1.0.255\n" in detail
    hits = a.show("security policies hit-count")
    row = next(line for line in hits.splitlines() if " to-b " in line)
    assert row.split()[1:5] == ["trust", "untrust", "to-b", "1"]
    assert "Number of policy: 4" in hits
    zones = a.show("security zones")
    assert "Security zone: untrust\n" in zones
    assert "    ge-0/0/0.0: ike ping\n" in zones


def test_five_tuple_reads_ports_and_icmp() -> None:
    ft = five_tuple(tcp("10.0.0.1", "10.0.0.2", 443))
    assert (ft.protocol, ft.sport, ft.dport) == (6, 40000, 443)
    assert five_tuple(b"\x45\x00") is None
    assert five_tuple(b"") is None


def tcp_reply(src: str, dst: str, sport: int, dport: int = 40000) -> bytes:
    import struct
    pkt = bytearray(tcp(src, dst, 0))
    struct.pack_into("!HH", pkt, 20, sport, dport)
    return bytes(pkt)


def test_sessions_let_replies_through_and_count_once(pair) -> None:
    a, b, link = pair
    for _ in range(3):
        assert len(link.send(a, [tcp("10.1.200.1", "10.2.200.1", 80)]).delivered) == 1
    # b's reply 10.2.200.1:80 -> 10.1.200.1:40000 matches no policy of its own (web-out
    # permits destination port 80 only); the session b opened for the request carries it,
    # and a's session lets it in
    back = link.send(b, [tcp_reply("10.2.200.1", "10.1.200.1", 80)])
    assert len(back.delivered) == 1
    ta, tb = a.policy.table, b.policy.table
    assert ta.hits[[p.name for p in ta.policies].index("web-out")] == 1   # one session
    assert tb.hits[[p.name for p in tb.policies].index("web-in")] == 1
    assert b.counters.policy_denied_out == 0 and a.counters.policy_denied_in == 0
    # the same reply without a session is denied
    other = link.send(b, [tcp_reply("10.2.200.1", "10.1.200.1", 80, 40001)])
    assert other.delivered == [] and b.counters.policy_denied_out == 1


def test_session_table_is_bounded(pair, monkeypatch) -> None:
    from inline_ipsec.dataplane import policy_path
    a, _, _ = pair
    monkeypatch.setattr(policy_path, "MAX_SESSIONS", 8)
    for port in range(50):
        a.outbound([tcp("10.1.200.1", "10.2.200.1", 80)[:20] + bytes(
            [0x9c, port, 0, 80]) + tcp("10.1.200.1", "10.2.200.1", 80)[24:]])
    assert len(a.policy.sessions) <= 16


def test_current_sessions_are_the_policy_sessions(pair) -> None:
    a, _, link = pair
    for port in (80, 80, 80):
        link.send(a, [tcp("10.1.200.1", "10.2.200.1", port)])
    link.send(a, [udp_packet("10.1.0.5", "10.2.0.7", b"x" * 40)])
    assert a.current_sessions() == 2
    assert "Current sessions: 2\n" in a.show("security flow statistics")


def test_show_policies_filters(pair) -> None:
    a, _, _ = pair
    text = a.show("security policies from-zone trust to-zone vpn")
    assert "From zone: trust, To zone: vpn\n" in text and "to-b" not in text
    assert "Policy: web-out" in text
    detail = a.show("security policies policy-name to-b detail")
    assert "Policy: to-b, action-type: permit" in detail and "web-out" not in detail
    hits = a.show("security policies from-zone untrust to-zone trust hit-count")
    assert "from-b" in hits and "web-in" not in hits
    from inline_ipsec.gateway.show import ShowError
    with pytest.raises(ShowError, match="from-zone and to-zone go together"):
        a.show("security policies from-zone trust")


def test_policy_based_tunnel_detail_says_proxy_id(pair) -> None:
    a, _, _ = pair
    detail = a.show("security ipsec security-associations detail vpn-name pb")
    assert "  Local Identity: ipv4(10.1.0.0-10.1.0.255)\n" in detail
    assert "  TS Type: proxy-id\n" in detail


def test_check_notes_an_external_interface_outside_the_to_zone(tmp_path, capsys) -> None:
    from inline_ipsec.cli import main
    text = (CONFIGS / "pair-a.conf").read_text().replace(
        "security-zone untrust interfaces ge-0/0/0.0 host-inbound-traffic system-services ike",
        "security-zone dmz interfaces ge-0/0/0.0 host-inbound-traffic system-services ike"
    ).replace("security-zone untrust interfaces ge-0/0/0.0 host-inbound-traffic system-services "
              "ping", "security-zone untrust interfaces ge-0/0/2.0")
    path = tmp_path / "moved.conf"
    path.write_text(text)
    assert main(["check", "--today", "2026-03-01", str(path)]) == 0
    assert ("its external interface ge-0/0/0.0 is in zone dmz, the policy's to-zone is "
            "untrust") in capsys.readouterr().out
