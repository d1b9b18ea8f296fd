"""The group VPN part of `inline-ipsec demo`: a key server and three members built from Junos
`set security group-vpn` statements, over loopback UDP (GDOI on real sockets): registration,
traffic between every pair of members with the outer header equal to the inner one, a pushed
rekey with traffic continuing, an eviction, and the show commands."""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Callable

from ..config import load_config
from ..ike.states import GroupMemberState
from .member import GroupMember
from .server import KeyServer
from .show import show
from .udp import GdoiUdpEndpoint

KS = "127.0.0.1"
MEMBERS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
P1 = ("ike proposal P1 authentication-method pre-shared-keys",
      "ike proposal P1 dh-group group14", "ike proposal P1 authentication-algorithm sha-256",
      "ike proposal P1 encryption-algorithm aes-256-cbc", "ike policy POL mode main",
      "ike policy POL proposals P1", 'ike policy POL pre-shared-key ascii-text "demo-group"')


def server_config() -> str:
    lines = [f"set security group-vpn server {s}" for s in P1]
    for i, m in enumerate(MEMBERS, 1):
        lines += [f"set security group-vpn server ike gateway GM{i} ike-policy POL",
                  f"set security group-vpn server ike gateway GM{i} address {m}"]
    g = "set security group-vpn server group G1"
    lines += ["set security group-vpn server ipsec proposal GP authentication-algorithm "
              "hmac-sha-256-128",
              "set security group-vpn server ipsec proposal GP encryption-algorithm "
              "aes-256-cbc",
              "set security group-vpn server ipsec proposal GP lifetime-seconds 3600",
              f"{g} group-id 1", f"{g} server-address {KS}", f"{g} anti-replay-time-window 60",
              *[f"{g} ike-gateway GM{i}" for i in range(1, len(MEMBERS) + 1)],
              f"{g} ipsec-sa GSA proposal GP",
              f"{g} ipsec-sa GSA match-policy MP source 10.0.0.0/8",
              f"{g} ipsec-sa GSA match-policy MP destination 10.0.0.0/8"]
    return "\n".join(lines) + "\n"


def member_config(address: str) -> str:
    lines = [f"set security group-vpn member {s}" for s in P1]
    lines += ["set security group-vpn member ike gateway KS ike-policy POL",
              f"set security group-vpn member ike gateway KS server-address {KS}",
              f"set security group-vpn member ike gateway KS local-address {address}",
              "set security group-vpn member ipsec vpn GV ike-gateway KS",
              "set security group-vpn member ipsec vpn GV group 1"]
    return "\n".join(lines) + "\n"


def _packet(src: str, dst: str, payload: bytes) -> bytes:
    from ..io.traffic import udp_packet
    return udp_packet(src, dst, payload, sport=4000, dport=5000)


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.005)
    return True


def _all_pairs(members: dict[str, GroupMember], payload: bytes) -> tuple[int, int]:
    """Every member sends to every other; returns (delivered, outer == inner)."""
    ok = same = 0
    for a, b in itertools.permutations(members, 2):
        inner = _packet(f"10.0.0.{MEMBERS.index(a) + 1}", f"10.0.0.{MEMBERS.index(b) + 1}",
                        payload)
        kind, esp = members[a].engine.protect(inner)
        if kind != "esp":
            continue
        same += esp[12:20] == inner[12:20]
        ok += members[b].engine.unprotect(esp) == inner
    return ok, same


async def _scenario(w: Callable[[str], object]) -> None:
    t0 = time.perf_counter()
    scfg = load_config(server_config()).group_vpn
    ks_ep = await GdoiUdpEndpoint.create(
        lambda addr: KeyServer(scfg.server_groups(), scfg.server_ike(), addr,
                               now=time.time()), KS, 0)
    ks = ks_ep.node
    eps = {}
    for m in MEMBERS:
        (vpn,) = load_config(member_config(m)).group_vpn.member_vpns()
        vpn.server = ks_ep.address
        eps[m] = await GdoiUdpEndpoint.create(lambda addr, v=vpn: GroupMember(v, addr), m, 0)
    members = {m: ep.node for m, ep in eps.items()}
    try:
        for ep in eps.values():
            ep.node.start(time.time())
            ep.flush()
        ok = await _until(lambda: all(m.state == GroupMemberState.REGISTERED
                                      for m in members.values()))
        w(f"  key server {KS}:{ks_ep.address[1]}, members {', '.join(MEMBERS)}: "
          f"{'all registered' if ok else 'NOT all registered'} in "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms (IKEv1 Main Mode + GROUPKEY-PULL "
          "each)\n")
        n, same = _all_pairs(members, b"group traffic")
        w(f"  traffic between every pair of members: {n}/6 packets decrypted, {same}/6 with "
          "outer src/dst = inner src/dst\n")
        ks.rekey(1, time.time(), activation_delay=0)
        ks_ep.flush()
        await _until(lambda: all(m.pushes == 1 for m in members.values()))
        n2, _ = _all_pairs(members, b"after the rekey")
        w(f"  pushed rekey (GROUPKEY-PUSH, KEK-encrypted, RSA-signed, SEQ): "
          f"{sum(m.pushes for m in members.values())} pushes accepted, {n2}/6 packets on the "
          "new TEK\n")
        victim = MEMBERS[2]
        ks.evict(1, victim, time.time())
        ks_ep.flush()
        await _until(lambda: all(members[m].pushes == 2 for m in MEMBERS[:2]))
        inner = _packet("10.0.0.1", "10.0.0.3", b"not for the evicted member")
        _, esp = members[MEMBERS[0]].engine.protect(inner)
        gone = members[victim].engine.unprotect(esp) is None
        n3, _ = _all_pairs({m: members[m] for m in MEMBERS[:2]}, b"the rest carry on")
        w(f"  evict {victim}: rekey pushed to the two others only; {victim} "
          f"{'cannot' if gone else 'CAN STILL'} decrypt, the others: {n3}/2 delivered\n")
        w("\n  ks> show security group-vpn server registered-members\n")
        for line in show("security group-vpn server registered-members", server=ks,
                         now=time.time()).splitlines():
            w(f"  {line}\n")
        w(f"\n  {MEMBERS[0]}> show security group-vpn member ipsec security-associations\n")
        for line in show("security group-vpn member ipsec security-associations",
                         members=[members[MEMBERS[0]]], now=time.time()).splitlines():
            w(f"  {line}\n")
        w(f"\n  {MEMBERS[0]}> show security group-vpn member kek security-associations\n")
        for line in show("security group-vpn member kek security-associations",
                         members=[members[MEMBERS[0]]], now=time.time()).splitlines():
            w(f"  {line}\n")
    finally:
        for ep in [ks_ep, *eps.values()]:
            ep.close()


def run_section(w: Callable[[str], object]) -> None:
    """Write the group VPN section (the caller writes the heading)."""
    asyncio.run(_scenario(w))
