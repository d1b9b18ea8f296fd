"""Two VPNs on one IKE gateway against strongSwan: one IKE SA, two CHILD_SAs, traffic on both.

Our side is a whole `Gateway` run by `IkeControl` from a Junos configuration: `ike gateway
charon` with `ipsec vpn to-a` (10.1.0.0/25 <-> 10.2.0.1/32) and `ipsec vpn to-b`
(10.1.0.128/25 <-> 10.2.0.1/32). charon's connection `pyike` has the two matching children
`a` and `b` (traffic selectors mirrored), in its own network namespace (`traffic_harness`).

    we initiate                                   charon initiates
    IKE_SA_INIT, IKE_AUTH (child to-a)  -->       <--  IKE_SA_INIT, IKE_AUTH (child a)
    CREATE_CHILD_SA (child to-b)        -->       <--  CREATE_CHILD_SA (child b)
                                                  (we pick the VPN by the proposed TS)

Then ICMP echo requests from 10.1.0.1 (to-a) and 10.1.0.129 (to-b) to charon's 10.2.0.1 leave
on each VPN's own SA from our Pfe, charon's kernel answers, the replies come back on the
matching CHILD_SA; charon lists one IKE SA with two installed CHILD_SAs whose counters
match, and deleting one VPN's child SA leaves the other VPN and the IKE SA up.
"""
from __future__ import annotations

import ipaddress
import re
import select
import socket
import time

import pytest

from inline_ipsec.config.model import License
from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.ike_control import IkeControl
from inline_ipsec.ike.constants import NON_ESP_MARKER
from test_strongswan_rekey import child_states
from test_strongswan_traffic import charon_ns, topology  # noqa: F401  (fixtures)
from traffic_harness import icmp_echo, parse_icmp, udp_packet, udp_payload

pytestmark = pytest.mark.interop

PSK = "shared-gateway-psk-0123456789"
HOSTS = {"to-a": ("10.1.0.1", "10.1.0.0/25", "a"), "to-b": ("10.1.0.129", "10.1.0.128/25", "b")}
THEIRS = "10.2.0.1"
PINGS = 3


def _junos(topo) -> str:
    lines = [
        f"set interfaces ge-0/0/0 unit 0 family inet address {topo.ours}/{topo.prefixlen}",
        "set security ike proposal p1 authentication-method pre-shared-keys",
        "set security ike proposal p1 dh-group group19",
        "set security ike proposal p1 encryption-algorithm aes-128-gcm",
        "set security ike policy pol1 proposals p1",
        f'set security ike policy pol1 pre-shared-key ascii-text "{PSK}"',
        "set security ike gateway charon ike-policy pol1",
        f"set security ike gateway charon address {topo.theirs}",
        "set security ike gateway charon external-interface ge-0/0/0.0",
        "set security ike gateway charon version v2-only",
        "set security ike gateway charon local-identity hostname py.example",
        "set security ike gateway charon remote-identity hostname charon.example",
        "set security ipsec proposal e1 encryption-algorithm aes-128-gcm",
        "set security ipsec policy e1 proposals e1",
    ]
    for unit, (vpn, (_h, net, _c)) in enumerate(HOSTS.items(), 1):
        pre = f"set security ipsec vpn {vpn}"
        lines += [f"set interfaces st0 unit {unit} family inet",
                  f"{pre} bind-interface st0.{unit}", f"{pre} ike gateway charon",
                  f"{pre} ike ipsec-policy e1",
                  f"{pre} traffic-selector ts local-ip {net} remote-ip {THEIRS}/32"]
    return "\n".join(lines) + "\n"


def _swanctl(topo, our_port: int, charon_initiates: bool) -> str:
    children = "".join(f"""
            {child} {{
                local_ts = {THEIRS}/32
                remote_ts = {net}
                esp_proposals = aes128gcm16
                mode = tunnel
                start_action = none
                rekey_time = 0
            }}""" for _h, net, child in HOSTS.values())
    return f"""
connections {{
    pyike {{
        version = 2
        local_addrs = {topo.theirs}
        remote_addrs = {topo.ours}
        remote_port = {our_port}
        proposals = aes128gcm16-prfsha256-ecp256
        {"local_port = 4500" if charon_initiates else ""}
        local {{
            id = @charon.example
            auth = psk
        }}
        remote {{
            id = @py.example
            auth = psk
        }}
        children {{{children}
        }}
    }}
}}
secrets {{
    ike-1 {{
        id-1 = @charon.example
        id-2 = @py.example
        secret = "{PSK}"
    }}
}}
"""


