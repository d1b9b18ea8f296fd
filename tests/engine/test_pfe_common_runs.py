"""The kernels' short loops for runs of common-case packets (`SaTable.common_runs`: IPv4 outer
header, no NAT-T, no ESN) against their general steps. The same bursts through two PFEs, one
with the runs and one without, must give the same bytes, offsets, lengths, statuses, SA
handles, sequence numbers and counters, whatever the mix of SAs, packets and damage."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scapy.layers.inet import ICMP, IP, IPOption_NOP
from scapy.packet import Raw, raw

from _pfe_core import Status
from helpers import V4, esp_seal, inner_packet, spec, trailer
from inline_ipsec import Burst, Pfe

# SA shapes: the first three take the short loops, the others the general steps only.
SA_KINDS = [dict(), dict(df_bit="set"), dict(df_bit="copy", bits=256), dict(esn=True),
            dict(udp_encap=True), dict(outer6=True)]

INNER_KINDS = ["v4", "v4", "v4", "v6", "bad-version", "bad-total", "bad-ihl", "short", "runt"]


def pfe_pair() -> tuple[Pfe, Pfe]:
    """Two PFEs on the test's backend (conftest.py): the first with the runs."""
    runs, general = Pfe(), Pfe()
    general._table.common_runs = False
    assert runs._table.common_runs and not general._table.common_runs
    return runs, general


def inner(kind: str, size: int, tos: int, df: bool) -> bytes:
    if kind == "v6":
        return inner_packet(v6=True, size=max(size, 48), tos=tos)
    p = bytearray(inner_packet(size=max(size, 28), tos=tos, df=df))
    if kind == "bad-version":
        p[0] = 0x55
    elif kind == "bad-total":
        p[3] ^= 0x01
    elif kind == "bad-ihl":
        p[0] = 0x44
    elif kind == "short":
        return bytes(p[:19])
    elif kind == "runt":              # 19 bytes, and its header says so
        p[2:4] = struct.pack("!H", 19)
        return bytes(p[:19])
    return bytes(p)


def assert_same(a: Burst, b: Burst, pfes: tuple[Pfe, Pfe], handles: list[int]) -> None:
    n = a.count
    assert np.array_equal(a.status[:n], b.status[:n])
    assert np.array_equal(a.offset[:n], b.offset[:n])
    assert np.array_equal(a.length[:n], b.length[:n])
    assert np.array_equal(a.sa[:n], b.sa[:n])
    assert np.array_equal(a.data, b.data)
    for h in handles:
        assert pfes[0].counters(h) == pfes[1].counters(h)
        assert pfes[0].sequence(h) == pfes[1].sequence(h)
    assert pfes[0].engine_counters() == pfes[1].engine_counters()


# SA choices index a short list of SA kinds drawn per example (`sa_mix`), so that bursts
# hold long stretches of one SA, as real traffic does, and the runs have something to take.
sa_mix = st.lists(st.integers(0, len(SA_KINDS)), min_size=1, max_size=3)  # last: no SA

outbound_packets = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(INNER_KINDS), st.integers(0, 300),
              st.integers(0, 255), st.booleans()),
    min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=sa_mix, packets=outbound_packets, headroom=st.sampled_from([128, 128, 36, 35]),
       tight=st.booleans(), near_last_seq=st.booleans())
def test_encrypt_runs_match_the_general_steps(mix, packets, headroom, tight, near_last_seq):
    pfes = pfe_pair()
    handles = []
    for k, kw in enumerate(SA_KINDS):
        s = spec(spi=0x2000 + k, **kw)
        h = [p.add_outbound(s) for p in pfes]
        assert h[0] == h[1]
        handles.append(h[0])
    if near_last_seq:            # the last sequence numbers of 32-bit SAs run out mid-burst
        for p in pfes:
            for k in (0, 1, 2, 4, 5):
                p.set_sequence(handles[k], 2**32 - 4)
    wires = [inner(kind, size, tos, df) for _, kind, size, tos, df in packets]
    choices = [mix[i % len(mix)] for i, *_ in packets]
    sas = [handles[k] if k < len(handles) else handles[0] + 1 for k in choices]
    bursts = [Burst.from_packets(wires, sas, headroom=headroom) for _ in pfes]
    if tight:                    # every other packet at the slot's end, 0-19 bytes to spare
        for b in bursts:
            for i in range(0, len(wires), 2):
                off = b.slot_size - len(wires[i]) - i % 20
                b.data[i, off:off + len(wires[i])] = np.frombuffer(wires[i], np.uint8)
                b.offset[i] = off
    for p, b in zip(pfes, bursts):
        p.encrypt_burst(b)
    assert_same(bursts[0], bursts[1], pfes, handles)


