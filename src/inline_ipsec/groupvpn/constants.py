"""GDOI (RFC 6407) registry values as IntEnums.

GDOI is an ISAKMP Domain of Interpretation of its own (DOI 2, RFC 6407 §5.1) that reuses the
IKEv1 Phase 1 and the ISAKMP header; its two exchanges reuse the numbers 32 and 33, which the
IPsec DOI gives to Quick Mode and New Group Mode (RFC 6407 §3.1, §4.1). Unknown values stay
plain ints when parsed.
"""
from __future__ import annotations

from enum import IntEnum

#: RFC 6407 §5.1: the GDOI DOI value, carried in the SA payload of both exchanges.
DOI_GDOI = 2
#: RFC 6407 §2.1.2 (IANA): GDOI runs on UDP port 848, never on IKE's port 500.
GDOI_PORT = 848


class GdoiExchange(IntEnum):
    """RFC 6407 §3.1 and §4.1 exchange types."""

    GROUPKEY_PULL = 32
    GROUPKEY_PUSH = 33


class GdoiPayload(IntEnum):
    """RFC 6407 §5 payload types (HASH, SIG, SA, ID, Nonce, Delete keep their ISAKMP
    values)."""

    SA = 1
    ID = 5
    CERT = 6
    HASH = 8
    SIG = 9
    NONCE = 10
    NOTIFY = 11
    DELETE = 12
    VENDOR_ID = 13
    SAK = 15   #: SA KEK
    SAT = 16   #: SA TEK
    KD = 17    #: Key Download
    SEQ = 18   #: Sequence Number
    GAP = 22   #: Group Associated Policy


class TekProtocol(IntEnum):
    """RFC 6407 §5.4 SA TEK Protocol-ID."""

    ESP = 1
    AH = 2


class KekAttr(IntEnum):
    """RFC 6407 §5.3.1-§5.3.8 KEK policy attributes."""

    KEK_MANAGEMENT_ALGORITHM = 1
    KEK_ALGORITHM = 2
    KEK_KEY_LENGTH = 3
    KEK_KEY_LIFETIME = 4
    SIG_HASH_ALGORITHM = 5
    SIG_ALGORITHM = 6
    SIG_KEY_LENGTH = 7


class KekAlgorithm(IntEnum):
    """RFC 6407 §5.3.3 KEK_ALGORITHM values."""

    DES = 1
    TRIPLE_DES = 2
    AES = 3


class SigHash(IntEnum):
    """RFC 6407 §5.3.6 SIG_HASH_ALGORITHM values."""

    MD5 = 1
    SHA1 = 2
    SHA256 = 3
    SHA384 = 4
    SHA512 = 5


class SigAlgorithm(IntEnum):
    """RFC 6407 §5.3.7 SIG_ALGORITHM values."""

    RSA = 1        #: RSASSA-PKCS1-v1_5
    DSS = 2
    ECDSS = 3
    ECDSA_256 = 4
    ECDSA_384 = 5
    ECDSA_521 = 6


class KdType(IntEnum):
    """RFC 6407 §5.6 Key Download key packet types."""

    TEK = 1
    KEK = 2
    LKH = 3
    SID = 4


class TekKeyAttr(IntEnum):
    """RFC 6407 §5.6.1 TEK key packet attributes."""

    TEK_ALGORITHM_KEY = 1
    TEK_INTEGRITY_KEY = 2
    TEK_SOURCE_AUTH_KEY = 3


class KekKeyAttr(IntEnum):
    """RFC 6407 §5.6.2 KEK key packet attributes."""

    KEK_ALGORITHM_KEY = 1
    SIG_ALGORITHM_KEY = 2


class GapAttr(IntEnum):
    """RFC 6407 §5.5 Group Associated Policy attributes."""

    ACTIVATION_TIME_DELAY = 1
    DEACTIVATION_TIME_DELAY = 2
    SENDER_ID_REQUEST = 3


class IpsecAttr(IntEnum):
    """RFC 2407 §4.5 SA attributes used in an SA TEK, with RFC 6407 §5.4.1's additions
    (IANA "IPSEC Security Association Attributes" 14 and 15)."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    ENCAPSULATION_MODE = 4
    AUTH_ALGORITHM = 5
    KEY_LENGTH = 6
    ADDRESS_PRESERVATION = 14
    SA_DIRECTION = 15


class AddressPreservation(IntEnum):
    """RFC 6407 §5.4.1 (IANA) Address Preservation values: which inner addresses the outer
    header copies."""

    NONE = 1
    SOURCE_ONLY = 2
    DESTINATION_ONLY = 3
    SOURCE_AND_DESTINATION = 4


class SaDirection(IntEnum):
    """RFC 6407 §5.4.1 (IANA) SA Direction values."""

    SENDER_ONLY = 1
    RECEIVER_ONLY = 2
    SYMMETRIC = 3


#: RFC 2407 §4.4.4 ESP transform IDs we offer in a TEK (Junos Group VPNv2 offers AES-CBC).
ESP_AES = 12
#: RFC 2407 §4.5 authentication algorithm values -> our integrity names.
AUTH_ALGORITHMS = {2: "hmac-sha1-96", 5: "hmac-sha256-128", 6: "hmac-sha384-192",
                   7: "hmac-sha512-256"}
AUTH_IDS = {v: k for k, v in AUTH_ALGORITHMS.items()}
