"""The fuzz corpus (corpus.py) and random bursts through a whole gateway's forwarding pipeline.
Under AddressSanitizer in CI (.ci/run) every packet also goes through alone, in a buffer that
ends where the packet ends.

What must hold: a `Verdict` per packet and never an exception or a hang; the gateway's counters
add up to what the verdicts say; and wherever the pipeline handed a packet to the ESP kernel,
the kernel's status and inner bytes are exactly those of the bare PFE given the same packets
in the same order."""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import receive_corpus, send_corpus, shapes
from inline_ipsec import Burst, Pfe, Status
from inline_ipsec.config import License
from inline_ipsec.dataplane.gateway import Gateway
from inline_ipsec.pfe import Verdict

VERDICTS = {int(v) for v in Verdict}
KERNEL = {Verdict.DROP_ENGINE, Verdict.DELIVER, Verdict.DROP_TS, Verdict.WIRE}


def receiver() -> Gateway:
    """A gateway with one tunnel per SA shape; even shapes with IPv4 selectors (so inner IPv6
    packets fail the selector check), odd ones with none."""
    gw = Gateway(name="fuzz", license=License(), pfes=1, hairpin=False)
    for k, spec in enumerate(shapes()):
        out = dataclasses.replace(spec, spi=spec.spi + 0x100, tunnel_src=spec.tunnel_dst,
                                  tunnel_dst=spec.tunnel_src)
        ts = {"local_ts": ["10.2.0.0/16"], "remote_ts": ["10.1.0.0/16"]} if k % 2 == 0 else {}
        gw.install_child_sa(f"t{k}", out, spec, **ts)
    return gw


def flush_with_end(packet: bytes) -> Burst:
    burst = Burst(1, slot_size=max(len(packet), 1), headroom=0)
    burst.data[0, :len(packet)] = list(packet)
    burst.offset[0], burst.length[0], burst.count = 0, len(packet), 1
    return burst


def test_receive_corpus_through_the_pipeline():
    corpus = receive_corpus(lambda: Pfe(backend="openssl"))
    gw = receiver()
    bare = Pfe("bare")
    for spec in shapes():
        bare.add_inbound(spec)
    verdicts: list[int] = []
    for start in range(0, len(corpus), 32):
        chunk = [c.packet for c in corpus[start:start + 32]]
        burst = Burst.from_packets(chunk)
        gw.inbound_burst(burst)
        got = burst.verdict[:len(chunk)].tolist()
        assert set(got) <= VERDICTS and Verdict.SKIPPED not in got
        # the packets the pipeline gave the kernel, to the bare PFE in the same order
        to_kernel = [i for i, v in enumerate(got) if v in KERNEL]
        if to_kernel:
            ref = Burst.from_packets([chunk[i] for i in to_kernel])
            bare.decrypt_burst(ref)
            for k, i in enumerate(to_kernel):
                name = corpus[start + i].name
                assert int(burst.status[i]) == int(ref.status[k]), name
                if got[i] == Verdict.DROP_ENGINE:
                    assert int(burst.status[i]) != Status.OK, name
                else:
                    assert int(ref.status[k]) == Status.OK, name
                    assert burst.packet(i) == ref.packet(k), name
        verdicts += got
    c = gw.counters
    assert c.outer_received == len(corpus)
    assert c.delivered_inner == verdicts.count(Verdict.DELIVER)
    assert c.ts_check_fail == verdicts.count(Verdict.DROP_TS)
    assert c.invalid_spi == verdicts.count(Verdict.DROP_UNKNOWN_SPI)
    assert c.nat_keepalives == verdicts.count(Verdict.DROP_KEEPALIVE)
    assert sum(f.in_engine_drops for f in gw.flows()) == verdicts.count(Verdict.DROP_ENGINE)
    # the corpus reaches every stage
    assert {Verdict.DELIVER, Verdict.DROP_TS, Verdict.DROP_ENGINE, Verdict.DROP_MALFORMED,
            Verdict.DROP_UNKNOWN_SPI} <= set(verdicts)
    # alone, flush with the end of its buffer, on a fresh gateway: a verdict, no overread
    alone = receiver()
    for case in corpus:
        burst = flush_with_end(case.packet)
        alone.inbound_burst(burst)
        assert int(burst.verdict[0]) in VERDICTS


def test_send_corpus_through_the_pipeline():
    packets = send_corpus()
    gw = receiver()
    gw.routes.add("10.0.0.0/8", ["t1"])
    gw.routes.add("::/0", ["t1"])
    out = 0
    for start in range(0, len(packets), 32):
        chunk = packets[start:start + 32]
        burst = Burst.from_packets(chunk)
        gw.outbound_burst(burst)
        got = burst.verdict[:len(chunk)].tolist()
        assert set(got) <= VERDICTS
        for i, v in enumerate(got):
            if v == Verdict.DROP_ENGINE:
                assert int(burst.status[i]) == Status.MALFORMED
        out += got.count(Verdict.WIRE)
    assert gw.counters.inner_received == len(packets)
    assert gw.counters.transmitted_outer == out > 0
    for pkt in packets:
        burst = flush_with_end(pkt)
        gw.outbound_burst(burst)
        assert int(burst.verdict[0]) in VERDICTS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 5), st.binary(max_size=8), st.integers(0, 200),
                          st.booleans()), min_size=1, max_size=40))
def test_random_bursts_through_two_gateways(items):
    """Valid packets of a tunnel pair with random bytes written over them (or random bytes
    alone), a random burst layout, both directions."""
    a = Gateway(name="a", license=License(), pfes=1)
    b = Gateway(name="b", license=License(), pfes=1)
    spec = shapes()[1]
    back = dataclasses.replace(spec, spi=spec.spi + 0x100, tunnel_src=spec.tunnel_dst,
                               tunnel_dst=spec.tunnel_src)
    a.install_child_sa("t", spec, back, local_ts=["10.1.0.0/16"], remote_ts=["10.2.0.0/16"])
    b.install_child_sa("t", back, spec, local_ts=["10.2.0.0/16"], remote_ts=["10.1.0.0/16"])
    inner = [bytes([0x45, 0, 0, 28 + n, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1])
             + bytes(8 + n) for n in range(6)]
    inner = [p[:2] + len(p).to_bytes(2, "big") + p[4:] for p in inner]
    sent = Burst.from_packets(inner)
    a.outbound_burst(sent)
    wire = [sent.packet(i) for i in range(len(inner))]
    packets = []
    for k, junk, where, keep in items:
        pkt = bytearray(wire[k])
        if keep:
            pkt[where % max(len(pkt), 1):where % max(len(pkt), 1) + len(junk)] = junk
        else:
            pkt = bytearray(junk)
        packets.append(bytes(pkt))
    burst = Burst.from_packets(packets)
    b.inbound_burst(burst)
    got = burst.verdict[:len(packets)].tolist()
    assert set(got) <= VERDICTS
    assert b.counters.outer_received == len(packets)
    assert b.counters.delivered_inner == got.count(Verdict.DELIVER)
    for i, v in enumerate(got):
        if v == Verdict.DELIVER:
            assert burst.packet(i) in inner
    # and the same bytes as inner packets the other way
    burst = Burst.from_packets(packets)
    b.outbound_burst(burst)
    assert set(burst.verdict[:len(packets)].tolist()) <= VERDICTS
