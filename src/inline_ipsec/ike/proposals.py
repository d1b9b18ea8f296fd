"""Proposal construction, matching and selection (RFC 7296 §2.7, §3.3.6).

Proposals can be written in strongSwan's compact notation, e.g. ``"aes128gcm16-prfsha256-ecp256"``
for IKE or ``"aes256-sha256-modp2048-esn"`` for ESP, so that the same string configures both us
and the interop peer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from .constants import (DhGroup, EncrId, EsnId, IntegId, NotifyType, PrfId, ProtocolId,
                        TransformType)
from .errors import LocalIkeError, RemoteIkeError
from .payloads import Proposal, Transform

_ENCR = {
    "aes128gcm16": (EncrId.ENCR_AES_GCM_16, 128), "aes256gcm16": (EncrId.ENCR_AES_GCM_16, 256),
    "aes128gcm": (EncrId.ENCR_AES_GCM_16, 128), "aes256gcm": (EncrId.ENCR_AES_GCM_16, 256),
    "aes128": (EncrId.ENCR_AES_CBC, 128), "aes256": (EncrId.ENCR_AES_CBC, 256),
    # RFC 7634 §2: no key-length attribute (the key is always 256 bits)
    "chacha20poly1305": (EncrId.ENCR_CHACHA20_POLY1305, None),
}
_INTEG = {
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128, "sha384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256, "sha1": IntegId.AUTH_HMAC_SHA1_96,
}
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
    """
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
    return Proposal(num, protocol, b"", transforms)


_CIPHER_TOKEN = {"aes-gcm-128": "aes128gcm16", "aes-gcm-256": "aes256gcm16",
                 "aes-cbc-128": "aes128", "aes-cbc-256": "aes256",
                 "chacha20-poly1305": "chacha20poly1305"}
_INTEGRITY_TOKEN = {"hmac-sha1-96": "sha1", "hmac-sha256-128": "sha256",
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
    enc = _token(_CIPHER_TOKEN, cipher, "IKE cipher")
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


def _types(p: Proposal) -> set[int]:
    types = {t.type for t in p.transforms}
    if p.protocol != ProtocolId.IKE:
        # A missing ESN transform means "no ESN"; DH NONE is the same as no DH (§3.3.3).
        types.add(TransformType.ESN)
        if all(t.id == DhGroup.NONE for t in p.of_type(TransformType.DH)):
            types.discard(TransformType.DH)
    return types


def _normalised(p: Proposal) -> list[Transform]:
    ts = [t for t in p.transforms if not (t.type == TransformType.DH and t.id == DhGroup.NONE)]
    if p.protocol != ProtocolId.IKE and not p.of_type(TransformType.ESN):
        ts.append(Transform(TransformType.ESN, EsnId.NO_ESN))
    return ts


def match(offer: Proposal, ours: Proposal) -> Optional[Proposal]:
    """Pick one transform of each type from `offer` that `ours` also allows (§3.3.6)."""
    if offer.protocol != ours.protocol or _types(offer) != _types(ours):
        return None
    allowed = {_key(t) for t in _normalised(ours)}
    chosen: list[Transform] = []
    for ttype in sorted(_types(offer)):
        pick = next((t for t in _normalised(offer) if t.type == ttype and _key(t) in allowed),
                    None)
        if pick is None:
            return None
        chosen.append(pick)
    return Proposal(offer.num, offer.protocol, offer.spi, chosen)


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
    def is_aead(self) -> bool:
        return self.encr in (EncrId.ENCR_AES_GCM_8, EncrId.ENCR_AES_GCM_12,
                             EncrId.ENCR_AES_GCM_16)

    @property
    def encr_key_len(self) -> int:
        """Bytes of key material for the cipher: AES-GCM adds a 4-byte salt (RFC 5282 §7.1,
        RFC 4106 §8.1); ChaCha20-Poly1305 is a 256-bit key and a 4-byte salt (RFC 7634 §2,
        ESP only)."""
        if self.encr == EncrId.ENCR_CHACHA20_POLY1305:
            return 36
        if not self.encr:       # AH
            return 0
        if self.encr not in (EncrId.ENCR_AES_CBC, EncrId.ENCR_AES_GCM_16):
            raise RemoteIkeError(f"unsupported encryption transform {self.encr}",
                                 NotifyType.NO_PROPOSAL_CHOSEN)
        if self.key_bits not in (128, 192, 256):
            raise RemoteIkeError(f"unsupported AES key length {self.key_bits}",
                                 NotifyType.NO_PROPOSAL_CHOSEN)
        return self.key_bits // 8 + (4 if self.is_aead else 0)

    @property
    def integ_key_len(self) -> int:
        return {IntegId.NONE: 0, IntegId.AUTH_HMAC_SHA1_96: 20,
                IntegId.AUTH_HMAC_SHA2_256_128: 32, IntegId.AUTH_HMAC_SHA2_384_192: 48,
                IntegId.AUTH_HMAC_SHA2_512_256: 64}[IntegId(self.integ)]

    @property
    def cipher_name(self) -> str:
        """Name as in `inline_ipsec.sa.CIPHER_KEY_MATERIAL`."""
        if self.encr == EncrId.ENCR_CHACHA20_POLY1305:
            return "chacha20-poly1305"
        if not self.encr:       # AH: no cipher
            return "null"
        kind = "gcm" if self.is_aead else "cbc"
        return f"aes-{kind}-{self.key_bits}"

    @property
    def integrity_name(self) -> Optional[str]:
        """Name as in `inline_ipsec.sa.INTEGRITY_ALGORITHMS`."""
        return {IntegId.NONE: None, IntegId.AUTH_HMAC_SHA1_96: "hmac-sha1-96",
                IntegId.AUTH_HMAC_SHA2_256_128: "hmac-sha256-128",
                IntegId.AUTH_HMAC_SHA2_384_192: "hmac-sha384-192",
                IntegId.AUTH_HMAC_SHA2_512_256: "hmac-sha512-256"}[IntegId(self.integ)]
