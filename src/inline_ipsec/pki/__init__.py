"""PKI directory: local certificates with their keys, and CA certificates per CA profile.

Junos loads certificates with operational commands; the model offers the same ones as
`inline-ipsec request ...` sub-commands working on a directory (`--pki-dir DIR`):

    inline-ipsec request security pki local-certificate load filename F key K certificate-id ID
    inline-ipsec request security pki ca-certificate load ca-profile P filename F

Layout of DIR: `local/<ID>.crt` and `local/<ID>.key` (PEM, the key mode 0600), `ca/<P>.crt`.
Loading checks what Junos checks: the files parse (PEM or DER, X.509 per RFC 5280), the key
belongs to the certificate, a CA certificate has `basicConstraints CA:TRUE` (RFC 5280
§4.2.1.9). IKE uses `credentials()` for `ike policy <p> certificate local-certificate <ID>`
and `ca_certificates()` to validate the peer's chain (RFC 7296 §3.6, RFC 7427).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, ed448, rsa

from ..errors import ConfigError

__all__ = ["PkiError", "PkiStore", "show_pki", "render_certificate"]

#: Largest certificate or key file read (a chain of a few certificates fits easily).
MAX_FILE = 1 << 20


class PkiError(ConfigError):
    """A certificate or key that cannot be loaded, with the reason."""


def _read(path: Union[str, "os.PathLike[str]"]) -> bytes:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE:
        raise PkiError(f"{path}: {size} bytes, more than {MAX_FILE}")
    return p.read_bytes()


def _certificates(data: bytes, where: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise PkiError(f"{where}: not an X.509 certificate (PEM or DER): {exc}") from None
    if not certs:
        raise PkiError(f"{where}: no certificate")
    return certs


def _key(data: bytes, where: str) -> Any:
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{where}: not an unencrypted private key (PEM or DER): {exc}") \
            from None


def _pub(obj: Any) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_id(kind: str, value: str) -> str:
    if not value or len(value) > 63 or not all(c.isalnum() or c in "_.-" for c in value) \
            or value[0] in "_.-":
        raise PkiError(f"{kind} {value!r}: 1 to 63 of A-Z a-z 0-9 _ . -, not starting with "
                       "_ . -")
    return value


@dataclass(frozen=True)
class Loaded:
    """What a load stored: the identifier, the certificate's subject and where it went."""

    identifier: str
    subject: str
    path: str


class PkiStore:
    """A PKI directory (module docstring)."""

    def __init__(self, directory: Union[str, "os.PathLike[str]"]) -> None:
        self.dir = Path(directory)

    def _local(self, cid: str) -> tuple[Path, Path]:
        return self.dir / "local" / f"{cid}.crt", self.dir / "local" / f"{cid}.key"

    def load_local(self, filename: str, key: str, certificate_id: str) -> Loaded:
        """`request security pki local-certificate load filename F key K certificate-id ID`."""
        _check_id("certificate-id", certificate_id)
        certs = _certificates(_read(filename), filename)
        private = _key(_read(key), key)
        if not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                                    ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
            raise PkiError(f"{key}: key type {type(private).__name__} cannot sign IKE AUTH")
        if _pub(private.public_key()) != _pub(certs[0].public_key()):
            raise PkiError(f"{key} is not the key of the certificate in {filename}")
        crt, kfile = self._local(certificate_id)
        crt.parent.mkdir(parents=True, exist_ok=True)
        crt.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        fd = os.open(kfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        return Loaded(certificate_id, certs[0].subject.rfc4514_string(), str(crt))

    def load_ca(self, ca_profile: str, filename: str) -> Loaded:
        """`request security pki ca-certificate load ca-profile P filename F`."""
        _check_id("ca-profile", ca_profile)
        certs = _certificates(_read(filename), filename)
        try:
            bc = certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = bc.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise PkiError(f"{filename}: not a CA certificate (basicConstraints CA:TRUE, "
                           "RFC 5280 §4.2.1.9)")
        path = self.dir / "ca" / f"{ca_profile}.crt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        return Loaded(ca_profile, certs[0].subject.rfc4514_string(), str(path))

    def verify_local(self, certificate_id: str, at: Optional[Any] = None) -> str:
        """`request security pki local-certificate verify certificate-id ID`: the
        certificate's chain up to a loaded CA certificate, signatures, validity periods and CA
        constraints (RFC 5280 §6, as IKE checks a peer's chain); PkiError says what fails."""
        import datetime as _dt

        from ..ike.auth import validate_chain
        from ..ike.errors import IkeError
        _check_id("certificate-id", certificate_id)
        if certificate_id not in self.local_ids():
            raise PkiError(f"no local certificate {certificate_id} in {self.dir}")
        chain = self.local_certificate(certificate_id)
        anchors = self.ca_certificates()
        if not anchors:
            raise PkiError("no CA certificate loaded (request security pki ca-certificate load)")
        when = at if at is not None else _dt.datetime.now(_dt.timezone.utc)
        try:
            validate_chain(chain[0], chain[1:], anchors, when)
        except IkeError as exc:
            raise PkiError(f"local certificate {certificate_id} verification failed: "
                           f"{exc}") from None
        return f"Local certificate {certificate_id} verification success"

    # -- what IKE uses -----------------------------------------------------------------------

    def local_ids(self) -> list[str]:
        d = self.dir / "local"
        return sorted(p.stem for p in d.glob("*.crt")) if d.is_dir() else []

    def ca_profiles(self) -> list[str]:
        d = self.dir / "ca"
        return sorted(p.stem for p in d.glob("*.crt")) if d.is_dir() else []

    def local_certificate(self, cid: str) -> list[x509.Certificate]:
        crt, _ = self._local(cid)
        return _certificates(_read(crt), str(crt))

    def credentials(self) -> dict[str, tuple[Any, list[x509.Certificate]]]:
        """certificate-id -> (private key, certificate chain), what `IkeControl` takes."""
        out = {}
        for cid in self.local_ids():
            crt, kfile = self._local(cid)
            out[cid] = (_key(_read(kfile), str(kfile)), _certificates(_read(crt), str(crt)))
        return out

    def ca_certificates(self, profiles: Optional[Sequence[str]] = None) -> list[x509.Certificate]:
        """The CA certificates of `profiles` (default: every loaded profile)."""
        out: list[x509.Certificate] = []
        for p in (profiles if profiles is not None else self.ca_profiles()):
            path = self.dir / "ca" / f"{p}.crt"
            if path.is_file():
                out += _certificates(_read(path), str(path))
        return out


def _dn(name: x509.Name) -> str:
    return ", ".join(f"{a.rfc4514_attribute_name} = {a.value}" for a in reversed(list(name)))


def _when(t: Any) -> str:
    return t.strftime("%m-%d-%Y %H:%M UTC")


def _key_text(cert: x509.Certificate) -> str:
    k = cert.public_key()
    if isinstance(k, rsa.RSAPublicKey):
        return f"rsaEncryption({k.key_size} bits)"
    if isinstance(k, ec.EllipticCurvePublicKey):
        return f"ecdsaEncryption({k.key_size} bits)"
    return type(k).__name__


_NAME_FIELDS = ((x509.oid.NameOID.ORGANIZATION_NAME, "Organization"),
                (x509.oid.NameOID.ORGANIZATIONAL_UNIT_NAME, "Organizational unit"),
                (x509.oid.NameOID.COUNTRY_NAME, "Country"))


def _name_block(name: x509.Name) -> list[str]:
    """A name as Junos's detail view lays it out: organization fields on one line, then
    `Common name:`."""
    parts = [f"{label}: {a.value}" for oid, label in _NAME_FIELDS
             for a in name.get_attributes_for_oid(oid)]
    out = [f"    {', '.join(parts)}"] if parts else []
    for a in name.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME):
        out.append(f"    Common name: {a.value}")
    return out


