"""Every counter of a gateway (the catalogue's "gateway", "path" and "tunnel" scopes) moves when
its event happens, and the show commands move with it: for each event, the exact change of
every counter and of every line of `show security flow statistics` and `show security ipsec
statistics`, written down here from the Junos semantics (docs/junos-formats.md §4.5-4.6: the
flow module counts every packet of the IPsec flows in and out, and the offloaded ones again as
services-offload packets), not computed from the catalogue."""
from __future__ import annotations

import re
from typing import Callable

import pytest
from gw_helpers import FIXED, small_config

from inline_ipsec.config import License
from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.pfe import Pfe
from inline_ipsec.sa import SaSpec
from inline_ipsec.stats import catalogue as cat

A, B = "192.0.2.1", "198.51.100.1"
TO_PFE = ("10.1.0.5", "10.2.0.5")         # routed into v-pfe (offloaded)
TO_CPU = ("10.1.1.5", "10.2.1.5")         # routed into v-cpu (CPU engine)


def pair() -> tuple[Gateway, Gateway, WireLink]:
    a = Gateway.from_text(small_config("a"), name="gw-a", clock=lambda: FIXED)
    b = Gateway.from_text(small_config("b"), name="gw-b", clock=lambda: FIXED)
    return a, b, WireLink(a, b)


def selector_pair() -> tuple[Gateway, Gateway]:
    """One offloaded tunnel "t" with traffic selectors 10.1/16 <-> 10.2/16."""
    a, b = Gateway(name="a", license=License()), Gateway(name="b", license=License())
    ab = SaSpec(spi=0x1001, cipher="aes-gcm-256", key=bytes([1]) * 36, tunnel_src=A,
                tunnel_dst=B)
    ba = SaSpec(spi=0x2001, cipher="aes-gcm-256", key=bytes([2]) * 36, tunnel_src=B,
                tunnel_dst=A)
    a.install_child_sa("t", ab, ba, local_ts=["10.1.0.0/16"], remote_ts=["10.2.0.0/16"])
    b.install_child_sa("t", ba, ab, local_ts=["10.2.0.0/16"], remote_ts=["10.1.0.0/16"])
    return a, b


def snapshot(gw: Gateway) -> dict[tuple, float]:
    c = gw.counters
    out: dict[tuple, float] = {("gateway", n): getattr(c, n) for n in cat.counter_names("gateway")}
    for kind, path in c.paths.items():
        out.update({("path", kind, n): getattr(path, n) for n in cat.counter_names("path")})
    for flow in gw.flows():
        out.update({("tunnel", flow.name, n): getattr(flow, n)
                    for n in cat.counter_names("tunnel")})
    return out


def shown(text: str) -> dict[str, int]:
    """Every `Label: N` of a show command's text."""
    return {label.strip(): int(value)
            for label, value in re.findall(r"([A-Za-z][A-Za-z /-]*):\s+(\d+)", text)}


def delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


class Event:
    """One event at one gateway: what it must change, counter by counter and line by line.
    A path that did a burst call also spent time in it: `seconds` must grow, by any amount."""

    def __init__(self, gw: Gateway, run: Callable[[], object], counters: dict,
                 flow: dict, ipsec: dict | None = None, tunnel_ipsec: tuple = ()) -> None:
        self.gw, self.run, self.counters, self.flow = gw, run, counters, flow
        self.ipsec = ipsec or {}
        self.tunnel_ipsec = tunnel_ipsec      # (tunnel, {line: change}) of `vpn-name`


def send(src_dst, payload: int = 100, df: bool = False) -> bytes:
    """A UDP packet of 28 + `payload` bytes."""
    return udp_packet(*src_dst, bytes(payload), df=df)


def ev_send_offloaded():
    a, _, _ = pair()
    return Event(a, lambda: a.outbound([send(TO_PFE)]), {
        ("gateway", "inner_received"): 1, ("gateway", "transmitted_outer"): 1,
        ("path", "pfe", "encrypted"): 1, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "v-pfe", "out_packets"): 1, ("tunnel", "v-pfe", "out_encrypted"): 1,
    }, {"Current sessions": 1, "Packets received": 1, "Packets transmitted": 1,
        "Services-offload packets processed": 1},
        {"Encrypted packets": 1, "Encrypted bytes": 128})


