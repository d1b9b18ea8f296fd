"""Two MNHA nodes and a peer gateway, joined by an in-memory network (tests of inline_ipsec.ha)."""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Optional

from inline_ipsec.gateway import Gateway
from inline_ipsec.ha import FloatingAddresses, MnhaNode

VIP = "192.0.2.10"
PEER = "198.51.100.1"
ICL = {1: "10.22.0.1", 2: "10.22.0.2"}
GCM_KEY = "0x" + "11" * 16 + "01020304"
ICL_KEY = "0x" + "44" * 16 + "0a0b0c0d"
CBC_KEY = "0x" + "22" * 32
HMAC_KEY = "0x" + "33" * 32


def _data_vpns(local_if: str, gateway: str) -> list[str]:
    return [
        "set interfaces st0 unit 0 family inet",
        "set interfaces st0 unit 1 family inet",
        "set security ipsec vpn v-pfe bind-interface st0.0",
        "set security ipsec vpn v-pfe manual spi 1000",
        "set security ipsec vpn v-pfe manual protocol esp",
        f"set security ipsec vpn v-pfe manual encryption algorithm aes-128-gcm key hexadecimal {GCM_KEY}",
        f"set security ipsec vpn v-pfe manual gateway {gateway}",
        f"set security ipsec vpn v-pfe manual external-interface {local_if}",
        "set security ipsec vpn v-cpu bind-interface st0.1",
        "set security ipsec vpn v-cpu manual spi 2000",
        "set security ipsec vpn v-cpu manual protocol esp",
        f"set security ipsec vpn v-cpu manual encryption algorithm aes-256-cbc key hexadecimal {CBC_KEY}",
        f"set security ipsec vpn v-cpu manual authentication algorithm hmac-sha-256-128 key hexadecimal {HMAC_KEY}",
        f"set security ipsec vpn v-cpu manual gateway {gateway}",
        f"set security ipsec vpn v-cpu manual external-interface {local_if}",
    ]


def icl_ike_lines(node: int) -> list[str]:
    """The ICL VPN negotiated by IKEv2 between the nodes' ICL addresses (instead of a manual
    SA), AES-GCM-256: offloaded."""
    me, other = ICL[node], ICL[3 - node]
    return [
        "set security ike proposal icl-p authentication-method pre-shared-keys",
        "set security ike proposal icl-p dh-group group20",
        "set security ike proposal icl-p encryption-algorithm aes-256-gcm",
        "set security ike policy icl-pol proposals icl-p",
        'set security ike policy icl-pol pre-shared-key ascii-text "icl-secret"',
        "set security ike gateway icl-gw ike-policy icl-pol",
        f"set security ike gateway icl-gw address {other}",
        f"set security ike gateway icl-gw local-address {me}",
        "set security ike gateway icl-gw external-interface ge-0/0/2.0",
        "set security ike gateway icl-gw version v2-only",
        "set security ipsec proposal icl-esp encryption-algorithm aes-256-gcm",
        "set security ipsec policy icl-ipol proposals icl-esp",
        "set security ipsec vpn ICL-VPN ike gateway icl-gw",
        "set security ipsec vpn ICL-VPN ike ipsec-policy icl-ipol",
        "set security ipsec vpn ICL-VPN establish-tunnels immediately",
        f"set security ipsec vpn ICL-VPN traffic-selector icl local-ip {me}/32 "
        f"remote-ip {other}/32",
    ]


def node_config(node: int, priority: int = 0, preemption: bool = False, extra: str = "",
                icl_ike: bool = False) -> str:
    """MNHA node `node` (1 or 2): SRG1 owns the VIP, the data VPNs' local address."""
    me, other = ICL[node], ICL[3 - node]
    prio = priority or (200 if node == 1 else 100)
    h = "set chassis high-availability"
    lines = [
        "set system license ipsec-offload permanent",
        f"set interfaces ge-0/0/2 unit 0 family inet address {me}/24",
        f"set interfaces lo0 unit 0 family inet address {VIP}/32",
        f"{h} local-id {node} local-ip {me}",
        f"{h} peer-id {3 - node} peer-ip {other}",
        f"{h} peer-id {3 - node} interface ge-0/0/2.0",
        f"{h} peer-id {3 - node} vpn-profile ICL-VPN",
        f"{h} peer-id {3 - node} liveness-detection minimum-interval 100",
        f"{h} peer-id {3 - node} liveness-detection multiplier 3",
        f"{h} services-redundancy-group 0 peer-id {3 - node}",
        f"{h} services-redundancy-group 1 peer-id {3 - node}",
        f"{h} services-redundancy-group 1 deployment-type routing",
        f"{h} services-redundancy-group 1 activeness-priority {prio}",
        f"{h} services-redundancy-group 1 virtual-ip 1 ip {VIP}/32",
        f"{h} services-redundancy-group 1 virtual-ip 1 interface lo0.0",
        f"{h} services-redundancy-group 1 monitor interface ge-0/0/1",
        "set interfaces st0 unit 9 family inet",
        "set security ipsec vpn ICL-VPN bind-interface st0.9",
        "set security ipsec vpn ICL-VPN ha-link-encryption",
    ]
    if icl_ike:
        lines += icl_ike_lines(node)
    else:
        lines += [
            "set security ipsec vpn ICL-VPN manual spi 9000",
            "set security ipsec vpn ICL-VPN manual protocol esp",
            "set security ipsec vpn ICL-VPN manual encryption algorithm aes-128-gcm key "
            f"hexadecimal {ICL_KEY}",
            f"set security ipsec vpn ICL-VPN manual gateway {other}",
            "set security ipsec vpn ICL-VPN manual external-interface ge-0/0/2.0",
        ]
    lines += [
        f"set routing-options static route {other}/32 next-hop st0.9",
        "set routing-options static route 10.2.0.0/24 next-hop st0.0",
        "set routing-options static route 10.2.1.0/24 next-hop st0.1",
    ]
    if preemption:
        lines.append(f"{h} services-redundancy-group 1 preemption")
    lines += _data_vpns("lo0.0", PEER)
    return "\n".join(lines) + "\n" + extra


