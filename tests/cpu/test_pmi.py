"""PowerMode IPsec on the CPU path: the vector loops (pmi=True) and the per-packet path
(pmi=False) take the same decisions. Random bursts of good, reordered, repeated, forged,
malformed and foreign packets go through two engines with the same SAs, one in each mode;
bytes, statuses, handles, per-SA counters, sequence numbers and windows must match."""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inline_ipsec import Burst, Status
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.packet.ip import internet_checksum

from .helpers import V6, esp_spec, inner_v4, inner_v6

SPECS = [
    esp_spec("aes-gcm-128", spi=0x1001, replay_window=64, df_bit="copy"),
    esp_spec("aes-gcm-256", spi=0x1002, replay_window=0, df_bit="set"),  # anti-replay off
    esp_spec("chacha20-poly1305", spi=0x1003, replay_window=1024, copy_outer_dscp=True),
    esp_spec("aes-gcm-128", spi=0x1004, esn=True),                    # per-packet path
    esp_spec("aes-cbc-128", spi=0x1005),                              # per-packet path
    esp_spec("aes-gcm-128", outer=V6, spi=0x1006),                    # per-packet path
    esp_spec("aes-gcm-128", spi=0x1007, udp_encap=True, udp_sport=4500, udp_dport=4500),
]
CBC = 4


def engines() -> tuple[CpuEngine, CpuEngine, list[int], list[int]]:
    """Two engines (PMI on, off) with every SA in both directions, same handles in both:
    (on, off, outbound handles, inbound handles)."""
    on, off = CpuEngine("on", pmi=True), CpuEngine("off", pmi=False)
    ins = [on.add_inbound(s) for s in SPECS]
    assert ins == [off.add_inbound(s) for s in SPECS]
    outs = [on.add_outbound(s) for s in SPECS]
    assert outs == [off.add_outbound(s) for s in SPECS]
    return on, off, outs, ins


def inner(kind: int, size: int, tos: int) -> bytes:
    if kind == 0:
        return inner_v4(size, tos=tos & 0xFC, df=bool(tos & 1))
    if kind == 1:
        return inner_v6(max(size, 48), tc=tos)
    pkt = bytearray(inner_v4(size + 4, tos=tos))          # IPv4 with a 4-byte option
    pkt[0] = 0x46
    pkt[20:20] = b"\x01\x01\x01\x00"
    del pkt[-4:]
    struct.pack_into("!H", pkt, 2, len(pkt))
    struct.pack_into("!H", pkt, 10, 0)
    struct.pack_into("!H", pkt, 10, internet_checksum(bytes(pkt[:24])))
    return bytes(pkt)


def mutate(wire: bytes, how: int, where: int) -> bytes:
    b = bytearray(wire)
    if how == 1:                                           # forged ICV / ciphertext
        b[-1 - where % 16] ^= 0x40
    elif how == 2 and b[0] >> 4 == 4:                      # bad outer checksum
        b[10] ^= 0x01
    elif how == 3:                                         # truncated
        del b[max(1, len(b) - 1 - where % 40):]
    elif how == 4 and b[0] >> 4 == 4:                      # outer CE mark, checksum fixed
        b[1] |= 0x03
        struct.pack_into("!H", b, 10, 0)
        struct.pack_into("!H", b, 10, internet_checksum(bytes(b[:20])))
    elif how == 5 and b[0] >> 4 == 4:                      # a fragment
        b[6] |= 0x20
        struct.pack_into("!H", b, 10, 0)
        struct.pack_into("!H", b, 10, internet_checksum(bytes(b[:20])))
    return bytes(b)


packet = st.tuples(st.integers(0, len(SPECS) - 1), st.integers(0, 2), st.integers(40, 300),
                   st.integers(0, 255), st.integers(0, 5), st.integers(0, 255))
stream = st.lists(packet, min_size=1, max_size=40)
order = st.lists(st.integers(0, 60), min_size=1, max_size=48)


def counters(e: CpuEngine, ins: list[int]) -> list:
    return [(e.counters(h), e.sequence(h), e._sa(h).replay.bits
             & ((1 << max(e._sa(h).replay.window, 1)) - 1)) for h in ins]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream, order, st.integers(1, 3))
