"""IKEv1 through the gateway against strongSwan 5.9: a whole `Gateway` run by `IkeControl`
from a Junos configuration whose `ike gateway charon` has no `version` (Junos' default,
`v1-only`), two VPNs on it, told apart by traffic selectors:

- `gcm` (10.1.0.0/25 <-> 10.2.0.1/32): ESP AES-GCM-128, offloaded ("Hardware Offloaded: Yes");
- `cbc` (10.1.0.128/25 <-> 10.2.0.1/32): ESP AES-256-CBC + HMAC-SHA-256-128 with PFS group 19,
  on the CPU engine.

charon (`version = 1`, Main Mode PSK, AES-256-CBC/SHA-256/ECP-256 Phase 1) runs in its own
network namespace (`traffic_harness`); we initiate, or charon does. Both VPNs come up on one
ISAKMP SA; ICMP echo requests leave on each VPN's own SA from our engines, charon's kernel
answers and the replies come back on the matching SA. Then a Quick Mode rekey from each side
(we rekey `gcm`, charon rekeys `cbc`) moves the traffic to the new SPIs; a Delete from each
side (we delete `cbc`'s pair, charon terminates `gcm`'s) removes the pair on both, and the
ISAKMP SA stays.
"""
from __future__ import annotations

import ipaddress
import time

import pytest

from charon_harness import Charon, available
from helpers import missing
from inline_ipsec.config.model import License
from inline_ipsec.control.ike_control import IkeControl
from inline_ipsec.gateway import Gateway
from inline_ipsec.ike.v1 import IkeV1Session
from test_strongswan_rekey import child_states
from test_strongswan_shared_gateway import Ports, _charon_count
from traffic_harness import Topology, icmp_echo, parse_icmp, udp_packet, udp_payload, usable

pytestmark = pytest.mark.interop

PSK = "ikev1-gateway-psk-0123456789"
THEIRS = "10.2.0.1"
PINGS = 3
#: VPN -> (our host, our prefix, charon's child, ESP proposal, Junos ipsec proposal lines)
VPNS = {
    "gcm": ("10.1.0.1", "10.1.0.0/25", "a", "aes128gcm16",
            ["encryption-algorithm aes-128-gcm"]),
    "cbc": ("10.1.0.129", "10.1.0.128/25", "b", "aes256-sha256-ecp256",
            ["encryption-algorithm aes-256-cbc",
             "authentication-algorithm hmac-sha-256-128"]),
}


@pytest.fixture
def topology(request):
    if not available():
        missing("strongSwan charon is not installed (/usr/lib/ipsec/charon)")
    why = usable()
    if why:
        missing(why)
    topo = Topology(nat_address=True)
    request.addfinalizer(topo.close)
    return topo


@pytest.fixture
def charon_v1(topology, tmp_path, request):
    c = Charon(tmp_path, "delete_rekeyed_delay = 1\n    delete_rekeyed = yes",
               netns=topology.ns, port=500, port_nat_t=4500, install_routes=True)
    request.addfinalizer(c.stop)
    c.start()
    return c


