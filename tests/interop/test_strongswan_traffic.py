"""Real traffic through our PFE with strongSwan: the IKEv2 issue's interop scenarios.

For each scenario (PSK + AES-GCM-128, PSK + AES-GCM-256, RSA certificates, RFC 8784 PPK
required, NAT-T through a NAT) and each role (we initiate / charon initiates):

  1. the IKE SA and its first child SA come up; our child SA pair is installed through a
     `Gateway` (`handle_ike_event`) and lands on a `Pfe` ("Hardware Offloaded: Yes");
  2. ICMP echo requests 10.1.0.1 -> 10.2.0.1 go out as ESP in UDP built by our Pfe; charon
     (kernel-libipsec) decrypts them into its TUN, the kernel of charon's namespace answers,
     charon encrypts the replies to us and our Pfe decrypts them (type 0, id/seq/data match);
     charon's CHILD_SA counters and ours agree on the packet counts;
  3. the child SA is rekeyed (CREATE_CHILD_SA, by the side that did not initiate) and traffic
     runs again, on the new SPIs only;
  4. the child SA is deleted (INFORMATIONAL, by the initiator): our SAs are gone from the
     engines and charon lists no CHILD_SA.

See README.md in this folder for the namespace and routing set-up (traffic_harness.py).
"""
from __future__ import annotations

import asyncio
import datetime
import re
import time

import pytest
from helpers import missing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from charon_harness import Charon, available
from inline_ipsec.ike import (ChildConfig, ChildSaDown, ChildSaRekeyed, ChildSaUp, Identity,
                              IkeConfig, IkeSaUp)
from test_strongswan_rekey import child_states
from traffic_harness import (NatRelay, OurSide, Topology, assert_offloaded, inbound_counters,
                             outbound_counters, usable)

pytestmark = pytest.mark.interop

PSK = "traffic-psk-0123456789abcdef"
PPK = bytes(range(100, 164))
PINGS = 3

SCENARIOS = {
    #  name:       (IKE proposal,                    ESP proposal,  our cipher)
    "psk-gcm128": ("aes128gcm16-prfsha256-ecp256", "aes128gcm16", "aes-gcm-128"),
    "psk-gcm256": ("aes256gcm16-prfsha384-x25519", "aes256gcm16", "aes-gcm-256"),
    "rsa-certs": ("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes-gcm-256"),
    "ppk-required": ("aes256gcm16-prfsha384-ecp384", "aes256gcm16", "aes-gcm-256"),
    "nat-t": ("aes128gcm16-prfsha256-ecp256", "aes128gcm16", "aes-gcm-128"),
}


# ---- fixtures ---------------------------------------------------------------------------

@pytest.fixture
def topology(request):
    if not available():
        missing("strongSwan charon is not installed (/usr/lib/ipsec/charon)")
    why = usable()
    if why:
        missing(why)
    topo = Topology(nat_address=True, family=getattr(request, "param", 4))
    request.addfinalizer(topo.close)
    return topo


@pytest.fixture
def charon_ns(topology, tmp_path, request):
    """charon in the topology's namespace on the standard ports 500/4500, installing its
    routes (into the namespace only)."""
    # rekeyed CHILD_SAs linger as DELETED for delete_rekeyed_delay (5 s by default)
    c = Charon(tmp_path, "delete_rekeyed_delay = 1", netns=topology.ns, port=500,
               port_nat_t=4500, install_routes=True)
    request.addfinalizer(c.stop)
    c.start()
    return c


# ---- configuration ------------------------------------------------------------------------

def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _rsa_pki(charon: Charon):
    """An RSA CA, an RSA certificate for us (py.example) and one for charon."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(cn, key, issuer=None, issuer_key=None, ca=False):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name)
             .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                                critical=False)
        return b.sign(issuer_key or key, hashes.SHA256())

    def key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key = key()
    ca = cert("traffic CA", ca_key, ca=True)
    ours_key, theirs_key = key(), key()
    ours = cert("py.example", ours_key, ca, ca_key)
    theirs = cert("charon.example", theirs_key, ca, ca_key)
    for name, obj in (("x509ca/ca.pem", ca), ("x509/charon.pem", theirs),
                      ("private/charon.key", theirs_key)):
        (charon.swanctl_dir / name).write_bytes(_pem(obj))
    return ca, ours, ours_key


def _swanctl(scenario: str, topo: Topology, our_addr: str, our_port: int,
             charon_initiates: bool) -> str:
    ike, esp, _ = SCENARIOS[scenario]
    # charon initiates from its NAT-T port, with the non-ESP marker, to our NAT-T port
    extra = "local_port = 4500" if charon_initiates else ""
    secrets = (f'ike-1 {{\n id-1 = @charon.example\n id-2 = @py.example\n'
               f' secret = "{PSK}"\n }}')
    local = remote = "auth = psk"
    if scenario == "rsa-certs":
        local = "auth = pubkey\n certs = charon.pem"
        remote = "auth = pubkey\n cacerts = ca.pem"
        secrets = ""
    if scenario == "ppk-required":
        extra += "\n ppk_id = ppk-1\n ppk_required = yes"
        secrets += f"\n ppk-1 {{\n id = ppk-1\n secret = 0x{PPK.hex()}\n }}"
    return f"""
