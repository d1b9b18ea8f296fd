"""The forwarding pipeline in C against a small Python model of the same decisions.

Random tunnels (child SA pairs with random selectors and MTU limits, some on the CPU path, some
routed to but without SAs), random routes (prefixes of every length, IPv4 and IPv6, several
tunnels behind one prefix) and random inner packets go through `Pipeline.outbound`; what the
sender sent goes through a receiving pipeline with its own selectors (some SAs draining after a
rekey). The model decides from the same tables with `ipaddress` and plain loops: the verdict,
tunnel and SA of every packet must be identical, and so must the counters."""
from __future__ import annotations

import ipaddress
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inline_ipsec import Burst, Pfe, SaSpec
from inline_ipsec.pfe import ENGINE_CPU, Verdict, new_pipeline, pipeline_arrays

V4 = ["10.0.0.0", "10.0.1.0", "10.1.0.0", "10.1.1.0"]
V6 = ["2001:db8::", "2001:db8:0:1::", "2001:db8:1::", "2001:db8:1:1::"]


def _addr(version: int, base: int, host: int) -> ipaddress._BaseAddress:
    net = (V4 if version == 4 else V6)[base]
    return ipaddress.ip_address(net) + host


nets = st.builds(
    lambda version, base, host, plen: ipaddress.ip_network(
        f"{_addr(version, base, host)}/{plen if version == 4 else plen * 4}", strict=False),
    st.sampled_from([4, 6]), st.integers(0, 3), st.integers(0, 3), st.integers(0, 32))
selectors = st.tuples(st.lists(nets, max_size=2), st.lists(nets, max_size=2))
# the receiver's selectors: the sender's mirrored (what IKE negotiates), or anything
pairs = st.lists(st.tuples(st.integers(20, 300), selectors, st.one_of(st.none(), selectors),
                           st.booleans()).map(
    lambda p: (p[0], p[1], p[2] if p[2] is not None else (p[1][1], p[1][0]), p[3])),
    min_size=1, max_size=3)
tunnels = st.lists(st.tuples(st.sampled_from(["pfe", "pfe", "pfe", "cpu", "pending"]), pairs),
                   min_size=1, max_size=4)
routes = st.lists(st.tuples(nets, st.lists(st.integers(0, 3), min_size=1, max_size=3)),
                  max_size=6)
packets = st.lists(st.tuples(st.sampled_from([4, 6]), st.integers(0, 3), st.integers(0, 3),
                             st.integers(0, 3), st.integers(0, 3), st.integers(0, 170)),
                   min_size=1, max_size=24)


def ip_packet(src, dst, pad: int) -> bytes:
    """A well-formed IPv4 or IPv6 UDP packet with `pad` payload bytes."""
    payload = struct.pack("!HHHH", 1024, 5001, 8 + pad, 0) + bytes(pad)
    if src.version == 4:
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 17, 0,
                           src.packed, dst.packed) + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), 17, 64, src.packed,
                       dst.packed) + payload


def in_nets(addr, networks) -> bool:
    return not networks or any(addr.version == n.version and addr in n for n in networks)


def model_outbound(table, route_list, pkt: bytes):
    """(verdict, tunnel) as RFC 4301 §5.1 and the pipeline's docstring say."""
    v = pkt[0] >> 4
    src = ipaddress.ip_address(pkt[12:16] if v == 4 else pkt[8:24])
    dst = ipaddress.ip_address(pkt[16:20] if v == 4 else pkt[24:40])
    best = None
    for net, tids in route_list:
        if net.version == dst.version and dst in net and (best is None
                                                          or net.prefixlen > best[0].prefixlen):
            best = (net, tids)
    if best is None:
        return Verdict.DROP_NO_ROUTE, -1, None
    for tid in best[1]:
        kind, tpairs = table[tid]
        if kind == "pending":
            return Verdict.PUNT_ROUTE, -1, None
        for j, (limit, (local, remote), _, _) in enumerate(tpairs):
            if in_nets(src, local) and in_nets(dst, remote):
                if kind == "cpu":
                    return Verdict.PUNT_CPU, tid, None
                if len(pkt) > limit:
                    return Verdict.PUNT_TOO_BIG, tid, j
                return Verdict.WIRE, tid, j
    return Verdict.DROP_NO_ROUTE, -1, None


def model_inbound(table, tid: int, j: int, inner: bytes):
    """RFC 4301 §5.2 step 4 with the receiver's selectors (reversed roles)."""
    v = inner[0] >> 4
    src = ipaddress.ip_address(inner[12:16] if v == 4 else inner[8:24])
    dst = ipaddress.ip_address(inner[16:20] if v == 4 else inner[24:40])
    tpairs = table[tid][1]
    _, _, (local, remote), draining = tpairs[j]
    if draining:
        ok = any(in_nets(src, r) and in_nets(dst, lo) for _, _, (lo, r), _ in tpairs)
    else:
        ok = in_nets(src, remote) and in_nets(dst, local)
    return Verdict.DELIVER if ok else Verdict.DROP_TS


def c_nets(networks):
    return [(n.version, n.prefixlen, n.network_address.packed) for n in networks]


