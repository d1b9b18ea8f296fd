"""A policy-based VPN from a whole SRX configuration against strongSwan, with certificates
loaded as an operator loads them (`inline-ipsec request security pki ... load`).

Our side: a `Gateway` from Junos statements with security zones (trust 10.1.0.0/24,
untrust the veth), an address book, a tunnel policy `then permit tunnel ipsec-vpn pb` and its
pair policy, ECDSA certificate authentication (`certificate local-certificate py-cert`), run by
`IkeControl` on our veth address. charon (namespace, kernel-libipsec) has one child with the
mirrored selectors.

    we initiate                                   charon initiates
    IKE_SA_INIT, IKE_AUTH  TSi 10.1.0.0/24  -->   <--  IKE_SA_INIT, IKE_AUTH  TSi 10.2.0.1/32
                           TSr 10.2.0.1/32              TSr 10.1.0.0/24

Checks: the negotiated selectors are the policy's proxy IDs (charon lists `10.2.0.1/32 ===
10.1.0.0/24`), both ends authenticated with the loaded certificates, ICMP echo requests from
10.1.0.1 go out through the tunnel policy and the replies come back through the session they
opened; a packet no policy permits (10.1.0.1 -> 10.2.0.2, outside the proxy IDs and every
policy) is dropped and counted, not sent.
"""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inline_ipsec.cli import main
from inline_ipsec.config.model import License
from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.ike_control import IkeControl
from inline_ipsec.gateway.runner import pki_keywords
from inline_ipsec.pki import PkiStore
from test_strongswan_rekey import child_states
from test_strongswan_shared_gateway import Ports
from test_strongswan_traffic import charon_ns, topology  # noqa: F401  (fixtures)
from traffic_harness import icmp_echo, parse_icmp, udp_packet, udp_payload

pytestmark = pytest.mark.interop

OURS, THEIRS = "10.1.0.1", "10.2.0.1"
PINGS = 3
NOW = dt.datetime.now(dt.timezone.utc)


def _junos(topo, immediately: bool) -> str:
    pol = "set security policies from-zone {} to-zone {} policy {} "
    out, back = pol.format("trust", "untrust", "to-charon"), pol.format("untrust", "trust",
                                                                         "from-charon")
    lines = [
        "set version 24.2R1",
        "set system host-name py-srx",
        "set system services ssh",
        f"set interfaces ge-0/0/0 unit 0 family inet address {topo.ours}/{topo.prefixlen}",
        "set interfaces ge-0/0/1 unit 0 family inet address 10.1.0.254/24",
        f"set routing-options static route 10.2.0.0/24 next-hop {topo.theirs}",
        "set security pki ca-profile lab-ca ca-identity lab-ca",
        "set security ike proposal p1 authentication-method ecdsa-signatures-256",
        "set security ike proposal p1 dh-group group19",
        "set security ike proposal p1 encryption-algorithm aes-128-gcm",
        "set security ike policy pol1 proposals p1",
        "set security ike policy pol1 certificate local-certificate py-cert",
        "set security ike gateway charon ike-policy pol1",
        f"set security ike gateway charon address {topo.theirs}",
        "set security ike gateway charon external-interface ge-0/0/0.0",
        "set security ike gateway charon version v2-only",
        "set security ike gateway charon local-identity hostname py.example",
        "set security ike gateway charon remote-identity hostname charon.example",
        "set security ipsec proposal e1 encryption-algorithm aes-128-gcm",
        "set security ipsec policy e1 proposals e1",
        "set security ipsec vpn pb ike gateway charon",
        "set security ipsec vpn pb ike ipsec-policy e1",
        "set security zones security-zone trust interfaces ge-0/0/1.0",
        "set security zones security-zone untrust interfaces ge-0/0/0.0 host-inbound-traffic "
        "system-services ike",
        "set security address-book global address lan 10.1.0.0/24",
        f"set security address-book global address far {THEIRS}/32",
        out + "match source-address lan", out + "match destination-address far",
        out + "match application junos-ping", out + "then permit tunnel ipsec-vpn pb",
        out + "then permit tunnel pair-policy from-charon",
        back + "match source-address far", back + "match destination-address lan",
        back + "match application junos-ping", back + "then permit tunnel ipsec-vpn pb",
        back + "then permit tunnel pair-policy to-charon",
    ]
    if immediately:
        lines.append("set security ipsec vpn pb establish-tunnels immediately")
    return "\n".join(lines) + "\n"


