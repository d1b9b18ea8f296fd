"""strongSwan as an AutoVPN spoke of our hub (certificates), with traffic through the hub.

    our spoke (in process)  <-- ESP -->  our hub (HubControl)  <-- ESP in UDP -->  charon
    192.0.2.77, LAN 10.1.0.0/16          <net>.1 on the veth                  <net>.2, netns
    st0 10.100.0.11 (CP request)         dynamic hostname *.spokes.example    VIP 10.100.0.50

charon (kernel-libipsec, its own namespace, see traffic_harness.py) initiates to the hub with
its ECDSA certificate for spoke9.spokes.example and asks for the virtual IP 10.100.0.50 in a
CP(CFG_REQUEST) (RFC 7296 §3.15); the hub's dynamic gateway accepts it by the identity
pattern, answers CFG_REPLY with that address and binds it as a next-hop tunnel (NHTB). Our
own spoke joins the same hub in process. ICMP echo requests from our spoke's LAN to charon's
address then go spoke -> hub (decrypted, routed by NHTB, encrypted again) -> charon, whose
namespace kernel answers through charon, and the replies come back the same way.
"""
from __future__ import annotations

import ipaddress
import os
import select
import socket
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from helpers import missing

from charon_harness import Charon, available
from traffic_harness import IP, Topology, icmp_echo, parse_icmp, udp_packet, udp_payload, usable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
from hub_helpers import Net, hub_config, make_pki, spoke_config  # noqa: E402

from inline_ipsec.hub.advpn import SHORTCUT_SUGGESTION, Suggestion  # noqa: E402

pytestmark = pytest.mark.interop

VIP = "10.100.0.50"
SPOKE_OUTER = "192.0.2.77"
SPOKE_LAN_HOST = "10.1.0.5"
PINGS = 3


@pytest.fixture
def topology(request):
    if not available():
        missing("strongSwan charon is not installed (/usr/lib/ipsec/charon)")
    why = usable()
    if why:
        missing(why)
    topo = Topology()
    request.addfinalizer(topo.close)
    return topo


def _pem(obj) -> bytes:
    if hasattr(obj, "public_bytes") and not hasattr(obj, "private_bytes"):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _swanctl(topo: Topology, our_port: int) -> str:
    return f"""
connections {{
    hub {{
        version = 2
        local_addrs = {topo.theirs}
        local_port = 4500
        remote_addrs = {topo.ours}
        remote_port = {our_port}
        proposals = aes256gcm16-prfsha384-ecp256
        vips = {VIP}
        local {{
            id = @spoke9.spokes.example
            auth = pubkey
            certs = spoke.pem
        }}
        remote {{
            id = @hub.example
            auth = pubkey
            cacerts = ca.pem
        }}
        children {{
            net {{
                remote_ts = 10.0.0.0/8
                esp_proposals = aes256gcm16
                mode = tunnel
                start_action = none
            }}
        }}
    }}
}}
"""


class _Run:
    """Our hub on a real NAT-T socket towards charon, our spoke in process."""

    def __init__(self, topo: Topology, charon: Charon) -> None:
        self.topo = topo
        self.charon = charon
        self.t0 = time.monotonic()
        pki = make_pki()
        self.natt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.natt.bind((topo.ours, 0))
        self.port = self.natt.getsockname()[1]
        net = Net()
        text = hub_config(hub=topo.ours)
        self.hub = net.add("hub", text, topo.ours, pki.issue("hub", "hub.example"), pki.ca)
        self.hub.ctl.manager.natt_local_port = self.port
        self.spoke = net.add("s1", spoke_config(1, hub=topo.ours, outer=SPOKE_OUTER,
                                                advpn=False),
                             SPOKE_OUTER, pki.issue("s1", "spoke1.spokes.example"), pki.ca)
        key = pki.issue("charon", "spoke9.spokes.example")["gw-cert"]
        for name, obj in (("x509ca/ca.pem", pki.ca), ("x509/spoke.pem", key[1][0]),
                          ("private/spoke.key", key[0])):
            (charon.swanctl_dir / name).write_bytes(_pem(obj))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _carry(self, wire: list[bytes]) -> None:
        """Outer packets from the hub: to our spoke in process, or to charon as ESP in UDP."""
        for pkt in wire:
            dst = str(ipaddress.IPv4Address(pkt[16:20]))
            if dst == SPOKE_OUTER:
                got = self.spoke.ctl.inbound([pkt], self.now())
                self.spoke.delivered += got.delivered
            else:
                _src, host, _sport, dport, esp = udp_payload(pkt)
                self.natt.sendto(esp, (host, dport))

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = self.now()
            for data, addr in self.hub.ctl.datagrams_to_send(now):
                if str(addr[0]) == SPOKE_OUTER:
                    self.spoke.ctl.receive(data, (self.topo.ours, 500), now)
                else:
                    self.natt.sendto(data, tuple(addr))
            for data, addr in self.spoke.ctl.datagrams_to_send(now):
                self.hub.ctl.receive(data, (SPOKE_OUTER, 500), now)
            for ctl in (self.hub.ctl, self.spoke.ctl):
                t = ctl.get_timer()
                if t is not None and t <= now:
                    ctl.handle_timer(now)
            ready, _, _ = select.select([self.natt], [], [], 0.02)
            if not ready:
                continue
            data, addr = self.natt.recvfrom(65535)
            if data == b"\xff":
                continue
            if data.startswith(bytes(4)):             # IKE behind the non-ESP marker
                self.hub.ctl.receive(data, addr, self.now())
                continue
            out = self.hub.ctl.inbound([udp_packet(addr[0], self.topo.ours, addr[1],
                                                   self.port, data)], self.now())
            self._carry(out.wire)

    def ping_from_spoke(self, seq: int) -> None:
        data = os.urandom(8) + bytes([seq]) * 24
        out = self.spoke.gw.outbound([icmp_echo(SPOKE_LAN_HOST, VIP, 0x4242, seq, data)])
        assert len(out.wire) == 1, out
        got = self.hub.ctl.inbound(out.wire, self.now())
        self._carry(got.wire)

    def close(self) -> None:
        self.natt.close()


