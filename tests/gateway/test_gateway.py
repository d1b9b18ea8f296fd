"""The gateway on its own and with one peer: routing, NAT-T demultiplexing, selector checks,
tunnel MTU, the IKE-facing install/rekey/remove API."""
from __future__ import annotations

import dataclasses
import re

import pytest
from scapy.layers.inet import ICMP, IP, IPerror
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6

from inline_ipsec.config import License
from inline_ipsec.errors import ConfigError
from inline_ipsec.gateway import Gateway, ShowError, WireLink, max_inner_length
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.pfe import Pfe
from inline_ipsec.sa import SaSpec

A, B = "192.0.2.1", "198.51.100.1"


def stat(text: str, label: str) -> int:
    """The number after `label:` in show output."""
    m = re.search(rf"{re.escape(label)}:\s+(\d+)", text)
    assert m, label
    return int(m.group(1))


def test_manual_sas_installed_from_config(small_pair) -> None:
    a, b, _ = small_pair()
    assert a.tunnel_names() == ["v-pfe", "v-cpu"]
    pfe, cpu = a.tunnel("v-pfe"), a.tunnel("v-cpu")
    assert pfe.offloaded and isinstance(pfe.engine, Pfe)
    assert not cpu.offloaded and cpu.engine is a.cpu
    assert pfe.pairs[0].outbound.spi == pfe.pairs[0].inbound.spi == 1000   # Junos manual SA
    assert pfe.pairs[0].outbound.tunnel_src == A and pfe.pairs[0].outbound.tunnel_dst == B
    assert a.sa_type("v-pfe") == "manual"


def test_routes_pick_the_tunnel_and_count_no_route(small_pair) -> None:
    a, b, link = small_pair()
    to_pfe = udp_packet("10.1.0.5", "10.2.0.5", b"pfe")
    to_cpu = udp_packet("10.1.1.5", "10.2.1.5", b"cpu")
    nowhere = udp_packet("10.1.0.5", "10.9.0.5", b"?")
    out = link.send(a, [to_pfe, to_cpu, nowhere])
    assert out.delivered == [to_pfe, to_cpu]
    assert a.tunnel_flow("v-pfe").out_encrypted == 1 == b.tunnel_flow("v-pfe").in_delivered
    assert a.tunnel_flow("v-cpu").out_encrypted == 1 == b.tunnel_flow("v-cpu").in_delivered
    assert a.counters.no_route == 1 and link.last_sent.dropped == 1
    assert a.counters.paths["pfe"].burst_calls == 1 and a.counters.paths["cpu"].burst_calls == 1


def test_one_engine_call_per_burst_per_engine(small_pair) -> None:
    a, b, link = small_pair()
    mixed = [udp_packet("10.1.0.5" if i % 2 else "10.1.1.5",
                        "10.2.0.5" if i % 2 else "10.2.1.5", bytes([i])) for i in range(40)]
    out = link.send(a, mixed)
    assert out.delivered == mixed                                   # order kept
    for gw in (a, b):
        assert gw.counters.paths["pfe"].burst_calls == 1
        assert gw.counters.paths["cpu"].burst_calls == 1


def test_natt_demux_keepalive_and_ike_marker() -> None:
    seen = []
    gw = Gateway(name="gw", ike_handler=seen.append, license=License())
    keepalive = udp_packet(B, A, b"\xff", 4500, 4500)
    ike_natt = udp_packet(B, A, bytes(4) + b"IKEv2 message", 4500, 4500)
    ike_500 = udp_packet(B, A, b"IKEv2 on 500", 500, 500)
    short = udp_packet(B, A, b"\x01\x02", 4500, 4500)
    out = gw.inbound([keepalive, ike_natt, ike_500, short])
    assert gw.counters.nat_keepalives == 1
    assert [d.data for d in out.ike] == [b"IKEv2 message", b"IKEv2 on 500"]
    assert [d.natt for d in out.ike] == [True, False]
    assert seen == out.ike and list(gw.ike_queue) == out.ike
    assert out.ike[0].src == B and out.ike[0].dport == 4500
    assert gw.counters.malformed_outer == 1 and out.dropped == 1
    assert out.delivered == []


def test_unknown_spi_counted_as_invalid_spi(small_pair) -> None:
    a, b, _ = small_pair()
    stray = Pfe()
    h = stray.add_outbound(SaSpec(spi=0x7777, cipher="aes-gcm-128", key=bytes(20),
                                  tunnel_src=A, tunnel_dst=B))
    out = b.inbound([stray.encrypt(h, udp_packet("10.1.0.5", "10.2.0.5", b"x"))])
    assert out.dropped == 1 and b.counters.invalid_spi == 1
    assert "Invalid SPI: 1, TS check fail: 0" in b.show("security ipsec statistics")