def _swanctl(topo, our_port: int, charon_initiates: bool) -> str:
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
            id = charon.example
            auth = pubkey
            certs = charon.pem
        }}
        remote {{
            id = py.example
            auth = pubkey
        }}
        children {{
            pb {{
                local_ts = {THEIRS}/32
                remote_ts = 10.1.0.0/24
                esp_proposals = aes128gcm16
                mode = tunnel
                start_action = none
                rekey_time = 0
            }}
        }}
    }}
}}
"""


def _cert(cn: str, key, issuer: x509.Name, issuer_key, ca: bool) -> x509.Certificate:
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW - dt.timedelta(days=1))
         .not_valid_after(NOW + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pki(tmp_path: Path, charon) -> str:
    """A lab CA; charon's certificate and key into its swanctl folders, ours loaded with the
    `request security pki` commands into a PKI directory (returned)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lab CA")])
    ca = _cert("Lab CA", ca_key, ca_name, ca_key, ca=True)
    their_key = ec.generate_private_key(ec.SECP256R1())
    for name, obj in (("x509ca/ca.pem", ca),
                      ("x509/charon.pem", _cert("charon.example", their_key, ca_name, ca_key,
                                                ca=False)),
                      ("private/charon.key", their_key)):
        (charon.swanctl_dir / name).write_bytes(_pem(obj))
    our_key = ec.generate_private_key(ec.SECP256R1())
    files = {"ca.crt": ca, "py.crt": _cert("py.example", our_key, ca_name, ca_key, ca=False),
             "py.key": our_key}
    for name, obj in files.items():
        (tmp_path / name).write_bytes(_pem(obj))
    pki_dir = str(tmp_path / "pki")
    assert main(["request", "security", "pki", "local-certificate", "load", "filename",
                 str(tmp_path / "py.crt"), "key", str(tmp_path / "py.key"), "certificate-id",
                 "py-cert", "--pki-dir", pki_dir]) == 0
    assert main(["request", "security", "pki", "ca-certificate", "load", "ca-profile",
                 "lab-ca", "filename", str(tmp_path / "ca.crt"), "--pki-dir", pki_dir]) == 0
    return pki_dir


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
def test_policy_based_vpn_with_strongswan(topology, charon_ns, tmp_path, we_initiate):
    topo, charon = topology, charon_ns
    gw = Gateway.from_text(_junos(topo, we_initiate), name="py", license=License(expires=None))
    assert gw.config.ipsec_vpns["pb"].policy_based
    assert gw.policy is not None and gw.policy.zones.host_inbound_allows(topo.ours, "ike")
    gw.pki = PkiStore(_pki(tmp_path, charon))
    ports = Ports(topo.ours)
    proc = None
    try:
        ctl = IkeControl(gw, local=(topo.ours, ports.ike_port), natt_port=ports.natt_port,
                         peers={topo.theirs: (topo.theirs, 500, 4500)}, **pki_keywords(gw))
        ports.control = ctl
        assert not ctl.unsupported and ctl.vpns["pb"].config.auth == "pubkey"
        charon.load(_swanctl(topo, ports.natt_port, not we_initiate))
        if we_initiate:
            ctl.start(time.monotonic())
        else:
            proc = charon.initiate("pb")
            assert ports.until(lambda: proc.poll() is not None, 15.0)
            assert "initiate completed successfully" in proc.communicate()[0]
        assert ports.until(lambda: ctl.up(), 15.0), (ctl.errors, charon.logs()[-3000:])
        sas = charon.list_sas()
        assert sorted(child_states(sas).values()) == ["INSTALLED"] * 2, sas
        assert f"local  {THEIRS}/32" in sas and "remote 10.1.0.0/24" in sas, sas
        assert gw.selectors("pb")[0].describe() == f"10.1.0.0/24 <-> {THEIRS}/32"
        assert str(ctl.session_of("pb").peer_id) == "charon.example"
        (pair,) = gw.tunnel("pb").pairs
        for seq in range(1, PINGS + 1):
            data = f"policy ping {seq}".encode() * 3
            out = gw.outbound([icmp_echo(OURS, THEIRS, 0x5151, seq, data)])
            assert len(out.wire) == 1, (out, gw.counters)
            _s, dst, _sp, _dp, esp = udp_payload(out.wire[0])
            assert int.from_bytes(esp[:4], "big") == pair.outbound.spi
            ports.natt.sendto(esp, (dst, 4500))
            assert ports.until(lambda: bool(ports.esp), 5.0), f"no reply to seq {seq}"
            wire, addr = ports.esp.pop(0)
            back = gw.inbound([udp_packet(addr[0], topo.ours, 4500, 4500, wire)])
            assert len(back.delivered) == 1, (back, gw.counters)
            echo = parse_icmp(back.delivered[0])
            assert (echo.type, echo.seq, echo.dst, echo.data) == (0, seq, OURS, data)
        table = gw.policy.table
        names = [p.name for p in table.policies]
        assert table.hits[names.index("to-charon")] == 1        # one session, three pings
        # outside every policy: dropped here, never sent
        stray = gw.outbound([icmp_echo(OURS, "10.2.0.2", 0x5151, 1, b"stray")])
        assert stray.wire == [] and gw.counters.policy_denied_out == 1
        assert "Action: permit, tunnel" in gw.show("security policies")
        assert "Certificate identifier: py-cert" in gw.show("security pki local-certificate")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- charon log ---\n{charon.logs()[-6000:]}") from exc
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ports.close()
