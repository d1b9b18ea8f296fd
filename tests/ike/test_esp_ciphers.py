"""Child SAs for every cipher and integrity algorithm the engines carry (`inline_ipsec.sa`).

For each one, two in-memory sessions negotiate the child SA (IKE_AUTH, RFC 7296 §1.2), both
ends derive the same KEYMAT in the §2.17 order (initiator-to-responder encryption key, then
its integrity key, then the other direction), with the salt/nonce of RFC 4106 §8.1, RFC 4543
§3.2, RFC 3686 §5.1 and RFC 7634 §2, and `ChildSaUp.to_sa_specs()` installs on the CpuEngine
(and on the Pfe for AES-GCM-128/256) so that a packet sealed by one end opens on the other.
"""
from __future__ import annotations

import struct

import pytest
from ike_helpers import ChildConfig, configs, established

from helpers import inner_packet
from inline_ipsec import CpuEngine, Pfe
from inline_ipsec.errors import IntegrityError
from inline_ipsec.ike import ChildSaUp
from inline_ipsec.ike.constants import (EncrId, IntegId, NotifyType, ProtocolId,
                                        TransformType)
from inline_ipsec.ike.errors import LocalIkeError
from inline_ipsec.ike.keymat import prf_plus
from inline_ipsec.ike.proposals import Suite, esp_proposal, ike_proposal, parse_proposal
from inline_ipsec.pfe import PFE_CIPHERS
from inline_ipsec.config.algorithms import AEAD_ENCRYPTION as AEAD_JUNOS
from inline_ipsec.config.algorithms import IPSEC_AUTHENTICATION_TO_INTEGRITY as JUNOS_INTEGRITY
from inline_ipsec.config.algorithms import IPSEC_ENCRYPTION_TO_CIPHER as JUNOS_CIPHERS
from inline_ipsec.sa import AEAD_CIPHERS, CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS

I_IP, R_IP = "192.0.2.1", "198.51.100.1"
#: a fast IKE SA; the child's algorithms are what is under test.
IKE = ("aes128gcm16-prfsha256-x25519",)

COMBINED = sorted(c for c in CIPHER_KEY_MATERIAL if c in AEAD_CIPHERS)
PLAIN = sorted(c for c in CIPHER_KEY_MATERIAL if c not in AEAD_CIPHERS)
INTEGRITY = sorted(INTEGRITY_ALGORITHMS)
CASES = ([(c, None, esn) for c in COMBINED for esn in (False, True)]
         + [(c, i, esn) for c in PLAIN for i in INTEGRITY for esn in (False, True)])

#: the IANA transform each cipher must go on the wire as (RFC 7296 §3.3.2, IANA registry).
WIRE = {
    "aes-gcm-128": (EncrId.ENCR_AES_GCM_16, 128), "aes-gcm-192": (EncrId.ENCR_AES_GCM_16, 192),
    "aes-gcm-256": (EncrId.ENCR_AES_GCM_16, 256),
    "aes-gmac-128": (EncrId.ENCR_NULL_AUTH_AES_GMAC, 128),
    "aes-gmac-192": (EncrId.ENCR_NULL_AUTH_AES_GMAC, 192),
    "aes-gmac-256": (EncrId.ENCR_NULL_AUTH_AES_GMAC, 256),
    "aes-cbc-128": (EncrId.ENCR_AES_CBC, 128), "aes-cbc-192": (EncrId.ENCR_AES_CBC, 192),
    "aes-cbc-256": (EncrId.ENCR_AES_CBC, 256),
    "aes-ctr-128": (EncrId.ENCR_AES_CTR, 128), "aes-ctr-192": (EncrId.ENCR_AES_CTR, 192),
    "aes-ctr-256": (EncrId.ENCR_AES_CTR, 256),
    "3des-cbc": (EncrId.ENCR_3DES, None), "chacha20-poly1305": (EncrId.ENCR_CHACHA20_POLY1305,
                                                               None),
    "null": (EncrId.ENCR_NULL, None),
}
WIRE_INTEG = {"hmac-md5-96": IntegId.AUTH_HMAC_MD5_96, "hmac-sha1-96": IntegId.AUTH_HMAC_SHA1_96,
              "hmac-sha256-128": IntegId.AUTH_HMAC_SHA2_256_128,
              "hmac-sha384-192": IntegId.AUTH_HMAC_SHA2_384_192,
              "hmac-sha512-256": IntegId.AUTH_HMAC_SHA2_512_256}


