"""A hub and three spokes in one process: AutoVPN (dynamic gateway, certificates), NHTB from
the spokes' configuration payloads, ADVPN shortcut up, traffic moving off the hub, and back
through the hub after the idle teardown."""
from __future__ import annotations

import re

import pytest
from hub_helpers import HUB, SPOKES, Net, flow, hub_config, make_pki, spoke_config


def _hub_flow(hub) -> dict[str, tuple[int, int]]:
    return {t: (hub.gw.tunnel_flow(t).in_delivered, hub.gw.tunnel_flow(t).out_encrypted)
            for t in hub.ctl.tunnels}


def _network(n: int = 3, advpn: bool = True, **spoke_kw):
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_config(), HUB, pki.issue("hub", "hub.example"), pki.ca,
                  suggest_holddown=1000.0)
    spokes = [net.add(f"s{i}", spoke_config(i, advpn=advpn, **spoke_kw), SPOKES[i - 1][0],
                      pki.issue(f"s{i}", f"spoke{i}.spokes.example"), pki.ca)
              for i in range(1, n + 1)]
    for s in spokes:
        s.ctl.start(net.now)
    net.pump()
    return net, hub, spokes, pki


def test_autovpn_hub_accepts_spokes_with_their_own_tunnels_and_nhtb() -> None:
    net, hub, spokes, _ = _network()
    names = sorted(hub.ctl.tunnels)
    assert names == [f"hub@{SPOKES[i][0]}" for i in range(3)]
    assert sorted(hub.gw.tunnel_names()) == names                # one tunnel per spoke
    nhtb = {e.address: e.tunnel for e in hub.ctl.nhtb.entries()}
    assert nhtb == {SPOKES[i][1]: f"hub@{SPOKES[i][0]}" for i in range(3)}
    assert all(e.source == "ike-cp" for e in hub.ctl.nhtb.entries())
    # static routes via next-hop tunnel addresses reach each spoke's own tunnel
    assert dict(hub.ctl.routes()) == {SPOKES[i][2]: [f"hub@{SPOKES[i][0]}"] for i in range(3)}
    text = hub.ctl.show("show security ipsec next-hop-tunnels")
    assert "10.100.0.12       st0.0       hub" in text and "Total next-hop tunnels: 3" in text
    for name in names:                                           # Table 1: CPU, and why
        rec = hub.gw.tunnel(name)
        assert not rec.offloaded
        # licensed, AES-GCM, ESP tunnel mode: only the deployment keeps it off the PFE
        assert rec.placement.reasons == ("ADVPN deployment not supported by PFE",)
    detail = hub.gw.show("security ipsec security-associations detail")
    assert detail.count("Hardware Offloaded: No") == 3


