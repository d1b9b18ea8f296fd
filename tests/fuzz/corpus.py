"""A deterministic corpus of crafted and garbled packets for the engines' burst calls.

Receive side, per SA shape (outer IPv4/IPv6, ESP or NAT-T, ESN off/on, 128/256-bit keys):
  - valid packets of several sizes and inner versions, then every truncation of one of them,
    single-bit flips, overwritten header bytes (lengths, IHL, protocol, UDP length, SPI, seq)
    and trailing junk;
  - authenticated packets (sealed with the right key by `cryptography`, so they pass the ICV)
    whose plaintext lies: inner version, IHL 0..15, total length, IPv6 payload length, next
    header, pad length and pad bytes, under outer DS fields that make the RFC 6040 rewrite run;
  - random bytes, bare and behind a plausible outer header carrying the SA's SPI.
Send side: inner packets with every IHL, lying total lengths, truncated IPv6 headers and
random bytes.

Everything derives from one seed, so a failure names a reproducible case."""
from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass

from helpers import esp_seal

from inline_ipsec import SaSpec

SEED = 20240915
V4 = ("192.0.2.1", "198.51.100.1")
V6 = ("2001:db8::1", "2001:db8:ffff::1")


@dataclass(frozen=True)
class Case:
    name: str
    spec: SaSpec
    packet: bytes


def shapes() -> list[SaSpec]:
    out = []
    for k, (outer6, udp, esn, bits) in enumerate([
            (False, False, False, 128), (False, True, False, 256), (True, False, True, 128),
            (True, True, False, 256), (False, False, True, 256), (True, True, True, 128)]):
        src, dst = V6 if outer6 else V4
        key = bytes((k * 41 + i * 7 + 3) & 0xFF for i in range(bits // 8 + 4))
        out.append(SaSpec(spi=0x5000 + k, cipher=f"aes-gcm-{bits}", key=key, tunnel_src=src,
                          tunnel_dst=dst, udp_encap=udp, esn=esn, replay_window=0))
    return out


def ones_sum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4(body: bytes, tos: int = 0, ihl: int = 5, total: int | None = None,
         proto: int = 17, src: str = "10.1.0.1", dst: str = "10.2.0.1") -> bytes:
    """An IPv4 packet; `body` follows the 20 fixed bytes (options first when IHL > 5). The
    checksum covers min(IHL x 4, length) bytes."""
    n = 20 + len(body)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, n if total is None else total & 0xFFFF,
                      7, 0, 64, proto, 0, ipaddress.ip_address(src).packed,
                      ipaddress.ip_address(dst).packed)
    pkt = bytearray(hdr + body)
    covered = min(max(ihl, 5) * 4, len(pkt))
    struct.pack_into("!H", pkt, 10, ~ones_sum(bytes(pkt[:covered])) & 0xFFFF)
    return bytes(pkt)


def ipv6(body: bytes, tc: int = 0, plen: int | None = None, nh: int = 17,
         src: str = "2001:db8:1::1", dst: str = "2001:db8:2::1") -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000 | (tc << 20),
                       len(body) if plen is None else plen & 0xFFFF, nh, 64,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed) + body


def outer(spec: SaSpec, esp: bytes, tos: int = 0) -> bytes:
    """`esp` behind the SA's outer header (and NAT-T UDP header, with a valid checksum over
    IPv6, RFC 8200 §8.1)."""
    proto = 17 if spec.udp_encap else 50
    payload = esp
    if spec.udp_encap:
        payload = struct.pack("!HHHH", 4500, 4500, 8 + len(esp), 0) + esp
    if spec.outer_ipv6:
        pkt = bytearray(ipv6(payload, tc=tos, nh=proto, src=spec.tunnel_src,
                             dst=spec.tunnel_dst))
        if spec.udp_encap:
            acc = ones_sum(bytes(pkt[8:40])) + len(payload) + 17 + ones_sum(payload)
            acc = (acc & 0xFFFF) + (acc >> 16)
            struct.pack_into("!H", pkt, 46, (~acc & 0xFFFF) or 0xFFFF)
        return bytes(pkt)
    return ipv4(payload, tos=tos, proto=proto, src=spec.tunnel_src, dst=spec.tunnel_dst)


def trailer(payload: bytes, nh: int, pad: bytes | None = None) -> bytes:
    if pad is None:
        n = (4 - (len(payload) + 2) % 4) % 4
        pad = bytes(range(1, n + 1))
    return payload + pad + bytes([len(pad) & 0xFF, nh])


def sealed(spec: SaSpec, seq: int, plaintext: bytes, tos: int = 0) -> bytes:
    return outer(spec, esp_seal(spec.key, spec.spi, seq, plaintext, esn=spec.esn), tos)


def inner_packets(rng: random.Random) -> list[bytes]:
    out = [ipv4(b""), ipv4(bytes(1)), ipv6(b""), ipv6(bytes(3))]
    for size in (64, 333, 1400):
        out.append(ipv4(bytes(rng.randrange(256) for _ in range(size - 20)),
                        tos=rng.randrange(256)))
        out.append(ipv6(bytes(rng.randrange(256) for _ in range(size - 40)),
                        tc=rng.randrange(256)))
    out.append(ipv4(b"\x01" * 40 + b"options", ihl=15))
    return out


