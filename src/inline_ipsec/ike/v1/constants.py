"""ISAKMP (RFC 2408) and IKEv1 (RFC 2409, IPsec DOI RFC 2407) registry values as IntEnums.

Only what this implementation speaks or must recognise is listed; unknown values stay plain
ints when parsed (the codec never raises ValueError on an unknown registry value).
Sources: RFC 2408 §3.1-§3.15 (header, payloads, notify types), RFC 2409 Appendix A (Phase 1
attributes), RFC 2407 §4.4-§4.6 (IPsec DOI), RFC 3947 (NAT-T), RFC 3706 (DPD), RFC 4754
(ECDSA), RFC 4106 §8 and RFC 4868 (ESP attributes), IANA "Internet Key Exchange (IKE)
Attributes" and "Internet Security Association and Key Management Protocol (ISAKMP)
Identifiers".
"""
from __future__ import annotations

from enum import IntEnum, IntFlag

ISAKMP_VERSION = 0x10  #: major 1, minor 0 (RFC 2408 §3.1)
DOI_IPSEC = 1          #: RFC 2407 §4.2
SIT_IDENTITY_ONLY = 1  #: RFC 2407 §4.2.1
KEY_IKE = 1            #: RFC 2409 Appendix A: the Phase 1 transform ID


class ExchangeType(IntEnum):
    """RFC 2408 §3.1 / RFC 2409 Appendix A exchange types."""

    BASE = 1
    MAIN = 2            #: Identity Protection (Main Mode)
    AUTH_ONLY = 3
    AGGRESSIVE = 4
    INFORMATIONAL = 5
    TRANSACTION = 6     #: Mode Config / XAUTH (not implemented)
    QUICK = 32
    NEW_GROUP = 33


class Flag(IntFlag):
    """RFC 2408 §3.1 header flags."""

    NONE = 0
    ENCRYPTION = 0x01
    COMMIT = 0x02
    AUTH_ONLY = 0x04


class PayloadType(IntEnum):
    """RFC 2408 §3.1 Next Payload values, RFC 3947 §3.1/§5.2, and the IKE fragment payload."""

    NONE = 0
    SA = 1
    PROPOSAL = 2
    TRANSFORM = 3
    KE = 4
    ID = 5
    CERT = 6
    CERTREQ = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    NOTIFY = 11
    DELETE = 12
    VENDOR_ID = 13
    NAT_D = 20     #: RFC 3947 §3.2
    NAT_OA = 21    #: RFC 3947 §5.2
    #: IKE fragmentation (the Cisco/racoon extension strongSwan and Junos use): not in an RFC.
    FRAGMENT = 132


class ProtocolId(IntEnum):
    """RFC 2407 §4.4.1 IPSEC Security Protocol Identifiers."""

    ISAKMP = 1
    AH = 2
    ESP = 3
    IPCOMP = 4


class Phase1Attr(IntEnum):
    """RFC 2409 Appendix A Phase 1 SA attribute classes."""

    ENCRYPTION = 1
    HASH = 2
    AUTH_METHOD = 3
    GROUP_DESCRIPTION = 4
    GROUP_TYPE = 5
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    PRF = 13
    KEY_LENGTH = 14


class Phase1Encryption(IntEnum):
    """RFC 2409 Appendix A Encryption Algorithm (AES: RFC 3602 via IANA)."""

    DES_CBC = 1
    TRIPLE_DES_CBC = 5
    AES_CBC = 7


class Phase1Hash(IntEnum):
    """RFC 2409 Appendix A Hash Algorithm (SHA2: RFC 4878 via IANA)."""

    MD5 = 1
    SHA1 = 2
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class AuthMethod(IntEnum):
    """RFC 2409 Appendix A Authentication Method; ECDSA from RFC 4754 §5."""

    PSK = 1
    DSS_SIG = 2
    RSA_SIG = 3
    RSA_ENC = 4
    RSA_ENC_REV = 5
    ECDSA_SHA256_P256 = 9
    ECDSA_SHA384_P384 = 10
    ECDSA_SHA512_P521 = 11


