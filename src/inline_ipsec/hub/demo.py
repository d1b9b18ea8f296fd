"""The demo's hub-and-spoke part: an AutoVPN hub and three spokes in one process, one ADVPN
shortcut coming up and going away (`inline-ipsec demo`, docs/advpn.md).

Everything is real protocol: IKEv2 with ECDSA certificates from a throwaway CA, the hub's
dynamic gateway accepting the spokes by a hostname pattern, NHTB entries from the spokes'
configuration payloads, ESP on the CPU engine, the suggestion as an INFORMATIONAL with a
private notify, the shortcut as a standard IKE SA between the spokes. The clock is ours, so the
idle teardown (60 s) takes no time.
"""
from __future__ import annotations

import datetime
import ipaddress
from typing import Callable, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..config import load_config
from ..dataplane.gateway import Gateway
from ..io.traffic import udp_packet
from .control import HubControl

__all__ = ["run_hub_demo", "hub_text", "spoke_text", "demo_pki"]

HUB = "192.0.2.1"
SPOKES = [(f"198.51.100.{10 + i}", f"10.100.0.{10 + i}", f"10.{i}.0.0/16") for i in (1, 2, 3)]

_IKE = """set security ike proposal ike-1 authentication-method ecdsa-signatures-256
set security ike proposal ike-1 dh-group group19
set security ike proposal ike-1 encryption-algorithm aes-256-gcm
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 certificate local-certificate gw-cert
set security ipsec proposal ipsec-1 encryption-algorithm aes-256-gcm
set security ipsec policy ipsec-1 proposals ipsec-1
set system license ipsec-offload permanent
"""


def hub_text() -> str:
    """The hub: one dynamic gateway (AutoVPN), multipoint st0.0, routes through NHTB."""
    lines = [_IKE.strip(),
             f"set interfaces ge-0/0/0 unit 0 family inet address {HUB}/24",
             "set interfaces st0 unit 0 multipoint",
             "set interfaces st0 unit 0 family inet address 10.100.0.1/24",
             "set security ike gateway spokes ike-policy ike-1",
             "set security ike gateway spokes dynamic hostname *.spokes.example",
             "set security ike gateway spokes local-identity hostname hub.example",
             "set security ike gateway spokes external-interface ge-0/0/0.0",
             "set security ike gateway spokes version v2-only",
             "set security ike gateway spokes advpn partner disable",
             "set security ipsec vpn hub bind-interface st0.0",
             "set security ipsec vpn hub ike gateway spokes",
             "set security ipsec vpn hub ike ipsec-policy ipsec-1"]
    lines += [f"set routing-options static route {lan} next-hop {st0}"
              for _, st0, lan in SPOKES]
    return "\n".join(lines) + "\n"


def spoke_text(i: int) -> str:
    """Spoke `i` (1..3): one VPN to the hub, ADVPN partner with a 60 s idle time."""
    outer, st0, lan = SPOKES[i - 1]
    net = ipaddress.ip_network(lan)
    lines = [_IKE.strip(),
             f"set interfaces ge-0/0/0 unit 0 family inet address {outer}/24",
             f"set interfaces ge-0/0/1 unit 0 family inet address "
             f"{net.network_address + 1}/{net.prefixlen}",
             "set interfaces st0 unit 0 multipoint",
             f"set interfaces st0 unit 0 family inet address {st0}/24",
             "set security ike gateway hub ike-policy ike-1",
             f"set security ike gateway hub address {HUB}",
             f"set security ike gateway hub local-identity hostname spoke{i}.spokes.example",
             "set security ike gateway hub remote-identity hostname hub.example",
             "set security ike gateway hub external-interface ge-0/0/0.0",
             "set security ike gateway hub version v2-only",
             "set security ike gateway hub advpn suggester disable",
             "set security ike gateway hub advpn partner idle-time 60",
             "set security ike gateway hub advpn partner idle-threshold 5",
             "set security ipsec vpn to-hub bind-interface st0.0",
             "set security ipsec vpn to-hub ike gateway hub",
             "set security ipsec vpn to-hub ike ipsec-policy ipsec-1",
             "set security ipsec vpn to-hub establish-tunnels immediately",
             "set routing-options static route 10.0.0.0/8 next-hop st0.0"]
    return "\n".join(lines) + "\n"


