"""The GDOI key server (RFC 6407 §1.2 "GCKS"), sans-I/O: Junos `security group-vpn server`.

Driven like the IKE managers: `receive_datagram(data, addr, now)`, `handle_timer(now)` and
API calls (`rekey`, `evict`); it produces `datagrams_to_send(now)` and `get_timer()`.

- Registration: IKEv1 Phase 1 (Main Mode, PSK or certificates) on the GDOI port, then a
  GROUPKEY-PULL (`pull.py`). A member is refused (a protected notification) if the group ID
  is unknown, its address is not one of the group's `ike-gateway`s, or the group holds
  `member-threshold` members already.
- Each group holds its TEKs (one per `ipsec-sa` and generation). Each registration has its
  own KEK and its own push sequence (1, 2, 3, ... from the SEQ of its GROUPKEY-PULL): pushes
  are unicast, so a member sees every number of its sequence and knows when it missed a push
  (it then registers again at once, `member.py`).
- Rekey before expiry: `margin` seconds before the newest TEK of an `ipsec-sa` expires, a new
  TEK is made and pushed (GROUPKEY-PUSH, unicast to every registered member, as Junos does);
  the old TEK stays valid until it expires, so traffic moves over without loss. Members send
  with the new TEK after the GAP activation delay.
- Removal: `evict` forgets the member and rekeys at once with a push that goes to everyone
  else and deletes the old TEKs (Delete payload). Unicast pushes are encrypted with a KEK per
  member (each registration gets its own KEK), so the evicted member cannot read the push
  that excludes it even if it sees it on the wire; the signature key is the server's.
- KEKs are replaced by a push to their member before they expire.

Bounded state: ISAKMP SAs (`MAX_SESSIONS`, oldest closed first), members per group
(`member-threshold`), TEKs per group (current and previous generation per `ipsec-sa`).
"""
from __future__ import annotations

import ipaddress
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from cryptography.hazmat.primitives.asymmetric import rsa

from ..ike.errors import RemoteIkeError
from ..ike.states import IkeV1SaState
from ..ike.v1.constants import ExchangeType, NotifyType, PayloadType
from ..ike.v1.config import IkeV1Config
from ..ike.v1.isakmp import DeletePayload, HEADER_LEN, Payload
from .config import KEK_ENCRYPTION, ServerGroup
from .constants import DOI_GDOI, GapAttr, TekProtocol
from .keys import Tek, kek_key_packet, kek_payload, new_tek, tek_key_packet, tek_payload
from .payloads import Attr, GapPayload, GdoiSaPayload, KdPayload
from .pull import GdoiSession
from .push import JUNOS_SIG_HASH, Kek, seal_push

Addr = tuple
#: most ISAKMP SAs the key server keeps, and per member address
MAX_SESSIONS = 4096
MAX_SESSIONS_PER_PEER = 2
#: how long an offered registration holds its member-threshold slot
PENDING_TTL = 60.0
#: most evicted members a group remembers (refused until readmitted)
MAX_BANNED = 4096


@dataclass
class Registration:
    """A registered member (`show security group-vpn server registered-members`)."""

    address: Addr
    group_id: int
    kek: Kek
    registered_at: float
    pushes: int = 0
    #: the SEQ of the last push sent to this member (its own sequence, see module docstring)
    last_seq: int = 0
    #: the key server's `ike gateway` the member came through
    gateway: str = ""


@dataclass
class GroupState:
    config: ServerGroup
    teks: list[Tek] = field(default_factory=list)
    members: "OrderedDict[str, Registration]" = field(default_factory=OrderedDict)
    rekeys: int = 0
    evictions: int = 0
    refused: int = 0
    #: registrations in progress (offered, not yet keyed): host -> until when the slot is
    #: held; they count against member-threshold, so concurrent pulls cannot overshoot it
    pending: "OrderedDict[str, float]" = field(default_factory=OrderedDict)
    #: evicted members, refused until `readmit` (bounded: MAX_BANNED, oldest forgotten)
    banned: "OrderedDict[str, float]" = field(default_factory=OrderedDict)