def test_spoke_to_spoke_through_hub_then_shortcut_then_back_after_idle() -> None:
    net, hub, (s1, s2, s3), _ = _network(idle_time=60, idle_threshold=5)
    t1, t2 = f"hub@{SPOKES[0][0]}", f"hub@{SPOKES[1][0]}"
    # 1. through the hub: the hub decrypts from spoke 1 and encrypts to spoke 2
    net.send(s1, flow(1, 2, 10))
    assert len(s2.delivered) == 10
    assert _hub_flow(hub)[t1] == (10, 0) and _hub_flow(hub)[t2] == (0, 10)
    assert hub.ctl.counters.suggestions_sent == 2                 # one to each spoke
    # 2. the suggestion brings up a direct IKE SA + child SA between the spokes
    net.pump()
    sc1, sc2 = f"to-hub~{SPOKES[1][0]}", f"to-hub~{SPOKES[0][0]}"
    assert s1.ctl.shortcuts() == [sc1] and s2.ctl.shortcuts() == [sc2]
    assert s1.ctl.counters.shortcuts_initiated + s2.ctl.counters.shortcuts_initiated == 1
    assert s1.ctl.counters.shortcuts_up == s2.ctl.counters.shortcuts_up == 1
    assert s3.ctl.shortcuts() == []
    assert s1.ctl.routes()[0] == (SPOKES[1][2], [sc1])            # preferred over the hub
    ike_sas = s1.ctl.show("security ike security-associations")
    assert "Shortcut  " + sc1 in ike_sas and "Static    to-hub" in ike_sas
    assert s1.gw.tunnel(sc1).placement.reasons == (             # ADVPN: CPU (Table 1)
        "ADVPN deployment not supported by PFE",)
    before = _hub_flow(hub)
    wire_at_hub = net.wire_packets.get(HUB, 0)
    for _ in range(5):                                          # busy: above the threshold
        net.send(s1, flow(1, 2, 20))
        net.send(s2, flow(2, 1, 20))
        net.advance(10.0)
    assert len(s2.delivered) == 110 and len(s1.delivered) == 100
    assert _hub_flow(hub) == before                              # the hub sees none of it
    assert net.wire_packets.get(HUB, 0) == wire_at_hub
    f1 = s1.gw.tunnel_flow(sc1)
    assert f1.out_encrypted == 100 and f1.in_delivered == 100    # the shortcut's grow
    assert s1.ctl.shortcuts() == [sc1]                           # not idle yet
    # 3. idle: below 5 packets/s for 60 s -> torn down, traffic back through the hub
    net.advance(70.0)
    assert s1.ctl.shortcuts() == [] and s2.ctl.shortcuts() == []
    assert s1.ctl.counters.shortcuts_torn_down_idle + \
        s2.ctl.counters.shortcuts_torn_down_idle >= 1
    assert s1.ctl.counters.shortcuts_down == 1
    assert sc1 not in s1.gw.tunnel_names()
    assert s1.ctl.routes() == [("10.0.0.0/8", ["to-hub"])]
    net.send(s1, flow(1, 2, 7))
    assert len(s2.delivered) == 117
    after = _hub_flow(hub)
    assert after[t1][0] == before[t1][0] + 7 and after[t2][1] == before[t2][1] + 7
    assert "Shortcuts torn down (idle):" in s1.ctl.show("security advpn statistics")


def test_spokes_join_and_leave_without_hub_configuration_change() -> None:
    net, hub, spokes, pki = _network(n=2)
    config = hub.gw.config
    assert len(hub.ctl.tunnels) == 2
    s3 = net.add("s3", spoke_config(3), SPOKES[2][0],
                 pki.issue("s3", "spoke3.spokes.example"), pki.ca)
    s3.ctl.start(net.now)
    net.pump()
    assert f"hub@{SPOKES[2][0]}" in hub.ctl.tunnels and hub.ctl.nhtb.tunnel_for(SPOKES[2][1])
    net.send(s3, flow(3, 1, 3))
    assert len(spokes[0].delivered) == 3
    # spoke 3 leaves (deletes its IKE SA): its tunnel, NHTB entry and route go
    s3.ctl.tunnels["to-hub"].session.close(net.now)
    net.pump()
    assert f"hub@{SPOKES[2][0]}" not in hub.ctl.tunnels
    assert hub.ctl.nhtb.tunnel_for(SPOKES[2][1]) is None
    assert SPOKES[2][2] not in dict(hub.ctl.routes())
    assert any(SPOKES[2][2] in u for u in hub.ctl.unresolved)   # shown, not silent
    assert hub.gw.config is config


def test_connections_limit_bounds_spokes() -> None:
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_config(limit=2), HUB, pki.issue("hub", "hub.example"), pki.ca)
    spokes = [net.add(f"s{i}", spoke_config(i), SPOKES[i - 1][0],
                      pki.issue(f"s{i}", f"spoke{i}.spokes.example"), pki.ca)
              for i in (1, 2, 3)]
    for s in spokes:
        s.ctl.start(net.now)
    net.pump()
    assert len(hub.ctl.tunnels) == 2
    assert hub.ctl.refused["connections-limit reached"] >= 1
    text = hub.ctl.show("security advpn statistics")
    assert re.search(r"AutoVPN spokes up: +2\n", text)
    assert "Spokes refused (connections-limit reached):" in text
    assert "to-hub" not in spokes[2].ctl.tunnels