def demo_pki() -> Callable[[str], dict]:
    """A throwaway ECDSA CA: `issue(dns)` returns {"gw-cert": (key, [certificate])};
    `issue.ca` is the CA certificate."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())

    def build(cn: str, key, ca: bool, san: bool):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name)
             .issuer_name(ca_name).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                                critical=False)
        return b.sign(ca_key, hashes.SHA256())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Demo CA")])
    ca = build("Demo CA", ca_key, True, False)

    def issue(dns: str) -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        return {"gw-cert": (key, [build(dns, key, False, True)])}
    issue.ca = ca  # type: ignore[attr-defined]
    return issue


class _Net:
    """The four gateways on one in-memory network, addressed by outer IP."""

    def __init__(self) -> None:
        self.now = 0.0
        self.nodes: dict[str, tuple[Gateway, HubControl]] = {}
        self.delivered: dict[str, int] = {}

    def add(self, name: str, text: str, outer: str, creds: dict, ca) -> HubControl:
        gw = Gateway(load_config(text), name=name)
        ctl = HubControl(gw, local=(outer, 500), credentials=creds, ca_certificates=[ca],
                         suggest_holddown=300.0)
        self.nodes[outer] = (gw, ctl)
        self.delivered[outer] = 0
        return ctl

    def pump(self) -> None:
        for _ in range(30):
            moved = 0
            for outer, (_, ctl) in self.nodes.items():
                for data, addr in ctl.datagrams_to_send(self.now):
                    moved += 1
                    if str(addr[0]) in self.nodes:
                        port = 4500 if data.startswith(bytes(4)) else 500
                        self.nodes[str(addr[0])][1].receive(data, (outer, port), self.now)
                t = ctl.get_timer()
                if t is not None and t <= self.now:
                    ctl.handle_timer(self.now)
                    moved += 1
            if not moved:
                return

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + 1.0)
            self.pump()

    def send(self, src: str, packets: list[bytes]) -> None:
        wire = self.nodes[src][0].outbound(packets).wire
        for _ in range(4):
            nxt = []
            for pkt in wire:
                dst = str(ipaddress.IPv4Address(pkt[16:20]))
                if dst in self.nodes:
                    got = self.nodes[dst][1].inbound([pkt], self.now)
                    self.delivered[dst] += len(got.delivered)
                    nxt += got.wire
            wire = nxt


def run_hub_demo(w: Callable[[str], object]) -> dict:
    """Write the hub-and-spoke story with `w`; returns the figures it printed."""
    issue = demo_pki()
    net = _Net()
    hub = net.add("hub", hub_text(), HUB, issue("hub.example"), issue.ca)  # type: ignore
    spokes = [net.add(f"spoke{i}", spoke_text(i), SPOKES[i - 1][0],
                      issue(f"spoke{i}.spokes.example"), issue.ca)  # type: ignore
              for i in (1, 2, 3)]
    for s in spokes:
        s.start(net.now)
    net.pump()
    s1, s2 = spokes[0], spokes[1]
    h1 = hub.gw.tunnel_flow(f"hub@{SPOKES[0][0]}")
    h2 = hub.gw.tunnel_flow(f"hub@{SPOKES[1][0]}")
    w(f"  AutoVPN hub {HUB} (ike gateway spokes dynamic hostname *.spokes.example) and "
      f"three spokes,\n  IKEv2 with ECDSA certificates; {len(hub.tunnels)} spoke tunnels on "
      "multipoint st0.0, no per-spoke configuration.\n")
    w("\n  hub> show security ipsec next-hop-tunnels   (learned from the spokes' CP payloads)\n")
    w(hub.show("security ipsec next-hop-tunnels"))
    rec = hub.gw.tunnel(f"hub@{SPOKES[0][0]}")
    w(f"  each spoke tunnel: Hardware Offloaded: No ({'; '.join(rec.placement.reasons)})\n")

    def flow(n: int, a: int = 1, b: int = 2) -> list[bytes]:
        src = str(ipaddress.ip_network(SPOKES[a - 1][2]).network_address + 5)
        dst = str(ipaddress.ip_network(SPOKES[b - 1][2]).network_address + 5)
        return [udp_packet(src, dst, bytes(200), 4000 + k, 5000) for k in range(n)]

    def hub_counts() -> str:
        return f"hub: {h1.in_delivered} in from spoke1, {h2.out_encrypted} out to spoke2"

    net.send(SPOKES[0][0], flow(20))
    w(f"\n  1. spoke1 -> spoke2, 20 packets: {net.delivered[SPOKES[1][0]]} delivered through "
      f"the hub ({hub_counts()});\n     the hub sends both spokes a shortcut suggestion "
      f"(INFORMATIONAL, private notify): {hub.counters.suggestions_sent} sent\n")
    net.pump()
    sc = s1.shortcuts()[0] if s1.shortcuts() else "(none)"
    w(f"  2. the spokes bring up a direct IKE SA + child SA ({sc}):\n")
    w("\n  spoke1> show security ike security-associations\n")
    w(s1.show("security ike security-associations"))
    for _ in range(3):
        net.send(SPOKES[0][0], flow(60))
        net.advance(10.0)
    shortcut_out = s1.gw.tunnel_flow(sc).out_encrypted if sc in s1.tunnels else 0
    w(f"\n  3. 180 more packets (6 per second): {net.delivered[SPOKES[1][0]]} delivered in all; "
      f"{hub_counts()} (unchanged),\n     shortcut {sc}: {shortcut_out} encrypted\n")
    net.advance(70.0)
    w(f"  4. idle below 5 packets/s for 60 s: shortcut torn down "
      f"({s1.counters.shortcuts_down} down), spoke1 routes now "
      f"{', '.join(p + ' -> ' + t[0] for p, t in s1.routes())}\n")
    net.send(SPOKES[0][0], flow(10))
    w(f"  5. 10 more packets: back through the hub ({hub_counts()})\n")
    w("\n  spoke1> show security advpn statistics\n")
    w(s1.show("security advpn statistics"))
    return {"suggestions": hub.counters.suggestions_sent, "shortcut_out": shortcut_out,
            "hub_in": h1.in_delivered, "delivered": net.delivered[SPOKES[1][0]]}


def main(out: TextIO) -> dict:
    return run_hub_demo(out.write)
