"""One key server and members in one process, datagrams passed by hand (no sockets)."""
from __future__ import annotations

import ipaddress
import struct
from typing import Optional

from cryptography.hazmat.primitives.asymmetric import rsa

from inline_ipsec.cpu.group import GroupEngine
from inline_ipsec.groupvpn import (GroupIpsecSa, GroupMember, KeyServer, MatchPolicy,
                                   MemberVpn, ServerGroup)
from inline_ipsec.ike.auth import Identity
from inline_ipsec.ike.v1 import IkeV1Config

PSK = b"group-vpn-secret"
KS = "192.0.2.1"
MEMBERS = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
_KEY: Optional[rsa.RSAPrivateKey] = None


def signing_key() -> rsa.RSAPrivateKey:
    global _KEY
    if _KEY is None:
        _KEY = rsa.generate_private_key(65537, 2048)
    return _KEY


def group(**kw) -> ServerGroup:
    args = dict(name="G1", group_id=1,
                ipsec_sas=[GroupIpsecSa("GSA", MatchPolicy("MP", "10.0.0.0/8", "10.0.0.0/8"),
                                        lifetime_seconds=600)],
                members=["192.0.2.0/24"])
    args.update(kw)
    return ServerGroup(**args)


def ike(name: str) -> IkeV1Config:
    return IkeV1Config(psk=PSK, local_id=Identity.parse(name), children=[], natt=False)


class Net:
    """Delivers datagrams between the key server and members; `now` is a fake clock."""

    def __init__(self, count: int = 3, **group_kw) -> None:
        self.now = 1000.0
        self.ks = KeyServer([group(**group_kw)], [("192.0.2.0/24", ike(KS))], (KS, 848),
                            signing_key=signing_key(), now=self.now)
        self.members: dict[str, GroupMember] = {}
        for host in MEMBERS[:count]:
            vpn = MemberVpn("GV", 1, (KS, 848), ike(host))
            self.members[host] = GroupMember(vpn, (host, 848), GroupEngine(clock=self.clock))
        self.wire: list[tuple[str, str, bytes]] = []     # (src, dst, datagram)
        self.blocked: set[str] = set()

    def clock(self) -> float:
        return self.now

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for dg, addr in self.ks.datagrams_to_send(self.now):
                moved = True
                self.wire.append((KS, addr[0], dg))
                m = self.members.get(addr[0])
                if m is not None and addr[0] not in self.blocked:
                    m.receive_datagram(dg, (KS, 848), self.now)
            for host, m in self.members.items():
                for dg, addr in m.datagrams_to_send(self.now):
                    moved = True
                    self.wire.append((host, addr[0], dg))
                    if host not in self.blocked:
                        self.ks.receive_datagram(dg, (host, 848), self.now)
            if not moved:
                return

    def register_all(self) -> None:
        for m in self.members.values():
            m.start(self.now)
        self.pump()

    def advance(self, seconds: float, step: float = 1.0) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.ks.handle_timer(self.now)
            for m in self.members.values():
                t = m.get_timer()
                if t is not None and t <= self.now:
                    m.handle_timer(self.now)
            self.pump()


def ipv4_udp(src: str, dst: str, payload: bytes, sport: int = 4000,
             dport: int = 5000) -> bytes:
    """An IPv4/UDP packet (checksum 0: allowed for UDP over IPv4)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                                ipaddress.IPv4Address(src).packed,
                                ipaddress.IPv4Address(dst).packed))
    from inline_ipsec.packet.ip import ipv4_set_checksum
    ipv4_set_checksum(hdr, 0)
    return bytes(hdr) + udp