def test_identity_outside_the_pattern_is_refused() -> None:
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_config(), HUB, pki.issue("hub", "hub.example"), pki.ca)
    text = spoke_config(1).replace("spoke1.spokes.example", "intruder.other.example")
    bad = net.add("bad", text, SPOKES[0][0], pki.issue("bad", "intruder.other.example"),
                  pki.ca)
    bad.ctl.start(net.now)
    net.pump()
    assert hub.ctl.tunnels == {} and hub.gw.tunnel_names() == []
    assert "to-hub" not in bad.ctl.tunnels


def test_distinguished_name_wildcard_refuses_another_organisation() -> None:
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_config(pattern="distinguished-name wildcard \"O=Example, OU=*\""),
                  HUB, pki.issue("hub", "hub.example"), pki.ca)
    ok = spoke_config(1).replace(
        "local-identity hostname spoke1.spokes.example", "local-identity distinguished-name")
    s1 = net.add("s1", ok, SPOKES[0][0], pki.issue("s1", "s1.example"), pki.ca)
    other = spoke_config(2).replace(
        "local-identity hostname spoke2.spokes.example", "local-identity distinguished-name")
    s2 = net.add("s2", other, SPOKES[1][0], pki.issue("s2", "s2.example", org="Other"),
                 pki.ca)
    for s in (s1, s2):
        s.ctl.start(net.now)
    net.pump()
    assert list(hub.ctl.tunnels) == [f"hub@{SPOKES[0][0]}"]


def test_psk_autovpn_hub_but_no_shortcuts_without_certificates() -> None:
    net = Net()
    psk = 'set security ike policy ike-1 pre-shared-key ascii-text "spokes-secret"'

    def psk_text(text: str) -> str:
        text = text.replace("ecdsa-signatures-256", "pre-shared-keys")
        return text.replace("set security ike policy ike-1 certificate local-certificate "
                            "gw-cert", psk)
    pki = make_pki()
    hub = net.add("hub", psk_text(hub_config()), HUB, {}, pki.ca)
    spokes = [net.add(f"s{i}", psk_text(spoke_config(i)), SPOKES[i - 1][0], {}, pki.ca)
              for i in (1, 2)]
    for s in spokes:
        s.ctl.start(net.now)
    net.pump()
    assert len(hub.ctl.tunnels) == 2
    net.send(spokes[0], flow(1, 2, 4))
    net.pump()
    assert len(spokes[1].delivered) == 4
    assert spokes[0].ctl.shortcuts() == []
    assert spokes[0].ctl.counters.suggestions_ignored == 1
    assert "certificate" in spokes[0].ctl.counters.ignored_reasons[-1]


def test_partner_connection_limit() -> None:
    net, hub, (s1, s2, s3), _ = _network(connection_limit=1)
    net.send(s1, flow(1, 2, 2))
    net.pump()
    net.send(s1, flow(1, 3, 2))
    net.pump()
    assert len(s1.ctl.shortcuts()) == 1
    assert s1.ctl.counters.connection_limit_drops == 1


@pytest.mark.parametrize("flip", [0, 3, 9, 20])
def test_malformed_suggestion_is_counted(flip: int) -> None:
    net, hub, (s1, s2, s3), _ = _network()
    from inline_ipsec.hub.advpn import SHORTCUT_SUGGESTION
    t = hub.ctl.tunnels[f"hub@{SPOKES[0][0]}"]
    t.session.send_notify(SHORTCUT_SUGGESTION, bytes([9]) * flip, net.now)
    net.pump()
    assert s1.ctl.counters.suggestions_received == 1
    assert s1.ctl.counters.suggestions_ignored == 1 and s1.ctl.shortcuts() == []


