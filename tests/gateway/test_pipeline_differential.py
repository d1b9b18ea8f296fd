"""The C forwarding pipeline against the gateway's Python path, on the demo configuration.

Two pairs of gateways from the same configuration and keys: one forwards through the pipeline,
the other with `python_path=True` (every packet punted to the Python path the gateway always
had). The same traffic goes through both, every tunnel both ways, IPv4 and IPv6, offloaded and
CPU tunnels, NAT-T, packets over the tunnel MTU with DF set and clear, packets with no route,
tampered and garbage packets. What each side delivers, answers (ICMP) and drops, every gateway
and tunnel counter and the show output must be identical, and so must the offloaded tunnels'
outer packets (scapy reads them) up to their sequence numbers: the pipeline encrypts a punted
packet (here: pre-fragments) after the rest of its burst, so it takes a later number."""
from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import AH, ESP

from inline_ipsec.dataplane.counters import GatewayCounters, TunnelFlow
from inline_ipsec.dataplane.gateway import Gateway
from inline_ipsec.io.demo_config import NAT_T_VPNS, demo_config
from inline_ipsec.io.traffic import flows, packets, udp_packet

SHOW = ("security ipsec statistics", "security flow statistics",
        "security ipsec security-associations")


def build(python_path: bool) -> tuple[Gateway, Gateway]:
    a = Gateway.from_text(demo_config("a"), name="gw-a", python_path=python_path)
    b = Gateway.from_text(demo_config("b"), name="gw-b", python_path=python_path)
    a.establish_prekeyed(udp_encap=NAT_T_VPNS)
    b.establish_prekeyed(udp_encap=NAT_T_VPNS)
    return a, b


def traffic(a: Gateway, b: Gateway) -> list[tuple[str, list[bytes]]]:
    """(sender, inner packets) rounds: every flow, sizes up to past the MTU, DF both ways."""
    rng = random.Random(7)
    rounds = []
    for f in flows(a, b):
        batch = []
        for k, size in enumerate((64, 300, 1400, 1490, 1600)):
            batch += packets(f, 1, size, k)
        batch.append(udp_packet(f.src, f.dst, bytes(1500), df=True))
        batch.append(udp_packet(f.src, "203.0.113.9" if not f.ipv6 else "2001:db8:dead::9",
                                b"no route"))
        rng.shuffle(batch)
        rounds.append((f.sender, batch))
    return rounds


def flow_state(gw: Gateway) -> dict:
    c = gw.counters
    out = {name: getattr(c, name) for name in GatewayCounters.COUNTERS}   # type: ignore
    for kind, path in c.paths.items():
        out.update({f"{kind}.{n}": getattr(path, n) for n in ("encrypted", "decrypted",
                                                               "encrypt_drops",
                                                               "decrypt_drops")})
    for f in gw.flows():
        out.update({f"{f.name}.{n}": getattr(f, n) for n in TunnelFlow.COUNTERS})  # type: ignore
        out[f"{f.name}.reasons"] = dict(f.in_drop_reasons)
    out["sessions"] = gw.current_sessions()
    return out


def run(python_path: bool):
    a, b = build(python_path)
    gws = {"a": (a, b), "b": (b, a)}
    seen = []
    rng = random.Random(11)
    for sender, batch in traffic(a, b):
        src, dst = gws[sender]
        out = src.outbound(batch)
        wire = list(out.wire)
        # tampered copies and garbage after the real packets
        for w in wire[:3]:
            bad = bytearray(w)
            bad[rng.randrange(len(bad))] ^= 0x40
            wire.append(bytes(bad))
        wire.append(bytes(rng.randrange(256) for _ in range(50)))
        back = dst.inbound(wire)
        seen.append((out.local, out.dropped, sorted(back.delivered), back.dropped,
                     [d.data for d in back.ike]))
        seen.append(sorted((len(w), _spi(w)) for w in out.wire if _offloaded(src, w)))
    return seen, [flow_state(a), flow_state(b)], [[g.show(c) for c in SHOW] for g in (a, b)]


def _spi(wire: bytes) -> int:
    pkt = IP(wire) if wire[0] >> 4 == 4 else IPv6(wire)
    return (pkt[ESP] if ESP in pkt else ESP(bytes(pkt[UDP].payload))).spi


def _offloaded(gw: Gateway, wire: bytes) -> bool:
    """An outer packet of an offloaded (deterministic) tunnel."""
    pkt = IP(wire) if wire[0] >> 4 == 4 else IPv6(wire)
    if AH in pkt:
        return False                                # AH: CPU path only
    esp = pkt[ESP] if ESP in pkt else ESP(bytes(pkt[UDP].payload)) if UDP in pkt else None
    assert esp is not None, "scapy reads every outer packet as ESP or AH"
    hit = gw.distributor.lookup_spi(esp.spi)
    peer = [r for r in gw.distributor.tunnels() if any(p.outbound.spi == esp.spi
                                                       for p in r.pairs)]
    return hit is None and bool(peer) and peer[0].offloaded


@pytest.fixture(scope="module")
def both():
    return run(False), run(True)


def test_same_deliveries_answers_and_drops(both) -> None:
    (c_seen, _, _), (py_seen, _, _) = both
    assert len(c_seen) == len(py_seen)
    for k, (c, p) in enumerate(zip(c_seen, py_seen)):
        assert c == p, k


def test_same_counters(both) -> None:
    (_, c_state, _), (_, py_state, _) = both
    for c, p in zip(c_state, py_state):
        diff = {k: (c.get(k), p.get(k)) for k in set(c) | set(p) if c.get(k) != p.get(k)}
        assert not diff
    moved = c_state[0]
    assert moved["transmitted_outer"] and moved["pre_fragments"] and moved["icmp_sent"] \
        and moved["no_route"] and moved["pfe.encrypted"] and moved["cpu.encrypted"]
    assert c_state[1]["ts_check_fail"] + c_state[1]["malformed_outer"] \
        + c_state[1]["invalid_spi"] > 0 or c_state[0]["invalid_spi"] > 0


def test_same_show_output(both) -> None:
    (_, _, c_show), (_, _, py_show) = both
    assert c_show == py_show
