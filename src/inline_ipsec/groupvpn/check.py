"""What `inline-ipsec check` says about `security group-vpn`: per key server group and per
member VPN, whether it can run, where its group SAs go (always the CPU, with the reason) and
which statements are parsed but not carried out."""
from __future__ import annotations

from ..cpu.group import OFFLOAD_REASON
from ..errors import ConfigError
from ..ike.errors import IkeError


def check_lines(gv) -> list[str]:
    """Lines for a `config.group_vpn.GroupVpnConfig`."""
    lines: list[str] = []
    try:
        groups = gv.server_groups() if gv.is_server else []
        members = gv.member_vpns() if gv.is_member else []
        problem = None
    except (ConfigError, IkeError, ValueError, KeyError) as exc:
        groups, members, problem = [], [], str(exc)
    if problem:
        lines += ["Group VPN: cannot run", f"  reason: {problem}"]
    for g in groups:
        lines += [f"Group VPN Server Group: {g.name}, Group Id: {g.group_id}",
                  f"  Role: key server at {g.server_address or '(any local address)'} "
                  f"udp 848, members from {', '.join(g.members)}, member-threshold "
                  f"{g.member_threshold}",
                  f"  Group SAs: {len(g.ipsec_sas)} ("
                  + ", ".join(f"{s.name}: {s.encryption}/{s.authentication}, "
                              f"{s.match.source} -> {s.match.destination}, "
                              f"{s.lifetime_seconds} s" for s in g.ipsec_sas) + ")",
                  f"  Rekey: pushed (unicast, KEK {g.kek_encryption}, signed {g.sig_hash}) "
                  f"{g.margin:g} s before expiry, activation delay "
                  f"{g.activation_time_delay} s",
                  "  Anti-replay: " + (f"time-based, {g.anti_replay_time_window} s"
                                       if g.anti_replay_time_window else "disabled"),
                  "  Hardware Offloaded: No",
                  f"    Offload failure reason: {OFFLOAD_REASON}",
                  *[f"    Offload failure reason: encryption algorithm {s.encryption} not "
                    "supported by PFE (AES-GCM 128/256 only)" for s in g.ipsec_sas],
                  "  Verdict: can run"]
    for m in members:
        lines += [f"Group VPN Member VPN: {m.name}, Group Id: {m.group_id}",
                  f"  Role: group member of key server {m.server[0]} udp {m.server[1]}"
                  + (f" from {m.local_address}" if m.local_address else ""),
                  "  Hardware Offloaded: No",
                  f"    Offload failure reason: {OFFLOAD_REASON}",
                  "  Verdict: can register"]
    for line, what in gv.unsupported:
        lines.append(f"  not carried out: line {line}: {what}")
    return lines