def test_spoke_tunnels_rekey_and_keep_carrying_traffic() -> None:
    """Child SAs rekey at their soft lifetime (RFC 7296 §2.8, make-before-break) and the IKE
    SAs at theirs (§2.18): the spoke tunnels, their NHTB entries and routes stay."""
    net, hub, (s1, s2, _s3), _ = _network(advpn=False)
    t1 = hub.gw.tunnel(f"hub@{SPOKES[0][0]}")
    spi_before = t1.pairs[0].inbound.spi
    ike_before = hub.ctl.tunnels[f"hub@{SPOKES[0][0]}"].session.ike.spi_i
    net.advance(3700.0, step=20.0)                        # past the 3600 s hard lifetime
    t1 = hub.gw.tunnel(f"hub@{SPOKES[0][0]}")
    assert t1.pairs[0].inbound.spi != spi_before and t1.rekeys >= 1
    assert sorted(hub.ctl.tunnels) == [f"hub@{SPOKES[i][0]}" for i in range(3)]
    assert hub.ctl.nhtb.tunnel_for(SPOKES[1][1]) == f"hub@{SPOKES[1][0]}"
    net.send(s1, flow(1, 2, 6))
    assert len(s2.delivered) == 6
    net.advance(28800.0, step=600.0)                      # the IKE SAs' lifetime too
    session = hub.ctl.tunnels[f"hub@{SPOKES[0][0]}"].session
    assert session.ike.spi_i != ike_before and session.state == "established"
    net.send(s1, flow(1, 2, 6))
    assert len(s2.delivered) == 12


def test_vanished_spoke_is_found_by_dead_peer_detection() -> None:
    """A spoke that disappears without a Delete: the hub's dead peer detection (RFC 7296
    §2.4, `dead-peer-detection interval 10 threshold 3`) clears its tunnel, NHTB entry and
    routes, while the other spokes stay."""
    pki = make_pki()
    net = Net()
    text = hub_config() + ("set security ike gateway spokes dead-peer-detection "
                           "probe-idle-tunnel interval 10 threshold 3\n")
    hub = net.add("hub", text, HUB, pki.issue("hub", "hub.example"), pki.ca)
    spokes = [net.add(f"s{i}", spoke_config(i), SPOKES[i - 1][0],
                      pki.issue(f"s{i}", f"spoke{i}.spokes.example"), pki.ca) for i in (1, 2)]
    for s in spokes:
        s.ctl.start(net.now)
    net.pump()
    assert len(hub.ctl.tunnels) == 2
    net.remove(spokes[1])                                  # gone without a word
    net.advance(60.0, step=2.0)
    assert list(hub.ctl.tunnels) == [f"hub@{SPOKES[0][0]}"]
    assert hub.ctl.nhtb.tunnel_for(SPOKES[1][1]) is None
    assert SPOKES[1][2] not in dict(hub.ctl.routes())


def _static_p2mp_hub() -> str:
    from hub_helpers import IKE
    lines = [IKE.strip(),
             f"set interfaces ge-0/0/0 unit 0 family inet address {HUB}/24",
             "set interfaces st0 unit 0 multipoint",
             "set interfaces st0 unit 0 family inet address 10.100.0.1/24"]
    for i in (1, 2):
        outer, st0, lan = SPOKES[i - 1]
        lines += [f"set security ike gateway g{i} ike-policy ike-1",
                  f"set security ike gateway g{i} address {outer}",
                  f"set security ike gateway g{i} local-identity hostname hub.example",
                  f"set security ike gateway g{i} remote-identity hostname "
                  f"spoke{i}.spokes.example",
                  f"set security ike gateway g{i} external-interface ge-0/0/0.0",
                  f"set security ike gateway g{i} version v2-only",
                  f"set security ipsec vpn v{i} bind-interface st0.0",
                  f"set security ipsec vpn v{i} ike gateway g{i}",
                  f"set security ipsec vpn v{i} ike ipsec-policy ipsec-1",
                  f"set security ipsec vpn v{i} establish-tunnels immediately",
                  f"set interfaces st0 unit 0 family inet next-hop-tunnel {st0} ipsec-vpn v{i}",
                  f"set routing-options static route {lan} next-hop {st0}"]
    return "\n".join(lines) + "\n"