def sealed_traffic(choices: list[tuple[int, int, int]], window: int) -> tuple[list, list[bytes]]:
    """Specs of every SA kind and ESP packets of them from a third PFE: (kind, size, DS
    field) each."""
    sender = Pfe()
    specs = [spec(spi=0x3000 + k, replay_window=window, **kw) for k, kw in enumerate(SA_KINDS)]
    out = [sender.add_outbound(s) for s in specs]
    return specs, [sender.encrypt(out[k], inner_packet(size=size, tos=tos))
                   for k, size, tos in choices]


def ipv4_checksum(header: bytearray) -> None:
    header[10:12] = b"\0\0"
    total = sum(struct.unpack("!10H", bytes(header[:20])))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = struct.pack("!H", ~total & 0xFFFF)


def damaged(wire: bytes, how: str, where: int) -> bytes:
    b = bytearray(wire)
    if how in ("fragment", "proto", "ihl", "ce", "dscp") and b[0] == 0x45:
        # header changes with the checksum right: only the checks of the fields catch them
        if how == "ce":                         # congestion on the way (RFC 6040)
            b[1] |= 0x03
        elif how == "dscp":
            b[1] ^= 0xA8
        elif how == "fragment":
            b[6] |= 0x20 if where % 2 else 0x00
            b[7] |= 0x00 if where % 2 else 0x08
        elif how == "proto":
            b[9] = 51
        else:
            b[0] = 0x46
        ipv4_checksum(b)
    elif how == "padded":                       # link-layer padding after the IP packet
        b += bytes(where % 24)
    elif how == "flip":
        b[where % len(b)] ^= 0x10
    elif how == "cut":
        return bytes(b[:where % len(b)])
    elif how == "spi":
        b[20:24] = b"\xde\xad\xbe\xef"        # an SPI no SA has (or garbage, in other shapes)
    return bytes(b)


inbound_packets = st.lists(
    st.tuples(st.integers(0, 2), st.integers(28, 300),
              st.sampled_from(["none", "none", "none", "none", "flip", "cut", "spi", "again",
                               "fragment", "proto", "ihl", "padded", "ce", "dscp"]),
              st.integers(0, 400)),
    min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=st.lists(st.integers(0, len(SA_KINDS) - 1), min_size=1, max_size=3),
       packets=inbound_packets, split=st.integers(0, 40), window=st.sampled_from([0, 32, 64]),
       again=st.lists(st.integers(0, 39), max_size=12),
       absurd=st.lists(st.tuples(st.integers(0, 39), st.integers(1, 3)), max_size=3),
       swaps=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=8))
def test_decrypt_runs_match_the_general_steps(mix, packets, split, window, again, absurd,
                                              swaps):
    specs, wires = sealed_traffic([(mix[k % len(mix)], size, where & 0xFF)
                                   for k, size, _, where in packets], window)
    pfes = pfe_pair()
    handles = []
    for s in specs:
        h = [p.add_inbound(s) for p in pfes]
        assert h[0] == h[1]
        handles.append(h[0])
    received = []
    for i, (wire, (_, _, how, where)) in enumerate(zip(wires, packets)):
        if how == "again" and i:      # a replay of one of the last few packets
            wire = wires[i - 1 - where % min(i, 4)]
        received.append(damaged(wire, how, where))
    for i, j in swaps:                # packets overtaken on the way (inside the window or not)
        if i < len(received) and j < len(received):
            received[i], received[j] = received[j], received[i]
    # Three bursts: the window carries from one to the next, and the third replays packets
    # the first two delivered (or dropped).
    replayed = [received[j % len(received)] for j in again]
    for part in (received[:split], received[split:], replayed):
        if not part:
            continue
        bursts = [Burst.from_packets(part) for _ in pfes]
        for i, how in absurd:         # slot offsets and lengths no packet could have
            if i < len(part):
                for b in bursts:
                    if how == 1:      # the length runs past the slot's end
                        b.length[i] = b.slot_size - b.offset[i] + 1
                    elif how == 2:    # the offset lies past it
                        b.offset[i] = b.slot_size + 1
                    else:             # both ends in the slot, the header's length beyond
                        b.length[i] = max(b.length[i] - 1, 0)
        for p, b in zip(pfes, bursts):
            p.decrypt_burst(b)
        assert_same(bursts[0], bursts[1], pfes, handles)


