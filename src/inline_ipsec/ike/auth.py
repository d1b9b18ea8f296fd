"""IKEv2 authentication (RFC 7296 §2.15): identities, PSK, RFC 7427 digital signatures with
X.509 chain validation, and the RFC 8784 PPK variants of the AUTH computation.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .constants import AuthMethod, HashAlgorithm, IdType, NotifyType
from .errors import LocalIkeError, RemoteIkeError
from .keymat import prf
from .payloads import IdPayload

KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15


def auth_failed(message: str) -> RemoteIkeError:
    return RemoteIkeError(message, NotifyType.AUTHENTICATION_FAILED)


# --- identities (RFC 7296 §3.5) ------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    id_type: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> "Identity":
        """strongSwan-like notation: an IP address, "@fqdn", "user@domain", a DN in ASN.1
        order ("C=CH, O=Org, CN=host"), or a bare FQDN."""
        try:
            addr = ipaddress.ip_address(text)
            return cls(IdType.ID_IPV4_ADDR if addr.version == 4 else IdType.ID_IPV6_ADDR,
                       addr.packed)
        except ValueError:
            pass
        if text.startswith("@"):
            return cls(IdType.ID_FQDN, text[1:].encode())
        if "=" in text:
            rdns = [part.strip() for part in text.split(",")]
            name = x509.Name.from_rfc4514_string(",".join(reversed(rdns)))
            return cls(IdType.ID_DER_ASN1_DN, name.public_bytes())
        if "@" in text:
            return cls(IdType.ID_RFC822_ADDR, text.encode())
        return cls(IdType.ID_FQDN, text.encode())

    @classmethod
    def of_certificate(cls, cert: x509.Certificate) -> "Identity":
        """ID_DER_ASN1_DN of the certificate's subject, byte for byte (§3.5)."""
        return cls(IdType.ID_DER_ASN1_DN, cert.subject.public_bytes())

    @classmethod
    def from_payload(cls, p: IdPayload) -> "Identity":
        return cls(p.id_type, p.data)

    def payload_body(self) -> bytes:
        """The ID payload body (type, 3 reserved bytes, data): what MACedIDFor* covers."""
        return bytes([self.id_type, 0, 0, 0]) + self.data

    def __str__(self) -> str:
        try:
            if self.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
                return str(ipaddress.ip_address(self.data))
            if self.id_type == IdType.ID_DER_ASN1_DN:
                return "DN:" + self.data.hex()
            return self.data.decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - display only
            return self.data.hex()


# --- AUTH octets (RFC 7296 §2.15) ------------------------------------------------------------

def signed_octets(message: bytes, peer_nonce: bytes, prf_id: int, sk_p: bytes,
                  identity: Identity) -> bytes:
    """InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI (and the responder's
    mirror image), MACedIDForX = prf(SK_px, IDx')."""
    return message + peer_nonce + prf(prf_id, sk_p, identity.payload_body())


def psk_auth(prf_id: int, psk: bytes, octets: bytes) -> bytes:
    """AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (§2.15)."""
    return prf(prf_id, prf(prf_id, psk, KEY_PAD), octets)


# --- signatures (RFC 7427) ---------------------------------------------------------------

#: DER AlgorithmIdentifiers of RFC 7427 Appendix A.
_ALG_IDS: dict[tuple[str, str], bytes] = {
    ("rsa", "sha256"): bytes.fromhex("300d06092a864886f70d01010b0500"),
    ("rsa", "sha384"): bytes.fromhex("300d06092a864886f70d01010c0500"),
    ("rsa", "sha512"): bytes.fromhex("300d06092a864886f70d01010d0500"),
    ("ecdsa", "sha256"): bytes.fromhex("300a06082a8648ce3d040302"),
    ("ecdsa", "sha384"): bytes.fromhex("300a06082a8648ce3d040303"),
    ("ecdsa", "sha512"): bytes.fromhex("300a06082a8648ce3d040304"),
}
_BY_ALG_ID = {v: k for k, v in _ALG_IDS.items()}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512}
#: SIGNATURE_HASH_ALGORITHMS notify data we send (RFC 7427 §4).
SUPPORTED_SIG_HASHES = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)


def sig_hash_notify_data() -> bytes:
    return b"".join(int(h).to_bytes(2, "big") for h in SUPPORTED_SIG_HASHES)