def test_two_static_vpns_on_one_multipoint_st0_routed_by_static_nhtb() -> None:
    """Point-to-multipoint without AutoVPN: two configured VPNs on st0.0 multipoint, both
    ends bringing their tunnels up at once (the duplicate IKE SAs are resolved alike on both
    ends), routes through the static next-hop-tunnel entries."""
    pki = make_pki()
    net = Net()
    hub = net.add("hub", _static_p2mp_hub(), HUB, pki.issue("hub", "hub.example"), pki.ca)
    spokes = [net.add(f"s{i}", spoke_config(i, advpn=False), SPOKES[i - 1][0],
                      pki.issue(f"s{i}", f"spoke{i}.spokes.example"), pki.ca) for i in (1, 2)]
    hub.ctl.start(net.now)
    for s in spokes:
        s.ctl.start(net.now)
    net.advance(10.0)
    assert sorted(hub.ctl.tunnels) == ["v1", "v2"]
    assert all(len(s.ctl.tunnels) == 1 for s in spokes)
    assert len([x for x in hub.ctl.manager.sessions if x.state == "established"]) == 2
    entries = {e.address: (e.vpn, e.tunnel, e.source) for e in hub.ctl.nhtb.entries()}
    assert entries == {SPOKES[0][1]: ("v1", "v1", "static"),
                       SPOKES[1][1]: ("v2", "v2", "static")}
    assert dict(hub.ctl.routes()) == {SPOKES[0][2]: ["v1"], SPOKES[1][2]: ["v2"]}
    assert "p2mp" == hub.gw.config.deployment_of(hub.gw.config.ipsec_vpns["v1"])
    assert hub.gw.tunnel("v1").placement.reasons == (
        "point-to-multipoint deployment not supported by PFE",)
    net.send(spokes[0], flow(1, 2, 4))
    assert len(spokes[1].delivered) == 4
    text = hub.ctl.show("security ipsec next-hop-tunnels")
    assert "Static" in text and "v2" in text


def test_inactive_tunnels_of_a_hub() -> None:
    """An AutoVPN VPN with spokes up is not inactive; without any it waits for spokes; a
    spoke whose hub is gone waits for negotiation."""
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_config(), HUB, pki.issue("hub", "hub.example"), pki.ca)
    assert "Waiting for spokes" in hub.ctl.show("security ipsec inactive-tunnels")
    s1 = net.add("s1", spoke_config(1), SPOKES[0][0],
                 pki.issue("s1", "spoke1.spokes.example"), pki.ca)
    s1.ctl.start(net.now)
    net.pump()
    assert "Total inactive tunnels: 0" in hub.ctl.show("security ipsec inactive-tunnels")
    net.remove(hub)
    s1.ctl.tunnels["to-hub"].session.close(net.now)   # unanswered: retransmitted, then gone
    net.advance(200.0, step=5.0)
    text = s1.ctl.show("security ipsec inactive-tunnels")
    assert "Total inactive tunnels: 1" in text and "Waiting for negotiation" in text


