"""A policy-based IKEv2 VPN between two gateways, certificates loaded with `inline-ipsec request
security pki ... load`: IKE negotiates the proxy IDs the tunnel policy gives (RFC 7296 §2.9),
authenticates with the loaded certificates (RFC 7427), and the data path sends only
policy-permitted traffic through the tunnel."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inline_ipsec.cli import main
from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.ike_link import IkePump, pair_controls
from inline_ipsec.gateway.runner import pki_keywords
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.pki import PkiStore

A_T = ("192.0.2.1", 500, 4500)
B_T = ("198.51.100.1", 500, 4500)
NOW = dt.datetime.now(dt.timezone.utc)


def config(side: str) -> str:
    me, peer = ("192.0.2.1", "198.51.100.1") if side == "a" else ("198.51.100.1", "192.0.2.1")
    mine, theirs = ("10.1", "10.2") if side == "a" else ("10.2", "10.1")
    other = "b" if side == "a" else "a"
    pol = "set security policies from-zone {f} to-zone {t} policy {p} "
    out, back = pol.format(f="trust", t="untrust", p="out"), pol.format(f="untrust", t="trust",
                                                                         p="in")
    return "\n".join([
        "set system host-name srx-" + side,
        "set snmp community public",
        f"set interfaces ge-0/0/0 unit 0 family inet address {me}/24",
        f"set interfaces ge-0/0/1 unit 0 family inet address {mine}.255.1/16",
        f"set routing-options static route 0.0.0.0/0 next-hop {me.rsplit('.', 1)[0]}.254",
        "set security pki ca-profile root-ca ca-identity root-ca",
        "set security pki ca-profile root-ca revocation-check disable",
        "set security ike proposal p1 authentication-method ecdsa-signatures-256",
        "set security ike proposal p1 dh-group group19",
        "set security ike proposal p1 encryption-algorithm aes-256-gcm",
        "set security ike policy ike-pol proposals p1",
        f"set security ike policy ike-pol certificate local-certificate gw-{side}",
        "set security ike gateway gw ike-policy ike-pol",
        f"set security ike gateway gw address {peer}",
        "set security ike gateway gw external-interface ge-0/0/0.0",
        "set security ike gateway gw version v2-only",
        f"set security ike gateway gw local-identity hostname gw-{side}.example.net",
        f"set security ike gateway gw remote-identity hostname gw-{other}.example.net",
        "set security ipsec proposal p2 encryption-algorithm aes-256-gcm",
        "set security ipsec policy ipsec-pol proposals p2",
        "set security ipsec vpn pb ike gateway gw",
        "set security ipsec vpn pb ike ipsec-policy ipsec-pol",
        "set security ipsec vpn pb establish-tunnels immediately",
        "set security zones security-zone trust interfaces ge-0/0/1.0",
        "set security zones security-zone untrust interfaces ge-0/0/0.0 host-inbound-traffic "
        "system-services ike",
        f"set security address-book global address lan {mine}.0.0/24",
        f"set security address-book global address peer {theirs}.0.0/24",
        out + "match source-address lan", out + "match destination-address peer",
        out + "match application any", out + "then permit tunnel ipsec-vpn pb",
        out + "then permit tunnel pair-policy in",
        back + "match source-address peer", back + "match destination-address lan",
        back + "match application junos-ping", back + "then permit tunnel ipsec-vpn pb",
        back + "then permit tunnel pair-policy out",
    ]) + "\n"


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


@pytest.fixture
def pki_dirs(tmp_path: Path) -> dict[str, str]:
    """Each side's PKI directory, loaded through the CLI as an operator would."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Root")])
    ca = _cert("Example Root", ca_key, ca_name, ca_key, ca=True)
    (tmp_path / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    dirs = {}
    for side in "ab":
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"gw-{side}.example.net", key, ca_name, ca_key, ca=False)
        crt, kfile = tmp_path / f"{side}.crt", tmp_path / f"{side}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
        d = str(tmp_path / f"pki-{side}")
        assert main(["request", "security", "pki", "local-certificate", "load", "filename",
                     str(crt), "key", str(kfile), "certificate-id", f"gw-{side}",
                     "--pki-dir", d]) == 0
        assert main(["request", "security", "pki", "ca-certificate", "load", "ca-profile",
                     "root-ca", "filename", str(tmp_path / "ca.crt"), "--pki-dir", d]) == 0
        dirs[side] = d
    return dirs