connections {{
    pyike {{
        version = 2
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


def _our_config(scenario: str, topo: Topology, natt_port: int, pki) -> IkeConfig:
    ike, esp, _ = SCENARIOS[scenario]
    kw: dict = {}
    if scenario == "rsa-certs":
        ca, ours, ours_key = pki
        kw = {"auth": "pubkey", "private_key": ours_key, "certificates": [ours],
              "ca_certificates": [ca]}
    else:
        kw = {"psk": PSK.encode()}
    if scenario == "ppk-required":
        kw.update(ppk_id=b"ppk-1", ppk=PPK, ppk_required=True)
    return IkeConfig(proposals=[ike], local_id=Identity.parse("@py.example"),
                     remote_id=Identity.parse("@charon.example"), natt_port=natt_port,
                     children=[ChildConfig(name="net", proposals=[esp],
                                           local_ts=[topo.our_net],
                                           remote_ts=[topo.their_net])], **kw)


# ---- helpers --------------------------------------------------------------------------------

def _charon_child_counts(sas: str, spi_in: int, spi_out: int) -> tuple[int, int]:
    """charon's packet counters of its inbound SA (our outbound SPI) and outbound SA."""
    def count(direction: str, spi: int) -> int:
        m = re.search(rf"{direction}\s+{spi:08x}(?:\s+\([^)]*\))?,\s+\d+ bytes,\s+(\d+) packets",
                      sas)
        assert m, f"charon has no {direction} SA {spi:08x}:\n{sas}"
        return int(m.group(1))
    return count("in", spi_out), count("out", spi_in)


async def _swanctl_async(charon: Charon, *args: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: charon.swanctl(*args))


async def _traffic(side: OurSide, charon: Charon, topo: Topology, child) -> dict:
    """PINGS echo requests and their replies on the child SA pair `child`."""
    requests, replies = topo.echo_counters()
    res = await side.ping(PINGS)
    # charon's namespace kernel got the requests from libipsec's TUN and answered them
    assert topo.echo_counters() == (requests + PINGS, replies + PINGS)
    routes = topo.routes()   # charon's route for our TS into the TUN, in its namespace only
    assert re.search(rf"{re.escape(topo.our_net)} dev ipsec0 table 220", routes), routes
    assert set(res.sent_spis) == {child.spi_out}, res.sent_spis
    assert set(res.reply_spis) == {child.spi_in}, res.reply_spis
    ok = [e for e in res.replies if e.type == 0]
    assert len(ok) == PINGS and all(e.code == 0 and e.checksum_ok for e in ok), res.replies
    assert [(e.src, e.dst) for e in ok] == [(topo.their_host, topo.our_host)] * PINGS
    assert [e.seq for e in ok] == list(range(1, PINGS + 1))
    cin = inbound_counters(side, child.spi_in)
    cout = outbound_counters(side, child.spi_out)
    assert (cin.packets, cout.packets) == (PINGS, PINGS), (cin, cout)
    assert cin.auth_failed == cin.replay_duplicate == cin.malformed == 0, cin
    sas = await _swanctl_async(charon, "--list-sas")
    # charon decrypted our requests and encrypted its kernel's replies
    assert _charon_child_counts(sas, child.spi_in, child.spi_out) == (PINGS, PINGS), sas
    return {"sas": sas, "ping": res}


async def _run_scenario(scenario: str, we_initiate: bool, topo: Topology, charon: Charon):
    pki = _rsa_pki(charon) if scenario == "rsa-certs" else None
    nat = scenario == "nat-t"
    side = await OurSide.create(topo.ours, keepalive_interval=0.3 if nat else 20.0)
    relay = proc = None
    try:
        if nat:
            # we reach charon's 4500 through the NAT's port forward; charon sees us as
            # <nat>:<outside port> and reaches us through the same mapping
            relay = await NatRelay.create(topo.nat, (topo.ours, side.ep.natt_port),
                                          (topo.theirs, charon.port_nat_t))
            charon.load(_swanctl(scenario, topo, topo.nat, relay.outside_port,
                                  not we_initiate))
            cfg = _our_config(scenario, topo, relay.inside_port, pki)
            peer = (topo.nat, relay.inside_port)
        else:
            charon.load(_swanctl(scenario, topo, topo.ours, side.ep.natt_port, not we_initiate))
            cfg = _our_config(scenario, topo, 4500, pki)
            # IKE_SA_INIT to charon's port 500 from our IKE port; its NAT detection (faked
            # by kernel-libipsec, which needs UDP encapsulation) floats both to NAT-T.
            peer = (topo.theirs, 500)
        side.ep.manager.add_peer(f"{peer[0]}/32", cfg)   # we answer charon with cfg
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
        assert ike_up.initiator == we_initiate and child.initiator == we_initiate
        assert child.cipher == SCENARIOS[scenario][2] and child.udp_encap
        assert session.natt and side.ep.natt_port == child.local_port
        if nat:       # both NAT detections are real: the NAT rewrote both ends' addresses
            assert ike_up.local_nat and ike_up.remote_nat
            assert tuple(session.remote_addr[:2]) == peer
        else:         # charon fakes its NAT_DETECTION_SOURCE_IP (libipsec needs UDP encap)
            assert ike_up.remote_nat and not ike_up.local_nat
            assert tuple(session.remote_addr[:2]) == (topo.theirs, 4500)   # floated to NAT-T
        detail = assert_offloaded(side, child.spi_in, child.spi_out)
        first = await _traffic(side, charon, topo, child)
        if nat:   # we are behind the NAT: RFC 3948 §2.3 keepalives keep its mapping open
            deadline = time.monotonic() + 3
            while not relay.keepalives_from_us and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert relay.keepalives_from_us, "no NAT-keepalive from us"

        # -- rekey by the responder of the IKE SA
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
        await side.drain_events(0.2)
        assert_offloaded(side, new.spi_in, new.spi_out)
        assert side.sa_count() == 2                 # the old pair is off the engines
        second = await _traffic(side, charon, topo, new)
        states = child_states(second["sas"])
        assert states[f"{new.spi_in:08x}"] == "INSTALLED"
        assert states.get(f"{child.spi_in:08x}", "DELETED") == "DELETED"

        # -- delete by the initiator of the IKE SA
        if we_initiate:
            session.delete_child(new.spi_in, side.ep.now())
            side.ep.flush()
        else:
            await _swanctl_async(charon, "--terminate", "--child", "net")
        gone = await side.wait_for(ChildSaDown)
        assert (gone.spi_in, gone.spi_out) == (new.spi_in, new.spi_out)
        await side.drain_events(0.2)
        deadline = time.monotonic() + 8
        while True:   # until charon has destroyed the deleted (and the rekeyed) CHILD_SAs
            after = await _swanctl_async(charon, "--list-sas")
            routes = topo.routes()
            if (not child_states(after) and "dev ipsec0 table 220" not in routes) \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert "dev ipsec0 table 220" not in routes, routes   # charon removed its route
        assert side.gw.tunnel_names() == [] and side.sa_count() == 0
        assert side.gw.outbound([b"\x45" + bytes(19)]).wire == []
        return {"ike": ike_up, "child": child, "new": new, "detail": detail,
                "first": first, "second": second, "after": after, "relay": relay,
                "session": session}
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        side.close()
        if relay is not None:
            relay.close()


def _run(charon, topo, coro):
    try:
        return asyncio.run(asyncio.wait_for(coro, 60))
    except (asyncio.TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}\n--- charon's namespace routing ---\n{topo.routes()}"
                             f"\n--- charon log ---\n{charon.logs()}") from exc


# ---- the scenarios ----------------------------------------------------------------------

@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_traffic_through_our_pfe(topology, charon_ns, scenario, we_initiate):
    t0 = time.monotonic()
    r = _run(charon_ns, topology, _run_scenario(scenario, we_initiate, topology, charon_ns))
    log = charon_ns.logs()
    # after the delete: the IKE SA is still up, no CHILD_SA is left on charon's side
    assert "ESTABLISHED" in r["after"] and not child_states(r["after"]), r["after"]
    assert "INSTALLED" not in r["after"] and "net:" not in r["after"], r["after"]
    assert "Hardware Offloaded: Yes" in r["detail"]
    ike = r["ike"]
    if scenario == "ppk-required":
        assert ike.ppk_used and "using PPK" in log
    if scenario == "rsa-certs":
        assert re.search(r"authentication of 'py\.example' with RSA\S* signature successful",
                         log) or "authentication of 'py.example' with RSA" in log, log
        assert "authentication of 'charon.example' (myself) with RSA" in log, log
    if scenario == "nat-t":
        relay = r["relay"]
        assert "remote host is behind NAT" in log
        assert relay.esp_from_us >= 2 * PINGS and relay.esp_from_charon >= 2 * PINGS
        assert relay.keepalives_from_us >= 1       # RFC 3948 §2.3 keepalives from us
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("topology", [6], indirect=True, ids=["ipv6"])
@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
@pytest.mark.parametrize("scenario", ["psk-gcm128", "nat-t"])
def test_ipv6_traffic_through_our_pfe(topology, charon_ns, scenario, we_initiate):
    """The same over IPv6, outer and inner (ICMPv6 echo, UDP-encapsulated ESP over IPv6)."""
    r = _run(charon_ns, topology, _run_scenario(scenario, we_initiate, topology, charon_ns))
    assert "ESTABLISHED" in r["after"] and not child_states(r["after"]), r["after"]
    assert r["ike"].remote_nat and r["new"].udp_encap
    assert ":" in r["session"].remote_addr[0]