def ev_receive_offloaded():
    a, b, _ = pair()
    wire = a.outbound([send(TO_PFE)]).wire
    return Event(b, lambda: b.inbound(wire), {
        ("gateway", "outer_received"): 1, ("gateway", "delivered_inner"): 1,
        ("path", "pfe", "decrypted"): 1, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "v-pfe", "in_packets"): 1, ("tunnel", "v-pfe", "in_delivered"): 1,
    }, {"Current sessions": 1, "Packets received": 1, "Packets transmitted": 1,
        "Services-offload packets processed": 1},
        {"Decrypted packets": 1, "Decrypted bytes": 128})


def ev_send_and_receive_on_the_cpu():
    a, b, _ = pair()
    wire = a.outbound([send(TO_CPU)]).wire
    return Event(b, lambda: b.inbound(wire), {
        ("gateway", "outer_received"): 1, ("gateway", "delivered_inner"): 1,
        ("path", "cpu", "decrypted"): 1, ("path", "cpu", "burst_calls"): 1,
        ("tunnel", "v-cpu", "in_packets"): 1, ("tunnel", "v-cpu", "in_delivered"): 1,
    }, {"Current sessions": 1, "Packets received": 1, "Packets transmitted": 1},
        {"Decrypted packets": 1, "Decrypted bytes": 128})


def ev_no_route():
    a, _, _ = pair()
    return Event(a, lambda: a.outbound([send(("10.1.0.5", "10.9.0.5"))]), {
        ("gateway", "inner_received"): 1, ("gateway", "no_route"): 1,
    }, {"Packets received": 1, "Packets dropped": 1})


def ev_malformed_inner():
    a, _, _ = pair()
    return Event(a, lambda: a.outbound([b"\x00\x01"]), {
        ("gateway", "inner_received"): 1, ("gateway", "malformed_inner"): 1,
    }, {"Packets received": 1, "Packets dropped": 1})


def ev_malformed_outer():
    _, b, _ = pair()
    return Event(b, lambda: b.inbound([b"\x45" + bytes(10)]), {
        ("gateway", "outer_received"): 1, ("gateway", "malformed_outer"): 1,
    }, {"Packets received": 1, "Packets dropped": 1}, {"Bad headers": 1})


def ev_invalid_spi():
    _, b, _ = pair()
    stray = Pfe()
    h = stray.add_outbound(SaSpec(spi=0x7777, cipher="aes-gcm-128", key=bytes(20),
                                  tunnel_src=A, tunnel_dst=B))
    wire = stray.encrypt(h, send(TO_PFE))
    return Event(b, lambda: b.inbound([wire]), {
        ("gateway", "outer_received"): 1, ("gateway", "invalid_spi"): 1,
    }, {"Packets received": 1, "Packets dropped": 1}, {"Invalid SPI": 1})


def ev_ts_check_fail():
    a, b = selector_pair()
    rec = a.tunnel("t")
    wire = rec.engine.encrypt(rec.pairs[0].outbound_handle, send(("10.9.0.1", "10.2.0.1")))
    return Event(b, lambda: b.inbound([wire]), {
        ("gateway", "outer_received"): 1, ("gateway", "ts_check_fail"): 1,
        ("path", "pfe", "decrypted"): 1, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "t", "in_packets"): 1, ("tunnel", "t", "in_ts_fail"): 1,
    }, {"Packets received": 1, "Packets dropped": 1, "Services-offload packets processed": 1},
        {"TS check fail": 1, "Decrypted packets": 1, "Decrypted bytes": 128},
        ("t", {"TS check fail": 1, "Decrypted packets": 1, "Decrypted bytes": 128}))


def ev_exceeds_tunnel_mtu():
    a, _, _ = pair()
    return Event(a, lambda: a.outbound([send(TO_PFE, 1472, df=True)]), {
        ("gateway", "inner_received"): 1, ("gateway", "exceeds_tunnel_mtu"): 1,
        ("gateway", "icmp_sent"): 1,
        ("tunnel", "v-pfe", "out_packets"): 1, ("tunnel", "v-pfe", "out_mtu_drops"): 1,
    }, {"Current sessions": 1, "Packets received": 1, "Packets transmitted": 1,
        "Packets dropped": 1}, {"Exceeds tunnel MTU": 1},
        ("v-pfe", {"Exceeds tunnel MTU": 1}))


def ev_pre_fragments():
    a, _, _ = pair()
    return Event(a, lambda: a.outbound([send(TO_PFE, 2000)]), {
        ("gateway", "inner_received"): 1, ("gateway", "pre_fragments"): 2,
        ("gateway", "transmitted_outer"): 2,
        ("path", "pfe", "encrypted"): 2, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "v-pfe", "out_packets"): 1, ("tunnel", "v-pfe", "out_fragments"): 1,
        ("tunnel", "v-pfe", "out_encrypted"): 2,
    }, {"Current sessions": 1, "Packets received": 1, "Packets transmitted": 2,
        "Pre fragments generated": 2, "Services-offload packets processed": 2},
        {"Encrypted packets": 2, "Encrypted bytes": 2028 + 20})