def _ecdsa_hash(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    return {256: "sha256", 384: "sha384", 521: "sha512"}.get(key.curve.key_size, "sha256")


def sign(private_key: object, octets: bytes) -> tuple[int, bytes]:
    """RFC 7427 §3 DIGITAL_SIGNATURE: AUTH data = len(AlgorithmIdentifier) || AlgId || sig."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        kind, hname = "rsa", "sha256"
        sig = private_key.sign(octets, padding.PKCS1v15(), _HASHES[hname]())
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        kind, hname = "ecdsa", _ecdsa_hash(private_key)
        sig = private_key.sign(octets, ec.ECDSA(_HASHES[hname]()))
    else:
        raise LocalIkeError(f"unsupported private key type {type(private_key).__name__}")
    alg = _ALG_IDS[(kind, hname)]
    return AuthMethod.DIGITAL_SIGNATURE, bytes([len(alg)]) + alg + sig


def verify(public_key: object, method: int, data: bytes, octets: bytes) -> None:
    """Verify an AUTH payload made with a signature method (RFC 7296 §3.8, RFC 4754,
    RFC 7427). Raises RemoteIkeError(AUTHENTICATION_FAILED)."""
    try:
        if method == AuthMethod.DIGITAL_SIGNATURE:
            if not data:
                raise auth_failed("empty signature AUTH payload")
            alg, sig = data[1:1 + data[0]], data[1 + data[0]:]
            kind_hash = _BY_ALG_ID.get(alg)
            if kind_hash is None:
                raise auth_failed(f"unsupported signature algorithm {alg.hex()}")
            kind, hname = kind_hash
            if kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(sig, octets, padding.PKCS1v15(), _HASHES[hname]())
            elif kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
                public_key.verify(sig, octets, ec.ECDSA(_HASHES[hname]()))
            else:
                raise auth_failed("signature algorithm does not match the certificate key")
        elif method == AuthMethod.RSA_SIG and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(data, octets, padding.PKCS1v15(), hashes.SHA1())
        elif method in (AuthMethod.ECDSA_SHA256_P256, AuthMethod.ECDSA_SHA384_P384,
                        AuthMethod.ECDSA_SHA512_P521) and \
                isinstance(public_key, ec.EllipticCurvePublicKey):
            hname = {9: "sha256", 10: "sha384", 11: "sha512"}[int(method)]
            half = len(data) // 2
            der = encode_dss_signature(int.from_bytes(data[:half], "big"),
                                       int.from_bytes(data[half:], "big"))
            public_key.verify(der, octets, ec.ECDSA(_HASHES[hname]()))
        else:
            raise auth_failed(f"AUTH method {method} does not fit the peer's key")
    except InvalidSignature:
        raise auth_failed("signature verification failed") from None
    except (ValueError, IndexError) as exc:
        raise auth_failed(f"malformed signature: {exc}") from None


# --- certificates ------------------------------------------------------------------------

def ca_keyid(cert: x509.Certificate) -> bytes:
    """SHA-1 of the CA's SubjectPublicKeyInfo: a CERTREQ entry (RFC 7296 §3.7)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(spki).digest()


def validate_chain(end_entity: x509.Certificate, intermediates: Sequence[x509.Certificate],
                   anchors: Sequence[x509.Certificate], at: datetime) -> None:
    """Build a path end_entity -> intermediates* -> anchor and check signatures, validity
    periods and CA basic constraints. Raises RemoteIkeError(AUTHENTICATION_FAILED)."""
    def valid_at(c: x509.Certificate) -> bool:
        return c.not_valid_before_utc <= at <= c.not_valid_after_utc

    def is_ca(c: x509.Certificate) -> bool:
        try:
            return bool(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        except x509.ExtensionNotFound:
            return False

    current = end_entity
    pool = list(intermediates)
    for _ in range(8):
        if not valid_at(current):
            raise auth_failed(f"certificate {current.subject.rfc4514_string()} not valid now")
        for anchor in anchors:
            try:
                current.verify_directly_issued_by(anchor)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if not valid_at(anchor) or not is_ca(anchor):
                raise auth_failed("trust anchor expired or not a CA")
            return
        for cand in pool:
            try:
                current.verify_directly_issued_by(cand)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if not is_ca(cand):
                raise auth_failed("intermediate certificate is not a CA")
            pool.remove(cand)
            current = cand
            break
        else:
            raise auth_failed("no path from the peer's certificate to a trusted CA")
    raise auth_failed("certificate chain too long")


def identity_in_cert(identity: Identity, cert: x509.Certificate) -> bool:
    """Does the certificate vouch for `identity` (subject DN or subjectAltName, §3.5)?"""
    if identity.id_type == IdType.ID_DER_ASN1_DN:
        return cert.subject.public_bytes() == identity.data
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if identity.id_type == IdType.ID_FQDN:
        return identity.data.decode(errors="replace").lower() in \
            [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    if identity.id_type == IdType.ID_RFC822_ADDR:
        return identity.data.decode(errors="replace") in \
            san.get_values_for_type(x509.RFC822Name)
    if identity.id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
        return ipaddress.ip_address(identity.data) in san.get_values_for_type(x509.IPAddress)
    return False


def load_peer_certs(blobs: Sequence[bytes]) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(b) for b in blobs]
    except ValueError as exc:
        raise auth_failed(f"unparseable certificate: {exc}") from None

