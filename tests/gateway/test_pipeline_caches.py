"""The pipeline remembers its last SPI lookup, routing decision and inbound selector verdict
(a burst is mostly one flow on one SA). Every change to the SPI map, the tunnels or the FIB
must be seen by the very next burst, never a stale decision."""
from __future__ import annotations

import ipaddress

from inline_ipsec import Burst, Pfe
from inline_ipsec.pfe import Verdict, new_pipeline, pipeline_arrays

from test_pipeline_model import c_nets, ip_packet, spec

SRC, DST = ipaddress.ip_address("10.1.0.5"), ipaddress.ip_address("10.2.0.7")
NET_L, NET_R = ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("10.2.0.0/16")
OTHER = ipaddress.ip_network("10.9.0.0/16")
SPI = 0x2001


class Pair:
    """A sender and a receiver pipeline over one tunnel (tid 0) with one SA."""

    def __init__(self) -> None:
        self.sender, self.receiver = Pfe("s"), Pfe("r")
        self.tx = new_pipeline([self.sender], hairpin=False)
        self.rx = new_pipeline([self.receiver], hairpin=False)
        self.out = self.sender.add_outbound(spec(SPI))
        self.hin = self.receiver.add_inbound(spec(SPI))
        self.tx.set_tunnel(0, 0, False, [(self.out, 1400)],
                           [(c_nets([NET_L]), c_nets([NET_R]))])
        self.rx.set_tunnel(0, 0, False, [(0, 0)], [(c_nets([NET_R]), c_nets([NET_L]))])
        self.rx.set_tunnel(1, 0, False, [(0, 0)], [(c_nets([NET_R]), c_nets([NET_L]))])
        self.tx.route_set(4, 16, NET_R.network_address.packed, [0])
        self.rx.spi_set(SPI, 0, 0, 0, self.hin)

    def burst(self, n: int = 4) -> list[Verdict]:
        """`n` packets of one flow through both; the receiver's verdicts."""
        inner = [ip_packet(SRC, DST, 10 + i) for i in range(n)]
        b = Burst.from_packets(inner)
        self.tx.outbound(pipeline_arrays(b), b.count)
        assert all(int(v) == Verdict.WIRE for v in b.verdict[:n])
        self.rx.inbound(pipeline_arrays(b), b.count, int(Verdict.WIRE))
        self.last = b
        return [Verdict(int(v)) for v in b.verdict[:n]]


def test_a_removed_spi_is_unknown_at_the_next_burst() -> None:
    p = Pair()
    assert p.burst() == [Verdict.DELIVER] * 4
    assert p.rx.spi_del(SPI)
    assert p.burst() == [Verdict.DROP_UNKNOWN_SPI] * 4
    p.rx.spi_set(SPI, 0, 0, 0, p.hin)
    assert p.burst(2) == [Verdict.DELIVER] * 2


def test_an_spi_moved_to_another_tunnel_is_counted_there() -> None:
    p = Pair()
    p.burst()
    p.rx.spi_set(SPI, 1, 0, 0, p.hin)
    assert p.burst() == [Verdict.DELIVER] * 4
    assert list(p.last.tunnel[:4]) == [1] * 4
    assert p.rx.tunnel_counters(1)["in_delivered"] == 4


def test_changed_selectors_apply_at_the_next_burst() -> None:
    p = Pair()
    assert p.burst() == [Verdict.DELIVER] * 4
    p.rx.set_tunnel(0, 0, False, [(0, 0)], [(c_nets([OTHER]), c_nets([NET_L]))])
    assert p.burst() == [Verdict.DROP_TS] * 4
    p.rx.set_tunnel(0, 0, False, [(0, 0)], [(c_nets([NET_R]), c_nets([NET_L]))])
    assert p.burst() == [Verdict.DELIVER] * 4


def test_a_removed_route_applies_at_the_next_burst() -> None:
    p = Pair()
    p.burst()
    assert p.tx.route_del(4, 16, NET_R.network_address.packed)
    b = Burst.from_packets([ip_packet(SRC, DST, 10)])
    p.tx.outbound(pipeline_arrays(b), b.count)
    assert Verdict(int(b.verdict[0])) == Verdict.DROP_NO_ROUTE
