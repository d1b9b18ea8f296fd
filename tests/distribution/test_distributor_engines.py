"""The distributor on the real engines: two gateways, packets across, make-before-break rekey.

    gateway A (192.0.2.1)                         gateway B (198.51.100.1)
      out SPI 0x1001 ---------- ESP ----------->    in SPI 0x1001
      in  SPI 0x2001 <--------- ESP ------------    out SPI 0x2001
"""
from __future__ import annotations

import struct
from typing import Any, Optional

import pytest

from inline_ipsec.config import License
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.distribution import Distributor, Tunnel
from inline_ipsec.errors import ReplayError, UnknownSpiError
from inline_ipsec.pfe import Pfe
from inline_ipsec.sa import SaSpec

A, B = "192.0.2.1", "198.51.100.1"


def inner_packet(payload: bytes = b"hello", tos: int = 0) -> bytes:
    """An inner IPv4/UDP packet 10.1.0.1 -> 10.2.0.1 with a valid header checksum."""
    udp = struct.pack("!HHHH", 1000, 2000, 8 + len(payload), 0) + payload
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(udp), 1, 0, 64, 17, 0,
                                bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1])))
    words = struct.unpack("!10H", bytes(hdr))
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("!H", hdr, 10, ~total & 0xFFFF)
    return bytes(hdr) + udp


def sa(spi: int, src: str, dst: str, cipher: str = "aes-gcm-256", **kw: Any) -> SaSpec:
    if cipher.startswith("aes-gcm"):
        key = bytes((spi + i) & 0xFF for i in range(36 if cipher.endswith("256") else 20))
    else:
        key = bytes((spi + i) & 0xFF for i in range(32))
        kw.setdefault("integrity", "hmac-sha256-128")
        kw.setdefault("integrity_key", bytes((spi * 3 + i) & 0xFF for i in range(32)))
    return SaSpec(spi=spi, cipher=cipher, key=key, tunnel_src=src, tunnel_dst=dst, **kw)


def gateway(name: str, **kw: Any) -> Distributor:
    return Distributor([Pfe(f"{name}-pfe0"), Pfe(f"{name}-pfe1")], CpuEngine(f"{name}-cpu"),
                       license=License(), **kw)


def send(d: Distributor, payload: bytes, pair_index: int = 0) -> bytes:
    rec = d.tunnel("t")
    return rec.engine.encrypt(rec.pairs[pair_index].outbound_handle, inner_packet(payload))


def receive(d: Distributor, wire: bytes) -> bytes:
    return d.tunnel("t").engine.decrypt(wire)


def up(tunnel: Optional[Tunnel] = None, cipher: str = "aes-gcm-256", **kw: Any
       ) -> tuple[Distributor, Distributor]:
    tunnel = tunnel or Tunnel()
    ga, gb = gateway("a"), gateway("b")
    ab, ba = sa(0x1001, A, B, cipher, **kw), sa(0x2001, B, A, cipher, **kw)
    ga.install("t", tunnel, outbound=ab, inbound=ba)
    gb.install("t", tunnel, outbound=ba, inbound=ab)
    return ga, gb


def test_offloaded_tunnel_carries_packets() -> None:
    ga, gb = up()
    rec = ga.tunnel("t")
    assert rec.offloaded and isinstance(rec.engine, Pfe) and rec.location == "FPC 0, PIC 0"
    assert receive(gb, send(ga, b"to b")) == inner_packet(b"to b")
    assert receive(ga, send(gb, b"to a")) == inner_packet(b"to a")
    assert ga.counters("t")[1][2].packets == 1


def test_cpu_tunnel_carries_packets() -> None:
    ga, gb = up(Tunnel(cipher="aes-cbc-256"), cipher="aes-cbc-256")
    rec = ga.tunnel("t")
    assert not rec.offloaded and isinstance(rec.engine, CpuEngine)
    assert rec.placement.reasons == (
        "encryption algorithm aes-cbc-256 not supported by PFE (AES-GCM 128/256 only)",)
    assert receive(gb, send(ga, b"cbc")) == inner_packet(b"cbc")