def test_every_engine_algorithm_is_covered() -> None:
    assert set(WIRE) == set(CIPHER_KEY_MATERIAL)
    assert set(WIRE_INTEG) == set(INTEGRITY_ALGORITHMS)
    assert len(CASES) == 2 * len(COMBINED) + 2 * len(PLAIN) * len(INTEGRITY)


@pytest.mark.parametrize("cipher", sorted(CIPHER_KEY_MATERIAL))
def test_proposal_carries_the_iana_transform(cipher: str) -> None:
    integ = None if cipher in AEAD_CIPHERS else "hmac-sha256-128"
    p = parse_proposal(esp_proposal(cipher, integ), ProtocolId.ESP)
    [encr] = p.of_type(TransformType.ENCR)
    assert (encr.id, encr.key_length) == WIRE[cipher]
    assert bool(p.of_type(TransformType.INTEG)) == (integ is not None)
    suite = Suite.from_proposal(p)
    assert suite.cipher_name == cipher and suite.encr_key_len == CIPHER_KEY_MATERIAL[cipher]
    # strongSwan notation survives the round trip (Suite.name is what logs show)
    assert Suite.from_proposal(parse_proposal(suite.name, ProtocolId.ESP)) == suite


@pytest.mark.parametrize("integ", INTEGRITY)
def test_integrity_transform_ids(integ: str) -> None:
    p = parse_proposal(esp_proposal("aes-cbc-128", integ), ProtocolId.ESP)
    [t] = p.of_type(TransformType.INTEG)
    assert t.id == WIRE_INTEG[integ]
    suite = Suite.from_proposal(p)
    assert suite.integrity_name == integ
    assert suite.integ_key_len == INTEGRITY_ALGORITHMS[integ][0]


def _up(events: list) -> ChildSaUp:
    ups = [e for e in events if isinstance(e, ChildSaUp)]
    assert len(ups) == 1, events
    return ups[0]


def _engine_for(cipher: str, engine: str):
    return Pfe() if engine == "pfe" else CpuEngine()


def _check_traffic(up_i: ChildSaUp, up_r: ChildSaUp, i_engine: str = "cpu",
                   r_engine: str = "cpu") -> None:
    """Install both ends and send a packet each way; a tampered packet is refused."""
    a, b = _engine_for(up_i.child.cipher, i_engine), _engine_for(up_i.child.cipher, r_engine)
    out_i, in_i = up_i.to_sa_specs(I_IP, R_IP)
    out_r, in_r = up_r.to_sa_specs(R_IP, I_IP)
    assert out_i.spi == in_r.spi and out_r.spi == in_i.spi
    ha, hb = a.add_outbound(out_i), b.add_outbound(out_r)
    a.add_inbound(in_i)
    b.add_inbound(in_r)
    for n in range(3):
        pkt_ab, pkt_ba = inner_packet(payload=b"i->r %d" % n), inner_packet(v6=True,
                                                                              payload=b"r->i")
        wire = a.encrypt(ha, pkt_ab)
        assert struct.unpack_from("!L", wire, 20)[0] == out_i.spi     # outer IPv4, then ESP
        assert b.decrypt(wire) == pkt_ab
        back = b.encrypt(hb, pkt_ba)
        assert a.decrypt(back) == pkt_ba
    bad = bytearray(a.encrypt(ha, inner_packet()))     # every case here authenticates
    bad[-1] ^= 0x01                                       # flip an ICV bit
    with pytest.raises(IntegrityError):
        b.decrypt(bytes(bad))


def _child(cipher: str, integ, esn: bool, **kw) -> list[ChildConfig]:
    return [ChildConfig(proposals=(esp_proposal(cipher, integ, None, esn),),
                        local_ts=("10.0.0.0/8", "2001:db8::/32"),
                        remote_ts=("10.0.0.0/8", "2001:db8::/32"), **kw)]


