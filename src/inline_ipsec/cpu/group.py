"""Group SAs on the CPU path (RFC 6407 §5.4.1, RFC 5374 §3 "address preservation").

A group SA differs from a negotiated pair in four ways, all handled here beside the pairwise
CPU engine rather than inside its per-packet loop:

- One SA, both directions: every member of the group sends and receives with the same SPI and
  keys, so the SA is installed once and used for encryption and decryption alike.
- Tunnel mode with address preservation: the outer header copies the inner source and
  destination (Address Preservation = source-and-destination), so the protected packet is
  routed like the clear one and traffic flows member to member without pairwise tunnels.
- Anti-replay: many senders share one sequence space, so a window of counters cannot work.
  Either off, or time-based in the spirit of RFC 6054 (senders share no counter state; the
  check is whether the packet is recent): the sender writes its clock in 10 ms ticks into the
  32-bit sequence number and a receiver drops packets older or newer than the window (Junos
  `anti-replay-time-window`), and exact copies inside the window (a bounded cache of ICVs).
- Policies select traffic: a packet is protected by the newest active TEK whose policy
  (source prefix, destination prefix, protocol, ports) matches; others are passed clear
  (`bypass`), as a group member forwards traffic outside the group policy.

Every group SA runs on the CPU ("Hardware Offloaded: No", `offload_reasons`): the PFE model's
SA table binds an SA to one tunnel with fixed outer addresses (docs/design.md Table 1).
Bad input is a counted drop (`drops`, by reason), never an exception; per-SA state is bounded.
"""
from __future__ import annotations

import ipaddress
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..packet.ip import PROTO_ESP, PROTO_IPIP, PROTO_IPV6, ipv4_set_checksum
from ..sa import SaSpec
from .state import PADS
from .transforms import make_transform

#: why no group SA is offloaded, worded as the placement's reasons (docs/design.md Table 1):
#: the PFE model's SA table binds an SA to one tunnel with fixed outer addresses, and a group
#: SA needs per-packet outer addresses (address preservation) shared by every member
OFFLOAD_REASON = "group VPN deployment not supported by PFE"


def offload_reasons(sa: "GroupSa") -> tuple[str, ...]:
    """Every reason this group SA runs on the CPU (`Offload failure reason:` lines)."""
    out = [OFFLOAD_REASON]
    if not sa.cipher.startswith("aes-gcm-"):
        out.append(f"encryption algorithm {sa.cipher} not supported by PFE "
                   "(AES-GCM 128/256 only)")
    return tuple(out)
#: ticks per second of the time-based anti-replay clock in the ESP sequence number
TICKS = 100
#: most ICVs remembered per SA for duplicate detection inside the time window
MAX_REPLAY_CACHE = 8192
#: most group SAs one engine holds
MAX_GROUP_SAS = 256

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class GroupPolicy:
    """Which traffic a TEK protects (RFC 6407 §5.4.1 source/destination IDs, protocol)."""

    src: Net = ipaddress.ip_network("0.0.0.0/0")
    dst: Net = ipaddress.ip_network("0.0.0.0/0")
    protocol: int = 0
    src_port: int = 0
    dst_port: int = 0

    def __post_init__(self) -> None:
        # per packet the policy compares integers, not ipaddress objects
        object.__setattr__(self, "_v", self.src.version)
        object.__setattr__(self, "_s", (int(self.src.network_address), int(self.src.netmask)))
        object.__setattr__(self, "_d", (int(self.dst.network_address), int(self.dst.netmask)))

    def matches(self, version: int, src: int, dst: int, proto: int, sport: int,
                dport: int) -> bool:
        """Whether a packet's (version, source, destination as integers, protocol, ports)
        falls under this policy."""
        s, d = self._s, self._d      # type: ignore[attr-defined]
        return (version == self._v and src & s[1] == s[0] and   # type: ignore[attr-defined]
                dst & d[1] == d[0] and
                (not self.protocol or proto == self.protocol) and
                (not self.src_port or sport == self.src_port) and
                (not self.dst_port or dport == self.dst_port))


