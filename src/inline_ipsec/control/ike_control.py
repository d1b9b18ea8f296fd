"""`IkeControl`: the gateway's IKE control plane (IKEv2 and IKEv1), sans-I/O (docs/design.md
§1: IKE always runs on the CPU and hands every negotiated SA pair to the distributor).

    ike = IkeControl(gw)                        # or gw.enable_ike(...)
    ike.start(now)                              # establish-tunnels immediately: initiate
    for data, addr in ike.datagrams_to_send(now): sock.sendto(data, addr)
    ike.receive(data, addr, now)                # a UDP payload from port 500 or 4500
    ike.handle_timer(now) when now >= ike.get_timer()

It owns an `IkeManager` (sessions found by SPI, RFC 7296 §2.1) and an `IkeV1Manager`
(ISAKMP SAs found by cookies, RFC 2408 §2.5.3) behind the same two ports: each datagram goes
to one of them by its header's major version (RFC 2408 §3.1 MjVer 1, RFC 7296 §3.1 major
version 2), as a Junos gateway answers both `v1-only` and `v2-only` peers. A `v1-only` IKE
gateway (the Junos default) is negotiated by IKEv1 (`ike_config.ike_v1_config_for_gateway`:
Main or Aggressive Mode, then one Quick Mode per child SA); its sessions have the surface and
the events of IKEv2's, so everything below holds for both versions, with these differences:
IKEv1 has no IKE SA rekey (the initiator re-authenticates with a new Phase 1 that adopts the
IPsec SAs, reported as `IkeSaRekeyed`), the responder picks the gateway by address and then
by the identity the peer proves in Phase 1 (Main Mode PSK fixes the key by address, RFC 2409
§5.4), and crossing Phase 1s are not paired off (IKEv1 SAs are independent of each other;
duplicate IPsec SAs are, by the rule below). Every session's events turn into data-plane
calls through `Gateway.handle_ike_event`:

- ChildSaUp -> install (placement PFE or CPU per Table 1, with reasons) (§1.2, §1.3.1);
- ChildSaRekeyed -> make-before-break rekey, ChildSaDown -> delete (§1.3.3, §2.8, §1.4.1);
- IkeSaDown -> the child SAs that went down with the IKE SA are removed (by
  `Gateway.handle_ike_event` itself, so callers without IkeControl get the same).

One IKE SA per Junos `ike gateway` (`peers`), as on the SRX: the gateway's `IkeConfig`
(`ike_config.ike_config_for_gateway`) holds the child SA configurations of every VPN that
names it, one per traffic selector. The first child SA wanted comes with IKE_AUTH; each
further one is a CREATE_CHILD_SA on the same IKE SA (either end may send one, §1.3), and the
responder picks the VPN by the traffic selectors the initiator proposes (§2.9,
`child_create.by_fit`). Every child SA event names its child configuration and so its VPN;
rekeys and deletes are per child SA, so per VPN, and the IKE SA stays while the gateway has
it (one VPN's delete leaves the others alone). VPNs that cannot come up (`vpn_verdict`: an
AES-GCM Phase 1 on an IKEv1 gateway, identical selectors on one IKE gateway, ...) are not
negotiated; `unsupported` says why.

Lifetimes: the sessions rekey at the soft lifetime and delete at the hard one (§2.8). The
responder's copy of a gateway's child SAs rekeys later than the initiator's (at the middle of
soft..hard), so the two ends do not start simultaneous rekeys (Junos randomises its soft
lifetime to the same end). When both ends still rekey a child SA at once (explicit rekeys,
kilobyte limits), the sessions resolve the collision per §2.8.1 (`ike/v2/tasks/child_rekey.py`):
each end reports one ChildSaRekeyed(old -> survivor) and a ChildSaDown(old); the redundant pair
is never reported, so it never reaches the data plane. Kilobyte (and packet, sequence)
lifetimes are counted by the CPU engine: `poll_engines` reads `CpuEngine.next_event()` and
rekeys on "rekey-due", deletes on "expired".

`establish-tunnels immediately`: `start(now)` initiates. When both ends are configured so, the
end with the lower outer address initiates at once and the other waits `backoff` seconds and
brings up only what is not up by then. When the IKE SA goes down (deleted, dead peer, failed),
its VPNs are negotiated again the same way. `start` paces the initiations: at most
`max_pending` half-open IKE SAs of ours at a time. `establish-tunnels on-traffic`: the first
outbound packet routed to the VPN triggers it (a CREATE_CHILD_SA when its gateway's IKE SA is
up, else a new IKE SA); that packet and all others until the child SA is installed are dropped
and counted (`Gateway.counters.no_route`, and per VPN in `on_traffic_dropped`), as the SRX
drops traffic of a tunnel that is not up.

Duplicates: both ends may bring up the same thing at once, two IKE SAs for one gateway
(crossing initiations) or two child SAs for one child configuration (both ends wanted the VPN
up). One rule decides both alike on the two ends: what the lower-address end initiated stays,
the other goes (RFC 7296 §2.8 leaves duplicates to policy); a pair that replaces an installed
one does so make-before-break (§2.8).

Dead peer detection (the gateway's `dead-peer-detection`, see `IkeV2Session`): before the
sessions' timers run, the tunnels' flow counters (a packet decrypted, a packet encrypted) are
reported to their IKE SA as child SA traffic. A dead peer clears the IKE SA and the child SAs
of all its VPNs; each VPN logs the Junos tunnel event "DPD detected peer as down. Existing
IKE/IPSec SAs cleared" (`status`, shown by `show security ipsec inactive-tunnels` and, once the
tunnel is back, in its `Tunnel events:`).

NAT-T (§2.23): the sessions detect a NAT (or a peer that claims one, `force_encap`) from the
NAT_DETECTION payloads; IKE then moves to the NAT-T port with the non-ESP marker and the
child SAs are UDP-encapsulated (RFC 3948). An IKE SA behind a NAT sends a NAT-keepalive (one
0xFF byte from the NAT-T port, RFC 3948 §2.3) every `nat-keepalive` seconds of its gateway
(default `NAT_KEEPALIVE`); transports send a datagram of that one byte from the NAT-T port.
When the IKE transport is mapped (both gateways on loopback ports instead of their configured
addresses), the ESP-in-UDP ports of the data plane are the standard 4500/4500 and the outer
addresses are the configured ones.

Bounds: the sessions and the manager bound their own state (`ike.manager`); here the event
history (`EVENT_HISTORY`), the error strings (`ERROR_HISTORY`) and each VPN's tunnel events
(`VPN_EVENT_HISTORY`) are rings, per-session records are forgotten with their sessions, and
every other table is keyed by configured VPNs, gateways or live child SAs.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import ipaddress
import itertools
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from .distribution import TunnelEvent
from ..errors import ConfigError, IpsecError
from ..ike import (ChildConfig, ChildSaDown, ChildSaRekeyed, ChildSaUp, Identity, IkeConfig,
                   IkeManager, IkeSaDown, IkeSaRekeyed, IkeSaUp, IkeV2Session)
from ..ike.constants import NON_ESP_MARKER
from ..ike.states import ChildSaState, IkeSaState
from ..ike.v1 import IkeV1Config, IkeV1Manager, IkeV1Session
from ..ike.v1.dispatch import ike_major_version
from ..ike.v2.session import Addr
from .ike_config import IkeConfigError, ike_config_for_gateway, ike_vpns
from .keying import vpn_endpoints
from .vpn_verdict import Verdict, vpn_verdicts

if TYPE_CHECKING:
    from ..dataplane.gateway import Gateway
    from ..dataplane.demux import IkeDatagram

__all__ = ["IkeControl", "SessionInfo", "VpnStatus", "EVENT_HISTORY", "ERROR_HISTORY",
           "VPN_EVENT_HISTORY", "DPD_EVENT"]

#: (VPN, event) pairs kept in `IkeControl.events`, newest last
EVENT_HISTORY = 10_000
#: error strings kept in `IkeControl.errors`
ERROR_HISTORY = 256
#: tunnel events kept per VPN (`VpnStatus.events`), as Junos keeps the recent ones
VPN_EVENT_HISTORY = 32
#: the tunnel event of a peer found dead (Junos wording)
DPD_EVENT = "DPD detected peer as down. Existing IKE/IPSec SAs cleared"
#: seconds between NAT-keepalives without `nat-keepalive` (RFC 3948 §2.3 suggests 20)
NAT_KEEPALIVE = 20.0
#: a NAT-keepalive (RFC 3948 §2.3), sent from the NAT-T port
KEEPALIVE = b"\xff"

#: IKE SA ends (`IkeSaDown.reason`) as tunnel events and down reasons
_DOWN_TEXT = {
    "dead peer": DPD_EVENT,
    "retransmit timeout": "Peer did not respond; existing IKE/IPSec SAs cleared",
    "deleted by peer": "IKE SA delete notification received from peer; existing IPSec SAs "
                       "cleared",
    "deleted": "IKE SA deleted; existing IPSec SAs cleared",
    "half-open timeout": "IKE SA negotiation fails: no IKE_AUTH from peer",
    "replaced by INITIAL_CONTACT": "Peer sent INITIAL_CONTACT; existing IKE/IPSec SAs cleared",
}


class History(deque):
    """A bounded event history that also slices (`events[n:]`), as the list it replaces."""

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return list(itertools.islice(self, *index.indices(len(self))))
        return super().__getitem__(index)


@dataclass
class SessionInfo:
    """What the show commands need about one IKE SA beyond the session itself."""

    index: int
    #: the Junos `ike gateway` the IKE SA belongs to
    gateway: str
    created: float
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    children_created: int = 0
    children_deleted: int = 0
    up_at: Optional[float] = None
    rekeyed_at: Optional[float] = None


@dataclass
class VpnStatus:
    """The IKE side of one configured VPN: tunnel events that outlive its tunnel (Junos
    wording, consecutive repeats counted), negotiations started and failed, why it is down."""

    name: str
    events: deque = field(default_factory=lambda: deque(maxlen=VPN_EVENT_HISTORY))
    negotiations: int = 0
    failures: int = 0
    down_reason: str = "Waiting for negotiation"
    #: the tunnel ID it had when it was last up (Junos keeps one ID per tunnel)
    tunnel_id: Optional[int] = None

    def log(self, when: _dt.datetime, text: str) -> None:
        if self.events and self.events[-1].text == text:
            last = self.events[-1]
            self.events[-1] = dataclasses.replace(last, time=when, count=last.count + 1)
        else:
            self.events.append(TunnelEvent(when, text))

    def event_lines(self) -> list[str]:
        return [e.render() for e in self.events]


@dataclass
class _Peer:
    """One Junos `ike gateway`: one IKE SA for the child SAs of all its VPNs."""

    name: str
    config: IkeConfig           # as initiator: every VPN's child SAs
    responder: IkeConfig        # as responder (later rekey)
    local: str                  # configured outer addresses (the data plane's)
    remote: str
    transport: Addr             # where the peer's IKE listens
    vpns: list[str]
    keepalive: float = NAT_KEEPALIVE   # `nat-keepalive` seconds (behind a NAT)

    @property
    def version(self) -> int:
        """1 for an IKEv1 (`v1-only`) gateway, 2 for IKEv2."""
        return 1 if isinstance(self.config, IkeV1Config) else 2


@dataclass
class _Vpn:
    name: str
    peer: _Peer
    children: list[ChildConfig]
    establish: str
    connect_at: Optional[float] = None

    @property
    def config(self) -> IkeConfig:
        """The IKE configuration of its gateway (shared with the gateway's other VPNs)."""
        return self.peer.config

    @property
    def local(self) -> str:
        return self.peer.local

    @property
    def remote(self) -> str:
        return self.peer.remote

    @property
    def peer_transport(self) -> Addr:
        return self.peer.transport


def _later_rekey(cfg: IkeConfig) -> IkeConfig:
    kids = [dataclasses.replace(c, rekey_seconds=(c.soft_seconds + c.lifetime_seconds) / 2)
            for c in cfg.children]
    return dataclasses.replace(cfg, children=kids)


class IkeControl:
    """IKEv2 for one `Gateway` (module docstring).

    `local`: our IKE transport address (default: the first IKE VPN's configured local
    address, port 500) and `natt_port` (4500). `peers` maps a configured peer address to the
    transport address its IKE listens on, (host, port) or (host, port, NAT-T port) (default:
    the address itself, 500 and 4500); a mapped transport is how two gateways run on
    loopback. `nat_t` names VPNs whose side claims a NAT (RFC 7296 §2.23; it applies to their
    gateway's IKE SA). `credentials`/`ca_certificates` are for certificate authentication
    (`ike_config.ike_config_for_gateway`). `backoff`: see the module docstring.
    """

    def __init__(self, gw: "Gateway", *, local: Optional[Addr] = None, natt_port: int = 4500,
                 peers: Optional[Mapping[str, Addr]] = None, nat_t: Iterable[str] = (),
                 credentials: Optional[Mapping[str, Any]] = None,
                 ca_certificates: Iterable[object] = (), backoff: float = 2.0,
                 max_pending: int = 128,
                 config_overrides: Optional[Mapping[str, Any]] = None) -> None:
        self.gw = gw
        self.backoff = backoff
        self.max_pending = max_pending
        self._queued: list[str] = []           # immediately-VPNs waiting for a slot
        self._half_open: set[int] = set()      # our initiator sessions not yet up
        peer_map = dict(peers or {})
        nat = set(nat_t)
        config = gw.config
        #: every VPN's verdict (`vpn_verdict`), with the credentials loaded here
        self.verdicts: dict[str, Verdict] = vpn_verdicts(config, credentials=credentials)
        #: IKE VPNs this gateway does not negotiate, with the reason (they cannot come up)
        self.unsupported: dict[str, str] = {
            n: v.down_reason for n, v in self.verdicts.items() if not v.can_come_up}
        groups: dict[str, list] = {}
        for v in ike_vpns(config):
            if v.name not in self.unsupported:
                assert v.ike is not None and v.ike.gateway is not None
                groups.setdefault(v.ike.gateway, []).append(v)
        self.peers: dict[str, _Peer] = {}
        self.vpns: dict[str, _Vpn] = {}
        #: child SA configuration name -> its VPN
        self._child_vpn: dict[str, str] = {}
        for name, members in groups.items():
            try:
                lo, re = vpn_endpoints(config, members[0].name)
                target = tuple(peer_map.get(re, (re, 500)))
                over = dict(config_overrides or {})
                if len(target) > 2:             # the peer's NAT-T port (§2.23 port floating)
                    over["natt_port"] = target[2]
                cfg = ike_config_for_gateway(
                    config, members, credentials=credentials,
                    ca_certificates=list(ca_certificates),
                    force_encap=any(m.name in nat for m in members), **over)
            except (IkeConfigError, ConfigError) as exc:
                for m in members:
                    self.unsupported[m.name] = str(exc)
                continue
            gw_cfg = config.ike_gateways[name]
            # IKEv1 child SAs rekey later on the responder by themselves (ike.v1.child)
            responder = cfg if isinstance(cfg, IkeV1Config) else _later_rekey(cfg)
            peer = _Peer(name, cfg, responder, lo, re, target[:2],
                         [m.name for m in members],
                         float(gw_cfg.nat_keepalive or NAT_KEEPALIVE))
            self.peers[name] = peer
            by_vpn: dict[str, list[ChildConfig]] = {}
            for child, member in zip(cfg.children, _owners(config, members)):
                by_vpn.setdefault(member, []).append(child)
                self._child_vpn[child.name] = member
            for m in members:
                self.vpns[m.name] = _Vpn(m.name, peer, by_vpn[m.name], m.establish_tunnels)
        self.mapped = bool(peer_map)
        #: indexes for the responder's lookups (thousands of gateways to one peer), keyed
        #: by IKE version first
        self._by_transport: dict[tuple, list[_Peer]] = {}
        self._by_host: dict[tuple, list[_Peer]] = {}
        self._by_ids: dict[tuple, list[_Peer]] = {}
        for peer in self.peers.values():
            key = tuple(peer.transport)
            ver = peer.version
            self._by_transport.setdefault((ver, key), []).append(peer)
            self._by_host.setdefault((ver, ipaddress.ip_address(key[0])), []).append(peer)
            self._by_ids.setdefault((ver, key, peer.config.remote_id), []).append(peer)
        self._live: dict[str, dict[int, Any]] = {}   # gateway -> its IKE SAs
        #: candidate list (by id) -> (the list, the gateway IKE_SA_INIT is answered with)
        self._ppk_first: dict[int, tuple[list, _Peer]] = {}
        self._dropping: set[int] = set()          # duplicate IKE SAs being deleted
        #: child SA configuration -> the (IKE SA, inbound SPI) installed for it
        self._pairs: dict[str, tuple[Any, int]] = {}
        #: inbound SPI of an installed (or draining) child SA -> its child configuration
        self._spi_child: dict[int, str] = {}
        #: VPNs to bring up on their gateway's IKE SA once it is up
        self._wanted: set[str] = set()
        #: flow counters last reported to dead peer detection, per VPN
        self._seen: dict[str, tuple[object, int, int]] = {}
        #: IKE SA (by id) behind a NAT -> when its next NAT-keepalive is due
        self._keepalive_at: dict[int, float] = {}
        #: NAT-keepalives sent (RFC 3948 §2.3)
        self.keepalives_sent = 0
        if local is None:
            first = next(iter(self.peers.values()), None)
            local = (first.local if first else "0.0.0.0", 500)
        # Cookies and the half-open limit guard against floods (RFC 7296 §2.6); a gateway
        # whose own peers may all negotiate at once (establish-tunnels immediately) must not
        # mistake them for one, so both scale with the number of configured gateways.
        self.manager = IkeManager(tuple(local), natt_port, self._lookup,
                                  cookie_threshold=max(IkeManager.COOKIE_THRESHOLD,
                                                       2 * len(self.peers)),
                                  max_half_open=max(IkeManager.MAX_HALF_OPEN,
                                                    4 * len(self.peers)))
        #: IKEv1 (`v1-only` gateways) on the same ports
        self.manager_v1 = IkeV1Manager(tuple(local), natt_port, self._lookup_v1,
                                       max_half_open=max(IkeV1Manager.MAX_HALF_OPEN,
                                                         4 * len(self.peers)))
        for peer in self.peers.values():
            peer.config.select_peer = peer.responder.select_peer = \
                self._selector(peer.transport, peer.version)
        self.info: dict[int, SessionInfo] = {}
        self._next_index = 1
        self._triggers: list[str] = []
        self.on_traffic_dropped: Counter[str] = Counter()
        #: (VPN, event) in order, for tests and logs (the last `EVENT_HISTORY`)
        self.events: History = History(maxlen=EVENT_HISTORY)
        self.errors: History = History(maxlen=ERROR_HISTORY)
        #: negotiations peers started and we refused before IKE_AUTH, by IkeSaDown reason
        self.refused: Counter[str] = Counter()
        #: the IKE side of every configured IKE VPN (show inactive-tunnels)
        self.status: dict[str, VpnStatus] = {}
        for v in config.ipsec_vpns.values():
            if v.ike is None:
                continue
            st = self.status[v.name] = VpnStatus(v.name)
            if v.name in self.unsupported:
                st.down_reason = self.unsupported[v.name]
            elif v.establish_tunnels != "immediately":
                st.down_reason = "Waiting for traffic to trigger negotiation " \
                                 "(establish-tunnels on-traffic)"
        self._now = 0.0
        self._flushes = 0
        self._closed = False
        gw.tunnel_trigger = self.trigger
        gw.ike = self
        #: IKE gateways this control neither initiates nor answers for now (a high-
        #: availability backup node: the other node carries them, docs/mnha.md §3)
        self.paused: set[str] = set()

    def all_sessions(self) -> list[Any]:
        """Every session of both managers (IKEv2 first), closed ones included until pruned."""
        return [*self.manager.sessions, *self.manager_v1.sessions]

    @staticmethod
    def remote_addresses(gw: "Gateway") -> list[str]:
        """The configured peer addresses of `gw`'s IKE VPNs."""
        out = []
        for v in ike_vpns(gw.config):
            try:
                out.append(vpn_endpoints(gw.config, v.name)[1])
            except (IpsecError, ValueError):
                continue
        return out

    # ---------------------------------------------------------------- configuration lookup
    def _candidates(self, addr: Addr, version: int = 2) -> list[_Peer]:
        exact = self._by_transport.get((version, tuple(addr)))
        if exact:
            return exact
        try:
            host = ipaddress.ip_address(addr[0])
        except ValueError:
            return []
        return self._by_host.get((version, host), [])

    def _lookup(self, addr: Addr) -> Optional[IkeConfig]:
        """IKE_SA_INIT from a new peer: a gateway whose peer is `addr` (one with a PPK first,
        so USE_PPK is offered, RFC 8784 §3); IKE_AUTH picks the gateway (`_selector`)."""
        base = self._candidates(addr)
        if self.paused:
            cands = [p for p in base if p.name not in self.paused]
            if not cands:
                return None
            return next((p for p in cands if p.config.ppk is not None), cands[0]).responder
        if not base:
            return None
        first = self._ppk_first.get(id(base))
        if first is None or first[0] is not base:
            # once per candidate list (the index's own lists, a bounded set): thousands of
            # gateways may share one peer address
            first = self._ppk_first[id(base)] = (
                base, next((p for p in base if p.config.ppk is not None), base[0]))
        return first[1].responder

    def _lookup_v1(self, addr: Addr) -> Optional[IkeV1Config]:
        """A Phase 1 first message from a new peer: an IKEv1 gateway whose peer is `addr`;
        the identity the peer proves then picks among them (`_selector`)."""
        cands = self._candidates(addr, 1)
        if self.paused:
            cands = [p for p in cands if p.name not in self.paused]
        return cands[0].responder if cands else None

    def _selector(self, transport: Addr, version: int = 2):
        def select(idi: Identity, idr: Optional[Identity]) -> Any:
            cands = self._by_ids.get((version, tuple(transport), idi), []) + \
                self._by_ids.get((version, tuple(transport), None), [])
            for p in cands:
                if (idr is not None and p.config.local_id != idr) or p.name in self.paused:
                    continue
                return p.responder
            return None
        return select

    # ---------------------------------------------------------------- initiation
    def start(self, now: float) -> list[str]:
        """Bring up every `establish-tunnels immediately` VPN (module docstring); returns the
        VPNs initiated now."""
        self._now = now
        started = []
        for v in self.vpns.values():
            if v.establish != "immediately":
                continue
            if self._initiates_first(v.peer):
                self._queued.append(v.name)
                started.append(v.name)
            else:                         # the peer initiates these first
                v.connect_at = now + self.backoff * (1 + len(self.vpns) // self.max_pending)
        self._queued.reverse()                 # popped from the end, in configuration order
        self._start_due(now)
        return started

    @staticmethod
    def _initiates_first(peer: _Peer) -> bool:
        lo, re = ipaddress.ip_address(peer.local), ipaddress.ip_address(peer.remote)
        return lo.version != re.version or int(lo) < int(re)

    def connect(self, vpn: str, now: float) -> Any:
        """Start an IKE SA for `vpn`'s IKE gateway as initiator, with the VPN's first child
        SA in IKE_AUTH (RFC 7296 §1.2); its other wanted VPNs follow as CREATE_CHILD_SA."""
        v = self.vpns[vpn]
        v.connect_at = None
        cfg = v.peer.config
        if cfg.children[0].name != v.children[0].name:
            mine = {c.name for c in v.children}
            cfg = dataclasses.replace(cfg, children=list(v.children) + [
                c for c in cfg.children if c.name not in mine])
        manager: Any = self.manager_v1 if v.peer.version == 1 else self.manager
        session = manager.connect(cfg, v.peer.transport, now)
        self._track(session, now)
        self._half_open.add(id(session))
        self._wanted.add(vpn)
        self._negotiating(vpn)
        return session

    def ensure(self, vpn: str, now: float) -> None:
        """Bring `vpn` up if it is not: CREATE_CHILD_SA for its missing child SAs on its
        gateway's IKE SA, or wait for the IKE SA being negotiated, or start one."""
        v = self.vpns[vpn]
        if self._vpn_up(v) or v.peer.name in self.paused:
            return
        self._wanted.add(vpn)
        session = self.session_of(vpn)
        if session is not None:
            self._create_children(session, v, now)
        elif not self._active(v.peer):
            self.connect(vpn, now)

    def _create_children(self, session: IkeV2Session, v: _Vpn, now: float) -> None:
        started = False
        for c in v.children:
            if not self._child_alive(c.name) and not session.has_child(c.name) and \
                    not session.negotiating(c.name):
                session.create_child(c, now)
                started = True
        if started:
            self._negotiating(v.name)

    def _negotiating(self, vpn: str) -> None:
        st = self.status.get(vpn)
        if st is not None:
            st.negotiations += 1

    def trigger(self, vpn: str) -> None:
        """A packet was routed to `vpn`, which has no SA (on-traffic): bring it up at the next
        call with a clock, and count the dropped packet."""
        v = self.vpns.get(vpn)
        if v is None:
            return
        self.on_traffic_dropped[vpn] += 1
        if not self._vpn_up(v) and vpn not in self._triggers:
            self._triggers.append(vpn)

    def _vpn_up(self, v: _Vpn) -> bool:
        d = self.gw.distributor
        return v.name in d and len(d.tunnel(v.name).pairs) >= len(v.children)

    def _child_alive(self, name: str) -> bool:
        """The child configuration has an installed pair from a live IKE SA we keep."""
        cur = self._pairs.get(name)
        if cur is None:
            return False
        session, spi = cur
        return session.state != IkeSaState.CLOSED and id(session) not in self._dropping and \
            spi in session.children

    def _active(self, peer: _Peer) -> bool:
        live = self._live.get(peer.name)
        if not live:
            return False
        for key, s in list(live.items()):
            if s.state == IkeSaState.CLOSED:
                del live[key]
        return any(key not in self._dropping for key in live)

    def _track(self, session: IkeV2Session, now: float) -> SessionInfo:
        info = self.info.get(id(session))
        if info is None:
            info = SessionInfo(self._next_index, session.config.name, now)
            self._next_index += 1
            self.info[id(session)] = info
        if info.gateway != session.config.name:
            # the responder picked another gateway by the identities (RFC 7296 §2.15)
            self._live.get(info.gateway, {}).pop(id(session), None)
            info.gateway = session.config.name
        if session.state != IkeSaState.CLOSED:
            self._live.setdefault(info.gateway, {})[id(session)] = session
        return info

    # ---------------------------------------------------------------- sans-I/O surface
    def receive(self, data: bytes, addr: Addr, now: float,
                local: Optional[str] = None) -> None:
        """One UDP payload from the IKE port or the NAT-T port (keeping its non-ESP marker);
        a 0xFF NAT-keepalive is ignored (RFC 3948 §2.3). `local` is the address it arrived on,
        when the socket knows it: with security zones configured, IKE is taken only where the
        interface's host-inbound-traffic allows it (dropped and counted otherwise)."""
        policy = self.gw.policy
        if local is not None and policy is not None and not policy.ike_allowed(local):
            self.gw.counters.host_inbound_denied += 1
            return
        self._now = now
        raw = data[4:] if data.startswith(NON_ESP_MARKER) else data
        if data == KEEPALIVE:
            return
        version = ike_major_version(data)
        manager: Any = self.manager_v1 if version == 1 else self.manager
        session = manager.find(raw)
        manager.receive_datagram(data, tuple(addr), now)
        if session is None:
            session = manager.find(raw)
        if session is not None:
            info = self._track(session, now)
            info.rx_packets += 1
            info.rx_bytes += len(raw)
        self._process(now)

    def receive_from_data_path(self, dgram: "IkeDatagram", now: float) -> None:
        """An IKE message the gateway's data path classified (`Gateway.inbound`, `Output.ike`:
        UDP 500, or UDP 4500 behind the non-ESP marker, RFC 3948 §2.2): hand it to IKE,
        restoring the marker so the session knows it came on the NAT-T port."""
        data = NON_ESP_MARKER + dgram.data if dgram.natt else dgram.data
        self.receive(data, (dgram.src, dgram.sport), now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        """Datagrams to send: those with the non-ESP marker, and NAT-keepalives (one 0xFF
        byte), from the NAT-T port, the others from the IKE port; stateless answers (COOKIE,
        INVALID_KE_PAYLOAD) included."""
        self._now = now
        self._start_due(now)
        out: list[tuple[bytes, Addr]] = self.manager.stateless_to_send()
        out += self._keepalives(now)
        v1 = self.manager_v1
        for data, addr in v1.datagrams_to_send(now):
            raw = data[4:] if data.startswith(NON_ESP_MARKER) else data
            s1 = v1.find(raw)
            if s1 is not None and id(s1) in self.info:
                info = self.info[id(s1)]
                info.tx_packets += 1
                info.tx_bytes += len(raw)
            out.append((data, addr))
        for s in self.manager.sessions:
            if not s._out:
                continue
            sent = s.datagrams_to_send(now)
            if sent:
                info = self._track(s, now)
                info.tx_packets += len(sent)
                info.tx_bytes += sum(len(d) - (4 if d.startswith(NON_ESP_MARKER) else 0)
                                     for d, _ in sent)
                out += sent
        self._process(now)
        self._flushes += 1
        if self._flushes % 256 == 0 or self._closed:
            self._closed = False
            self._prune()
        return out

    def _prune(self) -> None:
        """Forget closed sessions here and in the manager (module docstring: bounds)."""
        self.manager.prune()
        alive = {id(s) for s in self.all_sessions()}
        for key in [k for k in self.info if k not in alive]:
            del self.info[key]
        self._half_open &= alive
        self._dropping &= alive
        for key in [k for k in self._keepalive_at if k not in alive]:
            del self._keepalive_at[key]
        for live in self._live.values():
            for key in [k for k in live if k not in alive]:
                del live[key]
        for name in [n for n, (s, _spi) in self._pairs.items() if id(s) not in alive]:
            del self._pairs[name]

    def get_timer(self) -> Optional[float]:
        """When `handle_timer` must run next (sessions' retransmits, rekeys, expiries, DPD,
        and delayed initiations), or None."""
        times = [v.connect_at for v in self.vpns.values() if v.connect_at is not None]
        for t in (self.manager.get_timer(), self.manager_v1.get_timer()):
            if t is not None:
                times.append(t)
        if self._triggers or (self._queued and len(self._half_open) < self.max_pending):
            times.append(self._now)
        times += self._keepalive_at.values()
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        self._start_due(now)
        self._report_traffic(now)
        self.manager.handle_timer(now)
        self.manager_v1.handle_timer(now)
        self.poll_engines(now)
        self._process(now)

    def _start_due(self, now: float) -> None:
        for v in self.vpns.values():
            if v.connect_at is not None and v.connect_at <= now:
                v.connect_at = None
                self.ensure(v.name, now)
        while self._triggers:
            self.ensure(self._triggers.pop(0), now)
        while self._queued and len(self._half_open) < self.max_pending:
            self.ensure(self._queued.pop(), now)

    # ---------------------------------------------------------------- NAT-keepalives
    def _keepalives(self, now: float) -> list[tuple[bytes, Addr]]:
        """RFC 3948 §2.3: from every established IKE SA behind a NAT, one 0xFF byte to the
        peer's NAT-T address every `nat-keepalive` seconds, so the NAT keeps its mapping."""
        out = []
        for s in self.all_sessions():
            if not (s.state == IkeSaState.ESTABLISHED and s.local_nat and s.natt):
                self._keepalive_at.pop(id(s), None)
                continue
            peer = self.peers.get(s.config.name)
            interval = peer.keepalive if peer is not None else NAT_KEEPALIVE
            due = self._keepalive_at.setdefault(id(s), now + interval)
            if due <= now:
                out.append((KEEPALIVE, s.remote_addr))
                self.keepalives_sent += 1
                self._keepalive_at[id(s)] = now + interval
        return out

    # ---------------------------------------------------------------- dead peer detection
    def _report_traffic(self, now: float) -> None:
        """Tell the IKE SAs whose timers are due whether their tunnels carried traffic since
        the last look (RFC 7296 §2.4: a packet decrypted proves the peer alive)."""
        for name, live in self._live.items():
            peer = self.peers.get(name)
            if peer is None or not peer.config.dpd_interval:
                continue
            due = [s for s in live.values() if s.state == IkeSaState.ESTABLISHED and
                   (t := s.get_timer()) is not None and t <= now]
            if not due:
                continue
            inbound = outbound = False
            for vpn in peer.vpns:
                if vpn not in self.gw.distributor:
                    self._seen.pop(vpn, None)
                    continue
                flow = self.gw.tunnel_flow(vpn)
                prev = self._seen.get(vpn)
                seen_in, seen_out = (prev[1], prev[2]) if prev and prev[0] is flow else (0, 0)
                inbound |= flow.in_delivered > seen_in
                outbound |= flow.out_encrypted > seen_out
                self._seen[vpn] = (flow, flow.in_delivered, flow.out_encrypted)
            for s in due:
                s.note_traffic(now, inbound=inbound, outbound=outbound)

    # ---------------------------------------------------------------- CPU-engine lifetimes
    def poll_engines(self, now: float) -> int:
        """Act on every engine's events (`Engine.next_event`: the CPU engine's lifetimes in
        kilobytes, packets and sequence space, the PFE's exhausted sequence space; seconds are
        the sessions' own timers): "rekey-due" of an outbound SA -> CREATE_CHILD_SA rekey (the
        sender rekeys; the receiver, which counts the same bytes inbound, does not, so the two
        ends do not collide, §2.8.1), "expired" -> delete (RFC 7296 §2.8, §1.4.1).
        Returns the events acted on."""
        acted = 0
        for engine in self.gw.engines:
            while (ev := engine.next_event()) is not None:
                acted += self._act_on(ev, now)
        return acted

    def _act_on(self, ev: object, now: float) -> int:
        if ev.limit == "seconds":  # type: ignore[attr-defined]
            return 0
        hit = self._child_of(ev.spi, ev.direction)  # type: ignore[attr-defined]
        if hit is None:
            return 0
        session, spi_in = hit
        child = session.children.get(spi_in)
        if ev.kind == "rekey-due" and ev.direction == "outbound" \
                and child is not None and child.state == ChildSaState.INSTALLED:  # type: ignore
            session.rekey_child_now(spi_in, now)
            return 1
        if ev.kind == "expired" and child is not None \
                and child.state != ChildSaState.DELETING:  # type: ignore[attr-defined]
            session.delete_child(spi_in, now)
            return 1
        return 0

    def _child_of(self, spi: int, direction: str) -> Optional[tuple[Any, int]]:
        for s in self.all_sessions():
            for c in s.children.values():
                if (c.spi_in if direction == "inbound" else c.spi_out) == spi:
                    return s, c.spi_in
        return None

    # ---------------------------------------------------------------- events -> data plane
    def _next_event(self) -> Optional[tuple[Any, object]]:
        item: Any = self.manager.next_event()
        if item is None:
            item = self.manager_v1.next_event()
        return item

    def _process(self, now: float) -> None:
        while (item := self._next_event()) is not None:
            session, event = item
            info = self._track(session, now)
            peer = self.peers.get(session.config.name)
            if isinstance(event, IkeSaDown) and info.up_at is None and \
                    not session.ike.initiator:
                # a responder that never authenticated anyone: counted, not kept (anyone
                # can send IKE_SA_INIT from a configured peer's address)
                self.refused[event.reason] += 1
                if peer is not None:
                    for vpn in peer.vpns:
                        self._log(vpn, f"IKE SA negotiation fails: {event.error}"
                                  if event.error is not None else
                                  f"IKE SA negotiation fails: {event.reason}")
                self._closed = True
                continue
            for vpn in self._vpns_of(peer, event):
                self.events.append((vpn, event))
            if peer is None:
                continue
            try:
                self._apply(session, info, peer, event, now)
            except (IpsecError, KeyError, ValueError) as exc:
                self.errors.append(f"{peer.name}: {type(event).__name__}: {exc}")

    def _vpns_of(self, peer: Optional[_Peer], event: object) -> list[str]:
        """The VPNs an event concerns: a child SA event its own, an IKE SA event all of the
        gateway's."""
        if isinstance(event, (ChildSaUp, ChildSaRekeyed)):
            child = event.child if isinstance(event, ChildSaUp) else event.new
            vpn = self._child_vpn.get(child.name)
            return [vpn] if vpn is not None else []
        if isinstance(event, ChildSaDown):
            name = self._spi_child.get(event.spi_in)
            return [self._child_vpn[name]] if name is not None else []
        return list(peer.vpns) if peer is not None else []

    def _log(self, vpn: str, text: str) -> None:
        st = self.status.get(vpn)
        if st is not None:
            st.log(self.gw.clock(), text)

    def _apply(self, session: IkeV2Session, info: SessionInfo, peer: _Peer, event: object,
               now: float) -> None:
        gw = self.gw
        if isinstance(event, (IkeSaUp, IkeSaDown)):
            self._half_open.discard(id(session))
        if isinstance(event, IkeSaUp):
            info.up_at = now
            if not isinstance(session, IkeV1Session) and self._duplicate(session, peer, now):
                return
            for vpn in peer.vpns:
                self._log(vpn, "IKE SA negotiation succeeds")
            for vpn in peer.vpns:       # the gateway's other VPNs: CREATE_CHILD_SA (§1.3)
                v = self.vpns[vpn]
                if vpn in self._wanted or (session.ike.initiator and
                                           v.establish == "immediately"):
                    self._create_children(session, v, now)
            return
        if isinstance(event, IkeSaRekeyed):
            info.rekeyed_at = now
            if isinstance(session, IkeV1Session):
                # a new Phase 1 adopted the IPsec SAs of an older ISAKMP SA (RFC 2409 has
                # no ISAKMP SA rekey): their rekeys and Deletes now run on this session
                for name, (s, spi) in list(self._pairs.items()):
                    if s is not session and spi in session.children:
                        self._pairs[name] = (session, spi)
            return
        if isinstance(event, (ChildSaUp, ChildSaRekeyed)):
            self._child_up(session, info, event, now)
            return
        if isinstance(event, ChildSaDown):
            info.children_deleted += 1
            name = self._spi_child.pop(event.spi_in, None)
            if name is None:
                return                    # never installed (a duplicate we deleted)
            vpn = self._child_vpn[name]
            if self._pairs.get(name) == (session, event.spi_in):
                del self._pairs[name]
            v = self.vpns[vpn]
            gw.handle_ike_event(vpn, event, v.local, v.remote)
            if vpn not in gw.distributor:
                self.status[vpn].down_reason = f"IPsec SA deleted ({event.reason})"
            return
        if isinstance(event, IkeSaDown):
            self._ike_down(session, info, peer, event, now)

    def _child_up(self, session: IkeV2Session, info: SessionInfo, event: Any,
                  now: float) -> None:
        child = event.child if isinstance(event, ChildSaUp) else event.new
        name = child.name
        vpn = self._child_vpn.get(name)
        if vpn is None:
            raise KeyError(f"child SA {name!r} belongs to no VPN")
        v = self.vpns[vpn]
        if self.mapped:
            child = dataclasses.replace(child, local_port=4500, remote_port=4500)
        cfg_vpn = self.gw.config.ipsec_vpns.get(vpn)
        if cfg_vpn is not None and not cfg_vpn.traffic_selectors:
            # route-based (st0): the 0/0 proxy-id; routing picks the tunnel
            child = dataclasses.replace(child, local_ts=[], remote_ts=[])
        if id(session) in self._dropping:
            return                        # a duplicate IKE SA's child: never installed
        if isinstance(event, ChildSaUp):
            applied = self._place(session, name, child, now)
            if applied is None:
                return
        else:
            applied = ChildSaRekeyed(event.old_spi_in, event.old_spi_out, child)
            self._spi_child[child.spi_in] = name
            if self._pairs.get(name, (None, None))[1] == event.old_spi_in:
                self._pairs[name] = (session, child.spi_in)
        self.gw.handle_ike_event(vpn, applied, v.local, v.remote)
        info.children_created += 1
        st = self.status[vpn]
        st.tunnel_id = self.gw.tunnel(vpn).tunnel_id
        st.down_reason = ""
        if self._vpn_up(v):
            self._wanted.discard(vpn)

    def _place(self, session: IkeV2Session, name: str, child: Any, now: float
               ) -> Optional[object]:
        """A new child SA for configuration `name`: install it, or, when one is installed
        already (both ends brought the VPN up, or a duplicate IKE SA carries the old one),
        keep what the lower-address end initiated (module docstring)."""
        cur = self._pairs.get(name)
        if cur is None or not (cur[0].state != IkeSaState.CLOSED and cur[1] in cur[0].children):
            self._pairs[name] = (session, child.spi_in)
            self._spi_child[child.spi_in] = name
            return ChildSaUp(child)
        cur_session, cur_spi = cur
        we_first = self._initiates_first(self.peers[session.config.name])
        old_initiated = cur_session.children[cur_spi].initiator
        replace = id(cur_session) in self._dropping or (
            child.initiator == we_first and old_initiated != we_first)
        if not replace:
            # the installed one stays; the end that made the new one deletes it (§1.4.1)
            if child.initiator:
                session.delete_child(child.spi_in, now)
            return None
        vpn = self._child_vpn[name]
        old = next((p for p in self.gw.tunnel(vpn).pairs if p.inbound.spi == cur_spi), None)
        self._pairs[name] = (session, child.spi_in)
        self._spi_child[child.spi_in] = name
        if id(cur_session) not in self._dropping and old_initiated:
            cur_session.delete_child(cur_spi, now)
        if old is None:
            return ChildSaUp(child)
        return ChildSaRekeyed(old.inbound.spi, old.outbound.spi, child)

    def _ike_down(self, session: IkeV2Session, info: SessionInfo, peer: _Peer,
                  event: IkeSaDown, now: float) -> None:
        self._closed = True
        info.children_deleted += len(event.children)
        by_vpn: dict[str, list[tuple[int, int]]] = {}
        for spi_in, spi_out in event.children:
            name = self._spi_child.pop(spi_in, None)
            if name is None:
                continue
            if self._pairs.get(name) == (session, spi_in):
                del self._pairs[name]
            by_vpn.setdefault(self._child_vpn[name], []).append((spi_in, spi_out))
        for vpn, kids in by_vpn.items():
            # only the children that are installed (those of a duplicate IKE SA never were)
            v = self.vpns[vpn]
            self.gw.handle_ike_event(vpn, IkeSaDown(event.reason, event.error, kids),
                                     v.local, v.remote)
        dropped = id(session) in self._dropping
        self._dropping.discard(id(session))
        if dropped:
            return
        failed = info.up_at is None
        text = _DOWN_TEXT.get(event.reason)
        if failed and event.reason == "retransmit timeout":
            text = "IKE SA negotiation fails: peer did not respond"
        elif text is None:
            text = f"IKE SA negotiation fails: {event.error}" if event.error is not None \
                else f"IKE SA down: {event.reason}"
        for vpn in peer.vpns:
            if vpn in self.gw.distributor and vpn not in by_vpn:
                continue                  # carried by another IKE SA of the gateway
            st = self.status[vpn]
            self._log(vpn, text)
            st.down_reason = text
            if failed:
                st.failures += 1
        if self._active(peer):
            return
        for vpn in peer.vpns:
            v = self.vpns[vpn]
            if v.establish == "immediately" and not self._vpn_up(v) and v.connect_at is None:
                # keep the tunnel up: negotiate again (the lower address first, as at start)
                v.connect_at = now + self.backoff * (1 if self._initiates_first(peer) else 2)

    def _duplicate(self, session: IkeV2Session, peer: _Peer, now: float) -> bool:
        """Both ends initiated an IKE SA for the same gateway (a crossing at start or after a
        failure): keep the one the lower-address end initiated, delete the other (the two ends
        decide alike). True if `session` is dropped."""
        others = [o for o in self._live.get(peer.name, {}).values()
                  if o is not session and o.state == IkeSaState.ESTABLISHED
                  and id(o) not in self._dropping]
        if not others:
            return False
        other = others[0]
        we_first = self._initiates_first(peer)

        def keeps(s: IkeV2Session) -> bool:
            return s.ike.initiator == we_first
        if keeps(session) and not keeps(other):
            loser = other
        elif keeps(other) and not keeps(session):
            loser = session
        else:
            loser = session               # same role twice: keep the older
        self._dropping.add(id(loser))
        loser.close(now)
        return loser is session

    # ---------------------------------------------------------------- queries
    def sessions(self, vpn: Optional[str] = None) -> list[IkeV2Session]:
        """Live IKE SAs (of one VPN's IKE gateway), in creation order."""
        if vpn is not None:
            # the gateway's own IKE SAs (`_live`), not every session of thousands
            gateway = self.vpns[vpn].peer.name if vpn in self.vpns else vpn
            out = [s for s in self._live.get(gateway, {}).values()
                   if s.state != IkeSaState.CLOSED and s.config.name == gateway]
        else:
            out = [s for s in self.all_sessions() if s.state != IkeSaState.CLOSED]
        return sorted(out, key=lambda s: self.info[id(s)].index if id(s) in self.info else 0)

    def session_of(self, vpn: str) -> Optional[IkeV2Session]:
        """The established IKE SA that carries (or will carry) `vpn`'s child SAs, if any."""
        return next((s for s in self.sessions(vpn) if s.state == IkeSaState.ESTABLISHED
                     and id(s) not in self._dropping), None)

    def session_info(self, session: IkeV2Session) -> SessionInfo:
        return self.info[id(session)]

    def peer_of(self, session: IkeV2Session) -> Optional[_Peer]:
        """The IKE gateway an IKE SA belongs to."""
        return self.peers.get(session.config.name)

    # ---------------------------------------------------------------- high availability
    def export_sessions(self, now: float) -> list[tuple[IkeV2Session, dict]]:
        """Every established, idle IKE SA with its exported state (`ike.v2.ha_state`), for a
        high-availability peer node (docs/mnha.md §3)."""
        from ..ike.v2.ha_state import export_session, exportable
        return [(s, export_session(s, now)) for s in self.manager.sessions
                if exportable(s) and id(s) not in self._dropping]

    def adopt(self, state: dict, now: float) -> IkeV2Session:
        """Carry on an IKE SA exported by the peer node: it joins this control as if it had
        been negotiated here, its child SAs mapped to the VPNs' installed pairs (the caller
        installs those), so DPD, rekeys and deletes continue with the remote peer.
        Raises `HaStateError` for a state this configuration cannot take."""
        from ..ike.v2.ha_state import HaStateError, restore_session
        peer = self.peers.get(str(state.get("config")))
        if peer is None:
            raise HaStateError(f"IKE gateway {state.get('config')!r} is not configured here")
        cfg = peer.config if state.get("initiator") else peer.responder
        session = restore_session(cfg, state, now)
        if self.manager.find_spi(session.ike.spi_i) is not None:
            raise HaStateError("an IKE SA with these SPIs exists here already")
        self.manager.adopt(session)
        info = self._track(session, now)
        info.up_at = now
        for child in session.children.values():
            name = child.config.name
            self._pairs[name] = (session, child.spi_in)
            self._spi_child[child.spi_in] = name
            vpn = self._child_vpn.get(name)
            if vpn is not None:
                self._wanted.add(vpn)
        return session

    def up(self, vpns: Optional[Iterable[str]] = None) -> bool:
        """Every VPN (of `vpns`) has its tunnel installed with all its child SA pairs."""
        names = list(vpns) if vpns is not None else list(self.vpns)
        return all(n in self.vpns and self._vpn_up(self.vpns[n]) for n in names)


def _owners(config, members) -> list[str]:
    """The VPN of each child SA configuration of `ike_config_for_gateway(config, members)`,
    in the same order."""
    from .ike_config import child_configs
    return [m.name for m in members for _ in child_configs(config, m)]
