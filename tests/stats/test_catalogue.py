"""The counter catalogue (inline_ipsec.stats.catalogue) is the one source of every counter:
the PFE's C structs, the Python counter classes, the CPU engine's fields, the statistics
classes and the show renderers all follow it, and every per-SA and per-engine counter moves
when its event happens, on each engine that can see the event, and shows up in the lines of
`show security ipsec statistics` the catalogue says it feeds (the gateway's own counters:
tests/gateway/test_counter_events.py)."""
from __future__ import annotations

import functools
import re
from dataclasses import fields

import pytest
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw, raw

from _pfe_core import Status
from _pfe_core import pipeline as pfe_pipeline
from _pfe_core import table as pfe_table
from helpers import V4, esp_seal, inner_packet, outer_v4, spec, trailer
from inline_ipsec import (Burst, CpuEngine, EngineCounters, Lifetime, Pfe, SaCounters,
                          SaSpec)
from inline_ipsec.cpu.state import SaState
from inline_ipsec.gateway.counters import GatewayCounters, PathCounters, TunnelFlow
from inline_ipsec.pfe import PFE_BACKENDS
from inline_ipsec.stats import (FlowStatistics, IpsecStatistics, ipsec_statistics,
                                render_flow_statistics, render_ipsec_statistics)
from inline_ipsec.stats import catalogue as cat

ENGINES = {**{f"pfe-{b}": functools.partial(Pfe, backend=b) for b in PFE_BACKENDS},
           "cpu": CpuEngine}


# -- the catalogue itself ------------------------------------------------------------------

def test_catalogue_is_well_formed():
    seen = set()
    lines = {f"{cmd}.{line.key}" for cmd, show in cat.SHOW.items() for line in show.lines}
    for c in cat.COUNTERS:
        assert (c.scope, c.name) not in seen, c.name
        seen.add((c.scope, c.name))
        assert c.scope in cat.SCOPES and c.direction in cat.DIRECTIONS and c.unit in cat.UNITS
        assert c.description and c.name.isidentifier()
        assert all(f.line in lines for f in c.feeds), c.name
        if c.status is not None:
            assert c.drop and c.status in Status.__members__, c.name


def test_every_show_line_is_fed_or_says_why_not():
    fed = {f.line for c in cat.COUNTERS for f in c.feeds}
    for cmd, show in cat.SHOW.items():
        for line in show.lines:
            assert (f"{cmd}.{line.key}" in fed) != bool(line.unfed), line.key
        printed = [key for row in show.rows for key in row.keys]
        assert sorted(printed) == sorted(line.key for line in show.lines)


def test_every_counter_is_shown_or_says_where_it_can_be_read():
    """A drop nobody sees is a silent failure: every counter feeds a show line, or names in
    `unshown` where it can be read instead, and a drop feeds the command of its scope:
    `show security ipsec statistics` for SA, engine and tunnel counters, `show security flow
    statistics` for the gateway's and each engine kind's."""
    for c in cat.COUNTERS:
        assert bool(c.feeds) != bool(c.unshown), c.name
        if c.drop and c.feeds:
            command = "ipsec" if c.scope in ("sa", "engine", "tunnel") else "flow"
            assert any(f.line.startswith(command + ".") for f in c.feeds), c.name
    unshown_drops = {(c.scope, c.name) for c in cat.COUNTERS if c.drop and not c.feeds}
    assert unshown_drops == {("engine", "not_esp"), ("engine", "keepalive"),
                             ("tunnel", "out_engine_drops"), ("tunnel", "in_engine_drops")}


def test_every_drop_status_has_a_counter():
    counted = {c.status for c in cat.COUNTERS if c.scope in ("sa", "engine") and c.drop}
    assert counted == {s.name for s in Status if s != Status.OK}


# -- everything derived from it ------------------------------------------------------------

@pytest.mark.parametrize("scope,layout", [("sa", pfe_table.SA_COUNTER_LAYOUT),
                                          ("engine", pfe_table.ENGINE_COUNTER_LAYOUT),
                                          ("gateway", pfe_pipeline.GATEWAY_COUNTER_LAYOUT),
                                          ("tunnel", pfe_pipeline.TUNNEL_COUNTER_LAYOUT)])
