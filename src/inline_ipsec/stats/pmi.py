"""`show security flow status` and `show security flow pmi statistics`: the CPU path's modes
(PowerMode IPsec, the QAT device model) and its vector counters. Pure renderers over
snapshots; docs/junos-formats.md §4.8 and §4.9 give the formats and where they come from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["FlowStatus", "PmiStatistics", "flow_status", "pmi_statistics",
           "render_flow_status", "render_pmi_statistics"]


@dataclass(frozen=True)
class FlowStatus:
    """What `show security flow status` reports of the model."""

    power_mode_ipsec: bool
    qat: bool


@dataclass(frozen=True)
class PmiStatistics:
    """The CPU path's packet processing counters (`CpuEngine.pmi_counters`) and, when the QAT
    device model is configured, its ring settings and counters (`CpuEngine.qat_counters`)."""

    enabled: bool
    vectors: int
    vector_encrypt: int
    vector_decrypt: int
    regular_encrypt: int
    regular_decrypt: int
    replay_runs: int
    qat_ring_depth: Optional[int] = None
    qat_batch_size: Optional[int] = None
    qat: Optional[dict[str, int]] = None


def flow_status(cpu) -> FlowStatus:
    """The flow status of a gateway's CPU engine."""
    return FlowStatus(power_mode_ipsec=cpu.pmi, qat=cpu.qat is not None)


def pmi_statistics(cpu) -> PmiStatistics:
    """A snapshot of a CPU engine's PMI (and QAT) counters."""
    c = cpu.pmi_counters()
    q = cpu.qat_counters()
    dev = cpu.qat
    return PmiStatistics(
        enabled=cpu.pmi, vectors=c.vectors, vector_encrypt=c.vector_encrypt,
        vector_decrypt=c.vector_decrypt, regular_encrypt=c.regular_encrypt,
        regular_decrypt=c.regular_decrypt, replay_runs=c.replay_runs,
        qat_ring_depth=None if dev is None else dev.ring_depth,
        qat_batch_size=None if dev is None else dev.batch_size,
        qat=None if q is None else q.as_dict())


def _on(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


def render_flow_status(s: FlowStatus) -> str:
    """`show security flow status`, the lines the model speaks for (Junos 25.x wording)."""
    return "\n".join([
        "  Flow forwarding mode:",
        "    Inet forwarding mode: flow based",
        "    Inet6 forwarding mode: flow based",
        "  Flow trace status",
        "    Flow tracing status: off",
        f"  Flow power mode IPsec: {_on(s.power_mode_ipsec)}",
        f"  Flow power mode IPsec QAT: {_on(s.qat)}",
    ]) + "\n"


def _line(label: str, value: int, indent: int = 2, width: int = 40) -> str:
    text = " " * indent + label + ":"
    return f"{text:<{width}}{value:>12}"


def render_pmi_statistics(s: PmiStatistics) -> str:
    """`show security flow pmi statistics` (the model's layout, docs/junos-formats.md §4.9)."""
    lines = ["PMI statistics:",
             f"  PMI: {_on(s.enabled)}",
             _line("Vectors", s.vectors),
             "  Packets processed in vectors:",
             _line("Encrypt", s.vector_encrypt, 4),
             _line("Decrypt", s.vector_decrypt, 4),
             "  Packets processed one by one:",
             _line("Encrypt", s.regular_encrypt, 4),
             _line("Decrypt", s.regular_decrypt, 4),
             _line("Anti-replay window updates per run", s.replay_runs)]
    if s.qat is None:
        lines.append("  QAT: Disabled")
    else:
        q = s.qat
        lines += [f"  QAT: Enabled, Ring depth: {s.qat_ring_depth}, "
                  f"Batch size: {s.qat_batch_size}",
                  _line("Requests", q["requests"], 4),
                  _line("Responses", q["responses"], 4),
                  _line("Doorbells", q["doorbells"], 4),
                  _line("Ring full", q["ring_full"], 4),
                  _line("Polls", q["polls"], 4),
                  _line("Empty polls", q["empty_polls"], 4),
                  _line("Error responses", q["errors"], 4),
                  _line("Maximum in flight", q["max_in_flight"], 4)]
    return "\n".join(lines) + "\n"