def peer_config() -> str:
    lines = ["set system license ipsec-offload permanent",
             f"set interfaces ge-0/0/0 unit 0 family inet address {PEER}/24"]
    lines += _data_vpns("ge-0/0/0.0", VIP)
    lines += ["set routing-options static route 10.1.0.0/24 next-hop st0.0",
              "set routing-options static route 10.1.1.0/24 next-hop st0.1"]
    return "\n".join(lines) + "\n"


def outer_dst(pkt: bytes) -> str:
    if pkt[0] >> 4 == 4:
        return str(ipaddress.IPv4Address(pkt[16:20]))
    return str(ipaddress.IPv6Address(pkt[24:40]))


def esp_spi_seq(pkt: bytes) -> Optional[tuple[int, int]]:
    """(SPI, sequence number) of an IPv4 ESP packet, else None."""
    if pkt[0] >> 4 != 4 or pkt[9] != 50:
        return None
    ihl = (pkt[0] & 15) * 4
    return struct.unpack_from("!II", pkt, ihl)


@dataclass
class Fabric:
    """Two MNHA nodes, the peer gateway, the floating address, a clock."""

    block: int = 1 << 20
    prio1: int = 200
    prio2: int = 100
    preemption: bool = False
    now: float = 0.0
    net: FloatingAddresses = field(default_factory=FloatingAddresses)
    alive: set = field(default_factory=lambda: {1, 2})
    icl_up: bool = True
    #: every (node, spi, seq) of ESP each node sent towards the peer gateway
    sent: list = field(default_factory=list)
    delivered_at_peer: list = field(default_factory=list)
    delivered_at_ha: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nodes = {}
        for n, prio in ((1, self.prio1), (2, self.prio2)):
            gw = Gateway.from_text(node_config(n, prio, self.preemption), name=f"node{n}")
            self.nodes[n] = MnhaNode(gw, self.net, now=self.now, block=self.block)
        self.peer = Gateway.from_text(peer_config(), name="peer")

    def restart(self, n: int, priority: Optional[int] = None) -> None:
        prio = priority or (self.prio1 if n == 1 else self.prio2)
        gw = Gateway.from_text(node_config(n, prio, self.preemption), name=f"node{n}")
        self.nodes[n] = MnhaNode(gw, self.net, now=self.now, block=self.block)
        self.alive.add(n)

    def kill(self, n: int) -> None:
        self.alive.discard(n)
        self.net.fail(n)

    def step(self, dt: float = 0.01) -> None:
        self.now += dt
        for n in sorted(self.alive):
            icl = self.nodes[n].tick(self.now)
            other = 3 - n
            if self.icl_up and other in self.alive and icl:
                self.nodes[other].inbound(icl, self.now)

    def run(self, seconds: float, dt: float = 0.01) -> None:
        for _ in range(int(round(seconds / dt))):
            self.step(dt)

    def ha_to_peer(self, n: int, packets: list[bytes]) -> int:
        out = self.nodes[n].outbound(packets)
        for pkt in out.wire:
            ss = esp_spi_seq(pkt)
            if ss is not None:
                self.sent.append((n, *ss))
        got = self.peer.inbound(out.wire).delivered
        self.delivered_at_peer += got
        return len(got)

    def peer_to_ha(self, packets: list[bytes]) -> int:
        wire = self.peer.outbound(packets).wire
        owner = self.net.owner(VIP)
        if owner is None or owner not in self.alive:
            return 0
        got = self.nodes[owner].inbound(wire, self.now).delivered
        self.delivered_at_ha += got
        return len(got)


# -- IKE-negotiated tunnels ------------------------------------------------------------------