def spec(spi: int) -> SaSpec:
    return SaSpec(spi=spi, cipher="aes-gcm-128", key=bytes([spi & 0xFF]) * 20,
                  tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1")


seen: set[int] = set()


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(tunnels, routes, packets)
def test_pipeline_verdicts_match_the_model(table, route_list, pkts) -> None:
    sender, receiver = Pfe("s"), Pfe("r")
    tx = new_pipeline([sender], hairpin=False)
    rx = new_pipeline([receiver], hairpin=False)
    handles: dict[tuple[int, int], int] = {}
    for tid, (kind, tpairs) in enumerate(table):
        if kind == "pending":
            tx.set_pending(tid)
            continue
        out, sels, rx_sels = [], [], []
        for j, (limit, sel, rsel, draining) in enumerate(tpairs):
            spi = 0x1000 + 16 * tid + j
            h = sender.add_outbound(spec(spi))
            handles[(tid, j)] = h
            out.append((h, limit))
            sels.append((c_nets(sel[0]), c_nets(sel[1])))
            rx_sels.append((c_nets(rsel[0]), c_nets(rsel[1])))
            hin = receiver.add_inbound(spec(spi))
            rx.spi_set(spi, tid, ENGINE_CPU if kind == "cpu" else 0, -1 if draining else j, hin)
        tx.set_tunnel(tid, 0, kind == "cpu", out, sels)
        rx.set_tunnel(tid, 0, kind == "cpu", [(0, 0)] * len(tpairs), rx_sels)
    merged: dict = {}
    for net, tids in route_list:                       # one entry per prefix, as RouteTable
        tids = [t for t in tids if t < len(table)] or [0]
        merged.setdefault(net, [])
        merged[net] += [t for t in tids if t not in merged[net]]
    for net, tids in merged.items():
        tx.route_set(net.version, net.prefixlen, net.network_address.packed, tids)
    route_items = list(merged.items())

    inner = [ip_packet(_addr(v, sb, sh), _addr(v, db, dh), pad)
             for v, sb, sh, db, dh, pad in pkts]
    burst = Burst.from_packets(inner)
    tx.outbound(pipeline_arrays(burst), burst.count)
    expected = [model_outbound(table, route_items, p) for p in inner]
    got = [(Verdict(int(burst.verdict[i])), int(burst.tunnel[i])) for i in range(burst.count)]
    want = [(v, tid) for v, tid, _ in expected]
    seen.update(v for v, _ in got)
    # the tunnel of a PUNT_ROUTE / DROP_NO_ROUTE is -1 in both
    assert got == want
    for i, (v, tid, j) in enumerate(expected):
        if v in (Verdict.WIRE, Verdict.PUNT_TOO_BIG):
            assert int(burst.sa[i]) == handles[(tid, j)]
    sent = sum(v == Verdict.WIRE for v, _, _ in expected)
    gc = tx.gateway_counters()
    assert gc["inner_received"] == len(inner) and gc["transmitted_outer"] == sent
    assert gc["no_route"] == sum(v == Verdict.DROP_NO_ROUTE for v, _, _ in expected)
    assert tx.path_counters()["encrypted"] == sent

    # what was sent, through the receiver
    rx.inbound(pipeline_arrays(burst), burst.count, int(Verdict.WIRE))
    for i, (v, tid, j) in enumerate(expected):
        got_v = Verdict(int(burst.verdict[i]))
        if v != Verdict.WIRE:
            assert got_v == Verdict.SKIPPED
        elif table[tid][0] == "cpu":
            assert got_v == Verdict.PUNT_CPU
        else:
            assert got_v == model_inbound(table, tid, j, inner[i]), (tid, j)
            if got_v == Verdict.DELIVER:
                assert burst.packet(i) == inner[i]
    verdicts = {int(v) for v in burst.verdict[:burst.count]}
    seen.update(verdicts)
    rc = rx.gateway_counters()
    assert rc["outer_received"] == sent
    assert rc["delivered_inner"] == sum(int(burst.verdict[i]) == Verdict.DELIVER
                                        for i in range(burst.count))


def test_the_model_test_saw_every_decision() -> None:
    """The random tables above reached delivery, selector failures and every punt."""
    if not seen:
        test_pipeline_verdicts_match_the_model()
    assert {Verdict.WIRE, Verdict.DELIVER, Verdict.DROP_TS, Verdict.DROP_NO_ROUTE,
            Verdict.PUNT_CPU, Verdict.PUNT_TOO_BIG, Verdict.PUNT_ROUTE, Verdict.SKIPPED} <= seen, \
        sorted(Verdict(v).name for v in seen)


def test_run_pair_is_two_burst_calls_in_one() -> None:
    """`run_pair`: gateway a's outbound and gateway b's inbound in one C call deliver what the
    two burst calls deliver."""
    from inline_ipsec.dataplane.bench import GatewayPairWorkload
    from inline_ipsec.pfe import run_pair
    w = GatewayPairWorkload(bursts=1)
    burst = w.bursts[0]
    inner = burst.packets()
    assert run_pair(w.a._pipeline, w.b._pipeline, pipeline_arrays(burst), burst.count) == (0, 0)
    assert (burst.verdict[:burst.count] == Verdict.DELIVER).all()
    assert burst.packets() == inner
    assert w.b.tunnel_flow("t").in_delivered == burst.count
