"""Two gateways over real UDP sockets on loopback: each outer packet (IP header and all) is the
payload of one datagram between two loopback ports (raw IP needs privileges we do not have)."""
from __future__ import annotations

import socket
import threading
import time

import pytest
from pair_helpers import make_pair

from inline_ipsec.gateway import UdpLink
from inline_ipsec.gateway.traffic import flows, packets, udp_packet


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1",
                                  pytest.param("::1", marks=pytest.mark.skipif(
                                      not _has_ipv6_loopback(), reason="no ::1"))])
def test_traffic_over_udp_loopback(host: str) -> None:
    a, b = make_pair()
    with UdpLink(a, host) as la, UdpLink(b, host) as lb:
        la.peer, lb.peer = lb.address, la.address
        plan = flows(a, b)
        expected = {"a": [], "b": []}
        for f in plan:
            pkts = packets(f, 8, 256)
            (la if f.sender == "a" else lb).send(pkts)
            expected[f.sender] += pkts
        got_b = lb.receive(max_packets=len(expected["a"]), timeout=5.0)
        got_a = la.receive(max_packets=len(expected["b"]), timeout=5.0)
    assert sorted(got_b.delivered) == sorted(expected["a"])
    assert sorted(got_a.delivered) == sorted(expected["b"])
    assert la.sent == lb.received and lb.sent == la.received


def test_receive_is_bounded_and_demuxes_natt() -> None:
    a, b = make_pair()
    with UdpLink(a) as la, UdpLink(b) as lb:
        la.peer = lb.address
        start = time.monotonic()
        out = lb.receive(max_packets=10, timeout=0.3)           # nothing sent: times out
        assert out.delivered == [] and time.monotonic() - start < 2.0
        natt = a.tunnel("vpn-natt").pairs[0].outbound
        la.send_wire([udp_packet(natt.tunnel_src, natt.tunnel_dst, b"\xff", 4500, 4500),
                      udp_packet(natt.tunnel_src, natt.tunnel_dst, bytes(4) + b"IKE", 4500,
                                 4500)])
        out = lb.receive(max_packets=2, timeout=5.0)
    assert b.counters.nat_keepalives == 1 and [d.data for d in out.ike] == [b"IKE"]


def test_two_threads_exchange_bursts() -> None:
    a, b = make_pair()
    plan = [f for f in flows(a, b) if f.sender == "a"]
    sent = [p for f in plan for p in packets(f, 16, 200)]
    with UdpLink(a) as la, UdpLink(b) as lb:
        la.peer = lb.address
        result = {}
        rx = threading.Thread(target=lambda: result.setdefault(
            "out", lb.receive(max_packets=len(sent), timeout=10.0)))
        rx.start()
        for i in range(0, len(sent), 32):
            la.send(sent[i:i + 32])
        rx.join(15)
        assert not rx.is_alive()
    assert sorted(result["out"].delivered) == sorted(sent)


def test_only_loopback() -> None:
    a, _ = make_pair()
    with pytest.raises(ValueError):
        UdpLink(a, "192.0.2.1")
