"""Property tests (hypothesis): round trips for every cipher and packet shape, the wire
rules of RFC 4303 §2.4 (alignment, padding) on what we send, the PFE's bytes for AES-GCM, and
arbitrary bytes into a burst never raising."""
from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inline_ipsec import Burst, Pfe, Status
from inline_ipsec.cpu import CpuEngine, ReplayWindow
from inline_ipsec.packet.ip import internet_checksum
from inline_ipsec.sa import CIPHER_KEY_MATERIAL

from .helpers import V4, V6, ah_spec, esp_spec

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
CIPHERS = sorted(CIPHER_KEY_MATERIAL)


def make_inner(v6: bool, size: int, tos: int, df: bool) -> bytes:
    if v6:
        size = max(size, 40)
        return struct.pack("!IHBB16s16s", 0x60000000 | (tos << 20), size - 40, 17, 9,
                           bytes(15) + b"\x01", bytes(15) + b"\x02") + bytes(size - 40)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, size, 1, 0x4000 if df else 0,
                                64, 17, 0, bytes(4), bytes(4)))
    hdr[10:12] = internet_checksum(bytes(hdr)).to_bytes(2, "big")
    return bytes(hdr) + bytes((k * 13) & 0xFF for k in range(size - 20))


shapes = st.tuples(st.booleans(), st.integers(20, 1500), st.integers(0, 255), st.booleans())


@SETTINGS
@given(cipher=st.sampled_from(CIPHERS + ["ah"]), outer6=st.booleans(), udp=st.booleans(),
       esn=st.booleans(), shape=shapes)
def test_round_trip_every_cipher(cipher, outer6, udp, esn, shape):
    outer = V6 if outer6 else V4
    if cipher == "ah":
        spec = ah_spec("hmac-sha256-128", outer, esn=esn)
    else:
        spec = esp_spec(cipher, None, outer, esn=esn, udp_encap=udp)
    inner = make_inner(*shape)
    cpu = CpuEngine()
    h = cpu.add_outbound(spec)
    cpu.add_inbound(spec)
    wire = cpu.encrypt(h, inner)
    assert cpu.decrypt(wire) == inner
    ip_len = 40 if outer6 else 20
    if not outer6:
        assert internet_checksum(wire[:20]) == 0 and int.from_bytes(wire[2:4], "big") == len(wire)
    else:
        assert int.from_bytes(wire[4:6], "big") == len(wire) - 40
    if spec.protocol == "esp":
        esp = wire[ip_len + (8 if udp else 0):]
        t = cpu._out[h].transform
        body = len(esp) - 8 - t.iv_len - t.icv_len
        assert body % t.align == 0 and body >= len(inner) + 2   # RFC 4303 §2.4
        assert body - len(inner) - 2 < t.align                   # no more padding than needed


@SETTINGS
@given(bits=st.sampled_from([128, 256]), outer6=st.booleans(), udp=st.booleans(),
       esn=st.booleans(), df_bit=st.sampled_from(["clear", "set", "copy"]), shape=shapes,
       start=st.integers(0, 0xFFFFFFFE))
def test_gcm_bytes_match_the_pfe(bits, outer6, udp, esn, df_bit, shape, start):
    spec = esp_spec(f"aes-gcm-{bits}", None, V6 if outer6 else V4, esn=esn, udp_encap=udp,
                    df_bit=df_bit)
    pfe, cpu = Pfe(), CpuEngine()
    hp, hc = pfe.add_outbound(spec), cpu.add_outbound(spec)
    pfe.set_sequence(hp, start)
    cpu.set_sequence(hc, start)
    inner = make_inner(*shape)
    assert pfe.encrypt(hp, inner) == cpu.encrypt(hc, inner)


@SETTINGS
@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=8))
def test_arbitrary_bytes_never_raise(pkts):
    cpu = CpuEngine()
    hin = cpu.add_inbound(esp_spec("aes-cbc-128", spi=0x01020304))
    h = cpu.add_outbound(ah_spec("hmac-sha1-96"))
    for p in list(pkts):                        # also as if it carried our SPI
        if len(p) > 28:
            pkts.append(p[:20] + b"\x01\x02\x03\x04" + p[24:])
    burst = Burst.from_packets(pkts)
    good = cpu.decrypt_burst(burst)
    assert list(burst.status[:len(pkts)]).count(Status.OK) == good
    assert cpu.counters(hin).packets == good
    burst = Burst.from_packets(pkts, h)
    cpu.encrypt_burst(burst)                     # garbage inner packets: statuses, no raise
    assert all(s in (Status.OK, Status.MALFORMED, Status.NO_ROOM)
               for s in burst.status[:len(pkts)])


@settings(max_examples=40, deadline=None)
@given(window=st.sampled_from([1, 5, 64, 8192, 65536]),
       seqs=st.lists(st.integers(1, 200000), min_size=1, max_size=300))
def test_window_matches_a_set_model(window, seqs):
    """Accept iff not seen and not below top - window + 1 (RFC 4303 §3.4.3)."""
    w = ReplayWindow(window)
    seen: set[int] = set()
    top = 0
    for s in seqs:
        if s in seen and s > top - window:
            want = Status.REPLAY_DUPLICATE
        elif s <= top - window:
            want = Status.REPLAY_BELOW_WINDOW
        else:
            want = Status.OK
        assert w.receive(s) == want
        if want == Status.OK:
            seen.add(s)
            top = max(top, s)