def test_strongswan_autovpn_spoke_with_traffic_through_the_hub(topology, tmp_path) -> None:
    import subprocess
    subprocess.run([IP, "-n", topology.ns, "addr", "add", f"{VIP}/32", "dev", "lo"],
                   check=True, timeout=10)
    charon = Charon(tmp_path, netns=topology.ns, port=500, port_nat_t=4500,
                    install_routes=True)
    charon.start()
    run = None
    try:
        run = _Run(topology, charon)
        charon.load(_swanctl(topology, run.port))
        run.spoke.ctl.start(run.now())
        proc = charon.initiate("net", timeout=20)
        deadline = time.monotonic() + 25
        hub = run.hub.ctl
        while time.monotonic() < deadline and len(hub.tunnels) < 2:
            run.pump(0.2)
        initiated = proc.communicate(timeout=20)[0]
        name = f"hub@{topology.theirs}"
        assert name in hub.tunnels, (hub.errors, hub.refused, initiated,
                                     [str(x.errors) for x in hub.manager.sessions])
        assert f"hub@{SPOKE_OUTER}" in hub.tunnels
        # AutoVPN: charon's own tunnel, on the CPU (Table 1), NHTB from its CP request
        assert not run.hub.gw.tunnel(name).offloaded
        assert hub.nhtb.tunnel_for(VIP) == name
        entry = next(e for e in hub.nhtb.entries() if e.address == VIP)
        assert entry.source == "ike-cp" and entry.peer == "spoke9.spokes.example"
        sas = charon.list_sas()
        assert VIP in sas and "INSTALLED" in sas, sas
        requests, replies = topology.echo_counters()
        for seq in range(1, PINGS + 1):
            run.ping_from_spoke(seq)
            end = time.monotonic() + 5
            while time.monotonic() < end and len(run.spoke.delivered) < seq:
                run.pump(0.05)
        echoes = [parse_icmp(p) for p in run.spoke.delivered]
        assert [(e.type, e.src, e.dst, e.seq) for e in echoes] == \
            [(0, VIP, SPOKE_LAN_HOST, s) for s in range(1, PINGS + 1)], \
            (hub.routes(), run.spoke.ctl.routes(), run.spoke.gw.counters,
             run.hub.gw.tunnel_flow(name), topology.echo_counters(), requests,
             run.hub.gw.tunnel_flow(f"hub@{SPOKE_OUTER}"), charon.list_sas(),
             run.hub.gw.counters)
        assert topology.echo_counters() == (requests + PINGS, replies + PINGS)
        # through the hub both ways: decrypted from one spoke, encrypted to the other
        to_charon = run.hub.gw.tunnel_flow(name)
        to_spoke = run.hub.gw.tunnel_flow(f"hub@{SPOKE_OUTER}")
        assert (to_charon.out_encrypted, to_charon.in_delivered) == (PINGS, PINGS)
        assert (to_spoke.in_delivered, to_spoke.out_encrypted) == (PINGS, PINGS)
        text = hub.show("security ipsec next-hop-tunnels")
        assert VIP in text and "spoke9.spokes.example" in text
        # the suggestion's INFORMATIONAL is plain IKEv2 to a third party: charon (no ADVPN)
        # answers it and keeps the IKE SA (RFC 7296 §3.10.1: unknown status types ignored)
        session = hub.tunnels[name].session
        mid = session.ike.next_mid
        sug = Suggestion(1, False, SPOKE_OUTER, 500, 2, b"spoke1.spokes.example",
                         "10.100.0.11", ("10.1.0.0/16",))
        session.send_notify(SHORTCUT_SUGGESTION, sug.encode(), run.now())
        end = time.monotonic() + 10
        while time.monotonic() < end and (session.ike.pending is not None or
                                          session.ike.next_mid == mid):
            run.pump(0.1)
        assert session.ike.next_mid == mid + 1 and session.ike.pending is None
        assert session.state == "established" and not session.errors.counts, session.errors
        log = charon.logs()
        assert f"parsed INFORMATIONAL request {mid} [ N((45056)) ]" in log, log[-3000:]
        assert f"generating INFORMATIONAL response {mid} [ ]" in log
        # the traffic above was spoke-to-spoke through the hub: it suggested a shortcut to
        # both spokes already (our spoke got one; charon, no ADVPN partner, ignored its own)
        assert hub.counters.suggestions_sent >= 2
        assert run.spoke.ctl.counters.suggestions_received == 1
    finally:
        if run is not None:
            run.close()
        charon.stop()
