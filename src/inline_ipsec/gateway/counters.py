"""Flow counters of a gateway: per tunnel, per engine kind, and for the whole gateway.

These count what the gateway did around the engines (routing, MTU, NAT-T demultiplexing,
selector checks); the engines' own per-SA counters (packets, bytes, ICV failures, replays)
stay in the engines and are summed by `stats.ipsec_statistics`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["TunnelFlow", "PathCounters", "GatewayCounters"]


@dataclass
class TunnelFlow:
    """Packets of one tunnel (IPsec VPN), both directions, at this gateway.

    Outbound: `out_packets` inner packets were routed into the tunnel; `out_fragments` extra
    fragments were made of them (RFC 791 pre-fragmentation); `out_mtu_drops` were dropped as
    too big with DF set (an ICMP error went back); `out_engine_drops` the engine refused
    (sequence overflow, expired SA); `out_encrypted` left as ESP/AH packets, so
    `out_encrypted == out_packets + out_fragments - out_mtu_drops - out_engine_drops`.

    Inbound: `in_packets` ESP/AH packets named one of the tunnel's SPIs; `in_delivered` were
    decrypted and passed the selector check; `in_ts_fail` decrypted but failed it (RFC 4301
    §5.2); `in_engine_drops` the engine dropped (by `Status` name in `in_drop_reasons`), so
    `in_packets == in_delivered + in_ts_fail + in_engine_drops`.
    """

    name: str
    offloaded: bool
    out_packets: int = 0
    out_fragments: int = 0
    out_mtu_drops: int = 0
    out_engine_drops: int = 0
    out_encrypted: int = 0
    in_packets: int = 0
    in_delivered: int = 0
    in_ts_fail: int = 0
    in_engine_drops: int = 0
    in_drop_reasons: Counter = field(default_factory=Counter)

    @property
    def engine(self) -> str:
        return "pfe" if self.offloaded else "cpu"


@dataclass
class PathCounters:
    """Packets one engine kind ("pfe" or "cpu") handled at this gateway, and the time spent
    inside its burst calls (for the packets-per-second figures of the demo)."""

    encrypted: int = 0
    decrypted: int = 0
    encrypt_drops: int = 0
    decrypt_drops: int = 0
    burst_calls: int = 0
    seconds: float = 0.0

    @property
    def packets(self) -> int:
        return self.encrypted + self.decrypted + self.encrypt_drops + self.decrypt_drops

    @property
    def pps(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0


@dataclass
class GatewayCounters:
    """Gateway-wide counters that belong to no tunnel's SA."""

    inner_received: int = 0          # inner packets handed to `outbound`
    outer_received: int = 0          # outer packets handed to `inbound`
    transmitted_outer: int = 0       # ESP/AH packets produced
    delivered_inner: int = 0         # inner packets produced by `inbound`
    no_route: int = 0                # inner packets with no tunnel route (or tunnel down)
    malformed_inner: int = 0
    malformed_outer: int = 0         # bad outer header, outer fragment, unknown protocol
    invalid_spi: int = 0             # RFC 4303 §3.4.2: no SA for the SPI
    ts_check_fail: int = 0           # RFC 4301 §5.2
    exceeds_tunnel_mtu: int = 0      # RFC 4301 §8: DF set / IPv6, ICMP sent
    icmp_sent: int = 0
    pre_fragments: int = 0           # fragments made before encryption (RFC 791)
    fragments_received: int = 0      # inner fragments decapsulated
    ike_packets: int = 0             # UDP 500, or 4500 behind the non-ESP marker (RFC 3948)
    nat_keepalives: int = 0          # RFC 3948 §2.3
    paths: dict[str, PathCounters] = field(
        default_factory=lambda: {"pfe": PathCounters(), "cpu": PathCounters()})
