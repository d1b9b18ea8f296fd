"""`set security pki ca-profile <p> ca-identity <id>`: the model and grammar.

A CA profile names a certificate authority; its certificate is loaded into the PKI directory
with `inline-ipsec request security pki ca-certificate load ca-profile <p> filename <f>`
(`inline_ipsec.pki`), as Junos loads it with the same operational command. Enrollment (SCEP,
CMPv2), revocation checking (CRL, OCSP) and the like are not modelled: they are ignored
hierarchies, listed in the load warning.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["CaProfile", "parse_pki"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")


@dataclass(frozen=True)
class CaProfile:
    """`security pki ca-profile <name> ca-identity <id>` (RFC 5280 trust anchor)."""

    name: str
    ca_identity: Optional[str] = None
    line: int = field(default=0, compare=False)


def _name(text: str) -> str:
    if not _NAME_RE.match(text):
        raise ValueError
    return text


def parse_pki(p: Any, c: Any) -> None:
    """`set security pki ...` (cursor after `pki`)."""
    c.section(("ca-profile",))
    name = c.value("a CA profile name", _name)
    profile = p.b.ca_profiles.setdefault(name, {"line": p.line})
    c.section(("ca-identity",))
    profile["ca_identity"] = c.value("a CA identity", _name)


def freeze_pki(raw: dict[str, dict[str, Any]]) -> dict[str, CaProfile]:
    return {n: CaProfile(n, r.get("ca_identity"), r["line"]) for n, r in raw.items()}