def _junos(topo, we_initiate: bool) -> str:
    lines = [
        f"set interfaces ge-0/0/0 unit 0 family inet address {topo.ours}/{topo.prefixlen}",
        "set security ike proposal p1 authentication-method pre-shared-keys",
        "set security ike proposal p1 dh-group group19",
        "set security ike proposal p1 encryption-algorithm aes-256-cbc",
        "set security ike proposal p1 authentication-algorithm sha-256",
        "set security ike policy pol1 mode main",
        "set security ike policy pol1 proposals p1",
        f'set security ike policy pol1 pre-shared-key ascii-text "{PSK}"',
        "set security ike gateway charon ike-policy pol1",
        f"set security ike gateway charon address {topo.theirs}",
        "set security ike gateway charon external-interface ge-0/0/0.0",
        "set security ike gateway charon local-identity hostname py.example",
        "set security ike gateway charon remote-identity hostname charon.example",
        "set security ipsec policy pol-cbc perfect-forward-secrecy keys group19",
    ]
    for unit, (vpn, (_h, net, _c, _esp, stmts)) in enumerate(VPNS.items(), 1):
        pre = f"set security ipsec vpn {vpn}"
        lines += [f"set security ipsec proposal p-{vpn} {s}" for s in stmts]
        lines += [f"set security ipsec policy pol-{vpn} proposals p-{vpn}",
                  f"set interfaces st0 unit {unit} family inet",
                  f"{pre} bind-interface st0.{unit}", f"{pre} ike gateway charon",
                  f"{pre} ike ipsec-policy pol-{vpn}",
                  f"{pre} traffic-selector ts local-ip {net} remote-ip {THEIRS}/32"]
        if we_initiate:
            lines.append(f"{pre} establish-tunnels immediately")
    return "\n".join(lines) + "\n"