def test_the_compiled_c_structs_match_the_catalogue(scope, layout):
    """Field order and offsets as the C compiler laid out the structs of the built kernels."""
    names = cat.counter_names(scope)
    assert cat.C_STRUCTS[scope]
    assert layout == (8 * len(names), tuple((n, 8 * i) for i, n in enumerate(names)))


def test_python_counter_classes_follow_the_catalogue():
    def names(cls):
        return tuple(f.name for f in fields(cls))
    assert names(SaCounters) == cat.counter_names("sa") == SaCounters.COUNTERS
    assert names(EngineCounters) == cat.counter_names("engine")
    assert names(GatewayCounters) == cat.counter_names("gateway") + ("paths",)
    assert "current_sessions" not in names(GatewayCounters)          # a gauge
    assert names(PathCounters) == cat.counter_names("path")
    assert names(TunnelFlow) == ("name", "offloaded") + cat.counter_names("tunnel") \
        + ("in_drop_reasons",)
    assert SaCounters.DROPS == cat.drop_names("sa")
    assert isinstance(PathCounters().seconds, float)
    s = spec()
    for factory in ENGINES.values():
        eng = factory()
        h = eng.add_outbound(s)
        assert tuple(vars(eng.counters(h))) == cat.counter_names("sa")
        assert tuple(vars(eng.engine_counters())) == cat.counter_names("engine")
    state = SaState(0, s, "outbound", 0.0, lambda event: None)
    assert all(getattr(state, n) == 0 for n in cat.counter_names("sa"))


@pytest.mark.parametrize("cmd,cls,render", [
    ("ipsec", IpsecStatistics, render_ipsec_statistics),
    ("flow", FlowStatistics, render_flow_statistics)])
def test_statistics_and_renderers_follow_the_catalogue(cmd, cls, render):
    show = cat.SHOW[cmd]
    assert tuple(f.name for f in fields(cls)) == tuple(line.key for line in show.lines)
    values = {line.key: 1000 + 17 * i for i, line in enumerate(show.lines)}
    text = render(cls(**values))
    for line in show.lines:
        assert re.search(rf"{re.escape(line.label)}:\s+{values[line.key]}\b", text), line.key
    assert len(text.splitlines()) == len(show.rows)
    if cmd == "ipsec":
        mx = render_ipsec_statistics(cls(**values), platform="mx")
        assert len(mx.splitlines()) == sum(not row.srx_only for row in show.rows)


# -- each per-SA and per-engine counter moves when its event happens -----------------------

def crafted(s: SaSpec, seq: int, plaintext: bytes, tos: int = 0) -> bytes:
    return raw(IP(src=V4[0], dst=V4[1], proto=50, tos=tos)
               / Raw(esp_seal(s.key, s.spi, seq, plaintext)))