@pytest.mark.parametrize("cipher,integ,esn", CASES,
                         ids=[f"{c}-{i or 'aead'}-{'esn' if e else 'noesn'}"
                              for c, i, e in CASES])
def test_child_sa_negotiated_keyed_and_carries_traffic(cipher: str, integ, esn: bool) -> None:
    icfg, rcfg = configs(proposals=IKE, i_children=_child(cipher, integ, esn),
                         r_children=_child(cipher, integ, esn))
    p = established(icfg, rcfg)
    up_i, up_r = _up(p.i_events), _up(p.r_events)
    ni, nr = up_i.child, up_r.child
    assert (ni.cipher, ni.integrity, ni.esn) == (cipher, integ, esn)
    assert (nr.cipher, nr.integrity, nr.esn) == (cipher, integ, esn)

    # both ends hold the same keys, crosswise
    e = CIPHER_KEY_MATERIAL[cipher]
    a = INTEGRITY_ALGORITHMS[integ][0] if integ else 0
    assert len(ni.key_out) == len(ni.key_in) == e
    assert len(ni.integrity_key_out) == len(ni.integrity_key_in) == a
    assert (ni.key_out, ni.integrity_key_out) == (nr.key_in, nr.integrity_key_in)
    assert (ni.key_in, ni.integrity_key_in) == (nr.key_out, nr.integrity_key_out)

    # §2.17: KEYMAT = prf+(SK_d, Ni | Nr), taken as encr_i | integ_i | encr_r | integ_r
    ike = p.i.ike
    km = prf_plus(ike.prf, ike.keys.sk_d, ike.nonce_i + ike.nonce_r, 2 * (e + a))
    assert km == ni.key_out + ni.integrity_key_out + ni.key_in + ni.integrity_key_in
    if e + a:
        assert ni.key_out + ni.integrity_key_out != ni.key_in + ni.integrity_key_in

    _check_traffic(up_i, up_r)
    if cipher in PFE_CIPHERS:
        _check_traffic(up_i, up_r, "pfe", "cpu")
        _check_traffic(up_i, up_r, "cpu", "pfe")


@pytest.mark.parametrize("cipher", ["aes-ctr-256", "3des-cbc", "aes-gmac-192", "null"])
def test_create_child_sa_with_pfs(cipher: str) -> None:
    """A second child SA by CREATE_CHILD_SA (§1.3.1) with PFS: KEYMAT includes g^ir."""
    integ = None if cipher in AEAD_CIPHERS else "hmac-sha384-192"
    first = _child("aes-gcm-128", None, False)
    def second(local: str, remote: str) -> ChildConfig:
        return ChildConfig(name="second", proposals=(esp_proposal(cipher, integ, 19, True),),
                           local_ts=(local,), remote_ts=(remote,))
    i_second, r_second = second("10.1.0.0/16", "10.2.0.0/16"), \
        second("10.2.0.0/16", "10.1.0.0/16")
    icfg, rcfg = configs(proposals=IKE, i_children=first + [i_second],
                         r_children=first + [r_second])
    p = established(icfg, rcfg)
    p.i.create_child(i_second, p.now)
    p.run()
    ups_i = [e for e in p.i_events if isinstance(e, ChildSaUp)]
    ups_r = [e for e in p.r_events if isinstance(e, ChildSaUp)]
    assert len(ups_i) == len(ups_r) == 2
    assert ups_i[1].child.cipher == cipher and ups_i[1].child.esn
    assert ups_i[1].child.key_out == ups_r[1].child.key_in
    _check_traffic(ups_i[1], ups_r[1])