def test_a_plain_burst_takes_the_runs_and_round_trips():
    """The common case both ways, with the statuses checked, not only compared."""
    pfes = pfe_pair()
    s = spec(spi=0x4001, bits=256)
    outs = [p.add_outbound(s) for p in pfes]
    for p in pfes:
        p.add_inbound(s)
    packets = [inner_packet(size=64 + 7 * i, tos=i) for i in range(32)]
    bursts = [Burst.from_packets(packets, o) for o in outs]
    for p, b in zip(pfes, bursts):
        assert p.encrypt_burst(b) == 32
    assert_same(bursts[0], bursts[1], pfes, outs)
    # Each side opens the other's packets: the runs' wire bytes are the general steps'.
    for p, b in zip(pfes, reversed(bursts)):
        assert p.decrypt_burst(b) == 32
        assert (b.status[:32] == Status.OK).all()
        assert [b.packet(i) for i in range(32)] == packets


@pytest.mark.parametrize("window", [32, 64])
def test_overtaken_packets_inside_the_window(window):
    """Packets that arrive out of order: the short loops take those inside the window that
    it has not seen, as the general steps do, and both drop the same ones below it and the
    same duplicates (RFC 4303 §3.4.3)."""
    specs, wires = sealed_traffic([(0, 64, 0)] * 48, window)
    pfes = pfe_pair()
    for p in pfes:
        p.add_inbound(specs[0])
    # sequence numbers 41..48; two of them again and one overtaken, in the same pass of the
    # kernel (the window takes them only after the open); then 39 down to 1 and two more
    # duplicates, in the kernel's next pass
    order = list(range(40, 48)) + [44, 39, 40] + list(range(38, -1, -1)) + [41, 39]
    bursts = [Burst.from_packets([wires[k] for k in order]) for _ in pfes]
    for p, b in zip(pfes, bursts):
        p.decrypt_burst(b)
    assert_same(bursts[0], bursts[1], pfes, [])
    dup, below = Status.REPLAY_DUPLICATE, Status.REPLAY_BELOW_WINDOW
    expected = [Status.OK] * 8 + [dup, Status.OK, dup]
    expected += [Status.OK if 48 - window < k + 1 else below for k in range(38, -1, -1)]
    expected += [dup, dup]
    assert [int(x) for x in bursts[0].status[:len(order)]] == [int(x) for x in expected]
    assert bursts[0].packet(9) == inner_packet(size=64, tos=0)


def plaintext(kind: str, size: int, tos: int, pad: int) -> bytes:
    """An ESP payload (inner packet and trailer) of one of the shapes the decrypt kernel's
    checks after the open tell apart; all but the first few are dropped or need work."""
    if kind == "v6":
        return trailer(inner_packet(v6=True, size=max(size, 48), tos=tos), 41)
    p = bytearray(inner_packet(size=max(size, 28), tos=tos))
    if kind == "long-pad":          # padding 1..n beyond the 3 bytes alignment needs
        return trailer(bytes(p), 4, pad=bytes(range(1, pad % 40 + 1)))
    if kind == "tfc":               # TFC padding after the packet (RFC 4303 §2.7)
        return trailer(bytes(p) + bytes(pad % 24), 4)
    if kind == "options":           # IHL 6: one word of options
        q = bytearray(raw(IP(src="10.1.0.1", dst="10.2.0.1", tos=tos,
                             options=[IPOption_NOP()] * 4) / ICMP() / Raw(bytes(size % 64))))
        return trailer(bytes(q), 4)
    if kind == "total-long":        # the header claims more than the payload holds
        p[2:4] = struct.pack("!H", len(p) + 1 + pad % 8)
    elif kind == "total-short":     # the header claims less than 20 bytes
        p[2:4] = struct.pack("!H", pad % 20)
    elif kind == "version":
        p[0] = 0x65
    elif kind == "ihl-4":
        p[0] = 0x44
    elif kind == "tiny":            # pad length beyond the payload: 2 bytes of it
        return bytes(p[:2]) + bytes([1 + pad % 7, 4])
    elif kind == "bad-pad":
        return trailer(bytes(p), 4, pad=BAD_PADS[pad % len(BAD_PADS)])
    elif kind == "pad-too-long":
        return bytes(p[:20]) + bytes([250, 4])
    elif kind == "dummy":
        return trailer(bytes(p), 59)
    elif kind == "other-nh":
        return trailer(bytes(p), 17)
    elif kind == "says-v6":
        return trailer(bytes(p), 41)
    return trailer(bytes(p), 4)


