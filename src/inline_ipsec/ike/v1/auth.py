"""Phase 1 authentication (RFC 2409 §5.1, §5.4; RFC 4754 for ECDSA): pre-shared keys by
HASH_I/HASH_R, RSA and ECDSA signatures of HASH_I/HASH_R with X.509 certificates.

Identities and certificate-chain validation are IKEv2's (`inline_ipsec.ike.auth`): the ID
types IKEv1 uses for peers (address, FQDN, user FQDN, DER DN, key ID) have the same numbers in
both versions (RFC 2407 §4.6.2.1, RFC 7296 §3.5).

RSA signatures in IKEv1 are PKCS#1 v1.5 signatures of the bare HASH_I/HASH_R, without the
DigestInfo (RFC 2409 §5.1: "the signature is of HASH_I", as strongSwan's
SIGN_RSA_EMSA_PKCS1_NULL and every IKEv1 implementation do). `cryptography` only signs with a
DigestInfo, so the RSA private-key operation is done here with the key's CRT numbers and
verified with the public exponent. ECDSA (RFC 4754 §7) signs HASH_I as a digest of the curve's
hash size; the signature payload is r || s, each as long as the curve's order.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import constant_time, hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (Prehashed, decode_dss_signature,
                                                            encode_dss_signature)

from ..auth import Identity, identity_in_cert, load_peer_certs, validate_chain
from ..errors import LocalIkeError, RemoteIkeError
from .constants import AuthMethod, CertEncoding, NotifyType
from .isakmp import CertPayload, CertReqPayload, IdPayload

#: RFC 4754 §5 / §7: the hash of each ECDSA method (its HMAC is the Phase 1 PRF for
#: HASH_I/HASH_R, its size the digest length the signature covers).
ECDSA_HASH = {AuthMethod.ECDSA_SHA256_P256: "sha256", AuthMethod.ECDSA_SHA384_P384: "sha384",
              AuthMethod.ECDSA_SHA512_P521: "sha512"}
_ECDSA_CURVE = {AuthMethod.ECDSA_SHA256_P256: 256, AuthMethod.ECDSA_SHA384_P384: 384,
                AuthMethod.ECDSA_SHA512_P521: 521}
_PREHASHED = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def auth_failed(message: str) -> RemoteIkeError:
    return RemoteIkeError(message, NotifyType.AUTHENTICATION_FAILED)


def auth_hash_name(method: int, negotiated: str) -> str:
    """The hash whose HMAC computes HASH_I/HASH_R: the curve's for ECDSA (RFC 4754 §7),
    otherwise the negotiated one."""
    return ECDSA_HASH.get(method, negotiated)  # type: ignore[call-overload]


def id_payload(identity: Identity) -> IdPayload:
    """The Phase 1 ID payload (protocol and port 0, as strongSwan sends them)."""
    return IdPayload(identity.id_type, identity.data, 0, 0)


# --- RSA: PKCS#1 v1.5 type 1 without DigestInfo ------------------------------------------------

def _emsa_pkcs1_null(data: bytes, k: int) -> int:
    if len(data) > k - 11:
        raise LocalIkeError("RSA key too small for the hash")
    return int.from_bytes(b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data, "big")


def rsa_sign_raw(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """PKCS#1 v1.5 signature (RFC 8017 §8.2.1 with EM = 00 01 FF.. 00 || data) by CRT."""
    n = key.private_numbers()
    k = (n.public_numbers.n.bit_length() + 7) // 8
    m = _emsa_pkcs1_null(data, k)
    s1, s2 = pow(m, n.dmp1, n.p), pow(m, n.dmq1, n.q)
    s = s2 + n.q * ((n.iqmp * (s1 - s2)) % n.p)
    if pow(s, n.public_numbers.e, n.public_numbers.n) != m:   # fault check before release
        raise LocalIkeError("RSA signature self-check failed")
    return s.to_bytes(k, "big")


def rsa_verify_raw(key: rsa.RSAPublicKey, data: bytes, sig: bytes) -> bool:
    n = key.public_numbers()
    k = (n.n.bit_length() + 7) // 8
    s = int.from_bytes(sig, "big")
    if len(sig) != k or s >= n.n:
        return False
    got = pow(s, n.e, n.n).to_bytes(k, "big")
    want = _emsa_pkcs1_null(data, k).to_bytes(k, "big")
    return constant_time.bytes_eq(got, want)


# --- signatures of HASH_I / HASH_R -------------------------------------------------------------

