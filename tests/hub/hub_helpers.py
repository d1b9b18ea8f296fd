"""Hub-and-spoke test networks: Junos configurations for a hub and its spokes, a small PKI,
and `Net`, which carries IKE datagrams and outer packets between the nodes in one process
(addressed by outer IP, as a routed network would)."""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inline_ipsec.config import load_config
from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.hub.control import HubControl

HUB = "192.0.2.1"
#: spoke i: outer address, st0 address, LAN prefix
SPOKES = [(f"198.51.100.{10 + i}", f"10.100.0.{10 + i}", f"10.{i}.0.0/16") for i in range(1, 5)]
NOW = datetime.datetime.now(datetime.timezone.utc)

IKE = """set security ike proposal ike-1 authentication-method ecdsa-signatures-256
set security ike proposal ike-1 dh-group group19
set security ike proposal ike-1 encryption-algorithm aes-256-gcm
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 certificate local-certificate gw-cert
set security ipsec proposal ipsec-1 encryption-algorithm aes-256-gcm
set security ipsec policy ipsec-1 proposals ipsec-1
set system license ipsec-offload permanent
"""


def cert(cn: str, key, issuer=None, issuer_key=None, ca: bool = False,
         dns: Optional[str] = None, org: str = "Example") -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Spokes"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW - datetime.timedelta(days=1))
         .not_valid_after(NOW + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


@dataclass
class Pki:
    ca: x509.Certificate
    ca_key: object
    creds: dict = field(default_factory=dict)

    def issue(self, name: str, dns: str, org: str = "Example") -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        self.creds[name] = {"gw-cert": (key, [cert(dns, key, self.ca, self.ca_key, dns=dns,
                                                   org=org)])}
        return self.creds[name]


def make_pki() -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    return Pki(cert("Hub CA", key, ca=True), key)


def hub_config(*, advpn: bool = True, limit: Optional[int] = None, routes: bool = True,
               pattern: str = "hostname *.spokes.example", spokes=SPOKES,
               hub: str = HUB) -> str:
    lines = [IKE.strip(),
             f"set interfaces ge-0/0/0 unit 0 family inet address {hub}/24",
             "set interfaces st0 unit 0 multipoint",
             "set interfaces st0 unit 0 family inet address 10.100.0.1/24",
             "set security ike gateway spokes ike-policy ike-1",
             f"set security ike gateway spokes dynamic {pattern}",
             "set security ike gateway spokes local-identity hostname hub.example",
             "set security ike gateway spokes external-interface ge-0/0/0.0",
             "set security ike gateway spokes version v2-only",
             "set security ipsec vpn hub bind-interface st0.0",
             "set security ipsec vpn hub ike gateway spokes",
             "set security ipsec vpn hub ike ipsec-policy ipsec-1"]
    if limit is not None:
        lines.append(f"set security ike gateway spokes dynamic connections-limit {limit}")
    if advpn:
        lines.append("set security ike gateway spokes advpn partner disable")
    if routes:
        for _, st0, lan in spokes:
            lines.append(f"set routing-options static route {lan} next-hop {st0}")
    return "\n".join(lines) + "\n"


def spoke_config(i: int, *, advpn: bool = True, idle_time: int = 60,
                 idle_threshold: int = 5, connection_limit: Optional[int] = None,
                 hub: str = HUB, outer: Optional[str] = None) -> str:
    default_outer, st0, lan = SPOKES[i - 1]
    outer = outer or default_outer
    lines = [IKE.strip(),
             f"set interfaces ge-0/0/0 unit 0 family inet address {outer}/24",
             f"set interfaces ge-0/0/1 unit 0 family inet address {lan_gw(i)}",
             "set interfaces st0 unit 0 multipoint",
             f"set interfaces st0 unit 0 family inet address {st0}/24",
             "set security ike gateway hub ike-policy ike-1",
             f"set security ike gateway hub address {hub}",
             f"set security ike gateway hub local-identity hostname spoke{i}.spokes.example",
             "set security ike gateway hub remote-identity hostname hub.example",
             "set security ike gateway hub external-interface ge-0/0/0.0",
             "set security ike gateway hub version v2-only",
             "set security ipsec vpn to-hub bind-interface st0.0",
             "set security ipsec vpn to-hub ike gateway hub",
             "set security ipsec vpn to-hub ike ipsec-policy ipsec-1",
             "set security ipsec vpn to-hub establish-tunnels immediately",
             "set routing-options static route 10.0.0.0/8 next-hop st0.0"]
    if advpn:
        lines += ["set security ike gateway hub advpn suggester disable",
                  f"set security ike gateway hub advpn partner idle-time {idle_time}",
                  f"set security ike gateway hub advpn partner idle-threshold {idle_threshold}"]
        if connection_limit is not None:
            lines.append("set security ike gateway hub advpn partner connection-limit "
                         f"{connection_limit}")
    return "\n".join(lines) + "\n"


@dataclass
class Node:
    name: str
    outer: str
    gw: Gateway
    ctl: HubControl
    delivered: list = field(default_factory=list)


class Net:
    """Nodes on one in-memory network: IKE datagrams go to (outer address, port), outer
    packets to the node owning their destination address; the clock is ours."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.now = 0.0
        self.wire_packets: dict[str, int] = {}
        self.dropped_ike = 0

    def add(self, name: str, text: str, outer: str, creds: dict, ca, **kw) -> Node:
        gw = Gateway(load_config(text), name=name)
        ctl = HubControl(gw, local=(outer, 500), credentials=creds, ca_certificates=[ca],
                         **kw)
        node = Node(name, outer, gw, ctl)
        self.nodes[outer] = node
        return node

    def remove(self, node: Node) -> None:
        del self.nodes[node.outer]

    def pump(self, rounds: int = 20) -> None:
        """Exchange IKE datagrams until quiet (and run due timers)."""
        for _ in range(rounds):
            moved = 0
            for node in list(self.nodes.values()):
                for data, addr in node.ctl.datagrams_to_send(self.now):
                    moved += 1
                    dst = self.nodes.get(str(addr[0]))
                    if dst is None:
                        self.dropped_ike += 1
                        continue
                    dst.ctl.receive(data, (node.outer, 500 if not data.startswith(bytes(4))
                                           else 4500), self.now)
            for node in list(self.nodes.values()):
                t = node.ctl.get_timer()
                if t is not None and t <= self.now:
                    node.ctl.handle_timer(self.now)
                    moved += 1
            if not moved:
                return

    def advance(self, seconds: float, step: float = 1.0) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.pump()

    def send(self, src: Node, packets: list[bytes], hops: int = 4) -> None:
        """Inner packets from `src`'s LAN: encrypt, carry, decrypt or forward, hop by hop."""
        out = src.gw.outbound(packets)
        wire = out.wire
        for _ in range(hops):
            by_dst: dict[str, list[bytes]] = {}
            for pkt in wire:
                dst = str(ipaddress.IPv4Address(pkt[16:20]))
                by_dst.setdefault(dst, []).append(pkt)
            wire = []
            for dst, pkts in by_dst.items():
                self.wire_packets[dst] = self.wire_packets.get(dst, 0) + len(pkts)
                node = self.nodes.get(dst)
                if node is None:
                    continue
                got = node.ctl.inbound(pkts, self.now)
                node.delivered += got.delivered
                wire += got.wire
            if not wire:
                return


def lan_gw(i: int) -> str:
    net = ipaddress.ip_network(SPOKES[i - 1][2])
    return f"{net.network_address + 1}/{net.prefixlen}"


def lan_host(i: int, host: int = 5) -> str:
    net = ipaddress.ip_network(SPOKES[i - 1][2])
    return str(net.network_address + host)


def flow(src_spoke: int, dst_spoke: int, n: int, size: int = 100) -> list[bytes]:
    return [udp_packet(lan_host(src_spoke), lan_host(dst_spoke), bytes(size), 1000 + k, 2000)
            for k in range(n)]


class LoopNet(Net):
    """The same network over real UDP sockets on loopback: each node has its own 127.0.0.x,
    an IKE socket and a "wire" socket that carries outer IP packets as datagram payloads
    (raw IP needs privileges; see `inline_ipsec.io.link.UdpLink`). IKE time stays ours."""

    def __init__(self) -> None:
        super().__init__()
        self.socks: dict[str, tuple] = {}
        self.peers: dict[str, tuple] = {}

    def add(self, name: str, text: str, outer: str, creds: dict, ca, **kw) -> Node:
        import socket
        ike = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ike.bind((outer, 0))
        wire = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        wire.bind((outer, 0))
        for s in (ike, wire):
            s.setblocking(False)
        gw = Gateway(load_config(text), name=name)
        ctl = HubControl(gw, local=ike.getsockname(), credentials=creds, ca_certificates=[ca],
                         peers=dict(self.peers), **kw)
        node = Node(name, outer, gw, ctl)
        self.nodes[outer] = node
        self.socks[outer] = (ike, wire)
        self.peers[outer] = ike.getsockname()
        return node

    def close(self) -> None:
        for ike, wire in self.socks.values():
            ike.close()
            wire.close()

    def _drain(self, index: int, wait: float) -> list[tuple[str, bytes, tuple]]:
        import select
        socks = {v[index]: k for k, v in self.socks.items()}
        got = []
        ready, _, _ = select.select(list(socks), [], [], wait)
        while ready:
            for s in ready:
                while True:
                    try:
                        data, addr = s.recvfrom(65535)
                    except BlockingIOError:
                        break
                    got.append((socks[s], data, addr))
            ready, _, _ = select.select(list(socks), [], [], 0.02)
        return got

    def pump(self, rounds: int = 30) -> None:
        for _ in range(rounds):
            moved = 0
            for outer, node in list(self.nodes.items()):
                for data, addr in node.ctl.datagrams_to_send(self.now):
                    self.socks[outer][0].sendto(data, addr)
                    moved += 1
            for outer, data, addr in self._drain(0, 0.2 if moved else 0.0):
                self.nodes[outer].ctl.receive(data, addr, self.now)
                moved += 1
            for node in list(self.nodes.values()):
                t = node.ctl.get_timer()
                if t is not None and t <= self.now:
                    node.ctl.handle_timer(self.now)
                    moved += 1
            if not moved:
                return

    def send(self, src: Node, packets: list[bytes], hops: int = 4) -> None:
        wire = src.gw.outbound(packets).wire
        sender = src.outer
        for _ in range(hops):
            for pkt in wire:
                dst = str(ipaddress.IPv4Address(pkt[16:20]))
                if dst in self.socks:
                    self.socks[sender][1].sendto(pkt, self.socks[dst][1].getsockname())
                self.wire_packets[dst] = self.wire_packets.get(dst, 0) + 1
            if not wire:
                return
            by_node: dict[str, list[bytes]] = {}
            for outer, data, _addr in self._drain(1, 1.0):
                by_node.setdefault(outer, []).append(data)
            wire = []
            for outer, pkts in by_node.items():
                got = self.nodes[outer].ctl.inbound(pkts, self.now)
                self.nodes[outer].delivered += got.delivered
                wire += got.wire
                sender = outer
