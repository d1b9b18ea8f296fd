"""SA handles name one SA for its whole life, on both engines and both PFE crypto backends.

A handle kept after `remove` (a stale handle) must never name the next SA installed: single
calls raise `UnknownSaError`, bursts get `Status.NO_SA`, and not one packet leaves under another
SA's SPI or key, also while another thread replaces the SA (a rekey race). The PFE packs a slot
generation into the handle (src/_pfe_core/sa.pxd); the CPU engine never reuses a handle."""
from __future__ import annotations

import struct
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from _pfe_core import HANDLE_GENERATIONS, HANDLE_SLOT_BITS
from helpers import inner_packet, spec
from inline_ipsec import (Burst, CpuEngine, Pfe, Status, UnknownSaError, UnknownSpiError)
from inline_ipsec.pfe import PFE_MAX_SAS

SLOT_MASK = (1 << HANDLE_SLOT_BITS) - 1
ENGINES = {"pfe": Pfe, "cpu": CpuEngine}
A, B = 0xA001, 0xB002


def esp_spi(wire: bytes) -> int:
    return struct.unpack_from("!I", wire, 20)[0]       # outer IPv4, no options


def opens_under(s, wire: bytes) -> bool:
    """The ESP packet verifies under the key of `s` (an independent AES-GCM, RFC 4106)."""
    esp = wire[20:]
    try:
        AESGCM(s.key[:-4]).decrypt(s.key[-4:] + esp[8:16], esp[16:], esp[:8])
    except Exception:
        return False
    return True


@pytest.fixture(params=sorted(ENGINES))
def engine(request):
    return ENGINES[request.param]()


def test_handles_fit_int32_and_are_not_reused(engine):
    handles = []
    for k in range(50):
        h = engine.add_outbound(spec(spi=0x100 + k))
        handles.append(h)
        engine.remove(h)
    assert len(set(handles)) == len(handles)
    assert all(0 <= h <= 0x7FFFFFFF for h in handles)


def test_stale_handle_single_calls(engine):
    ha = engine.add_outbound(spec(spi=A))
    engine.remove(ha)
    hb = engine.add_outbound(spec(spi=B))
    assert hb != ha
    pkt = inner_packet()
    with pytest.raises(UnknownSaError) as err:
        engine.encrypt(ha, pkt)
    assert isinstance(err.value, UnknownSpiError)          # the existing type still catches it
    assert engine.engine_counters().no_sa == 1
    for call in (engine.counters, engine.remove, engine.sequence, engine.rekey_needed,
                 engine.spec):
        with pytest.raises(UnknownSaError, match=str(ha)):
            call(ha)
    with pytest.raises(KeyError):                          # and so do callers of old
        engine.counters(ha)
    assert esp_spi(engine.encrypt(hb, pkt)) == B
    assert engine.counters(hb).packets == 1


def test_stale_handle_in_a_burst(engine):
    sa, sb = spec(spi=A), spec(spi=B)
    ha = engine.add_outbound(sa)
    engine.remove(ha)
    hb = engine.add_outbound(sb)
    pkt = inner_packet(size=80)
    burst = Burst.from_packets([pkt] * 6, [ha, hb, ha, ha, hb, ha])
    assert engine.encrypt_burst(burst) == 2
    assert burst.status[:6].tolist() == [Status.NO_SA, 0, Status.NO_SA, Status.NO_SA, 0,
                                         Status.NO_SA]
    assert burst.packet(0) == pkt                           # untouched
    for i in (1, 4):
        assert esp_spi(burst.packet(i)) == B and opens_under(sb, burst.packet(i))
    assert engine.counters(hb).packets == 2 and engine.sequence(hb) == 2
    assert engine.engine_counters().no_sa == 4


def test_inbound_handles_in_the_burst_carry_the_generation(engine):
    sa, sb = spec(spi=A), spec(spi=B)
    old = engine.add_inbound(sa)
    engine.remove(old)
    new = engine.add_inbound(sb)
    sender = type(engine)()
    wire = sender.encrypt(sender.add_outbound(sb), inner_packet())
    burst = Burst.from_packets([wire])
    assert engine.decrypt_burst(burst) == 1
    assert int(burst.sa[0]) == new == engine.lookup_inbound(B) != old
    assert engine.counters(new).packets == 1
    wire_a = sender.encrypt(sender.add_outbound(sa), inner_packet())
    burst = Burst.from_packets([wire_a])
    assert engine.decrypt_burst(burst) == 0
    assert burst.status[0] == Status.UNKNOWN_SPI and int(burst.sa[0]) == -1