BAD_PADS = [b"\x02", b"\x00", b"\x01\x03", b"\x01\x02\x09", b"\x01\x02\x03\x05"]
PLAINTEXT_KINDS = ["v4", "v4", "v4", "v4", "v6", "long-pad", "tfc", "options", "total-long",
                   "total-short", "version", "ihl-4", "tiny", "bad-pad", "pad-too-long",
                   "dummy", "other-nh", "says-v6"]

crafted_packets = st.lists(
    st.tuples(st.sampled_from(PLAINTEXT_KINDS), st.integers(0, 300), st.integers(0, 255),
              st.one_of(st.none(), st.none(), st.integers(0, 255)), st.integers(0, 255),
              st.booleans()),
    min_size=1, max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=crafted_packets, copy_dscp=st.booleans(), window=st.sampled_from([0, 32]))
def test_decrypt_checks_after_the_open_match_the_general_steps(packets, copy_dscp, window):
    """Authenticated payloads of every shape, under outer DS fields equal to the inner one or
    not (ECN per RFC 6040, DSCP copied or not), some sequence numbers repeated: the kernel's
    short path after the open must decide each exactly as the general steps do."""
    s = spec(spi=0x5001, replay_window=window, copy_outer_dscp=copy_dscp)
    pfes = pfe_pair()
    handles = []
    h = [p.add_inbound(s) for p in pfes]
    assert h[0] == h[1]
    handles.append(h[0])
    wires = []
    seq = 0
    for kind, size, tos, outer_tos, pad, repeat in packets:
        if not (repeat and seq):
            seq += 1
        body = plaintext(kind, size, tos, pad)
        # None: the outer DS field is the inner one, as the encapsulator copies it
        outer = (body[1] if kind != "v6" else (body[0] & 0x0F) << 4 | body[1] >> 4) \
            if outer_tos is None else outer_tos
        wires.append(raw(IP(src=V4[0], dst=V4[1], proto=50, tos=outer)
                         / Raw(esp_seal(s.key, s.spi, seq, body))))
    bursts = [Burst.from_packets(wires) for _ in pfes]
    for p, b in zip(pfes, bursts):
        p.decrypt_burst(b)
    assert_same(bursts[0], bursts[1], pfes, handles)
    n = bursts[0].count
    plain = [i for i, (kind, *_rest) in enumerate(packets)
             if kind == "v4" and bursts[0].status[i] == Status.OK]
    assert all(bursts[0].packet(i)[0] == 0x45 for i in plain)
    assert set(bursts[0].status[:n].tolist()) <= {int(v) for v in Status}


@pytest.mark.parametrize("how", ["past-end", "offset-past-end", "huge-length"])
def test_absurd_slots_inside_a_run(how):
    """A slot whose offset or length no packet could have, between packets the short loop
    takes: dropped as malformed by both, the packets around it delivered by both."""
    specs, wires = sealed_traffic([(0, 64 + 8 * i, 0) for i in range(8)], 32)
    pfes = pfe_pair()
    for s in specs:
        for p in pfes:
            p.add_inbound(s)
    bursts = [Burst.from_packets(wires) for _ in pfes]
    for b in bursts:
        for i in (3, 5):
            if how == "past-end":
                b.length[i] = b.slot_size - b.offset[i] + 1
            elif how == "offset-past-end":
                b.offset[i] = b.slot_size + 1
            else:
                b.length[i] = 0xFFFFFFF0
    for p, b in zip(pfes, bursts):
        p.decrypt_burst(b)
        assert [int(x) for x in b.status[:8]] == [0, 0, 0, Status.MALFORMED, 0,
                                                  Status.MALFORMED, 0, 0]
    assert_same(bursts[0], bursts[1], pfes, [])
