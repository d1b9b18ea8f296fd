"""Bursts: one call for many packets over many SAs, in place; several PFEs in parallel threads."""
from __future__ import annotations

import threading

from _pfe_core import Status
from helpers import inner_packet, spec
from inline_ipsec import Burst, Pfe


def test_mixed_burst_over_many_sas_matches_single_calls():
    specs = [spec(spi=0x100 + i, bits=128 if i % 2 else 256, outer6=i % 3 == 0,
                  udp_encap=i % 4 == 0, esn=i % 5 == 0) for i in range(16)]
    a, b = Pfe(), Pfe()
    ha = [a.add_outbound(s) for s in specs]
    hb = [b.add_outbound(s) for s in specs]
    rx = Pfe()
    for s in specs:
        rx.add_inbound(s)
    inners = [inner_packet(v6=i % 2 == 0, size=40 + 37 * i) for i in range(64)]
    handles = [ha[i % 16] for i in range(64)]
    burst = Burst.from_packets(inners, handles)
    assert a.encrypt_burst(burst) == 64
    singles = [b.encrypt(hb[i % 16], p) for i, p in enumerate(inners)]
    assert burst.packets() == singles
    assert rx.decrypt_burst(burst) == 64
    assert burst.packets() == inners
    assert [int(h) for h in burst.sa[:64]] == [rx.lookup_inbound(0x100 + i % 16) for i in range(64)]


def test_status_per_packet_and_good_count():
    pfe = Pfe()
    s = spec()
    out, inb = pfe.add_outbound(s), pfe.add_inbound(s)
    w = [pfe.encrypt(out, inner_packet()) for _ in range(3)]
    burst = Burst.from_packets([w[0], w[0], b"junk", w[2], w[1]])
    assert pfe.decrypt_burst(burst) == 3
    assert list(burst.status[:5]) == [Status.OK, Status.REPLAY_DUPLICATE, Status.MALFORMED,
                                     Status.OK, Status.OK]
    assert list(burst.sa[:5]) == [inb, inb, -1, inb, inb]
    # the one-pass read of chosen slots gives what packet() gives, slot by slot
    assert burst.packets_at([4, 0, 3]) == [burst.packet(4), burst.packet(0), burst.packet(3)]
    assert burst.packets_at(range(5)) == [burst.packet(i) for i in range(5)]
    assert burst.packet(0) != w[0] and burst.packet(0) == inner_packet()


def test_parallel_pfes_in_threads():
    n_threads, rounds = 4, 50
    results: list = [None] * n_threads

    def worker(k: int) -> None:
        pfe = Pfe(f"pfe{k}")
        s = spec(spi=0x500 + k, bits=256)
        out, inb = pfe.add_outbound(s), pfe.add_inbound(s)
        inner = [inner_packet(size=64 + k + i) for i in range(32)]
        burst = Burst.from_packets(inner, out)
        ok = 0
        for _ in range(rounds):
            burst.load(inner, out)
            ok += pfe.encrypt_burst(burst)
            ok += pfe.decrypt_burst(burst)
            assert burst.packets() == inner
        results[k] = (ok, pfe.counters(inb).packets)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(2 * 32 * rounds, 32 * rounds)] * n_threads


def test_one_pfe_shared_by_threads_stays_consistent():
    """Four threads share one PFE: its lock keeps the table consistent. The window covers all
    800 packets, so however the threads interleave, no packet can fall below it."""
    pfe = Pfe()
    s = spec(replay_window=1024)
    out, inb = pfe.add_outbound(s), pfe.add_inbound(s)
    errors: list = []

    def worker() -> None:
        try:
            for _ in range(200):
                pfe.decrypt(pfe.encrypt(out, inner_packet()))
        except Exception as exc:  # surfaced below: a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pfe.sequence(out) == 800 and pfe.counters(inb).packets == 800


def test_a_library_failure_leaves_its_packets_uncounted_and_as_they_came():
    # The encrypt kernel writes the outer header, the slot's offset and length and the
    # counters before the crypto; a packet whose seal fails must get all of that undone,
    # while the packets of a healthy SA in the same burst are encrypted and counted.
    pfe = Pfe(backend="openssl")
    good, bad = pfe.add_outbound(spec(spi=0x301)), pfe.add_outbound(spec(spi=0x302))
    pfe._table.inject_crypto_fault(bad)
    inners = [inner_packet(size=60 + i) for i in range(6)]
    handles = [good, bad, good, bad, bad, good]
    burst = Burst.from_packets(inners, handles)
    assert pfe.encrypt_burst(burst) == 3
    statuses = [Status(s) for s in burst.status[:6]]
    assert statuses == [Status.OK if h == good else Status.CRYPTO_ERROR for h in handles]
    for i, h in enumerate(handles):
        if h == bad:
            assert burst.offset[i] == burst.headroom and burst.length[i] == len(inners[i])
        else:
            assert burst.offset[i] < burst.headroom and burst.length[i] > len(inners[i])
    c_good, c_bad = pfe.counters(good), pfe.counters(bad)
    assert (c_good.packets, c_good.bytes, c_good.crypto_error) == (
        3, sum(len(inners[i]) for i in (0, 2, 5)), 0)
    assert (c_bad.packets, c_bad.bytes, c_bad.crypto_error) == (0, 0, 3)
    # The good SA's packets decrypt at the peer: their headers are intact.
    rx = Pfe(backend="openssl")
    rx.add_inbound(spec(spi=0x301))
    out = Burst.from_packets([burst.packet(i) for i in (0, 2, 5)])
    assert rx.decrypt_burst(out) == 3
    assert out.packets() == [inners[i] for i in (0, 2, 5)]
