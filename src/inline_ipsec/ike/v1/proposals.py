"""IKEv1 proposals: Phase 1 transforms (RFC 2409 Appendix A) as Junos configures them, and
Phase 2 ESP/AH transforms (RFC 2407 §4.4-§4.5) from the strongSwan notation the IKEv2 child
configuration already uses, so one `ChildConfig` serves both versions.

Phase 1: one proposal (protocol ISAKMP) whose transforms are complete alternatives, each with
encryption (AES-CBC 128/192/256 or 3DES-CBC), hash (SHA1, SHA2-256, SHA2-384), authentication
method (pre-shared keys, RSA signatures, ECDSA P-256/P-384 per RFC 4754), DH group (2, 5, 14,
15, 16, 19, 20, 21, 24) and lifetime in seconds. The responder picks the first offered
transform it allows and echoes it unchanged (RFC 2409 §5: the responder replies with exactly
one transform).

Phase 2: one proposal for the protocol (ESP or AH) carrying our SPI, with one transform per
cipher x integrity x PFS-group combination; attributes carry the encapsulation mode (tunnel,
or UDP-encapsulated tunnel with NAT-T, RFC 3947 §5), the authentication algorithm, the AES key
length, the PFS group, ESN (RFC 4304) and lifetimes in seconds and kilobytes (RFC 2407 §4.5).
AES-GCM uses ESP transform IDs 18-20 with a key length attribute (RFC 4106 §8.4) and, being a
combined mode, no authentication algorithm. The negotiated transform becomes an IKEv2-style
`Suite`, which already knows the data plane's cipher names and KEYMAT lengths.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Optional, Sequence

from ..constants import EncrId, EsnId, IntegId, TransformType
from ..constants import ProtocolId as V2Protocol
from ..errors import LocalIkeError, RemoteIkeError
from ..payloads import Proposal as Proposal2
from ..proposals import Suite, parse_proposal
from .constants import (KEY_IKE, AuthMethod, EncapsulationMode, EspTransform, IpsecAttr,
                        IpsecAuthAlg, LifeType, NotifyType, Phase1Attr, Phase1Encryption,
                        Phase1Hash, ProtocolId)
from .isakmp import Attribute, Proposal, Transform, decode_attributes

# --- Phase 1 ---------------------------------------------------------------------------------

#: Junos `encryption-algorithm` -> (RFC 2409 encryption ID, key bits or None, cipher name).
_P1_ENCRYPTION = {
    "aes-128-cbc": (Phase1Encryption.AES_CBC, 128), "aes-192-cbc": (Phase1Encryption.AES_CBC, 192),
    "aes-256-cbc": (Phase1Encryption.AES_CBC, 256), "3des-cbc": (Phase1Encryption.TRIPLE_DES_CBC,
                                                                 None),
}
#: Junos `authentication-algorithm` -> RFC 2409 hash ID and hashlib name.
_P1_HASH = {"sha1": (Phase1Hash.SHA1, "sha1"), "sha-256": (Phase1Hash.SHA2_256, "sha256"),
            "sha-384": (Phase1Hash.SHA2_384, "sha384"), "sha-512": (Phase1Hash.SHA2_512,
                                                                    "sha512"),
            "md5": (Phase1Hash.MD5, "md5")}
_HASH_NAME = {int(v[0]): v[1] for v in _P1_HASH.values()}
#: Junos `authentication-method` -> RFC 2409 / RFC 4754 method.
_P1_AUTH = {"pre-shared-keys": AuthMethod.PSK, "rsa-signatures": AuthMethod.RSA_SIG,
            "ecdsa-signatures-256": AuthMethod.ECDSA_SHA256_P256,
            "ecdsa-signatures-384": AuthMethod.ECDSA_SHA384_P384,
            "ecdsa-signatures-521": AuthMethod.ECDSA_SHA512_P521}
_AUTH_NAME = {int(v): k for k, v in _P1_AUTH.items()}
#: DH groups of Phase 1 and PFS (Junos `dh-group groupN`).
GROUPS = (2, 5, 14, 15, 16, 19, 20, 21, 24)
#: RFC 2409 Appendix A default lifetime when none is proposed.
DEFAULT_LIFETIME = 28800


@dataclass(frozen=True)
class Phase1Proposal:
    """One Junos `ike proposal` for IKEv1, e.g. Phase1Proposal("pre-shared-keys",
    "aes-256-cbc", "sha-256", 14, 28800)."""

    auth_method: str = "pre-shared-keys"
    encryption: str = "aes-128-cbc"
    hash: str = "sha-256"
    dh_group: int = 19
    lifetime_seconds: int = DEFAULT_LIFETIME

    def __post_init__(self) -> None:
        for value, table, what in ((self.auth_method, _P1_AUTH, "authentication-method"),
                                   (self.encryption, _P1_ENCRYPTION, "encryption-algorithm"),
                                   (self.hash, _P1_HASH, "authentication-algorithm")):
            if value not in table:
                raise LocalIkeError(f"IKEv1 {what} {value!r} is not supported; expected one "
                                    f"of {sorted(table)}")
        if self.dh_group not in GROUPS:
            raise LocalIkeError(f"IKEv1 dh-group group{self.dh_group} is not supported; "
                                f"expected one of {list(GROUPS)}")
        if not 180 <= self.lifetime_seconds <= 86400:
            raise LocalIkeError(f"lifetime-seconds {self.lifetime_seconds} outside 180..86400")

    @classmethod
    def parse(cls, text: str, auth_method: str = "pre-shared-keys",
              lifetime_seconds: int = DEFAULT_LIFETIME) -> "Phase1Proposal":
        """From strongSwan notation, e.g. "aes256-sha256-modp2048" or "3des-sha1-modp1024"."""
        enc = {"aes128": "aes-128-cbc", "aes192": "aes-192-cbc", "aes256": "aes-256-cbc",
               "3des": "3des-cbc"}
        hashes = {"sha1": "sha1", "sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512",
                  "md5": "md5"}
        groups = {"modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15,
                  "modp4096": 16, "ecp256": 19, "ecp384": 20, "ecp521": 21, "modp2048s256": 24}
        toks = text.lower().split("-")
        try:
            e, h, g = (next(t for t in toks if t in table) for table in (enc, hashes, groups))
        except StopIteration:
            raise LocalIkeError(f"IKEv1 proposal {text!r} needs an encryption, a hash and a "
                                "DH group") from None
        return cls(auth_method, enc[e], hashes[h], groups[g], lifetime_seconds)


@dataclass(frozen=True)
class Phase1Suite:
    """The algorithms of a negotiated ISAKMP SA."""

    encryption: int
    key_bits: int
    hash_id: int
    auth_method: int
    group: int
    lifetime_seconds: int = DEFAULT_LIFETIME

    @property
    def hash_name(self) -> str:
        return _HASH_NAME[self.hash_id]

    @property
    def cipher(self) -> str:
        """`inline_ipsec.sa` spelling of the ISAKMP SA's cipher."""
        return "3des-cbc" if self.encryption == Phase1Encryption.TRIPLE_DES_CBC \
            else f"aes-cbc-{self.key_bits}"

    @property
    def key_len(self) -> int:
        return self.key_bits // 8

    @property
    def block(self) -> int:
        return 8 if self.encryption == Phase1Encryption.TRIPLE_DES_CBC else 16

    @property
    def auth_name(self) -> str:
        return _AUTH_NAME.get(self.auth_method, str(self.auth_method))

    @property
    def uses_signatures(self) -> bool:
        return self.auth_method != AuthMethod.PSK

    @property
    def name(self) -> str:
        """e.g. "aes256-sha256-modp2048", strongSwan's notation."""
        enc = "3des" if self.encryption == Phase1Encryption.TRIPLE_DES_CBC \
            else f"aes{self.key_bits}"
        grp = {2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096",
               19: "ecp256", 20: "ecp384", 21: "ecp521", 24: "modp2048s256"}
        return f"{enc}-{self.hash_name}-{grp.get(self.group, str(self.group))}"

    @classmethod
    def of(cls, p: Phase1Proposal) -> "Phase1Suite":
        enc, bits = _P1_ENCRYPTION[p.encryption]
        return cls(enc, bits or 192, _P1_HASH[p.hash][0], _P1_AUTH[p.auth_method],
                   p.dh_group, p.lifetime_seconds)

    def transform(self, num: int) -> Transform:
        """This suite as a Phase 1 transform (RFC 2409 Appendix A attribute classes)."""
        attrs = [Attribute(Phase1Attr.ENCRYPTION, self.encryption)]
        if self.encryption == Phase1Encryption.AES_CBC:
            attrs.append(Attribute(Phase1Attr.KEY_LENGTH, self.key_bits))
        attrs += [Attribute(Phase1Attr.HASH, self.hash_id),
                  Attribute(Phase1Attr.GROUP_DESCRIPTION, self.group),
                  Attribute(Phase1Attr.AUTH_METHOD, self.auth_method),
                  Attribute(Phase1Attr.LIFE_TYPE, LifeType.SECONDS),
                  Attribute(Phase1Attr.LIFE_DURATION, self.lifetime_seconds, tlv=True)]
        return Transform(num, KEY_IKE, tuple(attrs))

    @classmethod
    def from_transform(cls, t: Transform) -> "Phase1Suite":
        """Read a Phase 1 transform; unknown or unsupported values are ATTRIBUTES-NOT-
        SUPPORTED (RFC 2408 §3.14.1), a missing class BAD-PROPOSAL-SYNTAX."""
        return _phase1_suite(t)

    @classmethod
    def _read(cls, t: Transform) -> "Phase1Suite":
        if t.transform_id != KEY_IKE:
            raise RemoteIkeError(f"Phase 1 transform ID {t.transform_id}",
                                 NotifyType.INVALID_TRANSFORM_ID)
        enc, hsh, auth, grp = (t.attr(a) for a in (
            Phase1Attr.ENCRYPTION, Phase1Attr.HASH, Phase1Attr.AUTH_METHOD,
            Phase1Attr.GROUP_DESCRIPTION))
        if enc is None or hsh is None or auth is None or grp is None:
            raise RemoteIkeError("Phase 1 transform without encryption, hash, authentication "
                                 "method or group", NotifyType.BAD_PROPOSAL_SYNTAX)
        if t.attr(Phase1Attr.PRF) is not None or t.attr(Phase1Attr.GROUP_TYPE) not in (None, 1):
            raise RemoteIkeError("PRF or private group attributes",
                                 NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        if enc == Phase1Encryption.AES_CBC:
            bits = t.attr(Phase1Attr.KEY_LENGTH)
            if bits not in (128, 192, 256):
                raise RemoteIkeError(f"AES key length {bits}",
                                     NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        elif enc == Phase1Encryption.TRIPLE_DES_CBC:
            bits = 192
        else:
            raise RemoteIkeError(f"Phase 1 encryption {enc}", NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        if hsh not in _HASH_NAME or grp not in GROUPS or auth not in _AUTH_NAME:
            raise RemoteIkeError(f"Phase 1 hash {hsh} / group {grp} / method {auth}",
                                 NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        return cls(enc, bits, hsh, auth, grp, _lifetimes(t, Phase1Attr.LIFE_TYPE,
                                                         Phase1Attr.LIFE_DURATION)[0]
                   or DEFAULT_LIFETIME)

    def same_algorithms(self, other: "Phase1Suite") -> bool:
        return (self.encryption, self.key_bits, self.hash_id, self.auth_method, self.group) \
            == (other.encryption, other.key_bits, other.hash_id, other.auth_method, other.group)


@functools.lru_cache(maxsize=256)
def _phase1_suite(t: Transform) -> Phase1Suite:
    """Phase 1 transforms repeat (the same proposals in every Main Mode): read each once."""
    return Phase1Suite._read(t)


def _lifetimes(t: Transform, type_attr: int, dur_attr: int) -> tuple[Optional[int], Optional[int]]:
    """(seconds, kilobytes) of a transform's life type / life duration pairs (RFC 2407 §4.5:
    each Life Duration follows the Life Type it belongs to)."""
    secs = kbytes = None
    current = None
    for a in t.attributes:
        if a.type == type_attr:
            current = a.value
        elif a.type == dur_attr:
            if current == LifeType.SECONDS:
                secs = a.value
            elif current == LifeType.KILOBYTES:
                kbytes = a.value
            else:
                raise RemoteIkeError("life duration without a life type",
                                     NotifyType.BAD_PROPOSAL_SYNTAX)
    return secs, kbytes


def phase1_proposal(suites: Sequence[Phase1Suite]) -> Proposal:
    """Our Phase 1 proposal: protocol ISAKMP, no SPI, one transform per suite."""
    return Proposal(1, ProtocolId.ISAKMP, b"", [s.transform(i + 1) for i, s in enumerate(suites)])


def select_phase1(offered: Sequence[Proposal], ours: Sequence[Phase1Suite]
                  ) -> tuple[Proposal, Phase1Suite]:
    """Responder: the first offered transform that one of ours allows, echoed unchanged in a
    proposal of its own; its lifetime is the shorter of both (RFC 2409 §4)."""
    for p in offered:
        if p.protocol != ProtocolId.ISAKMP:
            continue
        for t in p.transforms:
            try:
                theirs = Phase1Suite.from_transform(t)
            except RemoteIkeError:
                continue
            for mine in ours:
                if theirs.same_algorithms(mine):
                    life = min(theirs.lifetime_seconds, mine.lifetime_seconds)
                    suite = Phase1Suite(theirs.encryption, theirs.key_bits, theirs.hash_id,
                                        theirs.auth_method, theirs.group, life)
                    return Proposal(p.num, p.protocol, p.spi, [t]), suite
    raise RemoteIkeError("no acceptable Phase 1 proposal", NotifyType.NO_PROPOSAL_CHOSEN)


def check_phase1_answer(answer: Sequence[Proposal], ours: Sequence[Phase1Suite]
                        ) -> Phase1Suite:
    """Initiator: the responder must return one of our transforms, alone (RFC 2409 §5)."""
    if len(answer) != 1 or len(answer[0].transforms) != 1:
        raise RemoteIkeError("responder returned more than one Phase 1 transform",
                             NotifyType.BAD_PROPOSAL_SYNTAX)
    got = Phase1Suite.from_transform(answer[0].transforms[0])
    for mine in ours:
        if got.same_algorithms(mine):
            return Phase1Suite(got.encryption, got.key_bits, got.hash_id, got.auth_method,
                               got.group, min(got.lifetime_seconds, mine.lifetime_seconds))
    raise RemoteIkeError("responder chose a Phase 1 transform we did not offer",
                         NotifyType.NO_PROPOSAL_CHOSEN)


# --- Phase 2 ---------------------------------------------------------------------------------

#: IKEv2 ENCR IDs (as `parse_proposal` produces them) -> IPsec DOI ESP transform IDs.
_ESP_ID = {EncrId.ENCR_3DES: EspTransform.ESP_3DES, EncrId.ENCR_NULL: EspTransform.ESP_NULL,
           EncrId.ENCR_AES_CBC: EspTransform.ESP_AES_CBC,
           EncrId.ENCR_AES_CTR: EspTransform.ESP_AES_CTR,
           EncrId.ENCR_AES_GCM_16: EspTransform.ESP_AES_GCM_16,
           EncrId.ENCR_NULL_AUTH_AES_GMAC: EspTransform.ESP_NULL_AUTH_AES_GMAC}
_ENCR_OF = {int(v): k for k, v in _ESP_ID.items()}
#: IKEv2 INTEG IDs -> IPsec DOI authentication algorithm and AH transform ID.
_AUTH_ALG = {IntegId.AUTH_HMAC_MD5_96: (IpsecAuthAlg.HMAC_MD5, 2),
             IntegId.AUTH_HMAC_SHA1_96: (IpsecAuthAlg.HMAC_SHA1, 3),
             IntegId.AUTH_HMAC_SHA2_256_128: (IpsecAuthAlg.HMAC_SHA2_256, 5),
             IntegId.AUTH_HMAC_SHA2_384_192: (IpsecAuthAlg.HMAC_SHA2_384, 6),
             IntegId.AUTH_HMAC_SHA2_512_256: (IpsecAuthAlg.HMAC_SHA2_512, 7)}
_INTEG_OF = {int(v[0]): k for k, v in _AUTH_ALG.items()}
_AH_ID_OF = {v[1]: k for k, v in _AUTH_ALG.items()}
_AES = (EncrId.ENCR_AES_CBC, EncrId.ENCR_AES_CTR, EncrId.ENCR_AES_GCM_16,
        EncrId.ENCR_NULL_AUTH_AES_GMAC)


@dataclass(frozen=True)
class Phase2Suite:
    """A negotiated Phase 2 transform: the algorithms (as an IKEv2 `Suite`, for cipher names
    and KEYMAT lengths), the protocol, the encapsulation and the lifetimes."""

    suite: Suite
    protocol: int
    encapsulation: int = EncapsulationMode.TUNNEL
    lifetime_seconds: Optional[int] = None
    lifetime_kilobytes: Optional[int] = None

    @property
    def pfs_group(self) -> int:
        return int(self.suite.dh)

    @property
    def udp_encap(self) -> bool:
        return self.encapsulation in (EncapsulationMode.UDP_TUNNEL,
                                      EncapsulationMode.UDP_TRANSPORT,
                                      EncapsulationMode.UDP_TUNNEL_DRAFT,
                                      EncapsulationMode.UDP_TRANSPORT_DRAFT)

    @property
    def mode(self) -> str:
        return "transport" if self.encapsulation in (
            EncapsulationMode.TRANSPORT, EncapsulationMode.UDP_TRANSPORT,
            EncapsulationMode.UDP_TRANSPORT_DRAFT) else "tunnel"

    @property
    def keymat_len(self) -> int:
        """KEYMAT bytes of one direction: the cipher key (with the RFC 4106 §8.1 salt for
        GCM), then the integrity key."""
        return self.suite.encr_key_len + self.suite.integ_key_len


#: PFS group keywords (strongSwan's, and Junos' "groupN"): IKEv1 knows more MODP groups than
#: the IKEv2 proposal parser, so they are taken out of the text before it sees it.
_GROUP_TOKENS = {"modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15, "modp4096": 16,
                 "ecp256": 19, "ecp384": 20, "ecp521": 21, "modp2048s256": 24,
                 **{f"group{g}": g for g in GROUPS}}


def _parse_child(text: str, protocol: int) -> tuple[Proposal2, list[int]]:
    """(the IKEv2-style proposal without DH, the PFS groups) of a child proposal text."""
    toks = text.lower().split("-")
    groups = [_GROUP_TOKENS[t] for t in toks if t in _GROUP_TOKENS]
    rest = "-".join(t for t in toks if t not in _GROUP_TOKENS)
    v2proto = V2Protocol.AH if protocol == ProtocolId.AH else V2Protocol.ESP
    return parse_proposal(rest, v2proto), groups


def _v1_transform(num: int, protocol: int, encr: Optional[int], key_bits: Optional[int],
                  integ: Optional[int], group: int, esn: bool, encap: int,
                  seconds: Optional[int], kilobytes: Optional[int]) -> Transform:
    attrs: list[Attribute] = []
    if seconds:
        attrs += [Attribute(IpsecAttr.LIFE_TYPE, LifeType.SECONDS),
                  Attribute(IpsecAttr.LIFE_DURATION, seconds, tlv=True)]
    if kilobytes:
        attrs += [Attribute(IpsecAttr.LIFE_TYPE, LifeType.KILOBYTES),
                  Attribute(IpsecAttr.LIFE_DURATION, kilobytes, tlv=True)]
    if group:
        attrs.append(Attribute(IpsecAttr.GROUP_DESCRIPTION, group))
    attrs.append(Attribute(IpsecAttr.ENCAPSULATION_MODE, encap))
    if integ is not None:
        attrs.append(Attribute(IpsecAttr.AUTH_ALGORITHM, _AUTH_ALG[IntegId(integ)][0]))
    if key_bits:
        attrs.append(Attribute(IpsecAttr.KEY_LENGTH, key_bits))
    if esn:
        attrs.append(Attribute(IpsecAttr.EXTENDED_SEQUENCE_NUMBER, 1))
    if protocol == ProtocolId.AH:
        assert integ is not None
        tid = _AUTH_ALG[IntegId(integ)][1]
    else:
        assert encr is not None
        tid = _ESP_ID[EncrId(encr)]
    return Transform(num, tid, tuple(attrs))


def phase2_proposal(texts: Sequence[str], protocol: int, spi: int, encap: int,
                    seconds: Optional[int], kilobytes: Optional[int],
                    pfs_only: Optional[int] = None) -> Proposal:
    """Our Phase 2 proposal from strongSwan-notation proposals ("aes128gcm16",
    "aes256-sha256-modp2048"): one transform per combination, our inbound SPI.
    `pfs_only` keeps only transforms with that PFS group (the one our KE payload carries)."""
    return Proposal(1, protocol, spi.to_bytes(4, "big"), list(_phase2_transforms(
        tuple(texts), protocol, encap, seconds, kilobytes, pfs_only)))


@functools.lru_cache(maxsize=256)
def _phase2_transforms(texts: tuple[str, ...], protocol: int, encap: int,
                       seconds: Optional[int], kilobytes: Optional[int],
                       pfs_only: Optional[int]) -> tuple[Transform, ...]:
    """The transforms of `phase2_proposal` (immutable, so one parse serves every Quick
    Mode of a configuration)."""
    transforms: list[Transform] = []
    for text in texts:
        p, groups = _parse_child(text, protocol)
        encrs = [(t.id, t.key_length) for t in p.of_type(TransformType.ENCR)] or [(None, None)]
        integs = [t.id for t in p.of_type(TransformType.INTEG)] or [None]
        groups = groups or [0]
        esns = [t.id == EsnId.ESN for t in p.of_type(TransformType.ESN)] or [False]
        for (encr, bits), integ, group, esn in itertools.product(encrs, integs, groups, esns):
            if pfs_only is not None and group != pfs_only:
                continue
            if protocol == ProtocolId.ESP and encr not in _ESP_ID:
                raise LocalIkeError(f"ESP cipher of {text!r} has no IKEv1 transform ID")
            if integ is not None and integ not in _AUTH_ALG:
                raise LocalIkeError(f"integrity of {text!r} has no IKEv1 value")
            transforms.append(_v1_transform(len(transforms) + 1, protocol, encr,
                                            bits if encr in _AES else None, integ, group, esn,
                                            encap, seconds, kilobytes))
    if not transforms:
        raise LocalIkeError(f"no Phase 2 transform in {list(texts)}")
    return tuple(transforms)


@functools.lru_cache(maxsize=1024)
def read_phase2(protocol: int, t: Transform) -> Phase2Suite:
    """A Phase 2 transform as a `Phase2Suite`; unsupported values are
    ATTRIBUTES-NOT-SUPPORTED or INVALID-TRANSFORM-ID (RFC 2408 §3.14.1)."""
    auth = t.attr(IpsecAttr.AUTH_ALGORITHM)
    integ = IntegId.NONE
    if auth is not None:
        if auth not in _INTEG_OF:
            raise RemoteIkeError(f"authentication algorithm {auth}",
                                 NotifyType.ATTRIBUTES_NOT_SUPPORTED)
        integ = _INTEG_OF[auth]
    bits = t.attr(IpsecAttr.KEY_LENGTH)
    if protocol == ProtocolId.AH:
        if t.transform_id not in _AH_ID_OF:
            raise RemoteIkeError(f"AH transform {t.transform_id}",
                                 NotifyType.INVALID_TRANSFORM_ID)
        integ = _AH_ID_OF[t.transform_id]
        encr, key_bits = 0, 0
    elif protocol == ProtocolId.ESP:
        if t.transform_id not in _ENCR_OF:
            raise RemoteIkeError(f"ESP transform {t.transform_id}",
                                 NotifyType.INVALID_TRANSFORM_ID)
        encr = _ENCR_OF[t.transform_id]
        if encr in _AES:
            if bits not in (128, 192, 256):
                raise RemoteIkeError(f"AES key length {bits}",
                                     NotifyType.ATTRIBUTES_NOT_SUPPORTED)
            key_bits = bits
        else:
            key_bits = 0
    else:
        raise RemoteIkeError(f"Phase 2 protocol {protocol}", NotifyType.INVALID_PROTOCOL_ID)
    esn = t.attr(IpsecAttr.EXTENDED_SEQUENCE_NUMBER) == 1
    group = t.attr(IpsecAttr.GROUP_DESCRIPTION) or 0
    if group and group not in GROUPS:
        raise RemoteIkeError(f"PFS group {group}", NotifyType.ATTRIBUTES_NOT_SUPPORTED)
    encap = t.attr(IpsecAttr.ENCAPSULATION_MODE) or EncapsulationMode.TUNNEL
    if encap not in set(EncapsulationMode):
        raise RemoteIkeError(f"encapsulation mode {encap}", NotifyType.ATTRIBUTES_NOT_SUPPORTED)
    secs, kbytes = _lifetimes(t, IpsecAttr.LIFE_TYPE, IpsecAttr.LIFE_DURATION)
    suite = Suite(encr, key_bits, integ, 0, group, esn)
    _ = suite.encr_key_len, suite.integ_key_len    # unsupported combinations raise here
    return Phase2Suite(suite, protocol, int(encap), secs, kbytes)


def same_phase2(a: Phase2Suite, b: Phase2Suite) -> bool:
    """Same algorithms, PFS group, ESN and mode (tunnel/transport; the UDP encapsulation
    follows NAT detection and is compared separately)."""
    return (a.suite, a.protocol, a.mode) == (b.suite, b.protocol, b.mode)


def select_phase2(offered: Sequence[Proposal], ours: Proposal
                  ) -> tuple[Proposal, Transform, Phase2Suite]:
    """Responder: the first offered transform (in the initiator's order) that matches one of
    ours (RFC 2409 §5.5); returns the offered proposal, the transform and its suite."""
    mine = [read_phase2(ours.protocol, t) for t in ours.transforms]
    for p in offered:
        if p.protocol != ours.protocol:
            continue
        if len(p.spi) != 4:
            raise RemoteIkeError("Phase 2 proposal without a 4-byte SPI",
                                 NotifyType.INVALID_SPI)
        for t in p.transforms:
            try:
                theirs = read_phase2(p.protocol, t)
            except RemoteIkeError:
                continue
            if any(same_phase2(theirs, m) for m in mine):
                return p, t, theirs
    raise RemoteIkeError("no acceptable Phase 2 proposal", NotifyType.NO_PROPOSAL_CHOSEN)


def check_phase2_answer(answer: Sequence[Proposal], ours: Proposal
                        ) -> tuple[int, Phase2Suite]:
    """Initiator: one proposal of our protocol with one of our transforms and the responder's
    SPI; returns (responder SPI, suite)."""
    if len(answer) != 1 or len(answer[0].transforms) != 1:
        raise RemoteIkeError("responder returned more than one Phase 2 transform",
                             NotifyType.BAD_PROPOSAL_SYNTAX)
    p = answer[0]
    if p.protocol != ours.protocol or len(p.spi) != 4:
        raise RemoteIkeError("responder's Phase 2 proposal has another protocol or no SPI",
                             NotifyType.NO_PROPOSAL_CHOSEN)
    got = read_phase2(p.protocol, p.transforms[0])
    if not any(same_phase2(got, read_phase2(ours.protocol, t)) for t in ours.transforms):
        raise RemoteIkeError("responder chose a Phase 2 transform we did not offer",
                             NotifyType.NO_PROPOSAL_CHOSEN)
    return int.from_bytes(p.spi, "big"), got


def pfs_group_of(texts: Sequence[str], protocol: int) -> int:
    """The first PFS group of the configured proposals (0: no PFS)."""
    for text in texts:
        groups = _parse_child(text, protocol)[1]
        if groups:
            return groups[0]
    return 0


def parse_lifetime_attributes(data: bytes) -> tuple[Optional[int], Optional[int]]:
    """(seconds, kilobytes) of a RESPONDER-LIFETIME attribute list (RFC 2407 §4.6.3.1)."""
    return _lifetimes(Transform(0, 0, decode_attributes(data)), IpsecAttr.LIFE_TYPE,
                      IpsecAttr.LIFE_DURATION)


def lifetime_attributes(seconds: Optional[int], kilobytes: Optional[int]) -> bytes:
    """Life type / duration pairs as RESPONDER-LIFETIME notification data (RFC 2407
    §4.6.3.1)."""
    out = b""
    if seconds:
        out += Attribute(IpsecAttr.LIFE_TYPE, LifeType.SECONDS).encode() + \
            Attribute(IpsecAttr.LIFE_DURATION, seconds, tlv=True).encode()
    if kilobytes:
        out += Attribute(IpsecAttr.LIFE_TYPE, LifeType.KILOBYTES).encode() + \
            Attribute(IpsecAttr.LIFE_DURATION, kilobytes, tlv=True).encode()
    return out