class KeyServer:
    """A key server with its groups."""

    def __init__(self, groups: Sequence[ServerGroup], ike: Sequence[tuple[str, IkeV1Config]],
                 local_addr: Addr, *, signing_key: Optional[rsa.RSAPrivateKey] = None,
                 random: Callable[[int], bytes] = os.urandom, now: float = 0.0) -> None:
        self.local_addr = tuple(local_addr)
        self.random = random
        #: (network, config) per allowed peer range, most specific first
        self.ike = sorted(((ipaddress.ip_network(n, strict=False), c) for n, c in ike),
                          key=lambda nc: -nc[0].prefixlen)
        self.signing_key = signing_key or rsa.generate_private_key(65537, 2048)
        self.groups: dict[int, GroupState] = {}
        for g in groups:
            if g.group_id in self.groups:
                raise ValueError(f"group-id {g.group_id} used twice")
            st = GroupState(g)
            self.groups[g.group_id] = st
            for s in g.ipsec_sas:
                st.teks.append(self._new_tek(st, s, now))
        self.sessions: OrderedDict[bytes, GdoiSession] = OrderedDict()
        self._out: list[tuple[bytes, Addr]] = []
        self.drops: dict[str, int] = {}

    # -- keys ----------------------------------------------------------------------------
    def _new_spi(self) -> int:
        used = {t.spi for g in self.groups.values() for t in g.teks}
        while True:
            spi = int.from_bytes(self.random(4), "big")
            if spi >= 256 and spi not in used:
                return spi

    def _new_tek(self, st: GroupState, ipsec_sa, now: float) -> Tek:
        return new_tek(self._new_spi(), ipsec_sa, now, self.random,
                       st.config.anti_replay_time_window)

    def _new_kek(self, st: GroupState, now: float) -> Kek:
        c = st.config
        return Kek(self.random(16), self.random(KEK_ENCRYPTION[c.kek_encryption]),
                   now + c.kek_lifetime_seconds, JUNOS_SIG_HASH[c.sig_hash],
                   private_key=self.signing_key)

    def active_teks(self, st: GroupState, now: float) -> list[Tek]:
        return [t for t in st.teks if t.expires > now]

    # -- GROUPKEY-PULL provider ----------------------------------------------------------
    def pull_offer(self, session: GdoiSession, group_id: int):
        st = self.groups.get(group_id)
        if st is None:
            raise RemoteIkeError(f"unknown group {group_id}", NotifyType.INVALID_ID_INFORMATION)
        host = session.remote_addr[0]
        ip = ipaddress.ip_address(host)
        if host in st.banned or not any(ip in ipaddress.ip_network(n, strict=False)
                                        for n in st.config.members):
            st.refused += 1
            raise RemoteIkeError(f"{host} is not a member of group {group_id}",
                                 NotifyType.AUTHENTICATION_FAILED)
        now = session.now
        for h, until in list(st.pending.items()):
            if until <= now:
                del st.pending[h]
        taken = len(st.members) + sum(1 for h in st.pending if h not in st.members)
        if host not in st.members and host not in st.pending and \
                taken >= st.config.member_threshold:
            st.refused += 1
            raise RemoteIkeError(f"group {group_id} has {taken} members "
                                 "(member-threshold)", NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        st.pending[host] = now + PENDING_TTL
        kek = self._new_kek(st, now)
        sa = GdoiSaPayload(kek=kek_payload(kek, now, self.local_addr[0], host),
                           teks=[tek_payload(t, now) for t in self.active_teks(st, now)])
        return sa, (kek, [t.spi for t in self.active_teks(st, now)])

    def pull_keys(self, session: GdoiSession, group_id: int, ctx) -> tuple[int, KdPayload]:
        kek, spis = ctx
        st = self.groups[group_id]
        teks = [t for t in st.teks if t.spi in spis]
        host = session.remote_addr[0]
        st.pending.pop(host, None)
        st.members.pop(host, None)
        st.members[host] = Registration(tuple(session.remote_addr), group_id, kek, session.now,
                                        gateway=session.config.name)
        return 0, KdPayload([tek_key_packet(t) for t in teks] + [kek_key_packet(kek)])

    # -- GROUPKEY-PUSH -------------------------------------------------------------------
    def _push(self, st: GroupState, reg: Registration, payloads: list[Payload]) -> None:
        reg.pushes += 1
        reg.last_seq += 1
        self._out.append((seal_push(reg.kek, reg.last_seq, payloads, self.random),
                          reg.address))

    def rekey(self, group_id: int, now: float, *, delete_old: bool = False,
              activation_delay: Optional[int] = None) -> list[Tek]:
        """New TEKs for every `ipsec-sa` of the group, pushed to every member (RFC 6407 §4).
        With `delete_old`, the old TEKs are deleted (members drop them at once)."""
        st = self.groups[group_id]
        old = self.active_teks(st, now)
        fresh = [self._new_tek(st, s, now) for s in st.config.ipsec_sas]
        for t in old:
            t.rekeyed = True
        # bounded: at most the previous and the current generation of each ipsec-sa; what
        # falls out (or, with delete_old, every old TEK) is deleted at the members too
        keep: list[Tek] = []
        for t in reversed(old + fresh):
            if (not delete_old or t in fresh) and \
                    sum(1 for k in keep if k.ipsec_sa == t.ipsec_sa) < 2:
                keep.append(t)
        st.teks = list(reversed(keep))
        dropped = [t for t in old if t not in st.teks]
        st.rekeys += 1
        delay = st.config.activation_time_delay if activation_delay is None else \
            activation_delay
        for reg in list(st.members.values()):
            payloads: list[Payload] = []
            if dropped:
                payloads.append(DeletePayload(TekProtocol.ESP,
                                              [struct.pack("!I", t.spi) for t in dropped],
                                              doi=DOI_GDOI))
            gap = GapPayload((Attr(GapAttr.ACTIVATION_TIME_DELAY, delay),)) if delay else None
            payloads += [GdoiSaPayload(gap=gap, teks=[tek_payload(t, now) for t in fresh]),
                         KdPayload([tek_key_packet(t) for t in fresh])]
            self._push(st, reg, payloads)
        return fresh

    def evict(self, group_id: int, host: str, now: float, ban: bool = True) -> bool:
        """Remove a member: forget it, then rekey with a push to everyone else that deletes
        the TEKs it knows. With `ban` (the default) it may not register again until
        `readmit`; without, this is Junos `clear security group-vpn server
        registered-members` (the member may come back by registering)."""
        st = self.groups.get(group_id)
        if st is None or st.members.pop(host, None) is None:
            return False
        st.evictions += 1
        if ban:
            st.banned[host] = now
            while len(st.banned) > MAX_BANNED:
                st.banned.popitem(last=False)
        for s in list(self.sessions.values()):
            if s.remote_addr[0] == host:
                s.drop("member evicted")
        self.rekey(group_id, now, delete_old=True, activation_delay=0)
        return True

    def readmit(self, group_id: int, host: str) -> bool:
        """Let an evicted member register again."""
        st = self.groups.get(group_id)
        return st is not None and st.banned.pop(host, None) is not None

    def _rekey_kek(self, st: GroupState, reg: Registration, now: float) -> None:
        new = self._new_kek(st, now)
        sa = GdoiSaPayload(kek=kek_payload(new, now, self.local_addr[0], reg.address[0]))
        self._push(st, reg, [sa, KdPayload([kek_key_packet(new)])])
        reg.kek = new

    # -- the sans-I/O surface ------------------------------------------------------------
    def config_for(self, addr: Addr) -> Optional[IkeV1Config]:
        ip = ipaddress.ip_address(addr[0])
        return next((c for n, c in self.ike if ip.version == n.version and ip in n), None)

    def _count(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """One UDP payload from port 848."""
        data = bytes(data)
        if len(data) < HEADER_LEN:
            self._count("short")
            return
        cky_i, cky_r = data[:8], data[8:16]
        s = self.sessions.get(cky_i)
        if s is None:
            if cky_r != bytes(8) or data[18] != ExchangeType.MAIN or data[16] != PayloadType.SA:
                self._count("unknown-sa")
                return
            cfg = self.config_for(addr)
            if cfg is None:
                self._count("no-gateway")
                return
            self._collect(now)
            if len(self.sessions) >= MAX_SESSIONS:
                self._count("session-limit")
                return
            # a member re-registering replaces its older ISAKMP SAs: at most
            # MAX_SESSIONS_PER_PEER per address (oldest dropped)
            mine = [k for k, o in self.sessions.items() if o.remote_addr[0] == addr[0]]
            for k in mine[:max(0, len(mine) - MAX_SESSIONS_PER_PEER + 1)]:
                self.sessions.pop(k).drop("replaced by a newer registration")
            s = GdoiSession(cfg, initiator=False, local_addr=self.local_addr,
                            remote_addr=tuple(addr), now=now, provider=self)
            self.sessions[cky_i] = s
        s.receive_datagram(data, addr, now)
        self._drain(s, now)

    def _drain(self, s: GdoiSession, now: float) -> None:
        self._out += s.datagrams_to_send(now)
        while s.next_event() is not None:
            pass

    def _collect(self, now: float) -> None:
        for k, s in list(self.sessions.items()):
            if s.state == IkeV1SaState.CLOSED:
                del self.sessions[k]
        while len(self.sessions) >= MAX_SESSIONS:
            k, s = self.sessions.popitem(last=False)
            s.drop("session limit")

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> Optional[float]:
        times = [t for t in (s.get_timer() for s in self.sessions.values()) if t is not None]
        for st in self.groups.values():
            for t in self._newest(st):
                times.append(t.expires - st.config.margin)
            for reg in st.members.values():
                times.append(reg.kek.expires - st.config.kek_margin)
        return min(times) if times else None

    @staticmethod
    def _newest(st: GroupState) -> list[Tek]:
        newest: dict[str, Tek] = {}
        for t in st.teks:
            if t.ipsec_sa not in newest or t.created > newest[t.ipsec_sa].created:
                newest[t.ipsec_sa] = t
        return list(newest.values())

    def handle_timer(self, now: float) -> None:
        for s in list(self.sessions.values()):
            t = s.get_timer()
            if t is not None and t <= now:
                s.handle_timer(now)
                self._drain(s, now)
        self._collect(now)
        for gid, st in self.groups.items():
            if any(t.expires - st.config.margin <= now for t in self._newest(st)):
                self.rekey(gid, now)
            st.teks = [t for t in st.teks if t.expires > now]
            for reg in list(st.members.values()):
                if reg.kek.expires - st.config.kek_margin <= now:
                    self._rekey_kek(st, reg, now)

    # -- show ----------------------------------------------------------------------------
    def registered_members(self, group_id: Optional[int] = None) -> list[Registration]:
        return [r for gid, st in self.groups.items() if group_id in (None, gid)
                for r in st.members.values()]
