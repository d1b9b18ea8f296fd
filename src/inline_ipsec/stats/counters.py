"""Counter snapshots that the show commands render, and how engine counters sum into them.

This file owns the counter catalogue (what each `show security ipsec statistics` / `show
security flow statistics` field counts) and the summing of per-SA engine counters
(`inline_ipsec.engine.SaCounters`, duck-typed here so this module needs no engine at import
time). Rendering lives in `show.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable, Optional

__all__ = ["CATALOGUE", "FlowStatistics", "IpsecStatistics", "flow_statistics", "ipsec_statistics"]


@dataclass(frozen=True)
class IpsecStatistics:
    """The fields of `show security ipsec statistics` (Junos 25.2, docs/junos-formats.md §4.5).

    ESP bytes count the protected (inner) packet bytes; "Replay errors" sums duplicates and
    packets below the window (RFC 4303 §3.4.3); "Bad headers" are malformed packets;
    "Bad trailers" bad padding or next header (RFC 4303 §2.4-2.6); "Discarded" the packets
    dropped for any other reason (sequence overflow, expired SA, no room, dummy packets).
    """

    esp_encrypted_bytes: int = 0
    esp_decrypted_bytes: int = 0
    esp_encrypted_packets: int = 0
    esp_decrypted_packets: int = 0
    ah_input_bytes: int = 0
    ah_output_bytes: int = 0
    ah_input_packets: int = 0
    ah_output_packets: int = 0
    ah_authentication_failures: int = 0
    replay_errors: int = 0
    esp_authentication_failures: int = 0
    esp_decryption_failures: int = 0
    bad_headers: int = 0
    bad_trailers: int = 0
    invalid_spi: int = 0
    ts_check_fail: int = 0
    exceeds_tunnel_mtu: int = 0
    discarded: int = 0

    def __add__(self, other: "IpsecStatistics") -> "IpsecStatistics":
        return IpsecStatistics(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                  for f in fields(self)})


@dataclass(frozen=True)
class FlowStatistics:
    """The fields of `show security flow statistics` (docs/junos-formats.md §4.6). Packets handled by an
    offloaded (PFE) tunnel count as `services_offload_packets`, as on the SRX4700."""

    current_sessions: int = 0
    packets_received: int = 0
    packets_transmitted: int = 0
    packets_forwarded_queued: int = 0
    packets_copied: int = 0
    packets_dropped: int = 0
    services_offload_packets: int = 0
    fragment_packets: int = 0
    pre_fragments_generated: int = 0
    post_fragments_generated: int = 0


#: Which engine counter (SaCounters field) feeds which statistics field, per direction and
#: protocol. Fields not listed (packets, bytes) are handled in `ipsec_statistics`.
CATALOGUE: dict[str, str] = {
    "auth_failed": "authentication failures (ICV did not verify, RFC 4303 §3.4.4)",
    "replay_duplicate": "Replay errors: duplicate sequence number (RFC 4303 §3.4.3)",
    "replay_below_window": "Replay errors: sequence number below the window (RFC 4303 §3.4.3)",
    "malformed": "Bad headers: truncated or malformed packet",
    "bad_trailer": "Bad trailers: bad padding or next header (RFC 4303 §2.4-2.6)",
    "seq_overflow": "Discarded: sequence number space exhausted (RFC 4303 §3.3.3)",
    "dummy": "Discarded: dummy packet, next header 59 (RFC 4303 §2.6)",
    "no_room": "Exceeds tunnel MTU: the packet does not fit",
    "expired": "Discarded: SA past its hard lifetime",
}


def _get(counters: Any, name: str) -> int:
    return int(getattr(counters, name, 0) or 0)


def ipsec_statistics(sas: Iterable[tuple[str, str, Any]],
                     engine_counters: Iterable[Any] = ()) -> IpsecStatistics:
    """Sum per-SA counters into `IpsecStatistics`.

    `sas` yields (direction "inbound"/"outbound", protocol "esp"/"ah", counters) where
    counters has the `SaCounters` fields; `engine_counters` yields `EngineCounters`
    (drops that belong to no SA: unknown SPI, malformed).
    """
    total: dict[str, int] = {f.name: 0 for f in fields(IpsecStatistics)}
    for direction, protocol, c in sas:
        packets, nbytes = _get(c, "packets"), _get(c, "bytes")
        if protocol == "ah":
            key = "input" if direction == "inbound" else "output"
            total[f"ah_{key}_packets"] += packets
            total[f"ah_{key}_bytes"] += nbytes
            total["ah_authentication_failures"] += _get(c, "auth_failed")
        else:
            key = "decrypted" if direction == "inbound" else "encrypted"
            total[f"esp_{key}_packets"] += packets
            total[f"esp_{key}_bytes"] += nbytes
            total["esp_authentication_failures"] += _get(c, "auth_failed")
        total["replay_errors"] += _get(c, "replay_duplicate") + _get(c, "replay_below_window")
        total["bad_headers"] += _get(c, "malformed")
        total["bad_trailers"] += _get(c, "bad_trailer")
        total["exceeds_tunnel_mtu"] += _get(c, "no_room")
        total["discarded"] += (_get(c, "seq_overflow") + _get(c, "dummy")
                               + _get(c, "expired"))
    for e in engine_counters:
        total["invalid_spi"] += _get(e, "unknown_spi")
        total["bad_headers"] += _get(e, "malformed")
    return IpsecStatistics(**total)


def flow_statistics(offloaded_packets: int = 0, cpu_received: int = 0,
                    cpu_transmitted: int = 0, dropped: int = 0, sessions: int = 0,
                    base: Optional[FlowStatistics] = None) -> FlowStatistics:
    """A `FlowStatistics` where PFE-processed packets count only as services-offload packets
    (they never reach the flow module on the CPU, as on the SRX4700)."""
    b = base or FlowStatistics()
    return FlowStatistics(
        current_sessions=b.current_sessions + sessions,
        packets_received=b.packets_received + cpu_received,
        packets_transmitted=b.packets_transmitted + cpu_transmitted,
        packets_forwarded_queued=b.packets_forwarded_queued,
        packets_copied=b.packets_copied,
        packets_dropped=b.packets_dropped + dropped,
        services_offload_packets=b.services_offload_packets + offloaded_packets,
        fragment_packets=b.fragment_packets,
        pre_fragments_generated=b.pre_fragments_generated,
        post_fragments_generated=b.post_fragments_generated,
    )
