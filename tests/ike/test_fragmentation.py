"""RFC 7383 IKEv2 fragmentation on in-memory pairs (certificates make IKE_AUTH large).

    HDR, SAi1, KEi, Ni, N(IKEV2_FRAGMENTATION_SUPPORTED)  -->
                          <--  HDR, SAr1, KEr, Nr, N(IKEV2_FRAGMENTATION_SUPPORTED)
    HDR, SKF(1/n){IDi, CERT, ...}, ..., HDR, SKF(n/n){...}  -->
                          <--  HDR, SKF(1/m){IDr, CERT, ...}, ..., HDR, SKF(m/m){...}
"""
import pytest

from inline_ipsec.ike import ChildSaUp
from inline_ipsec.ike.constants import NotifyType, PayloadType
from inline_ipsec.ike.errors import RemoteIkeError
from inline_ipsec.ike.message import decode_message
from inline_ipsec.ike.payloads import EncryptedFragmentPayload

from ike_helpers import cert_configs, configs, established, make_pair, make_pki


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def _auth_datagrams(p, direction):
    return [d for dirn, d, _ in p.log if dirn == direction and d[18] == 35]


def _frag_configs(pki, **kw):
    icfg, rcfg = cert_configs(pki)
    for cfg in (icfg, rcfg):
        cfg.fragment_size = 400
        for k, v in kw.items():
            setattr(cfg, k, v)
    return icfg, rcfg


@pytest.mark.parametrize("ike", ["aes128gcm16-prfsha256-ecp256", "aes256-sha384-ecp384"])
def test_large_ike_auth_is_fragmented_both_ways(pki, ike):
    p = established(*_frag_configs(pki, proposals=[ike]))
    req, resp = _auth_datagrams(p, "i->r"), _auth_datagrams(p, "r->i")
    assert len(req) > 2 and len(resp) > 2
    assert all(len(d) <= 400 and d[16] == PayloadType.SKF for d in req + resp)
    frags = [decode_message(d).payloads[-1] for d in req]
    assert [f.number for f in frags] == list(range(1, len(req) + 1))
    assert all(isinstance(f, EncryptedFragmentPayload) and f.total == len(req) for f in frags)
    assert frags[0].first_inner == PayloadType.IDi and frags[1].first_inner == 0
    ic = [e for e in p.i_events if isinstance(e, ChildSaUp)][0].child
    rc = [e for e in p.r_events if isinstance(e, ChildSaUp)][0].child
    assert ic.key_out == rc.key_in


def test_fragments_out_of_order_and_lost_fragment_retransmission(pki):
    p = make_pair(*_frag_configs(pki))
    p.step()                                   # IKE_SA_INIT
    frags = p.i.datagrams_to_send(0.0)         # IKE_AUTH request fragments
    assert len(frags) > 2
    for d, _ in reversed(frags[1:]):           # fragment 1 lost, the rest reversed
        p.r.receive_datagram(d, p.i_seen, 0.0)
    assert p.r.state == "init" and not p.r.datagrams_to_send(0.0)
    p.advance(4.0)                             # initiator retransmits every fragment
    assert p.i.state == p.r.state == "established"


def test_no_fragmentation_unless_both_support_it(pki):
    icfg, rcfg = _frag_configs(pki)
    rcfg.fragmentation = False
    p = established(icfg, rcfg)
    assert not p.i.frag_ok and not p.r.frag_ok
    assert len(_auth_datagrams(p, "i->r")) == 1 and len(_auth_datagrams(p, "r->i")) == 1
    assert _auth_datagrams(p, "i->r")[0][16] == PayloadType.SK


def test_small_messages_are_not_fragmented():
    p = established(*configs(fragment_size=400))
    assert p.i.frag_ok
    assert all(d[16] == PayloadType.SK for _, d, _ in p.log if d[18] == 35)


def test_bad_fragment_numbers_are_invalid_syntax():
    import struct
    hdr = bytes(8) + bytes(8) + bytes([53, 0x20, 35, 0x08]) + struct.pack("!II", 1, 0)
    for number, total, nxt in ((0, 1, 35), (3, 2, 0), (2, 2, 35)):
        body = struct.pack("!HH", number, total) + bytes(40)
        skf = struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
        wire = bytearray(b"\x01" + hdr[1:] + skf)
        struct.pack_into("!I", wire, 24, len(wire))
        with pytest.raises(RemoteIkeError) as exc:
            decode_message(bytes(wire))
        assert exc.value.notify_hint == NotifyType.INVALID_SYNTAX
