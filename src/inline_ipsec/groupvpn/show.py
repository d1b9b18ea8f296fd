"""`show security group-vpn ...` outputs (layouts in docs/junos-formats.md, "Group VPN").

    show security group-vpn member ipsec security-associations [detail]
    show security group-vpn member kek security-associations
    show security group-vpn server registered-members

Every group SA is on the CPU path: each one shows `Hardware Offloaded: No` with its reasons
(`cpu.group.offload_reasons`), as the gateway's `Offload failure reason:` lines.
"""
from __future__ import annotations

import datetime as _dt
from typing import Optional, Sequence

from ..cpu.group import OFFLOAD_REASON, GroupSa, offload_reasons
from .member import GroupMember
from .server import KeyServer

SHOW_COMMANDS = (
    "security group-vpn member ipsec security-associations [detail]",
    "security group-vpn member kek security-associations",
    "security group-vpn server registered-members",
)


def _algo(sa: GroupSa) -> str:
    bits = len(sa.key) * 8
    integ = {"hmac-sha256-128": "sha256", "hmac-sha1-96": "sha1"}.get(sa.integrity or "",
                                                                       sa.integrity or "none")
    return f"ESP:aes-cbc-{bits}/{integ}"


def _life(sa: GroupSa, now: float) -> str:
    return "expired" if sa.expires is None or sa.expires <= now else \
        str(int(sa.expires - now))


def _state(sa: GroupSa, now: float) -> str:
    if sa.expires is not None and sa.expires <= now:
        return "expired"
    return "pending" if sa.not_before > now else "active"


def member_ipsec_sas(members: Sequence[GroupMember], now: float) -> str:
    """`show security group-vpn member ipsec security-associations`."""
    rows = [(m, sa) for m in members for sa in m.group_sas()]
    lines = [f"Total active tunnels: {len(rows)}",
             f"  {'ID':<8}{'Server':<17}{'Port':<6}{'Algorithm':<24}{'SPI':<10}"
             f"{'Life:sec/kb':<13}{'GId':<6}{'vsys':<6}{'HW':<3}"]
    for i, (m, sa) in enumerate(rows):
        lines.append(f"  {'>' + str(500001 + i):<8}{m.vpn.server[0]:<17}{m.vpn.server[1]:<6}"
                     f"{_algo(sa):<24}{sa.spi:08x}  {_life(sa, now) + '/ unlim':<13}"
                     f"{m.group_id:<6}{'root':<6}{'No':<3}")
    return _text(lines)


def _text(lines: list[str]) -> str:
    return "".join(line.rstrip() + "\n" for line in lines)


def member_ipsec_sas_detail(members: Sequence[GroupMember], now: float) -> str:
    """`show security group-vpn member ipsec security-associations detail`."""
    lines: list[str] = []
    for m in members:
        lines += [f"  Virtual-system: root  Group VPN Name: {m.vpn.name}",
                  f"    Local Gateway: {m.local_addr[0]}, GDOI Server: {m.vpn.server[0]}",
                  f"    Group Id: {m.group_id}",
                  f"    Registration: {m.state}, pushes accepted: {m.pushes}, "
                  f"push drops: {sum(m.push_drops.values())}"
                  + "".join(f", {k}: {v}" for k, v in sorted(m.push_drops.items())),
                  "    DF-bit: clear, Address preservation: source-and-destination",
                  "    Hardware Offloaded: No",
                  f"      Offload failure reason: {OFFLOAD_REASON}"]
        for sa in m.group_sas():
            window = f"time-based, {sa.replay_window_s:g} seconds" if sa.replay_window_s \
                else "disabled"
            lines += [f"    Direction: inbound and outbound, SPI: {sa.spi:08x}, "
                      f"State: {_state(sa, now)}",
                      f"      Hard lifetime: Expires in {_life(sa, now)} seconds",
                      "      Lifesize Remaining:  Unlimited",
                      "      Mode: Tunnel (address preservation), Type: group, "
                      f"Protocol: ESP, Authentication: {sa.integrity}, "
                      f"Encryption: aes-cbc ({len(sa.key) * 8} bits)",
                      f"      Anti-replay service: {window}",
                      f"      Policy: source {sa.policy.src}, destination {sa.policy.dst}, "
                      f"protocol {sa.policy.protocol or 'any'}",
                      f"      Packets: out {sa.out_packets}, in {sa.in_packets}; "
                      f"bytes: out {sa.out_bytes}, in {sa.in_bytes}",
                      "      Hardware Offloaded: No",
                      *[f"        Offload failure reason: {r}" for r in offload_reasons(sa)]]
        drops = m.engine.drops
        if drops:
            lines.append("    Drops: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    return _text(lines)


def member_kek_sas(members: Sequence[GroupMember], now: float) -> str:
    """`show security group-vpn member kek security-associations`."""
    lines = [f"{'Index':<9}{'Server Address':<17}{'Member Address':<17}{'State':<8}"
             f"{'Life':<7}{'Group Id':<9}{'Last SEQ':<9}"]
    for i, m in enumerate(members):
        k = m.kek
        if k is None:
            continue
        life = max(0, int(k.expires - now))
        lines.append(f"{5401617 + i:<9}{m.vpn.server[0]:<17}{m.local_addr[0]:<17}"
                     f"{'Ready' if life else 'Expired':<8}{life:<7}{m.group_id:<9}"
                     f"{m.last_seq:<9}")
        lines.append(f"  Cookie: {k.spi[:8].hex()} {k.spi[8:].hex()}")
    return _text(lines)


def _when(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%a %b %d %Y %H:%M:%S")


def server_registered_members(ks: KeyServer, group_id: Optional[int] = None) -> str:
    """`show security group-vpn server registered-members`."""
    lines: list[str] = []
    for gid, st in ks.groups.items():
        if group_id not in (None, gid):
            continue
        lines += [f"Group: {st.config.name}, Group Id: {gid}",
                  f"  Total number of registered members: {len(st.members)}",
                  f"  Rekeys: {st.rekeys}, Evictions: {st.evictions}, Refused: {st.refused}",
                  f"{'Member Gateway':<17}{'Member IP':<17}{'Last Update':<27}"
                  f"{'Pushes':<8}{'Vsys':<5}"]
        for r in st.members.values():
            lines.append(f"{r.gateway or '-':<17}{r.address[0]:<17}{_when(r.registered_at):<27}"
                         f"{r.pushes:<8}{'root':<5}")
    return _text(lines)


class ShowError(ValueError):
    """A show command the group VPN node does not understand."""


def show(command: str, *, server: Optional[KeyServer] = None,
         members: Sequence[GroupMember] = (), now: float = 0.0) -> str:
    """Run one of `SHOW_COMMANDS`."""
    words = command.split()
    if words and words[0] == "show":
        words = words[1:]
    key = " ".join(words)
    if key == "security group-vpn member ipsec security-associations":
        return member_ipsec_sas(members, now)
    if key == "security group-vpn member ipsec security-associations detail":
        return member_ipsec_sas_detail(members, now)
    if key == "security group-vpn member kek security-associations":
        return member_kek_sas(members, now)
    if key == "security group-vpn server registered-members":
        if server is None:
            raise ShowError("not a group VPN server")
        return server_registered_members(server)
    raise ShowError(f"unknown command: {command!r}; one of: " + "; ".join(SHOW_COMMANDS))