def _alternate_subject(cert: x509.Certificate) -> str:
    """`Alternate subject:` (RFC 5280 §4.2.1.6 subjectAltName): the DNS name, then ipv4, ipv6
    and email, `empty` where the certificate has none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    v4 = [str(i) for i in ips if i.version == 4]
    v6 = [str(i) for i in ips if i.version == 6]
    mail = san.get_values_for_type(x509.RFC822Name)
    return (f"{dns[0] if dns else 'fqdn empty'}, ipv4 {v4[0] if v4 else 'empty'}, "
            f"ipv6 {v6[0] if v6 else 'empty'}, email {mail[0] if mail else 'empty'}")


def _cn(name: x509.Name) -> str:
    cn = name.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else _dn(name)


def render_certificate(cert: x509.Certificate, identifier: str, detail: bool = False) -> list[str]:
    """One certificate in the layout of Junos `show security pki local-certificate [detail]`
    (tests/data/junos/vsrx-pki-local-certificate-detail.txt)."""
    validity = ["  Validity:",
                f"    Not before: {_when(cert.not_valid_before_utc)}",
                f"    Not after: {_when(cert.not_valid_after_utc)}",
                f"  Public key algorithm: {_key_text(cert)}"]
    if not detail:
        return [f"Certificate identifier: {identifier}",
                f"  Issued to: {_cn(cert.subject)}, Issued by: {_dn(cert.issuer)}"] + validity
    return ([f"Certificate identifier: {identifier}",
             f"  Certificate version: {cert.version.value + 1}",
             f"  Serial number: {cert.serial_number:x}",
             "  Issuer:"] + _name_block(cert.issuer) + ["  Subject:"] + _name_block(cert.subject)
            + ["  Subject string: ", f"    {cert.subject.rfc4514_string()}",
               f"  Alternate subject: {_alternate_subject(cert)}",
               f"  Cert-Chain: {_cn(cert.issuer)}"] + validity
            + [f"  Signature algorithm: {cert.signature_algorithm_oid._name}"])


def show_pki(store: PkiStore, words: Sequence[str]) -> str:
    """`show security pki local-certificate [certificate-id ID] [detail]` and
    `show security pki ca-certificate [ca-profile P] [detail]`."""
    words = list(words)
    detail = "detail" in words
    words = [w for w in words if w != "detail"]
    if not words or words[0] not in ("local-certificate", "ca-certificate"):
        raise PkiError("expected: show security pki local-certificate|ca-certificate")
    which = words[0]
    only = words[2] if len(words) >= 3 and words[1] in ("certificate-id", "ca-profile") \
        else None
    lines: list[str] = []
    if which == "local-certificate":
        for cid in store.local_ids():
            if only is None or cid == only:
                lines += render_certificate(store.local_certificate(cid)[0], cid, detail)
                lines.append("  Keypair Location: Keypair loaded from a file")
    else:
        for p in store.ca_profiles():
            if only is None or p == only:
                lines.append(f"CA profile: {p}")
                for cert in store.ca_certificates([p]):
                    lines += render_certificate(cert, p, detail)
    if not lines:
        return f"No {which.replace('-', ' ')}s loaded\n"
    return "\n".join(lines) + "\n"
