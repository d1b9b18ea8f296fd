"""Child SAs beyond AES: AH (RFC 4302, proposals without ENCR, Protocol ID 2) and
ChaCha20-Poly1305 (RFC 7634) negotiated, rekeyed and deleted by two sessions."""
from __future__ import annotations

from ike_helpers import ChildConfig, configs, established

from inline_ipsec.ike import ChildSaDown, ChildSaRekeyed, ChildSaUp
from inline_ipsec.ike.constants import ProtocolId
from inline_ipsec.ike.proposals import ah_proposal, esp_proposal, parse_proposal


def test_proposal_strings() -> None:
    assert ah_proposal("hmac-sha256-128", 19) == "sha256-ecp256-noesn"
    assert esp_proposal("chacha20-poly1305") == "chacha20poly1305-noesn"
    p = parse_proposal("sha256-noesn", ProtocolId.AH)
    assert p.protocol == ProtocolId.AH and not p.of_type(1)          # no ENCR transform


def _events(out: list, kind) -> list:
    return [e for e in out if isinstance(e, kind)]


def test_ah_child_sa_negotiated_rekeyed_deleted() -> None:
    child = [ChildConfig(proposals=("sha256-noesn",), protocol="ah")]
    p = established(*configs(children=child))
    up_i, up_r = _events(p.i_events, ChildSaUp)[0], _events(p.r_events, ChildSaUp)[0]
    ni, nr = up_i.child, up_r.child
    assert ni.protocol == "ah" and ni.cipher == "null" and ni.integrity == "hmac-sha256-128"
    assert ni.integrity_key_out == nr.integrity_key_in and len(ni.integrity_key_out) == 32
    out, inb = up_i.to_sa_specs("192.0.2.1", "198.51.100.1")
    assert out.protocol == inb.protocol == "ah" and out.spi == nr.spi_in
    p.i.rekey_child(ni.spi_in, p.now)
    p.run()
    rekeyed = _events(p.r_events, ChildSaRekeyed)
    assert rekeyed and rekeyed[0].new.protocol == "ah"
    new_in = _events(p.i_events, ChildSaRekeyed)[0].new.spi_in
    p.i.delete_child(new_in, p.now)
    p.run()
    assert _events(p.r_events, ChildSaDown)[-1].spi_out == new_in
    assert not p.i.children and not p.r.children


def test_chacha20_poly1305_child_sa() -> None:
    child = [ChildConfig(proposals=("chacha20poly1305-noesn",))]
    p = established(*configs(children=child))
    ni = _events(p.i_events, ChildSaUp)[0].child
    nr = _events(p.r_events, ChildSaUp)[0].child
    assert ni.cipher == "chacha20-poly1305" and ni.integrity is None
    assert len(ni.key_out) == 36 and ni.key_out == nr.key_in           # RFC 7634 §2: key+salt