def ev_fragments_received():
    a, b, _ = pair()
    wire = a.outbound([send(TO_PFE, 2000)]).wire
    return Event(b, lambda: b.inbound(wire), {
        ("gateway", "outer_received"): 2, ("gateway", "delivered_inner"): 2,
        ("gateway", "fragments_received"): 2,
        ("path", "pfe", "decrypted"): 2, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "v-pfe", "in_packets"): 2, ("tunnel", "v-pfe", "in_delivered"): 2,
    }, {"Current sessions": 1, "Packets received": 2, "Packets transmitted": 2,
        "Fragment packets": 2, "Services-offload packets processed": 2},
        {"Decrypted packets": 2, "Decrypted bytes": 2028 + 20})


def ev_ike_packet():
    _, b, _ = pair()
    return Event(b, lambda: b.inbound([udp_packet(A, B, b"IKE_SA_INIT", 500, 500)]), {
        ("gateway", "outer_received"): 1, ("gateway", "ike_packets"): 1,
    }, {"Packets received": 1})


def ev_nat_keepalive():
    _, b, _ = pair()
    return Event(b, lambda: b.inbound([udp_packet(A, B, b"\xff", 4500, 4500)]), {
        ("gateway", "outer_received"): 1, ("gateway", "nat_keepalives"): 1,
    }, {"Packets received": 1})


def ev_encrypt_drop():
    a, _, _ = pair()
    rec = a.tunnel("v-pfe")
    rec.engine.set_sequence(rec.pairs[0].outbound_handle, 0xFFFFFFFF)
    return Event(a, lambda: a.outbound([send(TO_PFE)]), {
        ("gateway", "inner_received"): 1,
        ("path", "pfe", "encrypt_drops"): 1, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "v-pfe", "out_packets"): 1, ("tunnel", "v-pfe", "out_engine_drops"): 1,
    }, {"Current sessions": 1, "Packets received": 1, "Packets dropped": 1},
        {"Discarded": 1}, ("v-pfe", {"Discarded": 1}))


def ev_decrypt_drop():
    a, b, _ = pair()
    wire = bytearray(a.outbound([send(TO_CPU)]).wire[0])
    wire[-1] ^= 1
    return Event(b, lambda: b.inbound([bytes(wire)]), {
        ("gateway", "outer_received"): 1,
        ("path", "cpu", "decrypt_drops"): 1, ("path", "cpu", "burst_calls"): 1,
        ("tunnel", "v-cpu", "in_packets"): 1, ("tunnel", "v-cpu", "in_engine_drops"): 1,
    }, {"Packets received": 1, "Packets dropped": 1},
        {"ESP authentication failures": 1}, ("v-cpu", {"ESP authentication failures": 1}))


def zoned(side: str, ike: bool = True) -> Gateway:
    """`small_config` with zones: trust (the hosts' /16), untrust (the outer interface;
    host-inbound ike unless `ike` is False), vpn (st0.0, st0.1); trust <-> vpn permitted for
    the local and remote x.x.0.0/24 only, so x.x.1.0/24 (v-cpu's) traffic is denied."""
    mine, theirs = ("10.1", "10.2") if side == "a" else ("10.2", "10.1")
    zones = "\n".join([
        f"set interfaces ge-0/0/1 unit 0 family inet address {mine}.255.1/16",
        "set security zones security-zone trust interfaces ge-0/0/1.0",
        "set security zones security-zone untrust interfaces ge-0/0/0.0 host-inbound-traffic "
        f"system-services {'ike' if ike else 'ping'}",
        "set security zones security-zone vpn interfaces st0.0",
        "set security zones security-zone vpn interfaces st0.1",
        f"set security address-book global address here {mine}.0.0/24",
        f"set security address-book global address there {theirs}.0.0/24",
        "set security policies from-zone trust to-zone vpn policy out match source-address here",
        "set security policies from-zone trust to-zone vpn policy out match destination-address "
        "any",
        "set security policies from-zone trust to-zone vpn policy out match application any",
        "set security policies from-zone trust to-zone vpn policy out then permit",
        "set security policies from-zone vpn to-zone trust policy in match source-address there",
        "set security policies from-zone vpn to-zone trust policy in match destination-address "
        "any",
        "set security policies from-zone vpn to-zone trust policy in match application any",
        "set security policies from-zone vpn to-zone trust policy in then permit",
    ]) + "\n"
    return Gateway.from_text(small_config(side, zones), name=f"gw-{side}",
                             clock=lambda: FIXED)


