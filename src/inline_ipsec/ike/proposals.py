"""Proposal construction, matching and selection (RFC 7296 §2.7, §3.3.6).

Proposals can be written in strongSwan's compact notation, e.g. ``"aes128gcm16-prfsha256-ecp256"``
for IKE or ``"aes256-sha256-modp2048-esn"`` for ESP, so that the same string configures both us
and the interop peer.

Child SAs (ESP) take every cipher the engines carry (`inline_ipsec.sa.CIPHER_KEY_MATERIAL`):
AES-GCM-16 (``aes128gcm16``/``aes192gcm16``/``aes256gcm16``), AES-GMAC (``aes128gmac`` ...),
AES-CBC (``aes128``/``aes192``/``aes256``), AES-CTR (``aes128ctr`` ...), ``3des``,
``chacha20poly1305`` and ``null``, with HMAC ``md5``, ``sha1``, ``sha256``, ``sha384``,
``sha512`` for the non-combined ones. The IKE SA itself is limited to what the SK payload
implements (AES-CBC or AES-GCM, SHA1/SHA2).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from .constants import (DhGroup, EncrId, EsnId, IntegId, NotifyType, PrfId, ProtocolId,
                        TransformType)
from .errors import LocalIkeError, RemoteIkeError
from .payloads import Proposal, Transform

#: strongSwan encryption keywords -> (transform ID, key-length attribute). AES needs the
#: key-length attribute (RFC 7296 §3.3.5); 3DES, NULL and ChaCha20-Poly1305 (RFC 7634 §2)
#: must not carry one. The first keyword of a transform is the one `Suite.name` prints.
_ENCR = {
    "aes128gcm16": (EncrId.ENCR_AES_GCM_16, 128), "aes192gcm16": (EncrId.ENCR_AES_GCM_16, 192),
    "aes256gcm16": (EncrId.ENCR_AES_GCM_16, 256),
    "aes128gcm": (EncrId.ENCR_AES_GCM_16, 128), "aes192gcm": (EncrId.ENCR_AES_GCM_16, 192),
    "aes256gcm": (EncrId.ENCR_AES_GCM_16, 256),
    # RFC 4543: AES-GMAC, integrity only (ENCR_NULL_AUTH_AES_GMAC), ESP only
    "aes128gmac": (EncrId.ENCR_NULL_AUTH_AES_GMAC, 128),
    "aes192gmac": (EncrId.ENCR_NULL_AUTH_AES_GMAC, 192),
    "aes256gmac": (EncrId.ENCR_NULL_AUTH_AES_GMAC, 256),
    "aes128": (EncrId.ENCR_AES_CBC, 128), "aes192": (EncrId.ENCR_AES_CBC, 192),
    "aes256": (EncrId.ENCR_AES_CBC, 256),
    # RFC 3686: AES-CTR, ESP only here
    "aes128ctr": (EncrId.ENCR_AES_CTR, 128), "aes192ctr": (EncrId.ENCR_AES_CTR, 192),
    "aes256ctr": (EncrId.ENCR_AES_CTR, 256),
    "3des": (EncrId.ENCR_3DES, None),
    # RFC 7634 §2: no key-length attribute (the key is always 256 bits)
    "chacha20poly1305": (EncrId.ENCR_CHACHA20_POLY1305, None),
    # RFC 2410: ESP with integrity only
    "null": (EncrId.ENCR_NULL, None),
}
_INTEG = {
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128, "sha384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256, "sha1": IntegId.AUTH_HMAC_SHA1_96,
    "md5": IntegId.AUTH_HMAC_MD5_96,
}


@dataclass(frozen=True)
class _Cipher:
    """What a child SA needs to know of an encryption transform."""

    #: `inline_ipsec.sa.CIPHER_KEY_MATERIAL` name; "{bits}" is the key-length attribute.
    name: str
    #: key bytes for fixed-key ciphers; None: the key-length attribute (AES: 128/192/256).
    key_bytes: Optional[int]
    #: bytes of salt/nonce after the key in KEYMAT (RFC 4106 §8.1, RFC 4543 §3.2,
    #: RFC 3686 §5.1, RFC 7634 §2).
    salt: int
    #: combined mode (RFC 4303 §3.2.3): no integrity transform with it.
    combined: bool


_CIPHERS: dict[int, _Cipher] = {
    EncrId.ENCR_AES_GCM_16: _Cipher("aes-gcm-{bits}", None, 4, True),
    EncrId.ENCR_NULL_AUTH_AES_GMAC: _Cipher("aes-gmac-{bits}", None, 4, True),
    EncrId.ENCR_AES_CBC: _Cipher("aes-cbc-{bits}", None, 0, False),
    EncrId.ENCR_AES_CTR: _Cipher("aes-ctr-{bits}", None, 4, False),
    EncrId.ENCR_3DES: _Cipher("3des-cbc", 24, 0, False),
    EncrId.ENCR_CHACHA20_POLY1305: _Cipher("chacha20-poly1305", 32, 4, True),
    EncrId.ENCR_NULL: _Cipher("null", 0, 0, False),
}
#: integrity transforms: IANA ID -> (`inline_ipsec.sa.INTEGRITY_ALGORITHMS` name, key bytes)
#: (RFC 2403, RFC 2404, RFC 4868).
_INTEGRITY: dict[int, tuple[str, int]] = {
    IntegId.AUTH_HMAC_MD5_96: ("hmac-md5-96", 16),
    IntegId.AUTH_HMAC_SHA1_96: ("hmac-sha1-96", 20),
    IntegId.AUTH_HMAC_SHA2_256_128: ("hmac-sha256-128", 32),
    IntegId.AUTH_HMAC_SHA2_384_192: ("hmac-sha384-192", 48),
    IntegId.AUTH_HMAC_SHA2_512_256: ("hmac-sha512-256", 64),
}
#: what the SK payload (`protection.SkCipher`) implements: IKE proposals are limited to these.
_IKE_ENCR = frozenset({EncrId.ENCR_AES_CBC, EncrId.ENCR_AES_GCM_16})
_IKE_INTEG = frozenset({IntegId.AUTH_HMAC_SHA1_96, IntegId.AUTH_HMAC_SHA2_256_128,
                        IntegId.AUTH_HMAC_SHA2_384_192, IntegId.AUTH_HMAC_SHA2_512_256})
_PRF = {
    "prfsha256": PrfId.PRF_HMAC_SHA2_256, "prfsha384": PrfId.PRF_HMAC_SHA2_384,
    "prfsha512": PrfId.PRF_HMAC_SHA2_512, "prfsha1": PrfId.PRF_HMAC_SHA1,
}
_INTEG_TO_PRF = {
    IntegId.AUTH_HMAC_SHA2_256_128: PrfId.PRF_HMAC_SHA2_256,
    IntegId.AUTH_HMAC_SHA2_384_192: PrfId.PRF_HMAC_SHA2_384,
    IntegId.AUTH_HMAC_SHA2_512_256: PrfId.PRF_HMAC_SHA2_512,
    IntegId.AUTH_HMAC_SHA1_96: PrfId.PRF_HMAC_SHA1,
}
_DH = {
    "modp2048": DhGroup.MODP_2048, "ecp256": DhGroup.ECP_256, "ecp384": DhGroup.ECP_384,
    "ecp521": DhGroup.ECP_521, "x25519": DhGroup.CURVE25519, "curve25519": DhGroup.CURVE25519,
}


def parse_proposal(text: str, protocol: int = ProtocolId.IKE, num: int = 1) -> Proposal:
    """Build a proposal from strongSwan notation (``aes128gcm16-prfsha256-ecp256``).

    For IKE without an explicit ``prf*`` token, each integrity algorithm adds the matching PRF
    (strongSwan does the same). For ESP, ``esn``/``noesn`` add ESN transforms (default noesn).
    A fresh `Proposal` each time (callers set its SPI); the parse itself is cached, as the
    configured texts repeat in every negotiation.
    """
    return Proposal(num, protocol, b"", list(_parse_transforms(text, int(protocol))))


@functools.lru_cache(maxsize=1024)
def _parse_transforms(text: str, protocol: int) -> tuple[Transform, ...]:
    transforms: list[Transform] = []
    integ: list[IntegId] = []
    prfs: list[PrfId] = []
    esn: list[EsnId] = []
    for tok in text.lower().split("-"):
        if tok in _ENCR:
            eid, bits = _ENCR[tok]
            transforms.append(Transform(TransformType.ENCR, eid, bits))
        elif tok in _INTEG:
            integ.append(_INTEG[tok])
        elif tok in _PRF:
            prfs.append(_PRF[tok])
        elif tok in _DH:
            transforms.append(Transform(TransformType.DH, _DH[tok]))
        elif tok in ("esn", "noesn"):
            esn.append(EsnId.ESN if tok == "esn" else EsnId.NO_ESN)
        else:
            raise LocalIkeError(f"unknown algorithm {tok!r} in proposal {text!r}")
    encrs = [t.id for t in transforms if t.type == TransformType.ENCR]
    if protocol == ProtocolId.IKE:
        bad = [tok for tok, ids in (("encryption", [e for e in encrs if e not in _IKE_ENCR]),
                                    ("integrity", [i for i in integ if i not in _IKE_INTEG]))
               if ids]
        if bad:
            raise LocalIkeError(f"IKE proposal {text!r}: {' and '.join(bad)} algorithm not "
                                "supported for the IKE SA (AES-CBC or AES-GCM with SHA1/SHA2)")
    elif protocol == ProtocolId.ESP:
        combined = [e for e in encrs if _CIPHERS[e].combined]
        if combined and (integ or len(combined) != len(encrs)):
            # RFC 4303 §3.2.3 / RFC 7296 §3.3: a combined-mode cipher has no integrity
            # transform, so it cannot share a proposal with ciphers that need one.
            raise LocalIkeError(f"ESP proposal {text!r}: combined-mode ciphers (AES-GCM, "
                                "AES-GMAC, ChaCha20-Poly1305) go in a proposal of their own, "
                                "without an integrity algorithm")
        if EncrId.ENCR_NULL in encrs and not integ:
            raise LocalIkeError(f"ESP proposal {text!r}: NULL encryption needs an integrity "
                                "algorithm (RFC 4303 §3.2)")
    transforms += [Transform(TransformType.INTEG, i) for i in integ]
    if protocol == ProtocolId.IKE:
        if not prfs:
            prfs = [_INTEG_TO_PRF[i] for i in integ]
        if not prfs:
            raise LocalIkeError(f"IKE proposal {text!r} needs a PRF (e.g. prfsha256)")
        transforms += [Transform(TransformType.PRF, p) for p in prfs]
    else:
        transforms += [Transform(TransformType.ESN, e) for e in (esn or [EsnId.NO_ESN])]
    if protocol != ProtocolId.AH and not any(t.type == TransformType.ENCR for t in transforms):
        raise LocalIkeError(f"proposal {text!r} has no encryption algorithm")
    transforms.sort(key=lambda t: t.type)
    return tuple(transforms)


#: `inline_ipsec.sa` cipher names -> strongSwan keywords, for ESP children ...
_CIPHER_TOKEN = {"aes-gcm-128": "aes128gcm16", "aes-gcm-192": "aes192gcm16",
                 "aes-gcm-256": "aes256gcm16",
                 "aes-gmac-128": "aes128gmac", "aes-gmac-192": "aes192gmac",
                 "aes-gmac-256": "aes256gmac",
                 "aes-cbc-128": "aes128", "aes-cbc-192": "aes192", "aes-cbc-256": "aes256",
                 "aes-ctr-128": "aes128ctr", "aes-ctr-192": "aes192ctr",
                 "aes-ctr-256": "aes256ctr",
                 "3des-cbc": "3des", "chacha20-poly1305": "chacha20poly1305", "null": "null"}
#: ... and for the IKE SA (what `protection.SkCipher` implements and Junos offers for IKE).
_IKE_CIPHER_TOKEN = {k: _CIPHER_TOKEN[k] for k in ("aes-gcm-128", "aes-gcm-256",
                                                   "aes-cbc-128", "aes-cbc-192",
                                                   "aes-cbc-256")}
_INTEGRITY_TOKEN = {"hmac-md5-96": "md5", "hmac-sha1-96": "sha1", "hmac-sha256-128": "sha256",
                    "hmac-sha384-192": "sha384", "hmac-sha512-256": "sha512"}
_HASH_TOKEN = {"sha1": "sha1", "sha-256": "sha256", "sha256": "sha256", "sha-384": "sha384",
               "sha384": "sha384", "sha-512": "sha512", "sha512": "sha512"}


def _token(table: dict, name: str, what: str) -> str:
    try:
        return table[name]
    except KeyError:
        raise LocalIkeError(f"{what} {name!r} is not supported by the IKE implementation; "
                            f"expected one of {sorted(table)}") from None


def _group_token(group: int) -> str:
    for tok, gid in _DH.items():
        if gid == group:
            return tok
    raise LocalIkeError(f"DH group {group} is not supported; expected one of "
                        f"{sorted(set(int(g) for g in _DH.values()))}")


def ike_proposal(cipher: str, hash_name: str, dh_group: int) -> str:
    """An IKE proposal from data-plane names (`inline_ipsec.sa` spelling for the cipher,
    Junos `authentication-algorithm` for the hash, an IANA DH group number), e.g.
    ("aes-gcm-256", "sha-384", 20) -> "aes256gcm16-prfsha384-ecp384". For AES-CBC the hash is
    both PRF and integrity (HMAC-SHA2 with RFC 4868 truncation)."""
    enc = _token(_IKE_CIPHER_TOKEN, cipher, "IKE cipher")
    h = _token(_HASH_TOKEN, hash_name, "IKE hash")
    mac = f"prf{h}" if "gcm" in enc else h
    return f"{enc}-{mac}-{_group_token(dh_group)}"


def esp_proposal(cipher: str, integrity: Optional[str] = None,
                 pfs_group: Optional[int] = None, esn: bool = False) -> str:
    """An ESP proposal from `SaSpec` names, e.g. ("aes-cbc-256", "hmac-sha256-128", 14) ->
    "aes256-sha256-modp2048-noesn"; a PFS group adds a DH transform (RFC 7296 §1.3.1)."""
    parts = [_token(_CIPHER_TOKEN, cipher, "ESP cipher")]
    if integrity is not None:
        parts.append(_token(_INTEGRITY_TOKEN, integrity, "ESP integrity"))
    if pfs_group:
        parts.append(_group_token(pfs_group))
    parts.append("esn" if esn else "noesn")
    return "-".join(parts)


def ah_proposal(integrity: str, pfs_group: Optional[int] = None, esn: bool = False) -> str:
    """An AH proposal (RFC 4302; integrity only), e.g. ("hmac-sha256-128", 19) ->
    "sha256-ecp256-noesn"; use with `ChildConfig(protocol="ah")`."""
    parts = [_token(_INTEGRITY_TOKEN, integrity, "AH integrity")]
    if pfs_group:
        parts.append(_group_token(pfs_group))
    parts.append("esn" if esn else "noesn")
    return "-".join(parts)


def _key(t: Transform) -> tuple[int, int, Optional[int]]:
    return (t.type, t.id, t.key_length)


def _types(p: Proposal) -> frozenset[int]:
    return _types_of(int(p.protocol), tuple(p.transforms))


@functools.lru_cache(maxsize=1024)
def _types_of(protocol: int, transforms: tuple[Transform, ...]) -> frozenset[int]:
    p = Proposal(0, protocol, b"", list(transforms))
    types = {t.type for t in p.transforms}
    if all(t.id == IntegId.NONE for t in p.of_type(TransformType.INTEG)):
        types.discard(TransformType.INTEG)    # INTEG NONE with a combined-mode cipher (§3.3)
    if p.protocol != ProtocolId.IKE:
        # A missing ESN transform means "no ESN"; DH NONE is the same as no DH (§3.3.3).
        types.add(TransformType.ESN)
        if all(t.id == DhGroup.NONE for t in p.of_type(TransformType.DH)):
            types.discard(TransformType.DH)
    return frozenset(types)


def _normalised(p: Proposal) -> list[Transform]:
    ts = [t for t in p.transforms if not (t.type == TransformType.DH and t.id == DhGroup.NONE)
          and not (t.type == TransformType.INTEG and t.id == IntegId.NONE)]
    if p.protocol != ProtocolId.IKE and not p.of_type(TransformType.ESN):
        ts.append(Transform(TransformType.ESN, EsnId.NO_ESN))
    return ts


def match(offer: Proposal, ours: Proposal) -> Optional[Proposal]:
    """Pick one transform of each type from `offer` that `ours` also allows (§3.3.6)."""
    if offer.protocol != ours.protocol:
        return None
    chosen = _match(int(offer.protocol), tuple(offer.transforms), tuple(ours.transforms))
    if chosen is None:
        return None
    return Proposal(offer.num, offer.protocol, offer.spi, list(chosen))


@functools.lru_cache(maxsize=4096)
def _match(protocol: int, offer_ts: tuple[Transform, ...], our_ts: tuple[Transform, ...]
           ) -> Optional[tuple[Transform, ...]]:
    """`match` on transforms alone (immutable), cached: peers offer the same few proposals
    in every negotiation."""
    offer = Proposal(0, protocol, b"", list(offer_ts))
    ours = Proposal(0, protocol, b"", list(our_ts))
    if _types(offer) != _types(ours):
        return None
    allowed = {_key(t) for t in _normalised(ours)}
    chosen: list[Transform] = []
    normal = _normalised(offer)
    for ttype in sorted(_types(offer)):
        pick = next((t for t in normal if t.type == ttype and _key(t) in allowed), None)
        if pick is None:
            return None
        chosen.append(pick)
    return tuple(chosen)


def select(offers: Sequence[Proposal], ours: Iterable[Proposal]) -> Proposal:
    """Responder: the first acceptable offer in the initiator's order (§2.7)."""
    ours = list(ours)
    for offer in offers:
        for mine in ours:
            chosen = match(offer, mine)
            if chosen is not None:
                return chosen
    raise RemoteIkeError("no acceptable proposal", NotifyType.NO_PROPOSAL_CHOSEN)


