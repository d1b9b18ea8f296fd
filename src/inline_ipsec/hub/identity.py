"""Which peers a `dynamic` IKE gateway (an AutoVPN hub) accepts: identity patterns.

Junos `set security ike gateway <g> dynamic <type> <value>` names the peers a hub accepts by
the identity they prove in IKE_AUTH (RFC 7296 §3.5, §2.15) rather than by address:

- `hostname <h>` (ID_FQDN) and `user-at-hostname <u@h>` (ID_RFC822_ADDR): the identity
  equals the value, compared without case (DNS names are case-insensitive); a `*` in the value
  matches any run of characters (`*.spokes.example.net`);
- `distinguished-name wildcard <dn>` (ID_DER_ASN1_DN): every attribute named in `<dn>`
  (`O=Example, OU=Spokes`) is in the peer's DN with that value, in any order; a value `*`
  matches any value of that attribute; attributes not named may be anything;
- `distinguished-name container <dn>`: the attributes of `<dn>` appear in the peer's DN in
  the same order (the peer's DN may have more between and around them);
- `inet`/`inet6 <addr>`: that address identity (one peer, as Junos).

The peer proves the identity (PSK, or a certificate whose subject or subjectAltName holds it,
checked by the IKE session); the pattern only decides whether such a peer is one of ours.
"""
from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from typing import Optional

from ..config.model import Identity as JunosIdentity
from ..ike.auth import Identity
from ..ike.constants import IdType

__all__ = ["IdentityPattern", "dn_attributes", "DnError"]

#: attribute OIDs (dotted) -> the short names used in configuration (RFC 4514 §3)
_OID_NAMES = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.5": "SERIALNUMBER", "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "EMAILADDRESS", "0.9.2342.19200300.100.1.1": "UID",
}
#: longest DN we decode (an IKE ID payload is bounded by the message anyway)
MAX_DN = 4096


class DnError(ValueError):
    """The bytes are not a DER-encoded X.501 Name (RFC 5280 §4.1.2.4)."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at `pos`, bounds-checked."""
    if pos + 2 > len(data):
        raise DnError("truncated DER element")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 2 or pos + n > len(data):
            raise DnError("bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise DnError("DER element runs past its container")
    return tag, pos, pos + length


def _oid(raw: bytes) -> str:
    if not raw:
        raise DnError("empty OID")
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for b in raw[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def dn_attributes(der: bytes) -> list[tuple[str, str]]:
    """The (attribute, value) pairs of a DER Name in encoding order (RFC 5280 §4.1.2.4:
    SEQUENCE OF SET OF SEQUENCE {OID, value}); raises `DnError` on anything else."""
    if len(der) > MAX_DN:
        raise DnError("distinguished name too long")
    tag, pos, end = _tlv(der, 0)
    if tag != 0x30 or end != len(der):
        raise DnError("not a DER SEQUENCE")
    out = []
    while pos < end:
        tag, spos, send = _tlv(der, pos)
        if tag != 0x31:
            raise DnError("RDN is not a SET")
        while spos < send:
            tag, apos, aend = _tlv(der, spos)
            if tag != 0x30:
                raise DnError("attribute is not a SEQUENCE")
            otag, opos, oend = _tlv(der, apos)
            if otag != 0x06:
                raise DnError("attribute type is not an OID")
            _vtag, vpos, vend = _tlv(der, oend)
            oid = _oid(der[opos:oend])
            out.append((_OID_NAMES.get(oid, oid),
                        der[vpos:vend].decode("utf-8", "replace")))
            spos = aend
        pos = send
    return out


def _parse_dn_text(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"distinguished name part {part!r} is not ATTRIBUTE=value")
        key, value = part.split("=", 1)
        pairs.append((key.strip().upper(), value.strip()))
    if not pairs:
        raise ValueError("empty distinguished name")
    return pairs


@dataclass(frozen=True)
class IdentityPattern:
    """A Junos `dynamic` identity as a matcher (module docstring). `IkeConfig.remote_id`
    may hold one: the session compares the peer's identity with `!=`, which ends up in
    `__eq__` here, so a dynamic gateway needs no change in the IKE session."""

    kind: str
    value: str

    @classmethod
    def from_junos(cls, ident: JunosIdentity) -> "IdentityPattern":
        if ident.kind == "distinguished-name":
            mode, _, text = (ident.value or "").partition(" ")
            if mode not in ("wildcard", "container") or not text:
                raise ValueError("dynamic distinguished-name needs 'wildcard <dn>' or "
                                 "'container <dn>'")
            _parse_dn_text(text)
            return cls(f"dn-{mode}", text)
        if ident.value is None:
            raise ValueError(f"dynamic {ident.kind} needs a value")
        return cls(ident.kind, ident.value)

    def matches(self, peer: Identity) -> bool:
        """Whether a peer proving `peer` is accepted (module docstring)."""
        t = peer.id_type
        try:
            if self.kind == "hostname" and t == IdType.ID_FQDN:
                return fnmatch.fnmatchcase(peer.data.decode().lower(), self.value.lower())
            if self.kind == "user-at-hostname" and t == IdType.ID_RFC822_ADDR:
                return fnmatch.fnmatchcase(peer.data.decode().lower(), self.value.lower())
            if self.kind in ("inet", "inet6") and t in (IdType.ID_IPV4_ADDR,
                                                         IdType.ID_IPV6_ADDR):
                return ipaddress.ip_address(peer.data) == ipaddress.ip_address(self.value)
            if self.kind.startswith("dn-") and t == IdType.ID_DER_ASN1_DN:
                return self._dn_matches(dn_attributes(peer.data))
        except (UnicodeDecodeError, ValueError):
            return False
        return False

    def _dn_matches(self, have: list[tuple[str, str]]) -> bool:
        want = _parse_dn_text(self.value)
        if self.kind == "dn-wildcard":
            return all(any(k == hk and (v == "*" or v == hv) for hk, hv in have)
                       for k, v in want)
        i = 0                                   # container: in order, gaps allowed
        for hk, hv in have:
            if i < len(want) and want[i][0] == hk and want[i][1] in ("*", hv):
                i += 1
        return i == len(want)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Identity):
            return self.matches(other)
        if isinstance(other, IdentityPattern):
            return (self.kind, self.value) == (other.kind, other.value)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((self.kind, self.value))

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def pattern_of(ident: Optional[JunosIdentity]) -> Optional[IdentityPattern]:
    return None if ident is None else IdentityPattern.from_junos(ident)