def lying_plaintexts(rng: random.Random, n: int) -> list[tuple[bytes, int]]:
    """(plaintext with trailer, outer DS field): inner headers and trailers that lie."""
    out = []
    for _ in range(n):
        kind = rng.randrange(6)
        tos = rng.choice((0, 1, 2, 3, 0xB8, 0xBB))
        outer_tos = rng.choice((0, 1, 2, 3, 0xFF))
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 48)))
        if kind == 0:      # IPv4: any IHL, any total length
            ihl = rng.randrange(16)
            total = rng.choice((0, 19, 20, 20 + len(body), 20 + len(body) + 1,
                                ihl * 4, ihl * 4 - 1, rng.randrange(0x10000)))
            pt = trailer(ipv4(body, tos=tos, ihl=ihl, total=total), 4)
        elif kind == 1:    # IPv6: any payload length
            plen = rng.choice((0, len(body), len(body) + 1, rng.randrange(0x10000)))
            pt = trailer(ipv6(body, tc=tos, plen=plen), 41)
        elif kind == 2:    # next header against version, or no IP at all
            inner = rng.choice((ipv4(body, tos=tos), ipv6(body, tc=tos), body))
            pt = trailer(inner, rng.choice((4, 41, 59, 0, 6, 255)))
        elif kind == 3:    # bad padding: wrong bytes, pad length beyond the plaintext
            inner = ipv4(body, tos=tos)
            pad = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 9)))
            pt = trailer(inner, 4, pad) if rng.random() < 0.5 else \
                inner[:rng.randrange(len(inner) + 1)] + bytes([rng.randrange(256), 4])
        elif kind == 4:    # short plaintexts: 0..25 bytes
            pt = bytes(rng.randrange(256) for _ in range(rng.randrange(26)))
        else:              # a truncated inner header with a valid-looking trailer
            inner = rng.choice((ipv4(body, tos=tos), ipv6(body, tc=tos)))
            cut = inner[:rng.randrange(len(inner))]
            pt = trailer(cut, 4 if inner[0] >> 4 == 4 else 41)
        out.append((pt, outer_tos))
    return out


def receive_corpus(sender_factory) -> list[Case]:
    """Packets for the receive side of each SA shape. `sender_factory()` makes an engine that
    builds the valid packets (any engine: they are byte-identical)."""
    rng = random.Random(SEED)
    cases: list[Case] = []
    for spec in shapes():
        sender = sender_factory()
        h = sender.add_outbound(spec)
        if spec.esn:
            sender.set_sequence(h, (1 << 32) - 3)
        valid = [sender.encrypt(h, p) for p in inner_packets(rng)]
        tag = f"0x{spec.spi:x}"
        cases += [Case(f"{tag} valid {i}", spec, w) for i, w in enumerate(valid)]
        small = valid[1]
        cases += [Case(f"{tag} cut {n}", spec, small[:n]) for n in range(len(small))]
        for k in range(60):
            w = bytearray(rng.choice(valid))
            bit = rng.randrange(len(w) * 8)
            w[bit // 8] ^= 1 << (bit % 8)
            cases.append(Case(f"{tag} flip {k}", spec, bytes(w)))
        header = 48 + 16 if spec.outer_ipv6 else 28 + 16
        for k in range(60):
            w = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 4)):
                w[rng.randrange(min(header, len(w)))] = rng.choice((0, 0xFF, rng.randrange(256)))
            cases.append(Case(f"{tag} overwrite {k}", spec, bytes(w)))
        cases += [Case(f"{tag} junk after {k}", spec, w + bytes(rng.randrange(1, 40)))
                  for k, w in enumerate(valid[:4])]
        for k, (pt, tos) in enumerate(lying_plaintexts(rng, 120)):
            cases.append(Case(f"{tag} sealed lie {k}", spec, sealed(spec, 100 + k, pt, tos)))
        for k in range(30):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
            cases.append(Case(f"{tag} random {k}", spec, blob))
            esp = spec.spi.to_bytes(4, "big") + blob
            cases.append(Case(f"{tag} random esp {k}", spec, outer(spec, esp, rng.randrange(256))))
    return cases


def send_corpus() -> list[bytes]:
    """Inner packets for the send side: honest ones and every kind of lying header."""
    rng = random.Random(SEED + 1)
    out = inner_packets(rng)
    for ihl in range(16):
        for total in (0, 19, 20, 24, 28, 60, 61, 0xFFFF):
            out.append(ipv4(bytes(8), ihl=ihl, total=total))
    for plen in (0, 7, 8, 9, 0xFFFF):
        out.append(ipv6(bytes(8), plen=plen))
    out += [ipv6(bytes(8))[:n] for n in (0, 1, 20, 39, 40)]
    out += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 90))) for _ in range(80)]
    return out