@pytest.mark.parametrize("mine,theirs", [
    (("aes-ctr-128", "hmac-sha256-128"), ("aes-cbc-128", "hmac-sha256-128")),
    (("aes-gcm-192", None), ("aes-gcm-256", None)),
    (("aes-gmac-128", None), ("aes-gcm-128", None)),
    (("aes-cbc-192", "hmac-md5-96"), ("aes-cbc-192", "hmac-sha1-96")),
    (("3des-cbc", "hmac-sha1-96"), ("aes-cbc-256", "hmac-sha1-96")),
    (("null", "hmac-sha256-128"), ("aes-cbc-128", "hmac-sha256-128")),
    (("chacha20-poly1305", None), ("aes-gcm-256", None)),
])
def test_mismatched_child_proposals_are_no_proposal_chosen(mine, theirs) -> None:
    icfg, rcfg = configs(proposals=IKE, i_children=_child(*mine, False),
                         r_children=_child(*theirs, False))
    p = established(icfg, rcfg)
    assert not [e for e in p.i_events + p.r_events if isinstance(e, ChildSaUp)]
    assert p.i.errors[-1].notify_hint == NotifyType.NO_PROPOSAL_CHOSEN


def test_responder_picks_the_first_acceptable_of_several_ciphers() -> None:
    offers = tuple(esp_proposal(c, i) for c, i in (("aes-gmac-256", None),
                                                   ("aes-ctr-192", "hmac-sha512-256"),
                                                   ("3des-cbc", "hmac-md5-96")))
    icfg, rcfg = configs(proposals=IKE,
                         i_children=[ChildConfig(proposals=offers)],
                         r_children=[ChildConfig(proposals=offers[1:])])
    p = established(icfg, rcfg)
    ni = _up(p.i_events).child
    assert (ni.cipher, ni.integrity) == ("aes-ctr-192", "hmac-sha512-256")
    assert _up(p.r_events).child.key_in == ni.key_out


def test_proposal_syntax_rules() -> None:
    # combined-mode ciphers take no integrity and do not share a proposal with others
    for bad in ("aes128gcm16-sha256", "aes128gmac-aes128-sha256", "chacha20poly1305-md5"):
        with pytest.raises(LocalIkeError):
            parse_proposal(bad, ProtocolId.ESP)
    with pytest.raises(LocalIkeError):          # RFC 4303 §3.2: NULL needs integrity
        parse_proposal("null", ProtocolId.ESP)
    with pytest.raises(LocalIkeError):
        parse_proposal(esp_proposal("aes-gcm-128", "hmac-sha256-128"), ProtocolId.ESP)
    # the IKE SA is limited to what the SK payload implements
    for bad in ("aes128gmac-prfsha256-ecp256", "aes128ctr-sha256-ecp256", "3des-sha1-modp2048",
                "chacha20poly1305-prfsha256-x25519", "aes128-md5-ecp256"):
        with pytest.raises(LocalIkeError):
            parse_proposal(bad)
    assert ike_proposal("aes-cbc-192", "sha-256", 19) == "aes192-sha256-ecp256"
    with pytest.raises(LocalIkeError):
        ike_proposal("3des-cbc", "sha1", 14)
    # an INTEG NONE transform beside a combined-mode cipher is the same as none (§3.3)
    from inline_ipsec.ike.payloads import Transform
    from inline_ipsec.ike.proposals import select
    offer = parse_proposal("aes256gcm16", ProtocolId.ESP)
    offer.transforms.append(Transform(TransformType.INTEG, IntegId.NONE))
    chosen = select([offer], [parse_proposal("aes256gcm16", ProtocolId.ESP)])
    assert Suite.from_proposal(chosen).cipher_name == "aes-gcm-256"


# -- from Junos statements (gateway/ike_config.py) ----------------------------------------------

def _junos_pair(encryption, authentication):
    """The demo configuration of both gateways with vpn-cbc's IPsec proposal replaced."""
    from inline_ipsec.gateway.demo_config import demo_config

    def text(side: str) -> str:
        lines = [ln for ln in demo_config(side).splitlines()
                 if not ln.startswith("set security ipsec proposal p-cbc ")]
        lines.append("set security ipsec proposal p-cbc lifetime-seconds 3600")
        if encryption:
            lines.append(f"set security ipsec proposal p-cbc encryption-algorithm {encryption}")
        if authentication:
            lines.append("set security ipsec proposal p-cbc authentication-algorithm "
                         f"{authentication}")
        return "\n".join(lines) + "\n"
    return text("a"), text("b")


