"""Group keys in both directions: a key server's TEK/KEK as SA TEK / SA KEK / Key Download
payloads (RFC 6407 §5.3, §5.4.1, §5.6), and a member's reading of them back into a group SA
(`cpu.group.GroupSa`) and a `push.Kek`.

TEK policy attributes sent (RFC 2407 §4.5, RFC 6407 §5.4.1): SA Life Type/Duration (seconds
left), Encapsulation Mode = tunnel, Authentication Algorithm, Key Length, Address
Preservation = source-and-destination, SA Direction = symmetric, and, when the group uses
time-based anti-replay, the window in seconds as a private-use attribute
(`ATTR_ANTI_REPLAY_TIME_WINDOW`, in the RFC 2407 §4.5 private range; no standard attribute
carries it). A member refuses a TEK it cannot honour (another transform, no address
preservation, keys of the wrong size) instead of installing something else.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Optional

from ..ike.errors import RemoteIkeError
from ..ike.v1.constants import NotifyType
from ..sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS
from ..cpu.group import GroupPolicy, GroupSa
from .config import AUTHENTICATION, ENCRYPTION, MatchPolicy
from .constants import (AUTH_ALGORITHMS, AUTH_IDS, ESP_AES, AddressPreservation, IpsecAttr,
                        KdType, KekAlgorithm, KekAttr, KekKeyAttr, SaDirection, SigAlgorithm,
                        TekKeyAttr, TekProtocol)
from .payloads import Attr, KekPayload, KeyPacket, TekPayload, TrafficId, attr_value
from .push import Kek, load_public_key

#: RFC 2407 §4.5 private-use SA attribute: time-based anti-replay window, seconds
ATTR_ANTI_REPLAY_TIME_WINDOW = 32001


@dataclass
class Tek:
    """A TEK as the key server keeps it."""

    spi: int
    ipsec_sa: str
    match: MatchPolicy
    cipher: str            # our name, e.g. aes-cbc-256
    integrity: str         # our name, e.g. hmac-sha256-128
    key: bytes
    integrity_key: bytes
    created: float
    expires: float
    anti_replay_window: int = 0
    rekeyed: bool = False
    extra: dict = field(default_factory=dict)


def new_tek(spi: int, ipsec_sa, now: float, random, anti_replay_window: int) -> Tek:
    """Fresh keys for `ipsec_sa` (a config.GroupIpsecSa)."""
    cipher = ENCRYPTION[ipsec_sa.encryption]
    integ = AUTHENTICATION[ipsec_sa.authentication]
    return Tek(spi, ipsec_sa.name, ipsec_sa.match, cipher, integ,
               random(CIPHER_KEY_MATERIAL[cipher]), random(INTEGRITY_ALGORITHMS[integ][0]),
               now, now + ipsec_sa.lifetime_seconds, anti_replay_window)


def tek_payload(t: Tek, now: float) -> TekPayload:
    m = t.match
    attrs = [Attr(IpsecAttr.SA_LIFE_TYPE, 1),
             Attr(IpsecAttr.SA_LIFE_DURATION, struct.pack("!I", max(1, int(t.expires - now)))),
             Attr(IpsecAttr.ENCAPSULATION_MODE, 1),
             Attr(IpsecAttr.AUTH_ALGORITHM, AUTH_IDS[t.integrity]),
             Attr(IpsecAttr.KEY_LENGTH, len(t.key) * 8),
             Attr(IpsecAttr.ADDRESS_PRESERVATION, AddressPreservation.SOURCE_AND_DESTINATION),
             Attr(IpsecAttr.SA_DIRECTION, SaDirection.SYMMETRIC)]
    if t.anti_replay_window:
        attrs.append(Attr(ATTR_ANTI_REPLAY_TIME_WINDOW, t.anti_replay_window))
    return TekPayload(TekProtocol.ESP, m.protocol, TrafficId.network(m.source, m.source_port),
                      TrafficId.network(m.destination, m.destination_port), ESP_AES, t.spi,
                      tuple(attrs))


def tek_key_packet(t: Tek) -> KeyPacket:
    return KeyPacket(KdType.TEK, struct.pack("!I", t.spi),
                     (Attr(TekKeyAttr.TEK_ALGORITHM_KEY, t.key),
                      Attr(TekKeyAttr.TEK_INTEGRITY_KEY, t.integrity_key)))


def kek_payload(k: Kek, now: float, server: str, member: str) -> KekPayload:
    """The KEK policy: AES-CBC with the key's length, lifetime left, RSA signatures."""
    assert k.private_key is not None
    attrs = (Attr(KekAttr.KEK_ALGORITHM, KekAlgorithm.AES),
             Attr(KekAttr.KEK_KEY_LENGTH, len(k.key) * 8),
             Attr(KekAttr.KEK_KEY_LIFETIME, struct.pack("!I", max(1, int(k.expires - now)))),
             Attr(KekAttr.SIG_HASH_ALGORITHM, int(k.sig_hash)),
             Attr(KekAttr.SIG_ALGORITHM, SigAlgorithm.RSA),
             Attr(KekAttr.SIG_KEY_LENGTH, k.private_key.key_size))
    return KekPayload(k.spi, attrs, 17, TrafficId.network(server, 848),
                      TrafficId.network(member, 848))


def kek_key_packet(k: Kek) -> KeyPacket:
    return KeyPacket(KdType.KEK, k.spi, (Attr(KekKeyAttr.KEK_ALGORITHM_KEY, k.key),
                                         Attr(KekKeyAttr.SIG_ALGORITHM_KEY, k.public_der)))