def fill_but_one(pfe: Pfe) -> None:
    for k in range(PFE_MAX_SAS - 1):
        pfe.add_inbound(spec(spi=0x100000 + k))


def test_pfe_same_slot_under_a_new_generation():
    """With one free slot every install reuses it: only the generation tells the SAs apart."""
    pfe = Pfe()
    fill_but_one(pfe)
    sa = spec(spi=A)
    ha = pfe.add_outbound(sa)
    handles = [ha]
    for k in range(20):
        pfe.remove(handles[-1])
        handles.append(pfe.add_outbound(spec(spi=B + k)))
    assert len({h & SLOT_MASK for h in handles}) == 1
    assert len(set(handles)) == len(handles)
    burst = Burst.from_packets([inner_packet()] * len(handles), handles)
    assert pfe.encrypt_burst(burst) == 1                    # only the latest one
    assert burst.status[:len(handles)].tolist() == [Status.NO_SA] * 20 + [0]
    assert esp_spi(burst.packet(20)) == B + 19


def test_pfe_reuses_free_slots_oldest_first():
    pfe = Pfe()
    h = [pfe.add_outbound(spec(spi=0x310 + k)) for k in range(4)]
    pfe.remove(h[2])
    pfe.remove(h[0])
    fresh = pfe.add_outbound(spec(spi=0x320))
    assert fresh & SLOT_MASK == 4                           # never-used slots come first
    # with the never-used slots taken, the freed ones return in the order they were freed
    for k in range(PFE_MAX_SAS - 5):
        pfe.add_inbound(spec(spi=0x100000 + k))
    assert pfe.add_outbound(spec(spi=0x321)) & SLOT_MASK == h[2] & SLOT_MASK
    assert pfe.add_outbound(spec(spi=0x322)) & SLOT_MASK == h[0] & SLOT_MASK
    assert HANDLE_GENERATIONS == (1 << (31 - HANDLE_SLOT_BITS)) - 1
    assert (1 << HANDLE_SLOT_BITS) >= PFE_MAX_SAS


@pytest.mark.parametrize("kind", sorted(ENGINES))
def test_rekey_race_never_sends_under_the_new_sa(kind):
    """One thread encrypts with handle A in a loop while another removes A and installs B,
    then replaces B again and again. On the PFE the table is full but for A's slot, so every
    B lands in A's slot. Packets with A's handle leave under A or not at all."""
    engine = ENGINES[kind]()
    if kind == "pfe":
        fill_but_one(engine)
    sa = spec(spi=A)
    ha = engine.add_outbound(sa)
    pkt = inner_packet(size=64)
    bursts = [0]
    progress = threading.Condition()
    stop = threading.Event()
    seen = {"a": 0, "no_sa": 0, "other": []}

    def wait_bursts(n: int) -> None:
        """Until the sender has finished `n` more bursts."""
        with progress:
            target = bursts[0] + n
            assert progress.wait_for(lambda: bursts[0] >= target, timeout=30)

    def sender() -> None:
        burst = Burst.from_packets([pkt] * 16, ha)
        while not stop.is_set():
            burst.load([pkt] * 16, ha)
            engine.encrypt_burst(burst)
            for i in range(16):
                if burst.status[i] == Status.NO_SA:
                    seen["no_sa"] += 1
                    continue
                wire = burst.packet(i)
                if burst.status[i] == Status.OK and esp_spi(wire) == A and opens_under(sa, wire):
                    seen["a"] += 1
                else:
                    seen["other"].append((int(burst.status[i]), wire[20:24].hex()))
            with progress:
                bursts[0] += 1
                progress.notify_all()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        wait_bursts(1)                                      # A carried traffic first
        engine.remove(ha)
        current = None
        for k in range(60):
            if current is not None:
                engine.remove(current)
            current = engine.add_outbound(spec(spi=B + k))
            wait_bursts(2)                                  # at least one whole burst with B in
    finally:
        stop.set()
        thread.join(timeout=30)
    assert seen["other"] == []
    assert seen["a"] > 0 and seen["no_sa"] >= 60 * 16
    assert engine.counters(current).packets == 0
