"""IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries as IntEnums.

Only the values this implementation speaks or must recognise are listed; unknown values stay
plain ints when parsed (the codec never raises ValueError on an unknown registry value).
References: RFC 7296 §3 (payload formats), RFC 5282 (GCM), RFC 4868 (HMAC-SHA2),
RFC 5903 / RFC 8031 (DH groups 19-21, 31), RFC 7427 (signature auth), RFC 8784 (PPK).
"""
from __future__ import annotations

from enum import IntEnum, IntFlag

IKE_VERSION = 0x20  #: major 2, minor 0 (RFC 7296 §3.1)
IKE_PORT = 500
NATT_PORT = 4500
NON_ESP_MARKER = b"\x00\x00\x00\x00"  #: RFC 3948 §2.2, RFC 7296 §2.23


class ExchangeType(IntEnum):
    """RFC 7296 §3.1 Exchange Type."""

    IKE_SA_INIT = 34
    IKE_AUTH = 35
    CREATE_CHILD_SA = 36
    INFORMATIONAL = 37


class HeaderFlag(IntFlag):
    """RFC 7296 §3.1 Flags."""

    NONE = 0
    INITIATOR = 0x08
    VERSION = 0x10
    RESPONSE = 0x20


class PayloadType(IntEnum):
    """RFC 7296 §3.2 Next Payload values."""

    NONE = 0
    SA = 33
    KE = 34
    IDi = 35
    IDr = 36
    CERT = 37
    CERTREQ = 38
    AUTH = 39
    NONCE = 40
    NOTIFY = 41
    DELETE = 42
    VENDOR_ID = 43
    TSi = 44
    TSr = 45
    SK = 46
    CP = 47
    EAP = 48
    SKF = 53


class ProtocolId(IntEnum):
    """RFC 7296 §3.3.1 Protocol ID."""

    NONE = 0
    IKE = 1
    AH = 2
    ESP = 3


class TransformType(IntEnum):
    """RFC 7296 §3.3.2 Transform Type."""

    ENCR = 1
    PRF = 2
    INTEG = 3
    DH = 4
    ESN = 5


class EncrId(IntEnum):
    """Transform type 1 IDs (RFC 7296 §3.3.2, RFC 5282 §7)."""

    ENCR_3DES = 3
    ENCR_NULL = 11
    ENCR_AES_CBC = 12
    ENCR_AES_CTR = 13
    ENCR_AES_GCM_8 = 18
    ENCR_AES_GCM_12 = 19
    ENCR_AES_GCM_16 = 20
    ENCR_NULL_AUTH_AES_GMAC = 21
    ENCR_CHACHA20_POLY1305 = 28


class PrfId(IntEnum):
    """Transform type 2 IDs (RFC 7296 §3.3.2, RFC 4868)."""

    PRF_HMAC_MD5 = 1
    PRF_HMAC_SHA1 = 2
    PRF_AES128_XCBC = 4
    PRF_HMAC_SHA2_256 = 5
    PRF_HMAC_SHA2_384 = 6
    PRF_HMAC_SHA2_512 = 7


class IntegId(IntEnum):
    """Transform type 3 IDs (RFC 7296 §3.3.2, RFC 4868)."""

    NONE = 0
    AUTH_HMAC_MD5_96 = 1
    AUTH_HMAC_SHA1_96 = 2
    AUTH_AES_XCBC_96 = 5
    AUTH_HMAC_SHA2_256_128 = 12
    AUTH_HMAC_SHA2_384_192 = 13
    AUTH_HMAC_SHA2_512_256 = 14


class DhGroup(IntEnum):
    """Transform type 4 IDs (RFC 7296 §3.3.2, RFC 3526, RFC 5903, RFC 8031)."""

    NONE = 0
    MODP_1024 = 2
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    CURVE25519 = 31


class EsnId(IntEnum):
    """Transform type 5 IDs (RFC 7296 §3.3.2)."""

    NO_ESN = 0
    ESN = 1


class TransformAttr(IntEnum):
    """RFC 7296 §3.3.5 attribute types."""

    KEY_LENGTH = 14


class IdType(IntEnum):
    """RFC 7296 §3.5 ID Type."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


class CertEncoding(IntEnum):
    """RFC 7296 §3.6 Certificate Encoding."""

    X509_SIGNATURE = 4
    CRL = 7


class AuthMethod(IntEnum):
    """RFC 7296 §3.8 Auth Method, RFC 7427 §3."""

    RSA_SIG = 1
    PSK = 2
    DSS_SIG = 3
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11
    DIGITAL_SIGNATURE = 14


class TsType(IntEnum):
    """RFC 7296 §3.13.1 TS Type."""

    TS_IPV4_ADDR_RANGE = 7
    TS_IPV6_ADDR_RANGE = 8


class HashAlgorithm(IntEnum):
    """RFC 7427 §4 hash algorithm identifiers (SIGNATURE_HASH_ALGORITHMS)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5


class NotifyType(IntEnum):
    """RFC 7296 §3.10.1 Notify Message Types (errors < 16384, status >= 16384)."""

    UNSUPPORTED_CRITICAL_PAYLOAD = 1
    INVALID_IKE_SPI = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_SYNTAX = 7
    INVALID_MESSAGE_ID = 9
    INVALID_SPI = 11
    NO_PROPOSAL_CHOSEN = 14
    INVALID_KE_PAYLOAD = 17
    AUTHENTICATION_FAILED = 24
    SINGLE_PAIR_REQUIRED = 34
    NO_ADDITIONAL_SAS = 35
    INTERNAL_ADDRESS_FAILURE = 36
    FAILED_CP_REQUIRED = 37
    TS_UNACCEPTABLE = 38
    INVALID_SELECTORS = 39
    TEMPORARY_FAILURE = 43
    CHILD_SA_NOT_FOUND = 44
    INITIAL_CONTACT = 16384
    SET_WINDOW_SIZE = 16385
    ADDITIONAL_TS_POSSIBLE = 16386
    IPCOMP_SUPPORTED = 16387
    NAT_DETECTION_SOURCE_IP = 16388
    NAT_DETECTION_DESTINATION_IP = 16389
    COOKIE = 16390
    USE_TRANSPORT_MODE = 16391
    HTTP_CERT_LOOKUP_SUPPORTED = 16392
    REKEY_SA = 16393
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394
    NON_FIRST_FRAGMENTS_ALSO = 16395
    MOBIKE_SUPPORTED = 16396
    MULTIPLE_AUTH_SUPPORTED = 16404
    REDIRECT_SUPPORTED = 16406
    IKEV2_FRAGMENTATION_SUPPORTED = 16430
    SIGNATURE_HASH_ALGORITHMS = 16431
    USE_PPK = 16435
    PPK_IDENTITY = 16436
    NO_PPK_AUTH = 16437

    @property
    def is_error(self) -> bool:
        return int(self) < 16384


def is_error_notify(value: int) -> bool:
    """RFC 7296 §3.10.1: types below 16384 report errors."""
    return value < 16384
