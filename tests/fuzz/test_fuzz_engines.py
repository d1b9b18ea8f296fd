"""The fuzz corpus (corpus.py) through the burst calls of every engine: the PFE on each crypto
backend and the CPU engine. It also runs under AddressSanitizer in CI (.ci/run), where every
packet is decrypted once more alone in a buffer that ends where the packet ends, so a read or
write past a packet is a report, not a silent wrong byte.

What must hold, per packet: a status from `Status` and never an exception; OK only with a sane
inner packet (its own header's length, IHL >= 5) named by the right SA handle; every drop
counted once (per SA or per engine); the same status alone as in a burst; and the same status
and bytes from every engine."""
from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import ipv4, ipv6, receive_corpus, send_corpus, sealed, shapes, trailer
from inline_ipsec import Burst, CpuEngine, Pfe, Status
from inline_ipsec.pfe import PFE_BACKENDS

ENGINES = {**{f"pfe-{b}": functools.partial(Pfe, backend=b) for b in PFE_BACKENDS},
           "cpu": CpuEngine}
VALID = {int(s) for s in Status}
DROP_COUNTERS = ("auth_failed", "replay_duplicate", "replay_below_window", "malformed",
                 "bad_trailer", "seq_overflow", "dummy", "no_room", "expired", "ecn_drop")
ENGINE_DROPS = ("unknown_spi", "malformed", "not_esp", "keepalive", "no_sa")


@pytest.fixture(scope="module")
def corpus():
    return receive_corpus(functools.partial(Pfe, backend="openssl"))


def sane_ip(pkt: bytes) -> bool:
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        ihl = (pkt[0] & 0x0F) * 4
        return ihl >= 20 and ihl <= len(pkt) == int.from_bytes(pkt[2:4], "big")
    return len(pkt) >= 40 and pkt[0] >> 4 == 6 and 40 + int.from_bytes(pkt[4:6], "big") == len(pkt)


def flush_with_end(packet: bytes, headroom: int = 0, tailroom: int = 0, sa: int = -1) -> Burst:
    """One packet in a buffer with exactly `headroom` bytes before it and `tailroom` after."""
    size = headroom + len(packet) + tailroom
    burst = Burst(1, slot_size=max(size, 1), headroom=0)
    burst.data[0, headroom:headroom + len(packet)] = list(packet)
    burst.offset[0], burst.length[0], burst.sa[0], burst.count = headroom, len(packet), sa, 1
    return burst


def drops(eng, handles) -> int:
    per_sa = sum(getattr(eng.counters(h), f) for h in handles for f in DROP_COUNTERS)
    e = eng.engine_counters()
    return per_sa + sum(getattr(e, f) for f in ENGINE_DROPS)


def receive(name: str, corpus) -> tuple[list[int], list[bytes | None]]:
    eng = ENGINES[name]()
    handles = {s.spi: eng.add_inbound(s) for s in shapes()}
    statuses: list[int] = []
    outputs: list[bytes | None] = []
    for start in range(0, len(corpus), 32):
        chunk = corpus[start:start + 32]
        burst = Burst.from_packets([c.packet for c in chunk])
        good = eng.decrypt_burst(burst)
        got = burst.status[:len(chunk)].tolist()
        assert set(got) <= VALID and good == got.count(Status.OK)
        for i, c in enumerate(chunk):
            if got[i] == Status.OK:
                inner = burst.packet(i)
                assert sane_ip(inner), c.name
                assert int(burst.sa[i]) == handles[c.spec.spi], c.name
                outputs.append(inner)
            else:
                outputs.append(None)
        statuses += got
    assert drops(eng, handles.values()) == len(statuses) - statuses.count(Status.OK)
    # Alone, flush with the end of its buffer, on fresh SAs that see the packets in the same
    # order (ESN inference follows the window): the same verdict.
    alone = ENGINES[name]()
    for s in shapes():
        alone.add_inbound(s)
    for c, status in zip(corpus, statuses):
        burst = flush_with_end(c.packet)
        alone.decrypt_burst(burst)
        assert int(burst.status[0]) == status, c.name
    return statuses, outputs


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_receive_corpus(name, corpus):
    statuses, _ = receive(name, corpus)
    # the corpus reaches the deep checks, not only the outer ones
    reached = {Status(s).name for s in statuses}
    assert {"OK", "MALFORMED", "BAD_TRAILER", "AUTH_FAILED", "UNKNOWN_SPI", "DUMMY",
            "ECN_DROP"} <= reached


def divergent(packet: bytes) -> bool:
    """Where the CPU engine deliberately differs (tests/engine/test_differential.py): an outer
    IPv6 next header naming an extension header or AH, which only the CPU engine walks."""
    return len(packet) >= 40 and packet[0] >> 4 == 6 and packet[6] in (0, 43, 51, 60)