def test_decrypt_same_decisions_with_and_without_pmi(packets, picks, bursts):
    on, off, outs, ins = engines()
    tx = CpuEngine("tx")
    tx_out = [tx.add_outbound(s) for s in SPECS]
    wires = []
    for sa, kind, size, tos, how, where in packets:
        b = Burst.single(inner(kind, size, tos & 0xFC), tx_out[sa])
        if tx.encrypt_burst(b) == 1:
            wires.append((b.packet(0), how, where))
    if not wires:
        return
    chosen = [mutate(*wires[k % len(wires)]) if wires[k % len(wires)][1] and k % 3 == 0
              else wires[k % len(wires)][0] for k in picks]
    step = -(-len(chosen) // bursts)
    for start in range(0, len(chosen), step):
        part = chosen[start:start + step]
        results = []
        for e in (on, off):
            b = Burst.from_packets(part)
            ok = e.decrypt_burst(b)
            # a dropped packet's slot is not compared: both paths decrypt in place, the
            # vector loop before it knows the ICV (as the PFE does)
            results.append((ok, b.status[:b.count].tolist(), b.sa[:b.count].tolist(),
                            b.offset[:b.count].tolist(), b.length[:b.count].tolist(),
                            b.ok_packets()))
        assert results[0] == results[1]
    assert counters(on, ins) == counters(off, ins)
    assert on.engine_counters() == off.engine_counters()
    p_on, p_off = on.pmi_counters(), off.pmi_counters()
    assert p_off.vector_decrypt == 0 and p_off.regular_decrypt == len(chosen)
    assert p_on.vector_decrypt + p_on.regular_decrypt == len(chosen)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream, st.integers(0, 2), st.integers(0, 3))
def test_encrypt_same_bytes_with_and_without_pmi(packets, junk, headroom_cut):
    on, off, outs, _ = engines()
    pkts = [inner(kind, size, tos) for _, kind, size, tos, _, _ in packets]
    handles = [outs[sa] for sa, *_ in packets]
    for k in range(junk):                                   # malformed and foreign entries
        pkts.append(b"\x45" + bytes(30))
        handles.append(outs[0] if k % 2 else 9999)
    assert set(handles) <= set(outs) | {9999}
    results = []
    for e in (on, off):
        b = Burst.from_packets(pkts, handles)
        if headroom_cut:                                    # some slots without headroom
            b.offset[0] = 8 * headroom_cut
            b.data[0, b.offset[0]:b.offset[0] + len(pkts[0])] = list(pkts[0])
        ok = e.encrypt_burst(b)
        # CBC takes a random IV per packet (RFC 3602 §3): its packets are compared by length
        wire = [len(w) if h == outs[CBC] else w for w, h in zip(b.packets(), handles)]
        results.append((ok, b.status[:b.count].tolist(), b.offset[:b.count].tolist(),
                        b.length[:b.count].tolist(), wire))
    assert results[0] == results[1]
    assert [on.counters(h) for h in outs] == [off.counters(h) for h in outs]
    assert [on.sequence(h) for h in outs] == [off.sequence(h) for h in outs]
    assert on.pmi_counters().vector_encrypt + on.pmi_counters().regular_encrypt == len(pkts)


def test_vector_counters_and_the_in_order_run():
    spec = esp_spec("aes-gcm-128", replay_window=128)
    tx, rx = CpuEngine(), CpuEngine()
    b = Burst.from_packets([inner_v4(64 + k) for k in range(32)], tx.add_outbound(spec))
    h = rx.add_inbound(spec)
    assert tx.encrypt_burst(b) == 32
    assert tx.pmi_counters().vector_encrypt == 32
    wire = b.packets()
    assert rx.decrypt_burst(b) == 32
    c = rx.pmi_counters()
    assert (c.vectors, c.vector_decrypt, c.regular_decrypt, c.replay_runs) == (1, 32, 0, 1)
    assert rx.sequence(h) == 32 and rx.counters(h).packets == 32
    again = Burst.from_packets(wire[:4])                    # all four are replays now
    assert rx.decrypt_burst(again) == 0
    assert set(again.status[:4].tolist()) == {Status.REPLAY_DUPLICATE}
    assert rx.pmi_counters().regular_decrypt == 4