def ike_lines(local: str, local_if: str, remote: str) -> list[str]:
    """One IKEv2 gateway with two VPNs on it: v-ike (AES-GCM-128, offloaded) and v-ike-cbc
    (AES-CBC-256 + HMAC-SHA-256, CPU path), both `establish-tunnels immediately`."""
    mine, theirs = ("10.1", "10.2") if local_if == "lo0.0" else ("10.2", "10.1")
    lines = [
        "set security ike proposal ike-p authentication-method pre-shared-keys",
        "set security ike proposal ike-p dh-group group19",
        "set security ike proposal ike-p encryption-algorithm aes-128-gcm",
        "set security ike policy ike-pol proposals ike-p",
        'set security ike policy ike-pol pre-shared-key ascii-text "mnha-test-psk"',
        "set security ike gateway gw-p ike-policy ike-pol",
        f"set security ike gateway gw-p address {remote}",
        f"set security ike gateway gw-p local-address {local}",
        f"set security ike gateway gw-p external-interface {local_if}",
        "set security ike gateway gw-p version v2-only",
        "set security ike gateway gw-p dead-peer-detection always-send interval 10 threshold 3",
        "set security ipsec proposal p-gcm encryption-algorithm aes-128-gcm",
        "set security ipsec proposal p-cbc encryption-algorithm aes-256-cbc",
        "set security ipsec proposal p-cbc authentication-algorithm hmac-sha-256-128",
        "set security ipsec policy pol-gcm proposals p-gcm",
        "set security ipsec policy pol-cbc proposals p-cbc",
        "set interfaces st0 unit 2 family inet",
        "set interfaces st0 unit 3 family inet",
    ]
    for vpn, unit, pol in (("v-ike", 2, "pol-gcm"), ("v-ike-cbc", 3, "pol-cbc")):
        lines += [
            f"set security ipsec vpn {vpn} bind-interface st0.{unit}",
            f"set security ipsec vpn {vpn} ike gateway gw-p",
            f"set security ipsec vpn {vpn} ike ipsec-policy {pol}",
            f"set security ipsec vpn {vpn} establish-tunnels immediately",
            f"set security ipsec vpn {vpn} traffic-selector ts local-ip {mine}.{unit}.0/24 "
            f"remote-ip {theirs}.{unit}.0/24",
        ]
    return lines


@dataclass
class IkeFabric(Fabric):
    """`Fabric` whose HA pair and peer also run IKEv2 for v-ike and v-ike-cbc (and, with
    `icl_ike`, the nodes negotiate the ICL itself with IKEv2)."""

    icl_ike: bool = False

    def __post_init__(self) -> None:
        from inline_ipsec.control.ike_control import IkeControl
        self._ike_control = IkeControl
        self.nodes = {}
        for n, prio in ((1, self.prio1), (2, self.prio2)):
            self.nodes[n] = self._node(n, prio)
        extra = "\n".join(ike_lines(PEER, "ge-0/0/0.0", VIP)) + "\n"
        self.peer = Gateway.from_text(peer_config() + extra, name="peer")
        self.peer_ike = IkeControl(self.peer, local=(PEER, 500), peers={VIP: (VIP, 500)})
        self.peer_ike.start(self.now)
        self.ike_log: list[tuple[str, bytes]] = []

    def _node(self, n: int, prio: int) -> MnhaNode:
        extra = "\n".join(ike_lines(VIP, "lo0.0", PEER)) + "\n"
        gw = Gateway.from_text(node_config(n, prio, self.preemption, extra, self.icl_ike),
                               name=f"node{n}")
        ike = self._ike_control(gw, local=(VIP, 500), peers={PEER: (PEER, 500)})
        return MnhaNode(gw, self.net, now=self.now, block=self.block, ike=ike)

    def restart(self, n: int, priority: Optional[int] = None) -> None:
        self.nodes[n] = self._node(n, priority or (self.prio1 if n == 1 else self.prio2))
        self.alive.add(n)

    def step(self, dt: float = 0.01) -> None:
        super().step(dt)
        owner = self.net.owner(VIP)
        for _ in range(10):
            moved = 0
            t = self.peer_ike.get_timer()
            if t is not None and t <= self.now:
                self.peer_ike.handle_timer(self.now)
            for data, _addr in self.peer_ike.datagrams_to_send(self.now):
                moved += 1
                self.ike_log.append(("peer->ha", data))
                if owner in self.alive:
                    self.nodes[owner].ike.receive(data, (PEER, 500), self.now)
            for n in sorted(self.alive):
                for data, addr in self.nodes[n].ike_datagrams(self.now):
                    moved += 1
                    if addr[0] == ICL[3 - n]:           # the ICL's own IKE, node to node
                        self.ike_log.append((f"node{n}->node{3 - n}", data))
                        if self.icl_up and 3 - n in self.alive:
                            self.nodes[3 - n].ike.receive(data, (ICL[n], 500), self.now)
                        continue
                    self.ike_log.append((f"node{n}->peer", data))
                    self.peer_ike.receive(data, (VIP, 500), self.now)
            if not moved:
                break