def test_engines_agree_on_the_receive_corpus(corpus):
    results = {name: receive(name, corpus) for name in sorted(ENGINES)}
    reference = results["pfe-openssl"]
    for name, (statuses, outputs) in results.items():
        for k, c in enumerate(corpus):
            if divergent(c.packet):
                continue
            assert (statuses[k], outputs[k]) == (reference[0][k], reference[1][k]), \
                f"{name} vs pfe-openssl: {c.name}"


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_send_corpus(name):
    packets = send_corpus()
    eng = ENGINES[name]()
    spec = shapes()[1]
    h = eng.add_outbound(spec)
    opener = ENGINES["cpu" if name != "cpu" else "pfe-openssl"]()
    opener.add_inbound(spec)
    statuses = []
    for start in range(0, len(packets), 32):
        chunk = packets[start:start + 32]
        burst = Burst.from_packets(chunk, h)
        eng.encrypt_burst(burst)
        got = burst.status[:len(chunk)].tolist()
        assert set(got) <= {Status.OK, Status.MALFORMED}
        for i, pkt in enumerate(chunk):
            assert (got[i] == Status.OK) == sane_ip(pkt), pkt.hex()
            if got[i] == Status.OK:
                assert opener.decrypt(burst.packet(i)) == pkt
        statuses += got
    assert eng.counters(h).malformed == len(statuses) - statuses.count(Status.OK)
    # alone, with just the room ESP needs around it (outer IPv4 + UDP + ESP header before,
    # at most 3 bytes of padding, pad length, next header and the ICV after)
    for pkt, status in zip(packets, statuses):
        burst = flush_with_end(pkt, headroom=28 + 16, tailroom=3 + 2 + 16, sa=h)
        eng.encrypt_burst(burst)
        assert int(burst.status[0]) == status


def test_engines_send_the_same_bytes():
    packets = send_corpus()
    spec = shapes()[3]
    out = {}
    for name, factory in ENGINES.items():
        eng = factory()
        burst = Burst.from_packets(packets, eng.add_outbound(spec))
        eng.encrypt_burst(burst)
        out[name] = (burst.status[:len(packets)].tolist(), burst.packets())
    assert all(v == out["cpu"] for v in out.values())


def expected_status(plaintext_inner: bytes, nh: int, inner_tos: int, outer_tos: int) -> int:
    """The receive rules for an authenticated packet with a valid trailer (docs/wire-format.md,
    RFC 4303 §2.6, RFC 791 §3.1, RFC 8200 §3, RFC 6040 §4.2), written from the text."""
    n = len(plaintext_inner)
    if nh == 59:
        return Status.DUMMY
    if nh == 4:
        if n < 20 or plaintext_inner[0] >> 4 != 4:
            return Status.BAD_TRAILER
        ihl = (plaintext_inner[0] & 0x0F) * 4
        total = int.from_bytes(plaintext_inner[2:4], "big")
        if ihl < 20 or total < ihl or total > n:
            return Status.MALFORMED
    elif nh == 41:
        if n < 40 or plaintext_inner[0] >> 4 != 6:
            return Status.BAD_TRAILER
        if 40 + int.from_bytes(plaintext_inner[4:6], "big") > n:
            return Status.MALFORMED
    else:
        return Status.BAD_TRAILER
    if inner_tos & 3 == 0 and outer_tos & 3 == 3:
        return Status.ECN_DROP
    return Status.OK


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([4, 6]), ihl=st.integers(0, 15), length=st.integers(0, 0xFFFF),
       body=st.integers(0, 70), nh=st.sampled_from([4, 41, 59, 6]), tos=st.integers(0, 255),
       outer_tos=st.integers(0, 255))
def test_inner_header_rules_match_the_model(version, ihl, length, body, nh, tos, outer_tos):
    spec = shapes()[0]
    if version == 4:
        inner = ipv4(bytes(body), tos=tos, ihl=ihl, total=length)
    else:
        inner = ipv6(bytes(body), tc=tos, plen=length)
    wire = sealed(spec, 1, trailer(inner, nh), outer_tos)
    want = expected_status(inner, nh, tos, outer_tos)
    for factory in ENGINES.values():
        eng = factory()
        h = eng.add_inbound(spec)
        burst = flush_with_end(wire)
        eng.decrypt_burst(burst)
        assert int(burst.status[0]) == want
        if want == Status.OK:
            keep = (ihl * 4 if version == 4 else 40)
            got = burst.packet(0)
            assert len(got) == (length if version == 4 else 40 + length)
            assert got[12 if version == 4 else 8:keep] == inner[12 if version == 4 else 8:keep]
        assert eng.counters(h).dropped == (want != Status.OK)
