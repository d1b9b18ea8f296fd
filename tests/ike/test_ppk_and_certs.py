"""RFC 8784 PPK and certificate (RFC 7427 signature) authentication on in-memory pairs.

PPK exchange (RFC 8784 §3):
    HDR, SAi1, KEi, Ni, N(USE_PPK)  -->
                               <--  HDR, SAr1, KEr, Nr, N(USE_PPK)
    HDR, SK{IDi, AUTH(SK_pi'), N(PPK_IDENTITY), [N(NO_PPK_AUTH)], SAi2, TSi, TSr}  -->
                               <--  HDR, SK{IDr, AUTH(SK_pr'), N(PPK_IDENTITY), SAr2, ...}
"""
import pytest

from inline_ipsec.ike import ChildSaUp, Identity, IkeSaDown, IkeSaUp
from inline_ipsec.ike.constants import NotifyType
from inline_ipsec.ike.keymat import ppk_mix

from ike_helpers import cert_configs, configs, established, make_pair, make_pki

PPK = bytes(range(64))


def _of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def _child_keys_match(p):
    ic, rc = _of(p.i_events, ChildSaUp)[0].child, _of(p.r_events, ChildSaUp)[0].child
    return ic.key_out == rc.key_in and ic.key_in == rc.key_out


@pytest.mark.parametrize("required", [False, True])
def test_ppk_used_when_both_have_it(required):
    icfg, rcfg = configs(ppk_id=b"ppk-1", ppk=PPK, ppk_required=required)
    p = established(icfg, rcfg)
    assert _of(p.i_events, IkeSaUp)[0].ppk_used and _of(p.r_events, IkeSaUp)[0].ppk_used
    assert _child_keys_match(p)
    assert p.i.ike.keys.sk_d == p.r.ike.keys.sk_d


def test_ppk_changes_sk_d_relative_to_plain_keys():
    icfg, rcfg = configs(ppk_id=b"ppk-1", ppk=PPK)
    p = make_pair(icfg, rcfg)
    p.step()                                  # IKE_SA_INIT only
    plain = p.i.ike.keys
    p.run()
    assert p.i.ike.keys == ppk_mix(p.i.ike.prf, PPK, plain)
    assert p.i.ike.keys.sk_d != plain.sk_d and p.i.ike.keys.sk_ei == plain.sk_ei


def test_responder_without_ppk_support_ignores_use_ppk():
    icfg, rcfg = configs(i_ppk_id=b"ppk-1", i_ppk=PPK)
    p = established(icfg, rcfg)
    assert not _of(p.i_events, IkeSaUp)[0].ppk_used
    assert _child_keys_match(p)


def test_unknown_ppk_id_falls_back_to_no_ppk_auth():
    icfg, rcfg = configs(i_ppk_id=b"ppk-1", i_ppk=PPK, r_ppk_id=b"other", r_ppk=b"x" * 32)
    p = established(icfg, rcfg)
    assert not _of(p.i_events, IkeSaUp)[0].ppk_used
    assert not _of(p.r_events, IkeSaUp)[0].ppk_used
    assert _child_keys_match(p)


def test_mandatory_ppk_refuses_peer_without_ppk():
    icfg, rcfg = configs(i_ppk_id=b"ppk-1", i_ppk=PPK, i_ppk_required=True)
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.i.state == "closed"
    assert "PPK is mandatory" in str(_of(p.i_events, IkeSaDown)[0].error)


def test_responder_requiring_ppk_rejects_plain_initiator():
    icfg, rcfg = configs(r_ppk_id=b"ppk-1", r_ppk=PPK, r_ppk_required=True)
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.i.state == p.r.state == "closed"
    assert _of(p.i_events, IkeSaDown)[0].error.notify_hint == \
        NotifyType.AUTHENTICATION_FAILED


def test_wrong_ppk_value_fails_authentication():
    icfg, rcfg = configs(ppk_id=b"ppk-1", i_ppk=PPK, r_ppk=b"\x00" * 64, ppk_required=True)
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.r.state == "closed"
    assert _of(p.r_events, IkeSaDown)[0].error.notify_hint == NotifyType.AUTHENTICATION_FAILED


# ---- certificates ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki():
    return make_pki()


def test_certificate_auth_rsa_and_ecdsa_with_intermediate(pki):
    #   HDR, SK{IDi, CERT(i), CERTREQ, IDr, AUTH(RFC 7427 RSA-SHA256), SAi2, TSi, TSr}  -->
    #                 <--  HDR, SK{IDr, CERT(r), CERT(intermediate), AUTH(ECDSA-SHA256), ...}
    p = established(*cert_configs(pki))
    assert _of(p.i_events, IkeSaUp)[0].remote_id == "r.example"
    assert _of(p.r_events, IkeSaUp)[0].remote_id == "i.example"
    assert _child_keys_match(p)


def test_certificate_from_untrusted_ca_is_rejected(pki):
    p = make_pair(*cert_configs(pki, r_chain=[pki["rogue"]]))
    p.run()
    assert p.i.state == "closed"
    err = _of(p.i_events, IkeSaDown)[0].error
    assert err.notify_hint == NotifyType.AUTHENTICATION_FAILED and "trusted CA" in str(err)


def test_expired_certificate_is_rejected(pki):
    p = make_pair(*cert_configs(pki, r_chain=[pki["expired"], pki["inter"]]))
    p.run()
    assert p.i.state == "closed"
    assert "not valid now" in str(_of(p.i_events, IkeSaDown)[0].error)


def test_certificate_must_match_identity(pki):
    icfg, rcfg = cert_configs(pki)
    rcfg.local_id = Identity.parse("@mallory.example")
    icfg.remote_id = None
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.i.state == "closed"
    assert "does not contain the identity" in str(_of(p.i_events, IkeSaDown)[0].error)


def test_tampered_signature_fails(pki, monkeypatch):
    from inline_ipsec.ike import auth
    real = auth.sign

    def bad_sign(key, octets):
        method, data = real(key, octets)
        return method, data[:-1] + bytes([data[-1] ^ 1])
    icfg, rcfg = cert_configs(pki)
    p = make_pair(icfg, rcfg, connect=False)
    monkeypatch.setattr(auth, "sign", bad_sign)
    p.i.connect(0.0)
    p.run()
    assert p.r.state == "closed"
    assert _of(p.r_events, IkeSaDown)[0].error.notify_hint == NotifyType.AUTHENTICATION_FAILED


def test_certificate_auth_with_distinguished_name_identities(pki):
    icfg, rcfg = cert_configs(pki)
    icfg.local_id = rcfg.remote_id = Identity.of_certificate(pki["i_cert"])
    rcfg.local_id = icfg.remote_id = Identity.of_certificate(pki["r_cert"])
    p = established(icfg, rcfg)
    assert _of(p.i_events, IkeSaUp)[0].remote_id.startswith("DN:")
    assert _child_keys_match(p)
    # The DN of a different certificate is refused.
    icfg2, rcfg2 = cert_configs(pki)
    rcfg2.local_id = Identity.of_certificate(pki["i_cert"])   # not r's subject
    icfg2.remote_id = None
    p2 = make_pair(icfg2, rcfg2)
    p2.run()
    assert p2.i.state == "closed"