JUNOS_CASES = [(enc, None if enc in AEAD_JUNOS else auth)
               for enc in sorted(JUNOS_CIPHERS)
               for auth in (["hmac-md5-96", "hmac-sha-512"] if enc not in AEAD_JUNOS
                            else [None])]


@pytest.mark.parametrize("encryption,authentication", JUNOS_CASES)
def test_junos_ipsec_proposal_negotiates(encryption: str, authentication) -> None:
    from inline_ipsec.config import load_config
    from inline_ipsec.gateway.ike_config import ike_config_for_vpn
    text_a, text_b = _junos_pair(encryption, authentication)
    ca, cb = load_config(text_a), load_config(text_b)
    ia = ike_config_for_vpn(ca, ca.ipsec_vpns["vpn-cbc"], proposals=IKE)
    ib = ike_config_for_vpn(cb, cb.ipsec_vpns["vpn-cbc"], proposals=IKE)
    p = established(ia, ib)
    ni = _up(p.i_events).child
    assert ni.cipher == JUNOS_CIPHERS[encryption]
    assert ni.integrity == (JUNOS_INTEGRITY[authentication] if authentication else None)
    _check_traffic(_up(p.i_events), _up(p.r_events))


@pytest.mark.parametrize("encryption,authentication", [("aes-192-ctr", "hmac-md5-96"),
                                                       ("3des-cbc", "hmac-sha1-96"),
                                                       ("aes-256-gmac", None)])
def test_gateways_carry_traffic_over_negotiated_cpu_ciphers(encryption, authentication) -> None:
    from inline_ipsec.gateway import Gateway, WireLink
    from inline_ipsec.gateway.ike_link import IkePump, pair_controls
    from inline_ipsec.gateway.traffic import flows, packets
    text_a, text_b = _junos_pair(encryption, authentication)
    a = Gateway.from_text(text_a, name="gw-a")
    b = Gateway.from_text(text_b, name="gw-b")
    ia, ib = pair_controls(a, b, ("192.0.2.1", 500, 4500), ("198.51.100.1", 500, 4500))
    pump = IkePump(ia, ib)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert not ia.errors and not ib.errors
    for gw in (a, b):
        pair = gw.tunnel("vpn-cbc").pairs[0]
        assert pair.outbound.cipher == JUNOS_CIPHERS[encryption]
        assert not gw.tunnel("vpn-cbc").offloaded                 # the CPU path carries it
    link = WireLink(a, b)
    for sender, gw in (("a", a), ("b", b)):
        flow = next(f for f in flows(a, b) if f.vpn == "vpn-cbc" and f.sender == sender
                    and not f.ipv6)
        pk = packets(flow, 4, 300)
        assert link.send(gw, pk).delivered == pk


def test_junos_ike_ciphers() -> None:
    """IKE SA ciphers: the SK payload has AES-CBC (128/192/256) and AES-GCM (128/256); the
    Junos 3des-cbc and des-cbc are refused as configuration errors."""
    from inline_ipsec.config import load_config
    from inline_ipsec.gateway.ike_config import IkeConfigError, ike_config_for_vpn
    text_a, _ = _junos_pair("aes-128-ctr", "hmac-sha1-96")

    def ike_with(enc: str):
        c = load_config(text_a.replace("ike proposal ike-1 encryption-algorithm aes-256-gcm",
                                       f"ike proposal ike-1 encryption-algorithm {enc}"))
        return ike_config_for_vpn(c, c.ipsec_vpns["vpn-cbc"])
    for enc in ("3des-cbc", "des-cbc"):
        with pytest.raises(IkeConfigError):
            ike_with(enc)
    ike = ike_with("aes-192-cbc")
    assert ike.proposals == ("aes192-sha256-ecp384",)
    assert ike.children[0].proposals == ("aes128ctr-sha1-noesn",)
    ia, ib = configs(proposals=ike.proposals)
    established(ia, ib)                                   # an AES-192-CBC IKE SA works