def _child(spi_out: int, spi_in: int, src: str = A, dst: str = B, **kw) -> tuple[SaSpec, SaSpec]:
    out = SaSpec(spi=spi_out, cipher="aes-gcm-256", key=bytes([spi_out & 0xFF]) * 36,
                 tunnel_src=src, tunnel_dst=dst, **kw)
    inb = SaSpec(spi=spi_in, cipher="aes-gcm-256", key=bytes([spi_in & 0xFF]) * 36,
                 tunnel_src=dst, tunnel_dst=src, **kw)
    return out, inb


def _python_pair() -> tuple[Gateway, Gateway, WireLink]:
    """Gateways built from Python objects only: negotiated pairs with selectors."""
    a = Gateway(name="a", license=License())
    b = Gateway(name="b", license=License())
    ab, ba = _child(0x1001, 0x2001)
    a.install_child_sa("t", ab, ba, local_ts=["10.1.0.0/16"], remote_ts=["10.2.0.0/16"])
    b.install_child_sa("t", ba, ab, local_ts=["10.2.0.0/16"], remote_ts=["10.1.0.0/16"])
    return a, b, WireLink(a, b)


def test_install_child_sa_from_python_objects_routes_by_selector() -> None:
    a, b, link = _python_pair()
    assert a.tunnel("t").offloaded
    pkt = udp_packet("10.1.3.3", "10.2.4.4", b"negotiated")
    assert link.send(a, [pkt]).delivered == [pkt]
    assert link.send(b, [udp_packet("10.2.4.4", "10.1.3.3", b"back")]).delivered
    with pytest.raises(ConfigError):                 # the inbound SPI names the SA
        a.install_child_sa("u", *_child(0x3001, 0x2001))


def test_ts_check_fail(small_pair) -> None:
    a, b, link = _python_pair()
    rec = a.tunnel("t")
    outside = udp_packet("10.9.0.1", "10.2.0.1", b"spoofed source")   # not in 10.1.0.0/16
    wire = rec.engine.encrypt(rec.pairs[0].outbound_handle, outside)
    out = b.inbound([wire])
    assert out.delivered == [] and out.dropped == 1
    assert b.tunnel_flow("t").in_ts_fail == 1 and b.counters.ts_check_fail == 1
    assert "TS check fail: 1" in b.show("security ipsec statistics")
    assert b.tunnel("t").engine.counters(b.tunnel("t").pairs[0].inbound_handle).packets == 1


def test_df_set_dropped_with_icmp_fragmentation_needed(small_pair) -> None:
    a, b, link = small_pair()
    spec = a.tunnel("v-pfe").pairs[0].outbound
    limit = max_inner_length(spec, a.mtu)
    fits = udp_packet("10.1.0.5", "10.2.0.5", bytes(limit - 28), df=True)
    big = udp_packet("10.1.0.5", "10.2.0.5", bytes(limit - 27), df=True)
    out = a.outbound([fits, big])
    assert len(out.wire) == 1 and len(out.wire[0]) <= 1500
    assert len(out.local) == 1 and out.dropped == 1
    icmp = IP(out.local[0])
    assert icmp.dst == "10.1.0.5" and icmp.src == A
    assert (icmp[ICMP].type, icmp[ICMP].code, icmp[ICMP].nexthopmtu) == (3, 4, limit)
    quoted = icmp[IPerror]
    assert bytes(quoted)[:28] == big[:28] and quoted.flags.DF
    assert a.tunnel_flow("v-pfe").out_mtu_drops == 1
    assert "Exceeds tunnel MTU: 1" in a.show("security ipsec statistics")


def test_ipv6_too_big_gets_packet_too_big() -> None:
    a = Gateway(name="a", license=License(), mtu=1400)
    ab, ba = _child(0x1001, 0x2001, "2001:db8::1", "2001:db8::2")
    a.install_child_sa("t6", ab, ba, local_ts=["2001:db8:a::/48"], remote_ts=["2001:db8:b::/48"])
    limit = max_inner_length(ab, 1400)
    pkt = udp_packet("2001:db8:a::5", "2001:db8:b::5", bytes(limit - 47))
    out = a.outbound([pkt])
    assert out.wire == [] and len(out.local) == 1
    p = IPv6(out.local[0])
    assert p.dst == "2001:db8:a::5"
    assert (p[ICMPv6PacketTooBig].type, p[ICMPv6PacketTooBig].code) == (2, 0)
    assert p[ICMPv6PacketTooBig].mtu == limit
    assert bytes(p[ICMPv6PacketTooBig].payload)[:40] == pkt[:40]
    assert a.counters.exceeds_tunnel_mtu == 1


