"""Proposal parsing and selection (RFC 7296 §2.7, §3.3.6)."""
import pytest

from inline_ipsec.ike.constants import (DhGroup, EncrId, EsnId, IntegId, NotifyType, PrfId,
                                        ProtocolId, TransformType)
from inline_ipsec.ike.errors import LocalIkeError, RemoteIkeError
from inline_ipsec.ike.payloads import Proposal, Transform
from inline_ipsec.ike.proposals import Suite, check_accepted, parse_proposal, select


def test_parse_ike_proposal_adds_prf_from_integrity():
    p = parse_proposal("aes256-sha384-ecp384")
    assert p.of_type(TransformType.ENCR) == [Transform(1, EncrId.ENCR_AES_CBC, 256)]
    assert [t.id for t in p.of_type(TransformType.PRF)] == [PrfId.PRF_HMAC_SHA2_384]
    assert [t.id for t in p.of_type(TransformType.INTEG)] == [IntegId.AUTH_HMAC_SHA2_384_192]
    assert [t.id for t in p.of_type(TransformType.DH)] == [DhGroup.ECP_384]


def test_parse_esp_proposal_defaults_to_no_esn_and_rejects_unknown():
    p = parse_proposal("aes128gcm16", ProtocolId.ESP)
    assert [t.id for t in p.of_type(TransformType.ESN)] == [EsnId.NO_ESN]
    assert not p.of_type(TransformType.PRF)
    with pytest.raises(LocalIkeError):
        parse_proposal("aes128gcm16-blowfish")
    with pytest.raises(LocalIkeError):
        parse_proposal("aes128gcm16")   # IKE needs a PRF


def test_responder_takes_first_acceptable_offer_in_initiator_order():
    offers = [parse_proposal("aes256gcm16-prfsha384-ecp384", num=1),
              parse_proposal("aes128gcm16-prfsha256-ecp256", num=2)]
    ours = [parse_proposal("aes128gcm16-prfsha256-ecp256"),
            parse_proposal("aes256gcm16-prfsha384-ecp384")]
    chosen = select(offers, ours)
    assert chosen.num == 1 and Suite.from_proposal(chosen).key_bits == 256


def test_one_transform_of_each_type_is_chosen_from_a_multi_transform_offer():
    offer = parse_proposal("aes128gcm16-aes256gcm16-prfsha256-prfsha512-ecp256-x25519")
    chosen = select([offer], [parse_proposal("aes256gcm16-prfsha512-x25519")])
    suite = Suite.from_proposal(chosen)
    assert (suite.key_bits, suite.prf, suite.dh) == (256, PrfId.PRF_HMAC_SHA2_512,
                                                     DhGroup.CURVE25519)
    assert len(chosen.transforms) == 3


def test_missing_transform_type_or_no_overlap_is_no_proposal_chosen():
    with pytest.raises(RemoteIkeError) as exc:
        select([parse_proposal("aes128-sha256-ecp256")],
                [parse_proposal("aes128gcm16-prfsha256-ecp256")])
    assert exc.value.notify_hint == NotifyType.NO_PROPOSAL_CHOSEN
    with pytest.raises(RemoteIkeError):
        select([parse_proposal("aes128gcm16-prfsha256-ecp256")],
               [parse_proposal("aes128gcm16-prfsha256-modp2048")])


def test_esp_without_esn_transform_means_no_esn_and_dh_none_means_no_pfs():
    offer = Proposal(1, ProtocolId.ESP, b"\x00\x00\x01\x00",
                     [Transform(TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 128),
                      Transform(TransformType.DH, DhGroup.NONE)])
    chosen = select([offer], [parse_proposal("aes128gcm16", ProtocolId.ESP)])
    assert not Suite.from_proposal(chosen).esn and Suite.from_proposal(chosen).dh == 0


def test_initiator_rejects_a_widened_or_foreign_answer():
    offered = [parse_proposal("aes128gcm16-prfsha256-ecp256")]
    good = select(offered, offered)
    assert check_accepted([good], offered).num == 1
    with pytest.raises(RemoteIkeError):   # two proposals back
        check_accepted([good, good], offered)
    with pytest.raises(RemoteIkeError):   # something we never offered
        check_accepted([parse_proposal("aes256gcm16-prfsha384-ecp384")], offered)
    with pytest.raises(RemoteIkeError):   # more than one transform of a type
        check_accepted([parse_proposal("aes128gcm16-prfsha256-ecp256-x25519")],
                       [parse_proposal("aes128gcm16-prfsha256-ecp256-x25519")])


def test_suite_names_and_key_lengths_match_the_data_plane_tables():
    from inline_ipsec.sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS
    for text in ("aes128gcm16", "aes256gcm16", "aes128-sha256", "aes256-sha512",
                 "aes256-sha384"):
        s = Suite.from_proposal(parse_proposal(text, ProtocolId.ESP))
        assert CIPHER_KEY_MATERIAL[s.cipher_name] == s.encr_key_len
        if s.integrity_name:
            assert INTEGRITY_ALGORITHMS[s.integrity_name][0] == s.integ_key_len
    assert Suite.from_proposal(parse_proposal("aes128gcm16-prfsha256-ecp256")).name == \
        "aes128gcm16-prfsha256-ecp256"


def test_proposals_from_data_plane_and_junos_names():
    from inline_ipsec.ike.proposals import esp_proposal, ike_proposal
    assert ike_proposal("aes-gcm-256", "sha-384", 20) == "aes256gcm16-prfsha384-ecp384"
    assert ike_proposal("aes-cbc-128", "sha-256", 14) == "aes128-sha256-modp2048"
    assert esp_proposal("aes-gcm-128") == "aes128gcm16-noesn"
    assert esp_proposal("aes-cbc-256", "hmac-sha512-256", 31, esn=True) == \
        "aes256-sha512-x25519-esn"
    for text in (ike_proposal("aes-gcm-128", "sha-256", 19),
                 ike_proposal("aes-cbc-256", "sha1", 21)):
        parse_proposal(text)                          # round-trips through the parser
    parse_proposal(esp_proposal("aes-cbc-128", "hmac-sha1-96", 14), ProtocolId.ESP)
    with pytest.raises(LocalIkeError):
        ike_proposal("aes-gcm-192", "sha-256", 19)    # not offered by this IKE
    with pytest.raises(LocalIkeError):
        esp_proposal("aes-gcm-128", pfs_group=5)      # group 5 not implemented