def _swanctl(topo, our_port: int, charon_initiates: bool) -> str:
    children = "".join(f"""
            {child} {{
                local_ts = {THEIRS}/32
                remote_ts = {net}
                esp_proposals = {esp}
                mode = tunnel
                start_action = none
                rekey_time = 0
            }}""" for _h, net, child, esp, _s in VPNS.values())
    return f"""
connections {{
    pyike {{
        version = 1
        aggressive = no
        local_addrs = {topo.theirs}
        remote_addrs = {topo.ours}
        remote_port = {our_port}
        proposals = aes256-sha256-ecp256
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


def _ping(ports: Ports, gw: Gateway, topo, vpn: str, first: int = 1
          ) -> tuple[set[int], set[int]]:
    """PINGS echo requests through `vpn`; (SPIs they left on, SPIs the replies came on)."""
    src = VPNS[vpn][0]
    sent, got = set(), set()
    for seq in range(first, first + PINGS):
        data = f"{vpn} ping {seq}".encode() * 3
        out = gw.outbound([icmp_echo(src, THEIRS, 0x4343, seq, data)])
        assert len(out.wire) == 1, (vpn, out)
        _s, dst, _sp, _dp, esp = udp_payload(out.wire[0])
        sent.add(int.from_bytes(esp[:4], "big"))
        ports.natt.sendto(esp, (dst, 4500))
        assert ports.until(lambda: bool(ports.esp), 5.0), f"no reply on {vpn} seq {seq}"
        wire, addr = ports.esp.pop(0)
        got.add(int.from_bytes(wire[:4], "big"))
        back = gw.inbound([udp_packet(addr[0], topo.ours, 4500, 4500, wire)])
        assert len(back.delivered) == 1, (vpn, back, gw.counters)
        echo = parse_icmp(back.delivered[0])
        assert (echo.type, echo.seq, echo.dst, echo.data) == (0, seq, src, data)
    return sent, got


def _pair(gw: Gateway, vpn: str) -> tuple[int, int]:
    (pair,) = gw.tunnel(vpn).pairs
    return pair.inbound.spi, pair.outbound.spi


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
def test_ikev1_through_the_gateway_with_strongswan(topology, charon_v1, we_initiate):
    topo, charon = topology, charon_v1
    assert ipaddress.ip_address(topo.ours) < ipaddress.ip_address(topo.theirs)
    gw = Gateway.from_text(_junos(topo, we_initiate), name="py", license=License(expires=None))
    assert gw.config.ike_gateways["charon"].version == "v1-only"
    ports = Ports(topo.ours)
    proc = None
    try:
        ctl = IkeControl(gw, local=(topo.ours, ports.ike_port), natt_port=ports.natt_port,
                         peers={topo.theirs: (topo.theirs, 500, 4500)})
        ports.control = ctl
        assert list(ctl.peers) == ["charon"] and not ctl.unsupported, ctl.unsupported
        charon.load(_swanctl(topo, ports.natt_port, not we_initiate))
        if we_initiate:
            ctl.start(time.monotonic())
        else:
            for child in ("a", "b"):       # the second reuses the ISAKMP SA: a Quick Mode
                proc = charon.initiate(child)
                assert ports.until(lambda: proc.poll() is not None, 15.0)
                assert "initiate completed successfully" in proc.communicate()[0]
        assert ports.until(lambda: ctl.up(), 15.0), (list(ctl.errors), charon.logs()[-3000:])
        (session,) = ctl.sessions()
        assert isinstance(session, IkeV1Session) and session.exchange_mode == "Main"
        assert session.ike.initiator == we_initiate and len(session.children) == 2
        ports.poll(0.3)                    # charon installs its SAs after Quick Mode 3
        sas = charon.list_sas()
        assert sas.count("pyike: #") == 1, sas                    # one ISAKMP SA
        assert sorted(child_states(sas).values()) == ["INSTALLED"] * 4, sas
        assert gw.tunnel("gcm").offloaded and not gw.tunnel("cbc").offloaded
        spis = {}
        for vpn in VPNS:
            spis[vpn] = _pair(gw, vpn)
            sent, got = _ping(ports, gw, topo, vpn)
            assert sent == {spis[vpn][1]} and got == {spis[vpn][0]}, (vpn, spis)
        sas = charon.list_sas()
        for vpn, (spi_in, spi_out) in spis.items():
            assert _charon_count(sas, "in", spi_out) == PINGS, (vpn, sas)
            assert _charon_count(sas, "out", spi_in) == PINGS, (vpn, sas)
        rows = gw.show("security ike security-associations")
        assert " Main " in rows, rows
        detail = gw.show("security ipsec security-associations detail vpn-name gcm")
        assert "  Version: IKEv1\n" in detail and "  Hardware Offloaded: Yes\n" in detail

        # -- Quick Mode rekeys, one from each side; traffic runs on the new SPIs
        session.rekey_child(spis["gcm"][0], time.monotonic())
        assert ports.until(lambda: _pair(gw, "gcm") != spis["gcm"] and
                           not gw.tunnel("gcm").draining, 10.0), charon.logs()[-3000:]
        charon.swanctl("--rekey", "--child", "b")
        assert ports.until(lambda: _pair(gw, "cbc") != spis["cbc"], 10.0), \
            charon.logs()[-3000:]
        ports.poll(1.5)                    # charon deletes its old pairs (delete_rekeyed)
        for vpn in VPNS:
            new = _pair(gw, vpn)
            assert new[0] != spis[vpn][0] and new[1] != spis[vpn][1]
            sent, got = _ping(ports, gw, topo, vpn, first=10)
            assert sent == {new[1]} and got == {new[0]}, (vpn, new)
            spis[vpn] = new
        assert gw.tunnel("gcm").offloaded and not gw.tunnel("cbc").offloaded
        states = child_states(charon.list_sas())
        for vpn, (spi_in, spi_out) in spis.items():
            assert states.get(f"{spi_out:08x}") == "INSTALLED", (vpn, states)

        # -- a Delete from each side; the ISAKMP SA stays
        (session,) = ctl.sessions()
        session.delete_child(spis["cbc"][0], time.monotonic())
        assert ports.until(lambda: "cbc" not in gw.distributor, 10.0)
        ports.poll(0.5)
        assert f"{spis['cbc'][1]:08x}" not in child_states(charon.list_sas())
        charon.swanctl("--terminate", "--child", "a")
        assert ports.until(lambda: "gcm" not in gw.distributor, 10.0), charon.logs()[-3000:]
        assert ctl.sessions() == [session] and session.state == "established"
        assert charon.list_sas().count("pyike: #") == 1
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- charon log ---\n{charon.logs()[-6000:]}") from exc
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ports.close()