def check_key_fits(method: int, key: object) -> None:
    """Our private key must fit the configured method (RSA for rsa-signatures, an EC key on
    the method's curve for ecdsa-signatures-*)."""
    if method == AuthMethod.RSA_SIG:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise LocalIkeError("rsa-signatures needs an RSA private key")
    elif method in _ECDSA_CURVE:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or \
                key.curve.key_size != _ECDSA_CURVE[AuthMethod(method)]:
            raise LocalIkeError(f"{AuthMethod(method).name} needs an EC key on the "
                                f"{_ECDSA_CURVE[AuthMethod(method)]}-bit curve")
    else:
        raise LocalIkeError(f"authentication method {method} is not a signature method")


def sign(method: int, key: object, digest_: bytes) -> bytes:
    """The SIG payload data for HASH_I/HASH_R under `method` (RFC 2409 §5.1, RFC 4754 §7)."""
    check_key_fits(method, key)
    if method == AuthMethod.RSA_SIG:
        assert isinstance(key, rsa.RSAPrivateKey)
        return rsa_sign_raw(key, digest_)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    hname = ECDSA_HASH[AuthMethod(method)]
    r, s = decode_dss_signature(key.sign(digest_, ec.ECDSA(Prehashed(_PREHASHED[hname]()))))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify(method: int, key: object, digest_: bytes, sig: bytes) -> None:
    """Check a SIG payload; AUTHENTICATION-FAILED (RFC 2408 §3.14.1) if it does not verify or
    the peer's key does not fit the negotiated method."""
    if method == AuthMethod.RSA_SIG:
        if not isinstance(key, rsa.RSAPublicKey):
            raise auth_failed("rsa-signatures negotiated, but the peer's key is not RSA")
        if not rsa_verify_raw(key, digest_, sig):
            raise auth_failed("RSA signature of the peer does not verify")
        return
    if method not in _ECDSA_CURVE:
        raise auth_failed(f"authentication method {method} is not a signature method")
    if not isinstance(key, ec.EllipticCurvePublicKey) or \
            key.curve.key_size != _ECDSA_CURVE[AuthMethod(method)]:
        raise auth_failed("ECDSA negotiated, but the peer's key is not on the method's curve")
    size = (key.curve.key_size + 7) // 8
    if len(sig) != 2 * size:
        raise auth_failed(f"ECDSA signature of {len(sig)} bytes, expected {2 * size}")
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"),
                               int.from_bytes(sig[size:], "big"))
    hname = ECDSA_HASH[AuthMethod(method)]
    try:
        key.verify(der, digest_, ec.ECDSA(Prehashed(_PREHASHED[hname]())))
    except (InvalidSignature, ValueError):
        raise auth_failed("ECDSA signature of the peer does not verify") from None


# --- certificates ------------------------------------------------------------------------------

def cert_payloads(certs: Sequence[x509.Certificate]) -> list[CertPayload]:
    """CERT payloads (X.509 Certificate - Signature, RFC 2408 §3.9), end entity first."""
    from cryptography.hazmat.primitives.serialization import Encoding
    return [CertPayload(CertEncoding.X509_SIGNATURE, c.public_bytes(Encoding.DER))
            for c in certs]


def certreq_payloads(cas: Sequence[x509.Certificate]) -> list[CertReqPayload]:
    """CERTREQ payloads naming each trusted CA by its DER subject (RFC 2408 §3.10, the form
    strongSwan sends and expects)."""
    return [CertReqPayload(CertEncoding.X509_SIGNATURE, ca.subject.public_bytes()) for ca in cas]


def peer_public_key(certs: Sequence[CertPayload], identity: Identity,
                    anchors: Sequence[x509.Certificate], now: Optional[datetime] = None
                    ) -> object:
    """Validate the peer's certificate chain against our CAs (IKEv2's `validate_chain`), check
    that its end-entity certificate vouches for the ID the peer sent, return its public key."""
    blobs = [c.data for c in certs if c.encoding == CertEncoding.X509_SIGNATURE]
    if not blobs:
        raise RemoteIkeError("no X.509 certificate from the peer",
                             NotifyType.CERTIFICATE_UNAVAILABLE)
    if not anchors:
        raise LocalIkeError("no CA certificate configured to validate the peer")
    chain = load_peer_certs(blobs)
    end_entity, intermediates = chain[0], chain[1:]
    validate_chain(end_entity, intermediates, anchors, now or datetime.now(timezone.utc))
    if not identity_in_cert(identity, end_entity):
        raise auth_failed(f"the peer's certificate does not contain its ID {identity}")
    return end_entity.public_key()
