"""PKI directory: `inline-ipsec request security pki ... load` checks and stores certificates
and keys; IKE gets them as credentials and trust anchors; `show security pki`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inline_ipsec.cli import main
from inline_ipsec.config import load_config
from inline_ipsec.pki import PkiError, PkiStore, show_pki

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _cert(cn: str, key, issuer_key, issuer_cn: str, ca: bool) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
            .public_key(key.public_key()).serial_number(0x1234)
            .not_valid_before(T0).not_valid_after(T0 + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    out = {}
    for name, obj in (("ca.crt", _cert("Example Root", ca_key, ca_key, "Example Root", True)),
                      ("gw.crt", _cert("gw-a.example.net", key, ca_key, "Example Root", False))):
        out[name] = tmp_path / name
        out[name].write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    for name, k in (("gw.key", key), ("other.key", other)):
        out[name] = tmp_path / name
        out[name].write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    out["dir"] = tmp_path / "pki"
    return out


def test_load_local_and_ca_then_credentials(files) -> None:
    store = PkiStore(files["dir"])
    store.load_local(str(files["gw.crt"]), str(files["gw.key"]), "gw-a")
    store.load_ca("root-ca", str(files["ca.crt"]))
    creds = store.credentials()
    assert list(creds) == ["gw-a"]
    key, chain = creds["gw-a"]
    assert chain[0].subject.rfc4514_string() == "CN=gw-a.example.net"
    assert (files["dir"] / "local" / "gw-a.key").stat().st_mode & 0o777 == 0o600
    assert [c.subject.rfc4514_string() for c in store.ca_certificates()] == ["CN=Example Root"]


def test_refuses_a_key_of_another_certificate(files) -> None:
    with pytest.raises(PkiError, match="is not the key of the certificate"):
        PkiStore(files["dir"]).load_local(str(files["gw.crt"]), str(files["other.key"]), "x")


def test_refuses_a_non_ca_as_ca_and_garbage(files, tmp_path: Path) -> None:
    store = PkiStore(files["dir"])
    with pytest.raises(PkiError, match="not a CA certificate"):
        store.load_ca("p", str(files["gw.crt"]))
    junk = tmp_path / "junk.crt"
    junk.write_bytes(b"\x30\x03\x02\x01")
    with pytest.raises(PkiError, match="not an X.509 certificate"):
        store.load_ca("p", str(junk))
    with pytest.raises(PkiError, match="certificate-id"):
        store.load_local(str(files["gw.crt"]), str(files["gw.key"]), "../etc")


def test_request_commands_and_show(files, capsys) -> None:
    d = str(files["dir"])
    assert main(["request", "security", "pki", "local-certificate", "load", "filename",
                 str(files["gw.crt"]), "key", str(files["gw.key"]), "certificate-id", "gw-a",
                 "--pki-dir", d]) == 0
    assert main(["request", "security", "pki", "ca-certificate", "load", "ca-profile",
                 "root-ca", "filename", str(files["ca.crt"]), "--pki-dir", d]) == 0
    out = capsys.readouterr().out
    assert "Local certificate gw-a loaded successfully" in out
    assert main(["request", "security", "pki", "ca-certificate", "load", "filename", "x",
                 "--pki-dir", d]) == 2
    assert main(["request", "security", "pki", "local-certificate", "load", "filename",
                 str(files["gw.crt"]), "key", str(files["other.key"]), "certificate-id", "z",
                 "--pki-dir", d]) == 1
    text = show_pki(PkiStore(d), ["local-certificate"])
    assert text.splitlines()[:5] == [
        "Certificate identifier: gw-a",
        "  Issued to: gw-a.example.net, Issued by: CN = Example Root",
        "  Validity:",
        "    Not before: 01-01-2026 00:00 UTC",
        "    Not after: 01-01-2027 00:00 UTC"]
    assert "  Public key algorithm: ecdsaEncryption(256 bits)" in text
    ca = show_pki(PkiStore(d), ["ca-certificate", "ca-profile", "root-ca"])
    assert ca.startswith("CA profile: root-ca\nCertificate identifier: root-ca\n")


def test_ca_profile_statement() -> None:
    c = load_config("set security pki ca-profile root-ca ca-identity root-ca\n"
                    "set security pki ca-profile root-ca revocation-check disable\n")
    assert c.ca_profiles["root-ca"].ca_identity == "root-ca"
    assert "security pki ca-profile * revocation-check (line 2)" in (c.warning() or "")


def test_verify_local_certificate(files, tmp_path: Path, capsys) -> None:
    d = str(files["dir"])
    store = PkiStore(d)
    store.load_local(str(files["gw.crt"]), str(files["gw.key"]), "gw-a")
    with pytest.raises(PkiError, match="no CA certificate loaded"):
        store.verify_local("gw-a")
    store.load_ca("root-ca", str(files["ca.crt"]))
    assert store.verify_local("gw-a", T0 + dt.timedelta(days=2)) == \
        "Local certificate gw-a verification success"
    with pytest.raises(PkiError, match="verification failed"):
        store.verify_local("gw-a", T0 + dt.timedelta(days=400))      # expired by then
    with pytest.raises(PkiError, match="no local certificate nope"):
        store.verify_local("nope")
    assert main(["request", "security", "pki", "local-certificate", "verify",
                 "certificate-id", "nope", "--pki-dir", d]) == 1
    other = ec.generate_private_key(ec.SECP256R1())
    rogue = _cert("Other Root", other, other, "Other Root", True)
    (tmp_path / "rogue.crt").write_bytes(rogue.public_bytes(serialization.Encoding.PEM))
    PkiStore(tmp_path / "p2").load_ca("other", str(tmp_path / "rogue.crt"))
    s2 = PkiStore(tmp_path / "p2")
    s2.load_local(str(files["gw.crt"]), str(files["gw.key"]), "gw-a")
    with pytest.raises(PkiError, match="no path from the peer's certificate"):
        s2.verify_local("gw-a", T0 + dt.timedelta(days=2))