@pytest.mark.parametrize("pmi", [True, False])
def test_lifetime_crossed_inside_a_vector(pmi):
    from inline_ipsec.sa import Lifetime
    spec = esp_spec("aes-gcm-128", lifetime=Lifetime(soft_packets=5, hard_packets=10))
    tx, rx = CpuEngine(pmi=pmi), CpuEngine(pmi=pmi)
    b = Burst.from_packets([inner_v4(80)] * 12, tx.add_outbound(spec))
    assert tx.encrypt_burst(b) == 10
    assert b.status[10] == Status.EXPIRED
    h = rx.add_inbound(spec)
    b.count = 10
    assert rx.decrypt_burst(b) == 10
    assert rx.expired(h)
    kinds = []
    while (ev := rx.next_event()) is not None:
        kinds.append((ev.kind, ev.direction))
    assert kinds == [("rekey-due", "inbound"), ("expired", "inbound")]


def test_a_run_of_one_length_with_different_trailers():
    """Inner packets of 64, 65 and 66 bytes all make 68-byte plaintexts (pad 2, 1, 0): one
    bulk read, but not one check for all."""
    spec = esp_spec("aes-gcm-128")
    tx, rx = CpuEngine(), CpuEngine()
    pkts = [inner_v4(64 + k % 3) for k in range(12)]
    b = Burst.from_packets(pkts, tx.add_outbound(spec))
    assert tx.encrypt_burst(b) == 12
    assert len(set(b.length[:12].tolist())) == 1
    rx.add_inbound(spec)
    assert rx.decrypt_burst(b) == 12 and b.packets() == pkts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2100), st.integers(0, 2100), st.binary(max_size=96),
                          st.booleans()), min_size=1, max_size=12))
def test_garbage_offsets_lengths_and_bytes_never_raise(entries):
    """Slots with any offset and length (also past the slot) and any bytes, some of them
    a real ESP header of an installed SA: counted drops, the same in both modes."""
    on, off, _, _ = engines()
    tx = CpuEngine("tx")
    good = Burst.single(inner_v4(100), tx.add_outbound(SPECS[0]))
    tx.encrypt_burst(good)
    real = good.packet(0)
    results = []
    for e in (on, off):
        b = Burst(len(entries))
        b.count = len(entries)
        for i, (o, ln, data, esp) in enumerate(entries):
            payload = (real[:len(data)] + data[len(real):]) if esp else data
            start = min(o, b.slot_size)
            b.data[i, start:start + len(payload)] = list(payload[:b.slot_size - start])
            b.offset[i], b.length[i] = o, ln
        e.decrypt_burst(b)
        results.append((b.status.tolist(), b.offset.tolist(), b.length.tolist()))
    assert results[0] == results[1]


def test_esp_in_udp_takes_the_vectors_and_ike_and_keepalives_do_not():
    """RFC 3948: ESP in UDP is vectorised both ways; a non-ESP marker (IKE) and a NAT-keepalive
    on the same port go the per-packet path, with the same statuses in both modes."""
    spec = SPECS[6]
    tx = CpuEngine()
    b = Burst.from_packets([inner_v4(64 + k) for k in range(16)], tx.add_outbound(spec))
    assert tx.encrypt_burst(b) == 16 and tx.pmi_counters().vector_encrypt == 16
    wires = b.packets()
    assert all(w[9] == 17 and w[20:22] == b"\x11\x94" for w in wires)
    udp = bytes.fromhex("11941194") + struct.pack("!HH", 8 + 12, 0)
    ike = _outer_v4_udp(udp + bytes(4) + b"ike-message!")
    keepalive = _outer_v4_udp(bytes.fromhex("11941194") + struct.pack("!HH", 9, 0) + b"\xff")
    burst_pkts = wires[:8] + [ike, keepalive] + wires[8:]
    results = []
    for pmi in (True, False):
        rx = CpuEngine(pmi=pmi)
        h = rx.add_inbound(spec)
        rb = Burst.from_packets(burst_pkts)
        results.append((rx.decrypt_burst(rb), rb.status[:18].tolist(), rb.ok_packets(),
                        rx.counters(h), rx.engine_counters()))
        if pmi:
            c = rx.pmi_counters()
            assert (c.vector_decrypt, c.regular_decrypt) == (16, 2)
    assert results[0] == results[1]
    assert results[0][0] == 16
    assert results[0][1][8:10] == [Status.NOT_ESP, Status.KEEPALIVE]


def _outer_v4_udp(udp: bytes) -> bytes:
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                                bytes([198, 51, 100, 1]), bytes([192, 0, 2, 1])))
    struct.pack_into("!H", hdr, 10, internet_checksum(bytes(hdr)))
    return bytes(hdr) + udp