class Ports:
    """Our IKE and NAT-T sockets on the veth address, driving `IkeControl`; ESP in UDP on
    the NAT-T socket (no non-ESP marker, RFC 3948 §2.2) goes to the gateway's data path."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.ike = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.natt = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (self.ike, self.natt):
            s.bind((host, 0))
            s.setblocking(False)
        self.control: IkeControl | None = None
        self.esp: list[tuple[bytes, tuple]] = []

    @property
    def ike_port(self) -> int:
        return self.ike.getsockname()[1]

    @property
    def natt_port(self) -> int:
        return self.natt.getsockname()[1]

    def poll(self, seconds: float) -> None:
        ctl = self.control
        assert ctl is not None
        end = time.monotonic() + seconds
        while True:
            for data, addr in ctl.datagrams_to_send(time.monotonic()):
                natt = data.startswith(NON_ESP_MARKER) or data == b"\xff"   # keepalive
                sock = self.natt if natt else self.ike
                sock.sendto(data, tuple(addr[:2]))
            left = end - time.monotonic()
            if left <= 0:
                return
            t = ctl.get_timer()
            wait = left if t is None else max(0.0, min(left, t - time.monotonic()))
            ready, _, _ = select.select([self.ike, self.natt], [], [], min(wait, 0.05))
            for sock in ready:
                while True:
                    try:
                        data, addr = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if sock is self.natt and data != b"\xff" and \
                            not data.startswith(NON_ESP_MARKER):
                        self.esp.append((data, addr))
                    else:
                        ctl.receive(data, addr[:2], time.monotonic())
            t = ctl.get_timer()
            if t is not None and t <= time.monotonic():
                ctl.handle_timer(time.monotonic())

    def until(self, cond, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            self.poll(0.05)
        return cond()

    def close(self) -> None:
        self.ike.close()
        self.natt.close()


def _ping(ports: Ports, gw: Gateway, topo, vpn: str) -> tuple[set[int], set[int]]:
    """PINGS echo requests through `vpn`; returns (SPIs they left on, SPIs replies came on)."""
    src = HOSTS[vpn][0]
    sent, got = set(), set()
    for seq in range(1, PINGS + 1):
        data = f"{vpn} ping {seq}".encode() * 3
        out = gw.outbound([icmp_echo(src, THEIRS, 0x4242, seq, data)])
        assert len(out.wire) == 1, (vpn, out)
        _s, dst, _sp, _dp, esp = udp_payload(out.wire[0])
        sent.add(int.from_bytes(esp[:4], "big"))
        ports.natt.sendto(esp, (dst, 4500))
        assert ports.until(lambda: bool(ports.esp), 5.0), f"no reply on {vpn} seq {seq}"
        wire, addr = ports.esp.pop(0)
        got.add(int.from_bytes(wire[:4], "big"))
        # the SAs' NAT-T ports are the standard 4500/4500 (the IKE transport is mapped)
        back = gw.inbound([udp_packet(addr[0], topo.ours, 4500, 4500, wire)])
        assert len(back.delivered) == 1, (vpn, back, gw.counters)
        echo = parse_icmp(back.delivered[0])
        assert (echo.type, echo.seq, echo.dst, echo.data) == (0, seq, src, data)
    return sent, got


def _charon_count(sas: str, direction: str, spi: int) -> int:
    m = re.search(rf"{direction}\s+{spi:08x}(?:\s+\([^)]*\))?,\s+\d+ bytes,\s+(\d+) packets",
                  sas)
    assert m, f"charon has no {direction} SA {spi:08x}:\n{sas}"
    return int(m.group(1))


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
def test_two_vpns_one_ike_sa_with_strongswan(topology, charon_ns, we_initiate):
    topo, charon = topology, charon_ns
    assert ipaddress.ip_address(topo.ours) < ipaddress.ip_address(topo.theirs)
    text = _junos(topo)
    if we_initiate:
        text += "".join(f"set security ipsec vpn {v} establish-tunnels immediately\n"
                        for v in HOSTS)
    gw = Gateway.from_text(text, name="py", license=License(expires=None))
    ports = Ports(topo.ours)
    proc = None
    try:
        ctl = IkeControl(gw, local=(topo.ours, ports.ike_port), natt_port=ports.natt_port,
                         peers={topo.theirs: (topo.theirs, 500, 4500)})
        ports.control = ctl
        assert list(ctl.peers) == ["charon"] and not ctl.unsupported
        charon.load(_swanctl(topo, ports.natt_port, not we_initiate))
        if we_initiate:
            ctl.start(time.monotonic())
        else:
            for child in ("a", "b"):       # the second reuses the IKE SA: CREATE_CHILD_SA
                proc = charon.initiate(child)
                assert ports.until(lambda: proc.poll() is not None, 15.0)
                assert "initiate completed successfully" in proc.communicate()[0]
        assert ports.until(lambda: ctl.up(), 15.0), (ctl.errors, charon.logs()[-3000:])
        assert len(ctl.sessions()) == 1
        session = ctl.sessions()[0]
        assert session.ike.initiator == we_initiate and len(session.children) == 2
        sas = charon.list_sas()
        assert sas.count("pyike: #") == 1, sas               # one IKE SA
        states = child_states(sas)
        assert sorted(states.values()) == ["INSTALLED"] * 4, sas   # two CHILD_SAs (in/out)
        spis = {}
        for vpn in HOSTS:
            (pair,) = gw.tunnel(vpn).pairs
            assert gw.tunnel(vpn).offloaded
            spis[vpn] = (pair.inbound.spi, pair.outbound.spi)
            sent, got = _ping(ports, gw, topo, vpn)
            assert sent == {pair.outbound.spi} and got == {pair.inbound.spi}, (vpn, spis)
        sas = charon.list_sas()
        for vpn, (spi_in, spi_out) in spis.items():
            assert _charon_count(sas, "in", spi_out) == PINGS, (vpn, sas)
            assert _charon_count(sas, "out", spi_in) == PINGS, (vpn, sas)
        assert "Total active tunnels: 2" in gw.show("security ipsec security-associations")
        assert gw.show("security ike security-associations").count("IKEv2") == 1
        # delete to-b's child SA: to-a and the IKE SA stay, on both sides
        session.delete_child(spis["to-b"][0], time.monotonic())
        assert ports.until(lambda: "to-b" not in gw.distributor, 10.0)
        ports.poll(0.5)
        assert gw.tunnel_names() == ["to-a"] and ctl.sessions() == [session]
        sent, got = _ping(ports, gw, topo, "to-a")
        assert sent == {spis["to-a"][1]}
        after = charon.list_sas()
        assert after.count("pyike: #") == 1 and "ESTABLISHED" in after
        assert f"{spis['to-b'][1]:08x}" not in after or \
            child_states(after).get(f"{spis['to-b'][1]:08x}") != "INSTALLED", after
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- charon log ---\n{charon.logs()[-6000:]}") from exc
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ports.close()
