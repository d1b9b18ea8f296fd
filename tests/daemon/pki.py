"""An ECDSA P-256 CA and certificates for the two gateways ("a.example" for us, "b.example" for
the peer), written as PEM files for `inline-ipsec run --local-certificate/--ca-certificate` and
into a charon's swanctl folders."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _cert(cn: str, key, issuer=None, issuer_key=None, ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ecdsa_pki(workdir: Path, charon=None, peer_dir: Optional[Path] = None) -> dict:
    """Files for side "a" (`args` for the command line, `junos` statements), and side "b"'s
    in charon's swanctl folders or `peer_dir`."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Daemon Test CA", ca_key, ca=True)
    out: dict = {}
    for side in ("a", "b"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"{side}.example", key, ca, ca_key)
        if side == "b" and charon is not None:
            d = charon.swanctl_dir
            (d / "x509ca" / "ca.pem").write_bytes(_pem(ca))
            (d / "x509" / "charon.pem").write_bytes(_pem(cert))
            (d / "private" / "charon.key").write_bytes(_pem(key))
            continue
        base = (peer_dir if side == "b" and peer_dir is not None else workdir)
        (base / f"{side}.crt").write_bytes(_pem(cert))
        (base / f"{side}.key").write_bytes(_pem(key))
        (base / "ca.crt").write_bytes(_pem(ca))
        out[side] = ["--local-certificate", f"{side}-cert", str(base / f"{side}.crt"),
                     str(base / f"{side}.key"), "--ca-certificate", str(base / "ca.crt")]
    out["args"] = out["a"]
    out["junos"] = "set security ike policy pol1 certificate local-certificate a-cert\n"
    return out
