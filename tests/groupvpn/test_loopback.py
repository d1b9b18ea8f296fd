"""The key server and three members over real UDP sockets on loopback: registration, a
pushed rekey, an eviction; traffic between members with the TEKs they received over the
wire (outer == inner addresses)."""
from __future__ import annotations

import asyncio
import itertools
import time

from scapy.layers.inet import IP

from gdoi_helpers import group, ike, ipv4_udp, signing_key
from inline_ipsec.cpu.group import GroupEngine
from inline_ipsec.groupvpn import GroupMember, KeyServer, MemberVpn
from inline_ipsec.groupvpn.udp import GdoiUdpEndpoint

HOSTS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]


async def _until(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def _exchange(members, a: str, b: str, payload: bytes) -> int:
    inner = ipv4_udp(f"10.0.0.{HOSTS.index(a) + 1}", f"10.0.0.{HOSTS.index(b) + 1}", payload)
    kind, esp = members[a].engine.protect(inner)
    assert kind == "esp"
    assert (IP(esp).src, IP(esp).dst) == (IP(inner).src, IP(inner).dst)
    assert members[b].engine.unprotect(esp) == inner
    return int.from_bytes(esp[20:24], "big")


async def _scenario() -> None:
    g = group(members=["127.0.0.0/8"])
    ks_ep = await GdoiUdpEndpoint.create(
        lambda addr: KeyServer([g], [("127.0.0.0/8", ike("ks"))], addr,
                               signing_key=signing_key(), now=time.time()), "127.0.0.1", 0)
    ks = ks_ep.node
    eps = {}
    for h in HOSTS:
        vpn = MemberVpn("GV", 1, ks_ep.address, ike(h))
        eps[h] = await GdoiUdpEndpoint.create(
            lambda addr, vpn=vpn: GroupMember(vpn, addr, GroupEngine()), h, 0)
    members = {h: ep.node for h, ep in eps.items()}
    try:
        for ep in eps.values():
            ep.node.start(time.time())
            ep.flush()
        await _until(lambda: all(m.state == "registered" for m in members.values()))
        first = set(members[HOSTS[0]].engine.sas)
        for a, b in itertools.permutations(HOSTS, 2):
            assert _exchange(members, a, b, b"hello") in first
        # a pushed rekey over UDP (activation delay 0: members send with it at once)
        ks.rekey(1, time.time(), activation_delay=0)
        ks_ep.flush()
        await _until(lambda: all(m.pushes == 1 for m in members.values()))
        for a, b in itertools.permutations(HOSTS, 2):
            assert _exchange(members, a, b, b"rekeyed") not in first
        # evict the third member: it keeps only keys nobody uses any more
        ks.evict(1, HOSTS[2], time.time())
        ks_ep.flush()
        await _until(lambda: all(members[h].pushes == 2 for h in HOSTS[:2]))
        inner = ipv4_udp("10.0.0.1", "10.0.0.3", b"not for you")
        _, esp = members[HOSTS[0]].engine.protect(inner)
        assert members[HOSTS[2]].engine.unprotect(esp) is None
        _exchange(members, HOSTS[0], HOSTS[1], b"still here")
        assert ks_ep.received >= 12 and ks_ep.sent >= 12
    finally:
        for ep in [ks_ep, *eps.values()]:
            ep.close()


def test_key_server_and_three_members_over_loopback_udp() -> None:
    asyncio.run(_scenario())