def test_pre_fragmentation_counted(small_pair) -> None:
    a, b, link = small_pair()
    big = udp_packet("10.1.1.5", "10.2.1.5", bytes(4000), ident=7)     # the CPU tunnel
    out = link.send(a, [big])
    assert len(out.delivered) == 3 and all(len(w) <= 1500 for w in link.last_sent.wire)
    assert a.counters.pre_fragments == 3 and a.tunnel_flow("v-cpu").out_fragments == 2
    assert "Pre fragments generated: 3" in a.show("security flow statistics")
    assert "Fragment packets: 3" in b.show("security flow statistics")


def test_rekey_drain_and_remove_keep_counters() -> None:
    a, b, link = _python_pair()
    pkt = udp_packet("10.1.0.1", "10.2.0.1", b"one")
    in_flight = a.outbound([pkt]).wire
    b.rekey("t", *_child(0x2002, 0x1002, B, A))
    a.rekey("t", *_child(0x1002, 0x2002))
    assert b.inbound(in_flight).delivered == [pkt]            # the old inbound SA drains
    assert link.send(a, [pkt]).delivered == [pkt]             # and the new one works
    assert b.tunnel("t").pairs[0].inbound.spi == 0x1002
    b.finish_drain("t")
    assert b.inbound(in_flight).dropped == 1 and b.counters.invalid_spi == 1
    assert stat(b.show("security ipsec statistics"), "Decrypted packets") == 2
    b.remove("t")
    assert b.tunnel_names() == []
    assert stat(b.show("security ipsec statistics"), "Decrypted packets") == 2
    assert b.inbound(a.outbound([pkt]).wire).dropped == 1


def test_show_rejects_unknown_commands(small_pair) -> None:
    a, _, _ = small_pair()
    with pytest.raises(ShowError):
        a.show("security ipsec nonsense")
    with pytest.raises(ShowError):
        a.show("security ipsec security-associations vpn-name missing")
    assert a.show("show security ipsec security-associations index 500001").count("<500001") == 1


def test_hw_offload_disable_puts_everything_on_the_cpu(small_pair) -> None:
    a, b, link = small_pair(extra_a="set security ipsec hw-offload-disable\n")
    assert not a.tunnel("v-pfe").offloaded and b.tunnel("v-pfe").offloaded
    assert a.tunnel("v-pfe").placement.reasons == ("hw-offload-disable configured",)
    pkt = udp_packet("10.1.0.5", "10.2.0.5", b"mixed")
    assert link.send(a, [pkt]).delivered == [pkt]           # one end CPU, the other PFE
    assert a.counters.paths["cpu"].encrypted == 1 and b.counters.paths["pfe"].decrypted == 1


def test_bad_mtu_refused() -> None:
    with pytest.raises(ValueError):
        Gateway(mtu=40)


def test_df_bit_change_reaches_the_wire(small_pair) -> None:
    a, b, link = small_pair()
    pkt = udp_packet("10.1.1.5", "10.2.1.5", b"df")
    assert not link.send(a, [pkt]).delivered[0][6] & 0x40        # inner DF clear
    assert a.distributor.set_df_bit("v-cpu", "set") is True         # CPU: at once
    wire = a.outbound([pkt]).wire[0]
    assert wire[6] & 0x40 and b.inbound([wire]).delivered == [pkt]
    assert dataclasses.replace(a.tunnel("v-cpu").pairs[0].outbound).df_bit == "set"


def test_expire_drained_after_the_drain_time() -> None:
    import datetime as dt
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]
    a = Gateway(name="a", license=License(), clock=lambda: now[0])
    a.install_child_sa("t", *_child(0x1001, 0x2001))
    a.rekey("t", *_child(0x1002, 0x2002))
    assert a.expire_drained() == []                       # still draining
    now[0] += dt.timedelta(seconds=11)
    assert a.expire_drained() == [("t", 0x2001)]
    # the distributor's index, and the pipeline's SPI map filled from it
    assert [s for s in (0x2001, 0x2002) if a.distributor.lookup_spi(s)] == [0x2002]
    assert [s for s in (0x2001, 0x2002) if a._pipeline.spi_get(s)] == [0x2002]