class Run:
    """One event on a fresh engine: the SAs it installed, as show rows."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.eng = ENGINES[name]()
        self.sas: list[tuple[str, str, int]] = []

    def add(self, direction: str, s: SaSpec) -> int:
        h = (self.eng.add_outbound if direction == "outbound" else self.eng.add_inbound)(s)
        self.sas.append((direction, s.protocol, h))
        return h

    def decrypt(self, *packets: bytes) -> list[int]:
        burst = Burst.from_packets(list(packets))
        self.eng.decrypt_burst(burst)
        return burst.status[:len(packets)].tolist()

    def encrypt(self, h: int, *packets: bytes, **burst_kw) -> list[int]:
        burst = Burst.from_packets(list(packets), h, **burst_kw)
        self.eng.encrypt_burst(burst)
        return burst.status[:len(packets)].tolist()

    def rows(self):
        return [(d, p, self.eng.counters(h)) for d, p, h in self.sas]


def _auth_failed(r: Run):
    s = spec()
    r.add("inbound", s)
    bad = bytearray(crafted(s, 1, trailer(inner_packet(), 4)))
    bad[-1] ^= 1
    return r.decrypt(bytes(bad))


def ah_spec() -> SaSpec:
    return SaSpec(spi=0x2001, protocol="ah", cipher="null", key=b"",
                  integrity="hmac-sha256-128", integrity_key=bytes(range(32)),
                  tunnel_src=V4[0], tunnel_dst=V4[1])


def _auth_failed_ah(r: Run):
    s = ah_spec()
    o, _ = r.add("outbound", s), r.add("inbound", s)
    wire = bytearray(r.eng.encrypt(o, inner_packet()))
    wire[-1] ^= 1
    return r.decrypt(bytes(wire))


def _replay_duplicate(r: Run):
    s = spec()
    r.add("inbound", s)
    pkt = crafted(s, 5, trailer(inner_packet(), 4))
    return r.decrypt(pkt, pkt)


def _replay_below_window(r: Run):
    s = spec(replay_window=32)
    r.add("inbound", s)
    return r.decrypt(crafted(s, 100, trailer(inner_packet(), 4)),
                     crafted(s, 1, trailer(inner_packet(), 4)))


def _malformed_sa(r: Run):
    s = spec()
    r.add("inbound", s)
    return r.decrypt(outer_v4(s.spi.to_bytes(4, "big") + bytes(12)))   # names the SA, too short


def _bad_trailer(r: Run):
    s = spec()
    r.add("inbound", s)
    return r.decrypt(crafted(s, 1, trailer(inner_packet(), 4, pad=b"\x01\x03")))


def _seq_overflow(r: Run):
    o = r.add("outbound", spec())
    r.eng.set_sequence(o, 0xFFFFFFFF)
    return r.encrypt(o, inner_packet())


def _dummy(r: Run):
    s = spec()
    r.add("inbound", s)
    return r.decrypt(crafted(s, 1, trailer(b"", 59)))


def _no_room(r: Run):
    o = r.add("outbound", spec())
    return r.encrypt(o, inner_packet(), slot_size=512, headroom=20)


def _expired(r: Run):
    o = r.add("outbound", spec(lifetime=Lifetime(hard_packets=1)))
    return r.encrypt(o, inner_packet(), inner_packet())


def _ecn_drop(r: Run):
    s = spec()
    r.add("inbound", s)
    return r.decrypt(crafted(s, 1, trailer(inner_packet(tos=0), 4), tos=0b11))


def _crypto_error_out(r: Run):
    o = r.add("outbound", spec())
    r.eng._table.inject_crypto_fault(o)
    return r.encrypt(o, inner_packet())


def _crypto_error_in(r: Run):
    s = spec()
    r.eng._table.inject_crypto_fault(r.add("inbound", s))
    return r.decrypt(crafted(s, 1, trailer(inner_packet(), 4)))


def _unknown_spi(r: Run):
    r.add("inbound", spec())
    return r.decrypt(crafted(spec(spi=0x999), 1, trailer(inner_packet(), 4)))


def _malformed_engine(r: Run):
    r.add("inbound", spec())
    return r.decrypt(b"\x45" + bytes(30))


def _not_esp(r: Run):
    r.add("inbound", spec(udp_encap=True))
    return r.decrypt(raw(IP(src=V4[1], dst=V4[0]) / UDP(sport=4500, dport=4500)
                         / (bytes(4) + b"IKE_SA_INIT")))


def _keepalive(r: Run):
    r.add("inbound", spec(udp_encap=True))
    return r.decrypt(raw(IP(src=V4[1], dst=V4[0]) / UDP(sport=4500, dport=4500) / b"\xff"))


def _no_sa(r: Run):
    r.add("outbound", spec())
    return r.encrypt(123456, inner_packet())


ALL = tuple(ENGINES)
OPENSSL_PFE = tuple(n for n in ENGINES if n == "pfe-openssl")
#: (scope, counter) -> [(variant, engines that can see the event, driver)]. The PFE has no
#: lifetimes (kilobyte lifetimes are CPU-only by Table 1, seconds are the gateway's), and
#: only the OpenSSL backend has a library call that can fail.
DROP_EVENTS = {
    ("sa", "auth_failed"): [("esp", ALL, _auth_failed), ("ah", ("cpu",), _auth_failed_ah)],
    ("sa", "replay_duplicate"): [("", ALL, _replay_duplicate)],
    ("sa", "replay_below_window"): [("", ALL, _replay_below_window)],
    ("sa", "malformed"): [("", ALL, _malformed_sa)],
    ("sa", "bad_trailer"): [("", ALL, _bad_trailer)],
    ("sa", "seq_overflow"): [("", ALL, _seq_overflow)],
    ("sa", "dummy"): [("", ALL, _dummy)],
    ("sa", "no_room"): [("", ALL, _no_room)],
    ("sa", "expired"): [("", ("cpu",), _expired)],
    ("sa", "ecn_drop"): [("", ALL, _ecn_drop)],
    ("sa", "crypto_error"): [("outbound", OPENSSL_PFE, _crypto_error_out),
                             ("inbound", OPENSSL_PFE, _crypto_error_in)],
    ("engine", "unknown_spi"): [("", ALL, _unknown_spi)],
    ("engine", "malformed"): [("", ALL, _malformed_engine)],
    ("engine", "not_esp"): [("", ALL, _not_esp)],
    ("engine", "keepalive"): [("", ALL, _keepalive)],
    ("engine", "no_sa"): [("", ALL, _no_sa)],
}
CASES = [pytest.param(scope, name, driver, engine, id=f"{scope}.{name}-{variant}-{engine}")
         for (scope, name), variants in DROP_EVENTS.items()
         for variant, engines, driver in variants for engine in engines]


def test_every_drop_counter_has_an_event():
    drops = {(c.scope, c.name) for c in cat.COUNTERS if c.drop and c.scope in ("sa", "engine")}
    assert set(DROP_EVENTS) == drops


def _drops(r: Run) -> dict[tuple[str, str], int]:
    out = {("engine", n): getattr(r.eng.engine_counters(), n) for n in EngineCounters.DROPS}
    for n in SaCounters.DROPS:
        out[("sa", n)] = sum(getattr(c, n) for _, _, c in r.rows())
    return out


@pytest.mark.parametrize("scope,name,driver,engine", CASES)
def test_drop_counter_moves_and_feeds_its_show_lines(scope, name, driver, engine):
    r = Run(engine)
    statuses = driver(r)
    counter = next(c for c in cat.counters(scope) if c.name == name)
    assert statuses[-1] == Status[counter.status]
    drops = _drops(r)
    assert drops[(scope, name)] == 1
    assert sum(drops.values()) == 1                      # nothing else counted a drop
    rows = r.rows()
    stats = ipsec_statistics(rows, [r.eng.engine_counters()])
    fed = {f.line.split(".", 1)[1] for f in counter.feeds if f.line.startswith("ipsec.")
           and any(f.applies({"direction": d, "protocol": p}) for d, p, c in rows
                   if scope == "engine" or getattr(c, name))}
    for line in cat.SHOW["ipsec"].lines:
        if line.key.endswith(("_packets", "_bytes")):    # packets a driver let through
            continue
        assert getattr(stats, line.key) == (1 if line.key in fed else 0), line.key
    text = render_ipsec_statistics(stats)
    for key in fed:
        assert re.search(rf"{re.escape(cat.SHOW['ipsec'].line(key).label)}:\s+1\b", text)
    if scope == "engine" and not counter.feeds:          # IKE and keepalives are no errors
        assert not fed


@pytest.mark.parametrize("engine,protocol", [(e, "esp") for e in ALL] + [("cpu", "ah")])
def test_packets_and_bytes_feed_the_esp_and_ah_lines(engine, protocol):
    """AH runs on the CPU engine only (docs/design.md Table 1)."""
    r = Run(engine)
    s = ah_spec() if protocol == "ah" else spec()
    o, _ = r.add("outbound", s), r.add("inbound", s)
    inner = inner_packet(size=99)
    assert r.eng.decrypt(r.eng.encrypt(o, inner)) == inner
    stats = ipsec_statistics(r.rows())
    if protocol == "esp":
        got = (stats.esp_encrypted_packets, stats.esp_decrypted_packets,
               stats.esp_encrypted_bytes, stats.esp_decrypted_bytes)
    else:
        got = (stats.ah_output_packets, stats.ah_input_packets, stats.ah_output_bytes,
               stats.ah_input_bytes)
    assert got == (1, 1, 99, 99)
    assert sum(getattr(stats, f.name) for f in fields(stats)) == 2 + 2 * 99
