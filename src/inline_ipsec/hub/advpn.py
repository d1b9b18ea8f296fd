"""ADVPN shortcut suggestions: the wire format, the counters, and the partner's idle rule.

Juniper does not publish how its suggester tells two partners about each other; this model
sends the suggestion as an IKEv2 INFORMATIONAL request (RFC 7296 §1.4) on the hub's IKE SA
with each spoke, carrying one Notify payload of the private-use status type
`SHORTCUT_SUGGESTION` (§3.10.1: 40960-65535), Protocol ID 0, SPI size 0. Everything else
(the shortcut IKE SA and child SA between the spokes) is standard IKEv2. The Notify data,
all integers in network byte order (docs/advpn.md draws it):

    version        1 byte    1
    flags          1 byte    bit 0 INITIATE: the receiver initiates the shortcut; others 0
    peer port      2 bytes   UDP port of the peer's IKE, as the hub sees it
    suggestion id  4 bytes   the same for both spokes of one suggestion
    peer address   1 byte family (4 or 6) + 4 or 16 bytes: the peer's outer address
    tunnel addr    1 byte family (0 = none, 4, 6) + 0, 4 or 16 bytes: the peer's st0 address
    peer identity  1 byte ID type (RFC 7296 §3.5) + 2 bytes length (<= 1024) + the ID data
    prefixes       1 byte count (<= 64), then per prefix: 1 byte family (4 or 6), 1 byte
                   prefix length, 4 or 16 bytes address (host bits zero)

A decoder reads it bounds-checked and rejects (`SuggestionError`) an unknown version, a bad
family or length, host bits, or trailing bytes.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["SHORTCUT_SUGGESTION", "Suggestion", "SuggestionError", "AdvpnCounters",
           "IdleTracker", "MAX_PREFIXES", "MAX_ID"]

#: the private-use status Notify type of a suggestion (RFC 7296 §3.10.1)
SHORTCUT_SUGGESTION = 45056
VERSION = 1
FLAG_INITIATE = 0x01
MAX_PREFIXES = 64
MAX_ID = 1024


class SuggestionError(ValueError):
    """Notify data that is not a version-1 shortcut suggestion."""


def _addr(family: int, raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw) if family == 4 else ipaddress.IPv6Address(raw))


@dataclass(frozen=True)
class Suggestion:
    """What a suggester tells a partner about the other partner (module docstring)."""

    suggestion_id: int
    initiate: bool
    peer_address: str
    peer_port: int
    peer_id_type: int
    peer_id: bytes
    tunnel_address: Optional[str] = None
    prefixes: tuple[str, ...] = ()

    def encode(self) -> bytes:
        if not 0 <= self.suggestion_id < 1 << 32 or not 0 <= self.peer_port < 1 << 16:
            raise SuggestionError("suggestion id or port out of range")
        if len(self.peer_id) > MAX_ID or len(self.prefixes) > MAX_PREFIXES:
            raise SuggestionError("identity or prefix list too long")
        peer = ipaddress.ip_address(self.peer_address)
        out = [struct.pack("!BBHI", VERSION, FLAG_INITIATE if self.initiate else 0,
                           self.peer_port, self.suggestion_id),
               bytes([peer.version]), peer.packed]
        if self.tunnel_address is None:
            out.append(b"\x00")
        else:
            t = ipaddress.ip_address(self.tunnel_address)
            out += [bytes([t.version]), t.packed]
        out.append(struct.pack("!BH", self.peer_id_type, len(self.peer_id)) + self.peer_id)
        out.append(bytes([len(self.prefixes)]))
        for p in self.prefixes:
            net = ipaddress.ip_network(p)
            out.append(bytes([net.version, net.prefixlen]) + net.network_address.packed)
        return b"".join(out)

    @classmethod
    def decode(cls, data: bytes) -> "Suggestion":
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            if pos + n > len(data):
                raise SuggestionError(f"truncated at byte {pos} (need {n})")
            chunk = data[pos:pos + n]
            pos += n
            return chunk

        def address(allow_none: bool) -> Optional[str]:
            family = take(1)[0]
            if family == 0 and allow_none:
                return None
            if family not in (4, 6):
                raise SuggestionError(f"address family {family}")
            return _addr(family, take(4 if family == 4 else 16))

        version, flags, port, sid = struct.unpack("!BBHI", take(8))
        if version != VERSION:
            raise SuggestionError(f"version {version}")
        if flags & ~FLAG_INITIATE:
            raise SuggestionError(f"unknown flags 0x{flags:02x}")
        peer = address(False)
        tunnel = address(True)
        id_type, id_len = struct.unpack("!BH", take(3))
        if id_len > MAX_ID:
            raise SuggestionError(f"identity of {id_len} bytes")
        peer_id = take(id_len)
        count = take(1)[0]
        if count > MAX_PREFIXES:
            raise SuggestionError(f"{count} prefixes")
        prefixes = []
        for _ in range(count):
            family, plen = take(2)
            if family not in (4, 6) or plen > (32 if family == 4 else 128):
                raise SuggestionError(f"prefix family {family} length {plen}")
            raw = take(4 if family == 4 else 16)
            try:
                net = ipaddress.ip_network(f"{_addr(family, raw)}/{plen}")
            except ValueError:
                raise SuggestionError("prefix with host bits set") from None
            prefixes.append(str(net))
        if pos != len(data):
            raise SuggestionError(f"{len(data) - pos} trailing bytes")
        assert peer is not None
        return cls(sid, bool(flags & FLAG_INITIATE), peer, port, id_type, peer_id, tunnel,
                   tuple(prefixes))


@dataclass
class AdvpnCounters:
    """`show security advpn statistics` (the model's layout of Junos' ADVPN counters)."""

    suggestions_sent: int = 0
    suggestions_received: int = 0
    suggestions_ignored: int = 0
    shortcuts_initiated: int = 0
    shortcuts_accepted: int = 0
    shortcuts_up: int = 0
    shortcuts_torn_down_idle: int = 0
    shortcuts_down: int = 0
    connection_limit_drops: int = 0
    #: the last few reasons a suggestion was ignored (bounded)
    ignored_reasons: list[str] = field(default_factory=list)

    def ignore(self, reason: str) -> None:
        self.suggestions_ignored += 1
        self.ignored_reasons = (self.ignored_reasons + [reason])[-8:]

    def render(self, active: int) -> str:
        rows = [("Suggestions sent", self.suggestions_sent),
                ("Suggestions received", self.suggestions_received),
                ("Suggestions ignored", self.suggestions_ignored),
                ("Shortcuts initiated", self.shortcuts_initiated),
                ("Shortcuts accepted", self.shortcuts_accepted),
                ("Shortcuts established", self.shortcuts_up),
                ("Shortcuts torn down (idle)", self.shortcuts_torn_down_idle),
                ("Shortcuts down (total)", self.shortcuts_down),
                ("Connection-limit drops", self.connection_limit_drops),
                ("Active shortcuts", active)]
        lines = ["ADVPN statistics:"] + [f"  {k + ':':<30}{v:>12}" for k, v in rows]
        lines += [f"  Last ignored: {r}" for r in self.ignored_reasons[-3:]]
        return "\n".join(lines)


class IdleTracker:
    """The partner's idle rule: a shortcut whose traffic stays below `threshold` packets per
    second (both directions) for `idle_time` seconds is torn down. `sample(now, packets)`
    takes the tunnel's packet count; True means: tear it down now."""

    def __init__(self, idle_time: float, threshold: float, now: float) -> None:
        self.idle_time = idle_time
        self.threshold = threshold
        self.last_time = now
        self.last_count = 0
        self.below_since: Optional[float] = now

    def sample(self, now: float, packets: int) -> bool:
        span = now - self.last_time
        if span <= 0:
            return False
        rate = (packets - self.last_count) / span
        if rate >= self.threshold:
            self.below_since = None
        elif self.below_since is None:
            self.below_since = self.last_time
        self.last_time, self.last_count = now, packets
        return self.below_since is not None and now - self.below_since >= self.idle_time

    def interval(self) -> float:
        """How often to sample: often enough to see idle-time pass within a tenth of it."""
        return max(1.0, self.idle_time / 10)