# --- member side -----------------------------------------------------------------------------

def _bad(msg: str) -> RemoteIkeError:
    return RemoteIkeError(msg, NotifyType.ATTRIBUTES_NOT_SUPPORTED)


def group_sa_from(tek: TekPayload, packets: list[KeyPacket], now: float, group_id: int,
                  activation_delay: float = 0.0) -> GroupSa:
    """The group SA a TEK and its key packet describe; RemoteIkeError if we cannot honour
    it exactly."""
    if tek.protocol_id != TekProtocol.ESP or tek.transform_id != ESP_AES:
        raise _bad(f"TEK protocol {tek.protocol_id} transform {tek.transform_id}: only ESP "
                   "with AES-CBC")
    a = tek.attributes

    def val(t: int, default: Optional[int] = None) -> Optional[int]:
        x = attr_value(a, t)
        return default if x is None else x.as_int

    if val(IpsecAttr.ENCAPSULATION_MODE, 1) != 1:
        raise _bad("TEK is not tunnel mode")
    if val(IpsecAttr.ADDRESS_PRESERVATION) != AddressPreservation.SOURCE_AND_DESTINATION:
        raise _bad("TEK without source-and-destination address preservation")
    if val(IpsecAttr.SA_DIRECTION, SaDirection.SYMMETRIC) != SaDirection.SYMMETRIC:
        raise _bad("TEK is not symmetric")
    integrity = AUTH_ALGORITHMS.get(val(IpsecAttr.AUTH_ALGORITHM, 0) or 0)
    bits = val(IpsecAttr.KEY_LENGTH, 128)
    cipher = f"aes-cbc-{bits}"
    if integrity is None or cipher not in CIPHER_KEY_MATERIAL:
        raise _bad(f"TEK algorithms {cipher}/{val(IpsecAttr.AUTH_ALGORITHM)}")
    life = val(IpsecAttr.SA_LIFE_DURATION)
    if not life or val(IpsecAttr.SA_LIFE_TYPE, 1) != 1:
        raise _bad("TEK without a lifetime in seconds")
    spi = struct.pack("!I", tek.spi)
    kp = next((p for p in packets if p.kd_type == KdType.TEK and p.spi == spi), None)
    if kp is None:
        raise RemoteIkeError(f"no key packet for TEK SPI {tek.spi:#x}",
                             NotifyType.PAYLOAD_MALFORMED)
    key = attr_value(kp.attributes, TekKeyAttr.TEK_ALGORITHM_KEY)
    ikey = attr_value(kp.attributes, TekKeyAttr.TEK_INTEGRITY_KEY)
    if key is None or ikey is None or len(key.as_bytes) != CIPHER_KEY_MATERIAL[cipher] or \
            len(ikey.as_bytes) != INTEGRITY_ALGORITHMS[integrity][0]:
        raise RemoteIkeError("TEK keys missing or of the wrong length",
                             NotifyType.PAYLOAD_MALFORMED)
    if tek.spi < 256:
        raise RemoteIkeError(f"TEK SPI {tek.spi}", NotifyType.INVALID_SPI)
    policy = GroupPolicy(tek.src.to_network(), tek.dst.to_network(), tek.ip_protocol,
                         tek.src.port, tek.dst.port)
    if policy.src.version != policy.dst.version:
        raise RemoteIkeError("TEK policy mixes address families",
                             NotifyType.INVALID_ID_INFORMATION)
    return GroupSa(tek.spi, cipher, key.as_bytes, integrity, ikey.as_bytes, policy,
                   not_before=now + activation_delay, expires=now + life,
                   replay_window_s=float(val(ATTR_ANTI_REPLAY_TIME_WINDOW, 0) or 0),
                   group_id=group_id)


def kek_from(kek: KekPayload, packets: list[KeyPacket], now: float) -> Kek:
    """The KEK a SA KEK and its key packet describe (RSA signatures, AES-CBC only)."""
    a = kek.attributes

    def val(t: int) -> Optional[int]:
        x = attr_value(a, t)
        return None if x is None else x.as_int

    if val(KekAttr.KEK_ALGORITHM) != KekAlgorithm.AES:
        raise _bad("KEK algorithm is not AES")
    if val(KekAttr.SIG_ALGORITHM) != SigAlgorithm.RSA:
        raise _bad("KEK signature algorithm is not RSA")
    sig_hash = val(KekAttr.SIG_HASH_ALGORITHM)
    if sig_hash not in (3, 4, 5):
        raise _bad(f"KEK signature hash {sig_hash}")
    kp = next((p for p in packets if p.kd_type == KdType.KEK and p.spi == kek.spi), None)
    if kp is None:
        raise RemoteIkeError("no key packet for the KEK", NotifyType.PAYLOAD_MALFORMED)
    key = attr_value(kp.attributes, KekKeyAttr.KEK_ALGORITHM_KEY)
    pub = attr_value(kp.attributes, KekKeyAttr.SIG_ALGORITHM_KEY)
    bits = val(KekAttr.KEK_KEY_LENGTH) or 128
    if key is None or pub is None or len(key.as_bytes) * 8 != bits or bits not in (128, 192,
                                                                                  256):
        raise RemoteIkeError("KEK keys missing or of the wrong length",
                             NotifyType.PAYLOAD_MALFORMED)
    life = val(KekAttr.KEK_KEY_LIFETIME) or 3600
    return Kek(kek.spi, key.as_bytes, now + life, sig_hash,
               public_key=load_public_key(pub.as_bytes))


def network_of(host: str) -> str:
    return str(ipaddress.ip_network(host))
