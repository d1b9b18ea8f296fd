"""Real traffic through our engines with strongSwan over IKEv1, in a network namespace.

For each scenario and each role (we initiate / charon initiates), as the IKEv2 traffic tests
(`test_strongswan_traffic.py`, whose harness and helpers this reuses):

  1. Phase 1 (Main or Aggressive Mode) and Quick Mode come up; our IPsec SA pair is installed
     through a `Gateway` (`handle_ike_event`): AES-GCM-128/256 tunnels on the `Pfe`
     ("Hardware Offloaded: Yes"), AES-CBC-256/HMAC-SHA-256 on the `CpuEngine` ("No");
  2. ICMP echo requests 10.1.0.1 -> 10.2.0.1 leave as ESP in UDP built by our engine; charon
     (kernel-libipsec) decrypts them, its namespace's kernel answers, charon encrypts the
     replies and our engine decrypts them; both sides' packet counters agree;
  3. the responder of the ISAKMP SA rekeys the pair with a new Quick Mode; traffic runs again
     on the new SPIs only (charon with `delete_rekeyed = yes` deletes its old pair at once);
  4. the initiator of the ISAKMP SA deletes the pair: our SAs leave the engines, charon's
     CHILD_SA and route are gone.

Scenarios: Main Mode PSK with AES-GCM-128 ESP, Main Mode with RSA certificates, Aggressive
Mode PSK (AES-GCM-256), Quick Mode with PFS (MODP-2048), NAT-T through a user-space NAT (real
NAT-D mismatches on both ends, RFC 3947), and an AES-CBC-256/HMAC-SHA-256 child on the CPU.
"""
from __future__ import annotations

import asyncio
import re
import time

import pytest

from charon_harness import Charon, available
from helpers import missing
from inline_ipsec.cpu.engine import CpuEngine
from inline_ipsec.ike import (ChildConfig, ChildSaDown, ChildSaRekeyed, ChildSaUp, Identity,
                              IkeSaUp)
from inline_ipsec.ike.v1 import IkeV1Config, Phase1Proposal
from inline_ipsec.ike.v1.udp import create_endpoint
from test_strongswan_ikev1 import _list_sas_until
from test_strongswan_rekey import child_states
from test_strongswan_traffic import _rsa_pki, _run, _swanctl_async, _traffic
from traffic_harness import (DataEndpoint, NatRelay, OurSide, Topology, assert_offloaded,
                             usable)

pytestmark = pytest.mark.interop

PSK = "ikev1-traffic-psk-0123456789"

