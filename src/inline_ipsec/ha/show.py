"""`show chassis high-availability ...` for an `MnhaNode` (docs/junos-formats.md §MNHA).

Pure renderers: they read the node and return text, in the layout Junos 23.x+ prints for
Multinode High Availability (field names and indentation; the model has no hardware or
software-upgrade monitors, so those failure codes never appear).
"""
from __future__ import annotations

from .node import MnhaNode
from .srg import SrgState

__all__ = ["information", "services_redundancy_group", "HA_SHOW_COMMANDS", "render"]

_CODES = """Node failure codes:
    HW  Hardware monitoring    LB  Loopback monitoring
    MB  Mbuf monitoring        SP  SPU monitoring
    CS  Cold Sync monitoring   SU  Software Upgrade
"""

_SRG_CODES = """SRG failure event codes:
    BF  BFD monitoring
    IP  IP monitoring
    IF  Interface monitoring
    CP  Control Plane monitoring
"""


def _peer_block(node: MnhaNode) -> list[str]:
    peer = node.ha.peer
    assert peer is not None
    return [
        "HA Peer Information:",
        "",
        f"  Peer Id: {node.peer_id:<10} IP address: {node.peer_ip:<15} "
        f"Interface: {peer.interface or '-'}",
        "   Routing Instance: default",
        f"   Encrypted: YES      Conn State: {'UP' if node.peer_alive else 'DOWN'}",
        f"   Cold Sync Status: {'COMPLETE' if node.peer_sync_done else 'IN PROGRESS'}",
    ]


def _srg_lines(node: MnhaNode, sid: int, detail: bool) -> list[str]:
    cfg = node.ha.srgs[sid]
    if sid == 0:
        return [f"Services Redundancy Group: 0",
                "        Current State: ONLINE",
                "        Peer Information:",
                f"          Peer Id: {node.peer_id}"]
    m = node.srgs[sid]
    events = "IF" if m.state is SrgState.INELIGIBLE else "NONE"
    peer = m.peer if node.peer_alive else None
    lines = [
        f"Services Redundancy Group: {sid}",
        f"        Deployment Type: {(cfg.deployment_type or 'routing').upper()}",
        f"        Status: {m.state.value}",
        f"        Activeness Priority: {m.priority}",
        f"        Preemption: {'ENABLED' if m.preemption else 'DISABLED'}",
        "        Process Packet In Backup State: NO",
        f"        Control Plane State: {'READY' if m.state is not SrgState.HOLD else 'NOT READY'}",
        "        System Integrity Check: N/A",
        f"        Failure Events: {events}",
    ]
    if detail:
        for v in cfg.virtual_ips:
            lines.append(f"        Virtual IP Info:")
            lines.append(f"          Index: {v.index}")
            lines.append(f"          IP: {v.ip or '-'}")
            lines.append(f"          VMAC: N/A")
            lines.append(f"          Interface: {v.interface or '-'}")
            owner = node.network.owner(v.address) if v.address else None
            lines.append(f"          Status: {'INSTALLED' if owner == node.node_id else 'NOT INSTALLED'}")
        if cfg.monitor_interfaces:
            lines.append("        Interface Monitoring:")
            for name in cfg.monitor_interfaces:
                state = "DOWN" if name in node.down_interfaces else "UP"
                lines.append(f"          {name:<20} {state}")
        if cfg.activeness_probe:
            lines.append(f"        Activeness Probe: dest-ip {cfg.activeness_probe}")
        last = node.last_transition.get(sid)
        if last is not None:
            lines.append(f"        Last State Change Reason: {last[1].reason}")
        lines.append(f"        Tunnels: {sum(1 for v, s in node.vpn_srg.items() if s == sid)}")
    lines += ["        Peer Information:", f"          Peer Id: {node.peer_id}"]
    if peer is None:
        lines += ["          Status : UNKNOWN", "          Health Status: UNKNOWN",
                  "          Failover Readiness: UNKNOWN"]
    else:
        lines += [f"          Status : {peer.state.value}",
                  f"          Health Status: {'HEALTHY' if peer.healthy else 'UNHEALTHY'}",
                  f"          Failover Readiness: {'READY' if peer.ready else 'NOT READY'}"]
    return lines


def information(node: MnhaNode, detail: bool = False) -> str:
    """`show chassis high-availability information [detail]`."""
    lines = _CODES.splitlines() + [
        "",
        "Node Status: ONLINE",
        f"Local-id: {node.node_id}",
        f"Local-IP: {node.local_ip}",
    ]
    lines += _peer_block(node) + [""]
    for sid in sorted(node.ha.srgs):
        lines += _srg_lines(node, sid, detail) + [""]
        if sid == 0:
            lines += _SRG_CODES.splitlines() + [""]
    if detail:
        c = node.counters
        lines += [
            "Run-time object synchronisation:",
            f"  Heartbeats sent/received: {c.heartbeats_sent}/{c.heartbeats_received}",
            f"  RTO messages sent/received/errors: {c.rto_sent}/{c.rto_received}/"
            f"{c.rto_errors}",
            f"  IPsec SAs synchronised out/in: {c.sa_synced_out}/{c.sa_synced_in}",
            f"  Sequence-number reservations/acks: {c.seq_reservations}/{c.seq_acks}",
            f"  Packets dropped waiting for a reservation: {c.seq_waits}",
            f"  Takeovers/yields/peer losses: {c.takeovers}/{c.yields}/{c.peer_lost}",
            "",
            "Events:",
        ]
        lines += [f"  {t:10.3f}  {text}" for t, text in node.events]
        lines.append("")
    return "\n".join(lines)


def services_redundancy_group(node: MnhaNode, sid: int) -> str:
    """`show chassis high-availability services-redundancy-group N`."""
    if sid not in node.ha.srgs:
        raise KeyError(f"services-redundancy-group {sid} is not configured")
    return "\n".join(_srg_lines(node, sid, detail=True)) + "\n"


HA_SHOW_COMMANDS = (
    "show chassis high-availability information",
    "show chassis high-availability information detail",
    "show chassis high-availability services-redundancy-group <n>",
)


def render(node: MnhaNode, command: str) -> str:
    """One of `HA_SHOW_COMMANDS` (exact words)."""
    words = command.split()
    if words[:3] != ["show", "chassis", "high-availability"]:
        raise KeyError(f"not an MNHA show command: {command!r}")
    rest = words[3:]
    if rest == ["information"]:
        return information(node)
    if rest == ["information", "detail"]:
        return information(node, detail=True)
    if len(rest) == 2 and rest[0] == "services-redundancy-group" and rest[1].isdigit():
        return services_redundancy_group(node, int(rest[1]))
    raise KeyError(f"unknown MNHA show command {command!r}; expected one of "
                   + ", ".join(HA_SHOW_COMMANDS))