def check_accepted(answer: Sequence[Proposal], offered: Sequence[Proposal]) -> Proposal:
    """Initiator: the responder's single proposal must be a subset of one we offered (§2.7)."""
    if len(answer) != 1:
        raise RemoteIkeError(f"responder returned {len(answer)} proposals, expected 1",
                             NotifyType.NO_PROPOSAL_CHOSEN)
    got = answer[0]
    for mine in offered:
        if mine.num == got.num:
            chosen = match(got, mine)
            if chosen is not None and len(chosen.transforms) == len(_normalised(got)):
                return chosen
    raise RemoteIkeError("responder chose a proposal we did not offer",
                         NotifyType.NO_PROPOSAL_CHOSEN)


@dataclass(frozen=True)
class Suite:
    """The algorithms of one negotiated proposal, as needed by keymat and protection."""

    encr: int
    key_bits: int
    integ: int = IntegId.NONE
    prf: int = 0
    dh: int = DhGroup.NONE
    esn: bool = False

    @classmethod
    def from_proposal(cls, p: Proposal) -> "Suite":
        return _suite_of(cls, int(p.protocol), tuple(p.transforms))

    @classmethod
    def _from_proposal(cls, p: Proposal) -> "Suite":
        def one(ttype: int, default: int = 0) -> int:
            ts = p.of_type(ttype)
            return ts[0].id if ts else default
        encr = p.of_type(TransformType.ENCR)
        if not encr and p.protocol == ProtocolId.AH:   # RFC 4302: integrity only
            return cls(0, 0, one(TransformType.INTEG), one(TransformType.PRF),
                       one(TransformType.DH), one(TransformType.ESN) == EsnId.ESN)
        if not encr:
            raise RemoteIkeError("proposal without encryption", NotifyType.NO_PROPOSAL_CHOSEN)
        key_bits = encr[0].key_length or 0
        return cls(encr[0].id, key_bits, one(TransformType.INTEG), one(TransformType.PRF),
                   one(TransformType.DH), one(TransformType.ESN) == EsnId.ESN)

    @property
    def name(self) -> str:
        """strongSwan notation of this suite, e.g. "aes128gcm16-prfsha256-ecp256"."""
        def key_of(table: dict, value: object) -> str:
            return next((k for k, v in table.items() if v == value), str(value))
        parts = [key_of(_ENCR, (self.encr, self.key_bits or None))] if self.encr else []
        if self.integ:
            parts.append(key_of(_INTEG, self.integ))
        if self.prf:
            parts.append(key_of(_PRF, self.prf))
        if self.dh:
            parts.append(key_of(_DH, self.dh))
        if self.esn:
            parts.append("esn")
        return "-".join(parts)

    @property
    def _cipher(self) -> _Cipher:
        c = _CIPHERS.get(self.encr)
        if c is None:
            raise RemoteIkeError(f"unsupported encryption transform {self.encr}",
                                 NotifyType.NO_PROPOSAL_CHOSEN)
        if c.key_bytes is None and self.key_bits not in (128, 192, 256):
            raise RemoteIkeError(f"unsupported AES key length {self.key_bits}",
                                 NotifyType.NO_PROPOSAL_CHOSEN)
        return c

    @property
    def is_aead(self) -> bool:
        """A combined-mode cipher (RFC 4303 §3.2.3, RFC 5282): AES-GCM, AES-GMAC or
        ChaCha20-Poly1305; no integrity transform goes with it. (The IKE SA only ever
        negotiates AES-GCM of these, see `parse_proposal`.)"""
        c = _CIPHERS.get(self.encr)
        return c is not None and c.combined

    @property
    def encr_key_len(self) -> int:
        """Bytes of KEYMAT for the cipher in one direction (RFC 7296 §2.17): the key, then for
        AES-GCM (RFC 4106 §8.1, RFC 5282 §7.1), AES-GMAC (RFC 4543 §3.2), AES-CTR
        (RFC 3686 §5.1) and ChaCha20-Poly1305 (RFC 7634 §2) a 4-byte salt/nonce. NULL and
        AH take none."""
        if not self.encr:       # AH
            return 0
        c = self._cipher
        key = c.key_bytes if c.key_bytes is not None else self.key_bits // 8
        return key + c.salt

    @property
    def integ_key_len(self) -> int:
        if self.integ == IntegId.NONE:
            return 0
        if self.integ not in _INTEGRITY:
            raise RemoteIkeError(f"unsupported integrity transform {self.integ}",
                                 NotifyType.NO_PROPOSAL_CHOSEN)
        return _INTEGRITY[self.integ][1]

    @property
    def cipher_name(self) -> str:
        """Name as in `inline_ipsec.sa.CIPHER_KEY_MATERIAL`."""
        if not self.encr:       # AH: no cipher
            return "null"
        return self._cipher.name.format(bits=self.key_bits)

    @property
    def integrity_name(self) -> Optional[str]:
        """Name as in `inline_ipsec.sa.INTEGRITY_ALGORITHMS`."""
        if self.integ == IntegId.NONE:
            return None
        if self.integ not in _INTEGRITY:
            raise RemoteIkeError(f"unsupported integrity transform {self.integ}",
                                 NotifyType.NO_PROPOSAL_CHOSEN)
        return _INTEGRITY[self.integ][0]


@functools.lru_cache(maxsize=1024)
def _suite_of(cls: type, protocol: int, transforms: tuple[Transform, ...]) -> Suite:
    """`Suite.from_proposal`, cached on the (immutable) transforms."""
    return cls._from_proposal(Proposal(0, protocol, b"", list(transforms)))