def ev_policy_denied_out():
    a = zoned("a")
    return Event(a, lambda: a.outbound([send(TO_CPU)]), {
        ("gateway", "inner_received"): 1, ("gateway", "policy_denied_out"): 1,
    }, {"Packets received": 1, "Packets dropped": 1})


def ev_policy_denied_in():
    a, _, _ = pair()
    b = zoned("b")
    wire = a.outbound([send(TO_CPU)]).wire
    return Event(b, lambda: b.inbound(wire), {
        ("gateway", "outer_received"): 1, ("gateway", "policy_denied_in"): 1,
        ("path", "cpu", "decrypted"): 1, ("path", "cpu", "burst_calls"): 1,
        ("tunnel", "v-cpu", "in_packets"): 1, ("tunnel", "v-cpu", "in_policy_drops"): 1,
    }, {"Packets received": 1, "Packets dropped": 1},
        {"Decrypted packets": 1, "Decrypted bytes": 128})


def ev_host_inbound_denied():
    b = zoned("b", ike=False)
    return Event(b, lambda: b.inbound([udp_packet(A, B, b"IKE_SA_INIT", 500, 500)]), {
        ("gateway", "outer_received"): 1, ("gateway", "host_inbound_denied"): 1,
    }, {"Packets received": 1, "Packets dropped": 1})


def ev_hairpin_ttl_expired():
    from scapy.layers.inet import IP, UDP
    from test_hairpin import hub_and_spokes
    s1, hub, _ = hub_and_spokes()
    wire = s1.outbound([bytes(IP(src="10.1.0.5", dst="10.2.0.5", ttl=1) / UDP())]).wire
    return Event(hub, lambda: hub.inbound(wire), {
        ("gateway", "outer_received"): 1, ("gateway", "hairpin_ttl_expired"): 1,
        ("path", "pfe", "decrypted"): 1, ("path", "pfe", "burst_calls"): 1,
        ("tunnel", "t1", "in_packets"): 1, ("tunnel", "t1", "in_delivered"): 1,
    }, {"Current sessions": 1, "Packets received": 1, "Packets dropped": 1,
        "Services-offload packets processed": 1},
        {"Decrypted packets": 1, "Decrypted bytes": 28})


EVENTS = {f.__name__[3:]: f for f in (
    ev_send_offloaded, ev_receive_offloaded, ev_send_and_receive_on_the_cpu, ev_no_route,
    ev_malformed_inner, ev_malformed_outer, ev_invalid_spi, ev_ts_check_fail,
    ev_exceeds_tunnel_mtu, ev_pre_fragments, ev_fragments_received, ev_ike_packet,
    ev_nat_keepalive, ev_encrypt_drop, ev_decrypt_drop, ev_policy_denied_out,
    ev_policy_denied_in, ev_host_inbound_denied, ev_hairpin_ttl_expired)}


def test_every_gateway_counter_has_an_event():
    moved = {key[0::len(key) - 1] for make in EVENTS.values() for key in make().counters}
    moved |= {("gateway", "current_sessions"), ("path", "seconds")}   # gauge, measurement
    expected = {(c.scope, c.name) for c in cat.COUNTERS if c.scope in ("gateway", "path",
                                                                         "tunnel")}
    assert expected <= moved


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_counters_and_show_lines_move_with_the_event(name):
    event = EVENTS[name]()
    gw = event.gw
    before = snapshot(gw)
    flow_before = shown(gw.show("security flow statistics"))
    ipsec_before = shown(gw.show("security ipsec statistics"))
    tunnel_before = {} if not event.tunnel_ipsec else shown(
        gw.show(f"security ipsec statistics vpn-name {event.tunnel_ipsec[0]}"))
    event.run()
    moved = delta(before, snapshot(gw))
    timed = {k for k in moved if k[-1] == "seconds"}
    assert timed == {("path", k[1], "seconds") for k in event.counters if k[-1] == "burst_calls"}
    assert all(moved[k] > 0 for k in timed)
    assert {k: v for k, v in moved.items() if k not in timed} == event.counters
    assert delta(flow_before, shown(gw.show("security flow statistics"))) == event.flow
    assert delta(ipsec_before, shown(gw.show("security ipsec statistics"))) == event.ipsec
    if event.tunnel_ipsec:
        vpn, lines = event.tunnel_ipsec
        after = shown(gw.show(f"security ipsec statistics vpn-name {vpn}"))
        assert delta(tunnel_before, after) == lines
