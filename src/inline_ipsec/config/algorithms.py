"""Junos algorithm keywords and their mapping to `SaSpec` transform names.

Junos spells transforms its own way (`aes-256-gcm`, `hmac-sha-256-128`); `SaSpec` uses the
names of `inline_ipsec.sa` (`aes-gcm-256`, `hmac-sha256-128`). This table is the only place
that knows both. Sources: Junos "proposal (Security IPsec)" and "proposal (Security IKE)"
statement pages; RFC 4106 (GCM), RFC 3602 (CBC), RFC 3686 (CTR), RFC 7634 (ChaCha20-Poly1305),
RFC 4543 (GMAC), RFC 2404/4868 (HMAC-SHA1-96, HMAC-SHA-256-128/384-192/512-256).
"""
from __future__ import annotations

__all__ = [
    "IKE_AUTHENTICATION_ALGORITHMS",
    "IKE_AUTHENTICATION_METHODS",
    "IKE_ENCRYPTION_ALGORITHMS",
    "DH_GROUPS",
    "IPSEC_ENCRYPTION_TO_CIPHER",
    "IPSEC_AUTHENTICATION_TO_INTEGRITY",
    "AEAD_ENCRYPTION",
    "cipher_name",
    "integrity_name",
]

IKE_AUTHENTICATION_METHODS = (
    "pre-shared-keys", "rsa-signatures", "dsa-signatures",
    "ecdsa-signatures-256", "ecdsa-signatures-384",
)

IKE_ENCRYPTION_ALGORITHMS = (
    "aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "3des-cbc", "des-cbc",
    "aes-128-gcm", "aes-256-gcm",
)

IKE_AUTHENTICATION_ALGORITHMS = ("md5", "sha1", "sha-256", "sha-384", "sha-512")

#: `dh-group` and `perfect-forward-secrecy keys` values -> IANA group number (RFC 7296 §3.3.2
#: Transform Type 4, RFC 3526, RFC 5903, RFC 5114, RFC 8031).
DH_GROUPS: dict[str, int] = {
    "group1": 1, "group2": 2, "group5": 5, "group14": 14, "group15": 15, "group16": 16,
    "group19": 19, "group20": 20, "group21": 21, "group24": 24, "group31": 31, "group32": 32,
}

#: Junos IPsec `encryption-algorithm` -> `SaSpec.cipher`.
IPSEC_ENCRYPTION_TO_CIPHER: dict[str, str] = {
    "aes-128-gcm": "aes-gcm-128",
    "aes-192-gcm": "aes-gcm-192",
    "aes-256-gcm": "aes-gcm-256",
    "aes-128-cbc": "aes-cbc-128",
    "aes-192-cbc": "aes-cbc-192",
    "aes-256-cbc": "aes-cbc-256",
    "3des-cbc": "3des-cbc",
    "aes-128-ctr": "aes-ctr-128",
    "aes-192-ctr": "aes-ctr-192",
    "aes-256-ctr": "aes-ctr-256",
    "aes-128-gmac": "aes-gmac-128",
    "aes-192-gmac": "aes-gmac-192",
    "aes-256-gmac": "aes-gmac-256",
    "chacha20-poly1305": "chacha20-poly1305",
    "null": "null",
}

#: Junos IPsec `authentication-algorithm` -> `SaSpec.integrity`.
IPSEC_AUTHENTICATION_TO_INTEGRITY: dict[str, str] = {
    "hmac-md5-96": "hmac-md5-96",
    "hmac-sha1-96": "hmac-sha1-96",
    "hmac-sha-256-128": "hmac-sha256-128",
    "hmac-sha-384": "hmac-sha384-192",
    "hmac-sha-512": "hmac-sha512-256",
}

#: Combined-mode encryption (RFC 4303 §3.2.3): no `authentication-algorithm` with these.
AEAD_ENCRYPTION = frozenset(
    name for name in IPSEC_ENCRYPTION_TO_CIPHER
    if name.endswith("-gcm") or name.endswith("-gmac") or name == "chacha20-poly1305"
)


def cipher_name(junos_encryption: str) -> str:
    """`aes-128-gcm` -> `aes-gcm-128` (the `SaSpec.cipher` spelling)."""
    return IPSEC_ENCRYPTION_TO_CIPHER[junos_encryption]


def integrity_name(junos_authentication: str) -> str:
    """`hmac-sha-256-128` -> `hmac-sha256-128` (the `SaSpec.integrity` spelling)."""
    return IPSEC_AUTHENTICATION_TO_INTEGRITY[junos_authentication]