SCENARIOS = {
    #  name:          (mode,        IKE proposal,            ESP proposal,
    #                  auth,  our cipher,    offloaded)
    "main-psk-gcm128": ("main", "aes128-sha256-ecp256", "aes128gcm16",
                        "psk", "aes-gcm-128", True),
    "main-rsa-certs": ("main", "aes256-sha256-modp2048", "aes128gcm16",
                       "rsa", "aes-gcm-128", True),
    "aggressive-psk": ("aggressive", "aes256-sha1-ecp256", "aes256gcm16",
                       "psk", "aes-gcm-256", True),
    "quick-mode-pfs": ("main", "aes128-sha256-ecp256", "aes128gcm16-modp2048",
                       "psk", "aes-gcm-128", True),
    "nat-t": ("main", "aes128-sha256-ecp256", "aes128gcm16", "psk", "aes-gcm-128", True),
    "cbc-sha256-cpu": ("main", "aes256-sha256-modp2048", "aes256-sha256",
                       "psk", "aes-cbc-256", False),
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
def charon_ns(topology, tmp_path, request):
    c = Charon(tmp_path, "delete_rekeyed_delay = 1\n    delete_rekeyed = yes\n    "
               "i_dont_care_about_security_and_use_aggressive_mode_psk = yes",
               netns=topology.ns, port=500, port_nat_t=4500, install_routes=True)
    request.addfinalizer(c.stop)
    c.start()
    return c


def _swanctl(scenario: str, topo: Topology, our_addr: str, our_port: int,
             charon_initiates: bool) -> str:
    mode, ike, esp, auth, _, _ = SCENARIOS[scenario]
    extra = "local_port = 4500" if charon_initiates else ""
    local = remote = "auth = psk"
    secrets = f'ike-1 {{\n id-1 = @charon.example\n id-2 = @py.example\n secret = "{PSK}"\n }}'
    if auth == "rsa":
        local, remote, secrets = "auth = pubkey\n certs = charon.pem", \
            "auth = pubkey\n cacerts = ca.pem", ""
    return f"""
connections {{
    pyike {{
        version = 1
        aggressive = {"yes" if mode == "aggressive" else "no"}
        local_addrs = {topo.theirs}
        remote_addrs = {our_addr}
        remote_port = {our_port}
        proposals = {ike}
        {extra}
        local {{
            id = @charon.example
            {local}
        }}
        remote {{
            id = @py.example
            {remote}
        }}
        children {{
            net {{
                local_ts = {topo.their_net}
                remote_ts = {topo.our_net}
                esp_proposals = {esp}
                mode = tunnel
                start_action = none
                rekey_time = 0
            }}
        }}
    }}
}}
secrets {{
    {secrets}
}}
"""


def _our_config(scenario: str, topo: Topology, natt_port: int, pki) -> IkeV1Config:
    mode, ike, esp, auth, _, _ = SCENARIOS[scenario]
    if auth == "rsa":
        ca, ours, key = pki
        creds: dict = {"private_key": key, "certificates": [ours], "ca_certificates": [ca]}
        method = "rsa-signatures"
    else:
        creds, method = {"psk": PSK.encode()}, "pre-shared-keys"
    return IkeV1Config(proposals=[Phase1Proposal.parse(ike, method)], mode=mode,
                       local_id=Identity.parse("@py.example"),
                       remote_id=Identity.parse("@charon.example"), natt_port=natt_port,
                       children=[ChildConfig(name="net", proposals=[esp],
                                             local_ts=[topo.our_net],
                                             remote_ts=[topo.their_net])], **creds)


def _assert_placed(side: OurSide, child, offloaded: bool) -> str:
    if offloaded:
        return assert_offloaded(side, child.spi_in, child.spi_out)
    rec = side.tunnel()
    assert isinstance(rec.engine, CpuEngine) and not rec.offloaded, rec
    assert [(p.inbound.spi, p.outbound.spi) for p in rec.pairs] == \
        [(child.spi_in, child.spi_out)]
    detail = side.gw.show("security ipsec security-associations detail")
    assert "Hardware Offloaded: No" in detail and "Hardware Offloaded: Yes" not in detail
    return detail


async def _run_scenario(scenario: str, we_initiate: bool, topo: Topology, charon: Charon):
    mode, ike, esp, auth, cipher, offloaded = SCENARIOS[scenario]
    pki = _rsa_pki(charon) if auth == "rsa" else None
    nat = scenario == "nat-t"
    ep = await create_endpoint(topo.ours, 0, 0, keepalive_interval=0.3 if nat else 20.0,
                               endpoint_class=DataEndpoint)
    side = OurSide(ep, topo.ours)
    relay = proc = None
    try:
        if nat:
            relay = await NatRelay.create(topo.nat, (topo.ours, side.ep.natt_port),
                                          (topo.theirs, charon.port_nat_t))
            charon.load(_swanctl(scenario, topo, topo.nat, relay.outside_port,
                                 not we_initiate))
            cfg = _our_config(scenario, topo, relay.inside_port, pki)
            peer = (topo.nat, relay.inside_port)
        else:
            charon.load(_swanctl(scenario, topo, topo.ours, side.ep.natt_port, not we_initiate))
            cfg = _our_config(scenario, topo, 4500, pki)
            # Main Mode 1 to charon's port 500; its faked NAT-D (kernel-libipsec needs UDP
            # encapsulation) floats us to 4500 with message 5 (RFC 3947 §4)
            peer = (topo.theirs, 500)
        side.ep.manager.add_peer(f"{peer[0]}/32", cfg)
        if we_initiate:
            side.ep.connect(cfg, peer)
        else:
            proc = charon.initiate("net")
        ike_up = await side.wait_for(IkeSaUp)
        up = await side.wait_for(ChildSaUp)
        if proc is not None:
            out = await asyncio.get_running_loop().run_in_executor(
                None, lambda: proc.communicate(timeout=15)[0])
            assert "initiate completed successfully" in out, out
        child = up.child
        session = side.session
        assert ike_up.version == 1 and ike_up.exchange_mode == mode.capitalize()
        assert ike_up.initiator == we_initiate and child.initiator == we_initiate
        assert child.cipher == cipher and child.udp_encap and child.ike_version == 1
        assert session.natt and side.ep.natt_port == child.local_port
        if nat:      # both NAT-D checks really failed: the relay rewrote both ends
            assert ike_up.local_nat and ike_up.remote_nat
            assert tuple(session.remote_addr[:2]) == peer
        else:        # charon fakes its NAT-D
            assert ike_up.remote_nat and not ike_up.local_nat
            assert tuple(session.remote_addr[:2]) == (topo.theirs, 4500)
        detail = _assert_placed(side, child, offloaded)
        if we_initiate:
            # RFC 2409 §5.5: the responder commits the SA pair when Quick Mode message 3
            # arrives, which we sent as our ChildSaUp came: traffic sent before charon
            # processed it is dropped there
            sas = await _list_sas_until(
                charon, lambda out: child_states(out).get(f"{child.spi_out:08x}") == "INSTALLED",
                timeout=15.0)
            assert child_states(sas).get(f"{child.spi_out:08x}") == "INSTALLED", sas
        first = await _traffic(side, charon, topo, child)
        if nat:
            deadline = time.monotonic() + 3
            while not relay.keepalives_from_us and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert relay.keepalives_from_us, "no NAT-keepalive from us"

        # -- Quick Mode rekey by the responder of the ISAKMP SA
        if we_initiate:
            await _swanctl_async(charon, "--rekey", "--child", "net")
        else:
            session.rekey_child(child.spi_in, side.ep.now())
            side.ep.flush()
        rekeyed = await side.wait_for(ChildSaRekeyed)
        down = await side.wait_for(ChildSaDown)
        new = rekeyed.new
        assert (down.spi_in, down.spi_out) == (child.spi_in, child.spi_out)
        assert rekeyed.old_spi_in == child.spi_in and new.spi_in != child.spi_in
        assert new.initiator == (not we_initiate)
        await side.drain_events(0.3)
        _assert_placed(side, new, offloaded)
        assert side.sa_count() == 2
        second = await _traffic(side, charon, topo, new)
        states = child_states(second["sas"])
        assert states[f"{new.spi_in:08x}"] == "INSTALLED"
        assert states.get(f"{child.spi_in:08x}", "DELETED") == "DELETED"

        # -- Delete by the initiator of the ISAKMP SA
        if we_initiate:
            session.delete_child(new.spi_in, side.ep.now())
            side.ep.flush()
        else:
            await _swanctl_async(charon, "--terminate", "--child", "net")
        gone = await side.wait_for(ChildSaDown)
        assert (gone.spi_in, gone.spi_out) == (new.spi_in, new.spi_out)
        await side.drain_events(0.2)
        deadline = time.monotonic() + 8
        while True:
            after = await _swanctl_async(charon, "--list-sas")
            routes = topo.routes()
            if (not child_states(after) and "dev ipsec0 table 220" not in routes) \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert "dev ipsec0 table 220" not in routes, routes
        assert side.gw.tunnel_names() == [] and side.sa_count() == 0
        return {"ike": ike_up, "child": child, "new": new, "detail": detail,
                "first": first, "second": second, "after": after, "relay": relay}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        side.close()
        if relay is not None:
            relay.close()


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_ikev1_traffic(topology, charon_ns, scenario, we_initiate):
    t0 = time.monotonic()
    r = _run(charon_ns, topology, _run_scenario(scenario, we_initiate, topology, charon_ns))
    log = charon_ns.log.read_text()
    assert "ESTABLISHED, IKEv1" in r["after"] and not child_states(r["after"]), r["after"]
    mode, _, _, auth, _, offloaded = SCENARIOS[scenario]
    assert ("Hardware Offloaded: Yes" if offloaded else "Hardware Offloaded: No") in r["detail"]
    assert ("Aggressive Mode" if mode == "aggressive" else "Main Mode") in log
    if auth == "rsa":
        assert "authentication of 'py.example' with RSA_EMSA_PKCS1_NULL successful" in log
    if scenario == "quick-mode-pfs":
        assert re.search(r"selected proposal: ESP:AES_GCM_16_128/MODP_2048", log), log
    if scenario == "nat-t":
        relay = r["relay"]
        assert "remote host is behind NAT" in log
        assert relay.esp_from_us >= 2 * 3 and relay.esp_from_charon >= 2 * 3
        assert relay.keepalives_from_us >= 1
    assert time.monotonic() - t0 < 40