def test_policy_based_vpn_negotiates_the_policy_proxy_ids_with_certificates(pki_dirs) -> None:
    a = Gateway.from_text(config("a"), name="gw-a")
    b = Gateway.from_text(config("b"), name="gw-b")
    a.pki, b.pki = PkiStore(pki_dirs["a"]), PkiStore(pki_dirs["b"])
    ia, ib = pair_controls(a, b, A_T, B_T, a_kw=pki_keywords(a), b_kw=pki_keywords(b))
    assert ia.vpns["pb"].config.auth == "pubkey"
    assert ia.vpns["pb"].config.children[0].local_ts == ("10.1.0.0/24",)
    assert ia.vpns["pb"].config.children[0].remote_ts == ("10.2.0.0/24",)
    pump = IkePump(ia, ib)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.up() and ib.up(), (ia.errors, ib.errors)
    assert str(ib.session_of("pb").peer_id) == "gw-a.example.net"
    # the negotiated selectors are the policy's proxy IDs, on both ends
    assert a.selectors("pb")[0].describe() == "10.1.0.0/24 <-> 10.2.0.0/24"
    assert b.selectors("pb")[0].describe() == "10.2.0.0/24 <-> 10.1.0.0/24"
    link = WireLink(a, b)
    ping = bytes.fromhex("0800f7ff00000000")                  # ICMP echo, type 8
    pkt = udp_packet("10.1.0.5", "10.2.0.9", b"x" * 32)
    icmp = bytearray(pkt[:20] + ping)
    icmp[9], icmp[2:4] = 1, (28).to_bytes(2, "big")
    from inline_ipsec.packet.ip import internet_checksum
    icmp[10:12] = b"\0\0"
    icmp[10:12] = internet_checksum(bytes(icmp[:20])).to_bytes(2, "big")
    got = link.send(a, [bytes(icmp), pkt])
    # a: both permitted into the tunnel (application any); b: only the ping (junos-ping)
    assert a.tunnel_flow("pb").out_encrypted == 2
    assert got.delivered == [bytes(icmp)]
    assert b.counters.policy_denied_in == 1
    text = b.show("security policies hit-count")
    assert [ln.split()[4] for ln in text.splitlines() if " in " in ln] == ["1"]
    assert "Certificate identifier: gw-b" in b.show("security pki local-certificate")


def test_ike_on_a_socket_is_taken_only_where_host_inbound_allows_it() -> None:
    a = Gateway.from_text(config("a").replace(
        "set security ike policy ike-pol certificate local-certificate gw-a\n", "").replace(
        "authentication-method ecdsa-signatures-256", "authentication-method pre-shared-keys")
        + "set security ike policy ike-pol pre-shared-key ascii-text \"k\"\n", name="gw-a")
    b = Gateway.from_text(config("b").replace(
        "set security ike policy ike-pol certificate local-certificate gw-b\n", "").replace(
        "authentication-method ecdsa-signatures-256", "authentication-method pre-shared-keys")
        + "set security ike policy ike-pol pre-shared-key ascii-text \"k\"\n", name="gw-b")
    ia, ib = pair_controls(a, b, A_T, B_T)
    ia.start(0.0)
    init = ia.datagrams_to_send(0.0)
    assert init
    data, _addr = init[0]
    ib.receive(data, ("192.0.2.1", 500), 0.0, local="10.2.255.1")     # trust: no ike
    assert b.counters.host_inbound_denied == 1 and not ib.datagrams_to_send(0.0)
    ib.receive(data, ("192.0.2.1", 500), 0.0, local="198.51.100.1")   # untrust: ike
    assert b.counters.host_inbound_denied == 1 and ib.datagrams_to_send(0.0)