def test_pfe_refusal_falls_back_to_cpu() -> None:
    # Table 1 allows any window up to 4096; the modelled PFE also needs at least 32.
    ga, gb = up(Tunnel(replay_window=16), replay_window=16)
    rec = ga.tunnel("t")
    assert isinstance(rec.engine, CpuEngine)
    assert rec.placement.reasons[0].startswith("PFE refused the SA:")
    assert receive(gb, send(ga, b"x")) == inner_packet(b"x")


def test_rekey_make_before_break_on_the_wire() -> None:
    ga, gb = up()
    in_flight = send(gb, b"sent with the old SA")
    # A rekeys first: new inbound 0x2002 before new outbound 0x1002 (RFC 7296 §2.8)
    ga.rekey("t", outbound=sa(0x1002, A, B), inbound=sa(0x2002, B, A))
    # B still sends on the old SA; A's old inbound SA is draining and accepts it
    assert receive(ga, in_flight) == inner_packet(b"sent with the old SA")
    assert receive(ga, send(gb, b"still old")) == inner_packet(b"still old")
    # B rekeys: its packets now use 0x2002
    gb.rekey("t", outbound=sa(0x2002, B, A), inbound=sa(0x1002, A, B))
    assert receive(ga, send(gb, b"new")) == inner_packet(b"new")
    assert receive(gb, send(ga, b"new too")) == inner_packet(b"new too")
    # A drops its old inbound SA: an old-SPI packet is now unknown
    late = sa(0x2001, B, A)
    probe = Pfe("probe")
    h = probe.add_outbound(late)
    probe.set_sequence(h, 100)
    ga.finish_drain("t")
    with pytest.raises(UnknownSpiError):
        receive(ga, probe.encrypt(h, inner_packet(b"late")))


def _df(wire: bytes) -> bool:
    return bool(wire[6] & 0x40)


def test_df_bit_pending_until_rekey_on_pfe() -> None:
    ga, gb = up()
    assert not _df(send(ga, b"1"))
    assert ga.set_df_bit("t", "set") is False
    assert not _df(send(ga, b"2"))              # still the old SA, old setting
    ga.rekey("t", outbound=sa(0x1002, A, B), inbound=sa(0x2002, B, A))
    assert _df(send(ga, b"3"))


def test_df_bit_at_once_on_cpu_keeps_sequence() -> None:
    ga, gb = up(Tunnel(cipher="aes-cbc-256"), cipher="aes-cbc-256")
    for i in range(3):
        assert receive(gb, send(ga, b"%d" % i)) == inner_packet(b"%d" % i)
    assert ga.set_df_bit("t", "set") is True
    wire = send(ga, b"after")
    assert _df(wire)
    assert struct.unpack("!I", wire[24:28])[0] == 4       # sequence number went on
    assert receive(gb, wire) == inner_packet(b"after")    # the peer's window accepts it


def test_dscp_copy_on_cpu_applies_at_once_and_keeps_the_window() -> None:
    # CpuEngine.update() changes the option in place: no rekey, and the replay window,
    # which a reinstall would have reset, still rejects the old packet.
    ga, gb = up(Tunnel(cipher="aes-cbc-256"), cipher="aes-cbc-256")
    first = send(ga, b"first")
    assert receive(gb, first) == inner_packet(b"first")
    assert gb.set_copy_outer_dscp("t", True) is True
    assert not gb.tunnel("t").pending_copy_outer_dscp
    assert gb.tunnel("t").pairs[0].inbound.copy_outer_dscp
    assert gb.cpu.spec(gb.tunnel("t").pairs[0].inbound_handle).copy_outer_dscp
    with pytest.raises(ReplayError):
        receive(gb, first)