def test_ipv6_lans_through_the_hub_then_over_a_shortcut() -> None:
    """Dual stack: the spokes' st0 inet6 addresses reach the hub in CFG_SET
    (INTERNAL_IP6_ADDRESS, RFC 7296 §3.15.1) and become NHTB entries; IPv6 routes through
    them carry spoke-to-spoke traffic, and the shortcut's suggested prefixes are IPv6 too."""
    from inline_ipsec.gateway.traffic import udp_packet
    v6 = {i: (f"2001:db8:100::{10 + i}", f"2001:db8:{i}::/48") for i in (1, 2)}
    hub_text = hub_config(routes=False) + \
        "set interfaces st0 unit 0 family inet6 address 2001:db8:100::1/64\n" + "".join(
            f"set routing-options rib inet6.0 static route {lan} next-hop {st0}\n"
            for st0, lan in v6.values())

    def spoke_text(i: int) -> str:
        return spoke_config(i) + (
            f"set interfaces st0 unit 0 family inet6 address {v6[i][0]}/64\n"
            f"set interfaces ge-0/0/1 unit 0 family inet6 address 2001:db8:{i}::1/48\n"
            "set routing-options rib inet6.0 static route 2001:db8::/32 next-hop st0.0\n")
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_text, HUB, pki.issue("hub", "hub.example"), pki.ca,
                  suggest_holddown=1000.0)
    s1, s2 = (net.add(f"s{i}", spoke_text(i), SPOKES[i - 1][0],
                      pki.issue(f"s{i}", f"spoke{i}.spokes.example"), pki.ca) for i in (1, 2))
    for s in (s1, s2):
        s.ctl.start(net.now)
    net.pump()
    entries = {e.address: e.tunnel for e in hub.ctl.nhtb.entries()}
    assert entries[v6[2][0]] == f"hub@{SPOKES[1][0]}" and entries[SPOKES[1][1]] == \
        f"hub@{SPOKES[1][0]}"
    pkts = [udp_packet("2001:db8:1::5", "2001:db8:2::5", bytes(64), 7000 + k, 53)
            for k in range(4)]
    net.send(s1, pkts)
    assert len(s2.delivered) == 4 and s2.delivered[0][7] == pkts[0][7] - 1   # one router hop
    net.pump()
    sc = f"to-hub~{SPOKES[1][0]}"
    assert s1.ctl.shortcuts() == [sc]
    assert ("2001:db8:2::/48", [sc]) in s1.ctl.routes()
    hub_in = hub.gw.tunnel_flow(f"hub@{SPOKES[0][0]}").in_delivered
    net.send(s1, pkts)
    assert len(s2.delivered) == 8 and s2.delivered[-1] == pkts[-1]           # direct now
    assert hub.gw.tunnel_flow(f"hub@{SPOKES[0][0]}").in_delivered == hub_in


def test_a_spoke_claiming_a_taken_tunnel_address_gets_no_nhtb_entry() -> None:
    """CFG_SET with an address another spoke holds (or outside the subnet) is not
    acknowledged (RFC 7296 §3.15): the spoke is up, but no route reaches it by that address."""
    pki = make_pki()
    net = Net()
    hub = net.add("hub", hub_config(), HUB, pki.issue("hub", "hub.example"), pki.ca)
    s1 = net.add("s1", spoke_config(1), SPOKES[0][0],
                 pki.issue("s1", "spoke1.spokes.example"), pki.ca)
    s1.ctl.start(net.now)
    net.pump()
    thief = spoke_config(2).replace(f"address {SPOKES[1][1]}/24", f"address {SPOKES[0][1]}/24")
    s2 = net.add("s2", thief, SPOKES[1][0], pki.issue("s2", "spoke2.spokes.example"), pki.ca)
    s2.ctl.start(net.now)
    net.pump()
    assert len(hub.ctl.tunnels) == 2
    assert hub.ctl.nhtb.tunnel_for(SPOKES[0][1]) == f"hub@{SPOKES[0][0]}"
    assert len(hub.ctl.nhtb) == 1
    assert s2.ctl.tunnels["to-hub"].session.peer_cp is None      # no CFG_ACK came back
    assert s1.ctl.tunnels["to-hub"].session.peer_cp.cfg_type == 4