class LifeType(IntEnum):
    """RFC 2409 Appendix A / RFC 2407 §4.5 SA Life Type."""

    SECONDS = 1
    KILOBYTES = 2


class IpsecAttr(IntEnum):
    """RFC 2407 §4.5 IPsec SA attributes (ESN: RFC 4304 §2)."""

    LIFE_TYPE = 1
    LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTH_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICT_SIZE = 8
    COMPRESS_PRIVATE_ALG = 9
    EXTENDED_SEQUENCE_NUMBER = 11


class EncapsulationMode(IntEnum):
    """RFC 2407 §4.5 Encapsulation Mode; RFC 3947 §5 UDP-encapsulated modes."""

    TUNNEL = 1
    TRANSPORT = 2
    UDP_TUNNEL = 3
    UDP_TRANSPORT = 4
    #: draft-ietf-ipsec-nat-t-ike-00..03 values (accepted, never sent).
    UDP_TUNNEL_DRAFT = 61443
    UDP_TRANSPORT_DRAFT = 61444


class IpsecAuthAlg(IntEnum):
    """RFC 2407 §4.5 Authentication Algorithm; SHA2 from RFC 4868 §2.4 (IANA)."""

    HMAC_MD5 = 1
    HMAC_SHA1 = 2
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7


class EspTransform(IntEnum):
    """RFC 2407 §4.4.4 IPSEC ESP Transform Identifiers (GCM: RFC 4106 §8.4, GMAC: RFC 4543
    §9, NULL: RFC 2410)."""

    ESP_3DES = 3
    ESP_NULL = 11
    ESP_AES_CBC = 12
    ESP_AES_CTR = 13
    ESP_AES_GCM_8 = 18
    ESP_AES_GCM_12 = 19
    ESP_AES_GCM_16 = 20
    ESP_NULL_AUTH_AES_GMAC = 23


class AhTransform(IntEnum):
    """RFC 2407 §4.4.3 IPSEC AH Transform Identifiers (SHA2: RFC 4868 §2.4)."""

    AH_MD5 = 2
    AH_SHA = 3
    AH_SHA2_256 = 5
    AH_SHA2_384 = 6
    AH_SHA2_512 = 7


class IdType(IntEnum):
    """RFC 2407 §4.6.2.1 Identification Type Values."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_USER_FQDN = 3
    ID_IPV4_ADDR_SUBNET = 4
    ID_IPV6_ADDR = 5
    ID_IPV6_ADDR_SUBNET = 6
    ID_IPV4_ADDR_RANGE = 7
    ID_IPV6_ADDR_RANGE = 8
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11


class CertEncoding(IntEnum):
    """RFC 2408 §3.9 Certificate Encoding."""

    X509_SIGNATURE = 4
    CRL = 7


class NotifyType(IntEnum):
    """RFC 2408 §3.14.1 Notify Message Types, RFC 2407 §4.6.3 (IPsec DOI status types) and
    RFC 3706 §5 (DPD)."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137

    @property
    def is_error(self) -> bool:
        return int(self) < 16384


def notify_name(value: int) -> str:
    try:
        return NotifyType(value).name
    except ValueError:
        return str(value)


#: Vendor IDs (RFC 2408 §3.16) this implementation sends or recognises.
#: RFC 3947 §3.1: MD5("RFC 3947").
VID_NATT_RFC3947 = bytes.fromhex("4a131c81070358455c5728f20e95452f")
#: RFC 3706 §4: the DPD vendor ID (major version 1, minor version 0).
VID_DPD = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")
#: IKE fragmentation (Cisco/racoon, as strongSwan and Junos send it): MD5("FRAGMENTATION")
#: followed by capability flags; 0x80000000 = Main/Aggressive Mode messages may be fragmented.
VID_FRAGMENTATION = bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3")
FRAGMENTATION_CAPS = 0x80000000