@dataclass
class GroupSa:
    """One group SA (a TEK) as installed: keys, policy, lifetime, anti-replay mode."""

    spi: int
    cipher: str
    key: bytes
    integrity: Optional[str]
    integrity_key: bytes
    policy: GroupPolicy = field(default_factory=GroupPolicy)
    #: when the SA may be used to send (GAP activation delay) and when it ends
    not_before: float = 0.0
    expires: Optional[float] = None
    #: 0: anti-replay off; else the time window in seconds
    replay_window_s: float = 0.0
    group_id: int = 0
    name: str = ""
    #: install order in its engine (a later TEK of the same policy is the newer one)
    generation: int = 0
    #: counters
    out_packets: int = 0
    out_bytes: int = 0
    in_packets: int = 0
    in_bytes: int = 0

    def __post_init__(self) -> None:
        spec = SaSpec(spi=self.spi, cipher=self.cipher, key=self.key,
                      tunnel_src="0.0.0.0", tunnel_dst="0.0.0.0", replay_window=0,
                      integrity=self.integrity, integrity_key=self.integrity_key)
        self.transform = make_transform(spec)
        self._counter = 0
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def next_seq(self, now: float) -> int:
        if self.replay_window_s:
            return int(now * TICKS) & 0xFFFFFFFF
        self._counter = (self._counter % 0xFFFFFFFF) + 1
        return self._counter

    def replay_ok(self, seq: int, icv: bytes, now: float) -> Optional[str]:
        """None if a packet with `seq` and `icv` may be accepted, else the drop reason."""
        if not self.replay_window_s:
            return None
        age = ((int(now * TICKS) - seq + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        limit = self.replay_window_s * TICKS
        if age > limit or age < -limit:
            return "replay-time-window"
        if icv in self._seen:
            return "replay-duplicate"
        self._seen[icv] = seq
        if len(self._seen) > MAX_REPLAY_CACHE:
            self._seen.popitem(last=False)
        return None


class GroupEngine:
    """The group SAs of one member on the CPU path: `protect` (outbound) and `unprotect`
    (inbound), one packet at a time, with IP packets as bytes in and out."""

    hardware_offloaded = False
    offload_reason = OFFLOAD_REASON

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.sas: dict[int, GroupSa] = {}
        self.drops: dict[str, int] = {}
        self.bypassed = 0
        self._generation = 0

    # -- control -------------------------------------------------------------------------
    def install(self, sa: GroupSa) -> None:
        """Install (or replace) a group SA; the same SA serves both directions."""
        if sa.spi not in self.sas and len(self.sas) >= MAX_GROUP_SAS:
            raise ValueError(f"group SA table full ({MAX_GROUP_SAS})")
        self._generation += 1
        sa.generation = self._generation
        self.sas[sa.spi] = sa

    def remove(self, spi: int) -> None:
        self.sas.pop(spi, None)

    def expire(self, now: Optional[float] = None) -> list[int]:
        """Remove SAs past their lifetime; returns their SPIs."""
        now = self.clock() if now is None else now
        gone = [s for s, sa in self.sas.items() if sa.expires is not None and sa.expires <= now]
        for s in gone:
            del self.sas[s]
        return gone

    def _count(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    # -- outbound ------------------------------------------------------------------------
    def select(self, packet: bytes, now: float, head: Optional[tuple] = None
               ) -> Optional[GroupSa]:
        """The SA to send the packet with (RFC 4301 §5.1: the SPD decides): among the
        unexpired SAs whose policy matches, the newest active one (activation delay
        passed; newest = latest activation, then latest installed); if none is active yet,
        the newest pending one, which every member that received it can already decrypt
        (better than sending in clear)."""
        head = head or _five_tuple(packet)
        if head is None:
            return None
        best = None
        best_key: tuple = ()
        for sa in self.sas.values():
            if (sa.expires is not None and sa.expires <= now) or not sa.policy.matches(*head):
                continue
            active = sa.not_before <= now
            key = (active, sa.not_before if active else 0.0, sa.generation)
            if best is None or key > best_key:
                best, best_key = sa, key
        return best

    def protect(self, packet: bytes, now: Optional[float] = None) -> tuple[str, bytes]:
        """("esp", ESP packet) if a group policy covers the packet, ("bypass", packet) if
        none does, ("drop", b"") for a packet that is not a well-formed IP packet."""
        now = self.clock() if now is None else now
        head = _five_tuple(packet)
        if head is None:
            self._count("malformed-inner")
            return "drop", b""
        sa = self.select(packet, now, head)
        if sa is None:
            self.bypassed += 1
            return "bypass", packet
        return "esp", self.encrypt(sa, packet, now)

    def encrypt(self, sa: GroupSa, packet: bytes, now: float) -> bytes:
        """RFC 4303 tunnel mode; the outer header copies the inner addresses (address
        preservation), the DSCP/ECN field and the TTL."""
        v6 = packet[0] >> 4 == 6
        t = sa.transform
        nh = PROTO_IPV6 if v6 else PROTO_IPIP
        pad = (-(len(packet) + 2)) % max(t.align, 4)
        plain = packet + PADS[pad] + bytes((pad, nh))
        seq = sa.next_seq(now)
        hdr8 = struct.pack("!LL", sa.spi, seq)
        esp = hdr8 + t.seal(seq, hdr8, plain)
        sa.out_packets += 1
        sa.out_bytes += len(packet)
        if v6:
            tc_flow = packet[0:4]
            return (tc_flow + struct.pack("!HBB", len(esp), PROTO_ESP, packet[7]) +
                    packet[8:40] + esp)
        tos, ttl = packet[1], packet[8]
        outer = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(esp), 0, 0, ttl,
                                      PROTO_ESP, 0, packet[12:16], packet[16:20]))
        ipv4_set_checksum(outer, 0)
        return bytes(outer) + esp

    # -- inbound -------------------------------------------------------------------------
    def unprotect(self, packet: bytes, now: Optional[float] = None) -> Optional[bytes]:
        """The inner packet of a group ESP packet, or None (a counted drop): unknown SPI,
        ICV failure, replay, bad trailer, or an inner packet whose addresses are not the
        outer ones (address preservation is a property of the SA, so it is checked)."""
        now = self.clock() if now is None else now
        try:
            return self._unprotect(packet, now)
        except (IndexError, struct.error, ValueError):
            self._count("malformed")
            return None

    def _unprotect(self, packet: bytes, now: float) -> Optional[bytes]:
        if len(packet) < 20:
            self._count("malformed")
            return None
        v6 = packet[0] >> 4 == 6
        if v6:
            if len(packet) < 48 or packet[6] != PROTO_ESP:
                self._count("not-esp")
                return None
            off, src, dst = 40, packet[8:24], packet[24:40]
        else:
            ihl = (packet[0] & 0x0F) * 4
            if packet[0] >> 4 != 4 or ihl < 20 or len(packet) < ihl + 8:
                self._count("malformed")
                return None
            if packet[9] != PROTO_ESP:
                self._count("not-esp")
                return None
            off, src, dst = ihl, packet[12:16], packet[16:20]
        esp = packet[off:]
        spi, seq = struct.unpack_from("!LL", esp)
        sa = self.sas.get(spi)
        if sa is None:
            self._count("unknown-spi")
            return None
        if sa.expires is not None and sa.expires <= now:
            self._count("expired")
            return None
        t = sa.transform
        if len(esp) < 8 + t.iv_len + t.icv_len + t.block or \
                (len(esp) - 8 - t.iv_len - t.icv_len) % max(t.block, 1):
            self._count("malformed")
            return None
        icv = bytes(esp[-t.icv_len:]) if t.icv_len else b""
        plain = t.open(seq, esp)
        if plain is None:
            self._count("auth-failed")
            return None
        why = sa.replay_ok(seq, icv, now)
        if why:
            self._count(why)
            return None
        pad, nh = plain[-2], plain[-1]
        n = len(plain) - 2 - pad
        if n < 20 or plain[n:n + pad] != PADS[pad] or nh not in (PROTO_IPIP, PROTO_IPV6):
            self._count("bad-trailer")
            return None
        inner = plain[:n]
        if (inner[0] >> 4 == 6) != (nh == PROTO_IPV6):
            self._count("bad-trailer")
            return None
        isrc, idst = (inner[8:24], inner[24:40]) if nh == PROTO_IPV6 else \
            (inner[12:16], inner[16:20])
        if isrc != src or idst != dst:
            self._count("address-not-preserved")
            return None
        sa.in_packets += 1
        sa.in_bytes += len(inner)
        return bytes(inner)


def _five_tuple(packet: bytes) -> Optional[tuple]:
    """(version, src, dst as integers, protocol, sport, dport) of an IPv4/IPv6 packet whose
    length fields match its size, or None."""
    try:
        ver = packet[0] >> 4
        if ver == 4:
            ihl = (packet[0] & 0x0F) * 4
            if ihl < 20 or len(packet) < ihl or \
                    struct.unpack_from("!H", packet, 2)[0] != len(packet):
                return None
            src, dst = _V4.unpack_from(packet, 12)
            proto, l4 = packet[9], ihl
        elif ver == 6:
            if len(packet) < 40 or struct.unpack_from("!H", packet, 4)[0] + 40 != len(packet):
                return None
            src = int.from_bytes(packet[8:24], "big")
            dst = int.from_bytes(packet[24:40], "big")
            proto, l4 = packet[6], 40
        else:
            return None
        sport = dport = 0
        if proto in (6, 17) and len(packet) >= l4 + 4:
            sport, dport = struct.unpack_from("!HH", packet, l4)
        return ver, src, dst, proto, sport, dport
    except (IndexError, struct.error):
        return None


_V4 = struct.Struct("!LL")
