"""In-memory IKEv2 initiator/responder pairs (RFC 7296 §1.2): IKE_SA_INIT + IKE_AUTH.

Each test draws the exchange it drives; assertions check what each side produced.
"""
import pytest

from inline_ipsec.ike import ChildConfig, ChildSaUp, IkeSaDown, IkeSaUp
from inline_ipsec.ike.constants import ExchangeType, NotifyType
from inline_ipsec.ike.message import decode_message
from inline_ipsec.ike.payloads import NotifyPayload
from inline_ipsec.ike.proposals import parse_proposal
from inline_ipsec.sa import SaSpec

from ike_helpers import I_ADDR, R_ADDR, configs, established, make_pair


def _ups(events, cls):
    return [e for e in events if isinstance(e, cls)]


def _exchanges(pair):
    out = []
    for direction, d, _ in pair.log:
        raw = d[4:] if d.startswith(b"\0\0\0\0") else d
        out.append((direction, ExchangeType(raw[18]).name, bool(raw[19] & 0x20)))
    return out


@pytest.mark.parametrize("ike, esp, cipher, key_len", [
    ("aes128gcm16-prfsha256-ecp256", "aes128gcm16", "aes-gcm-128", 20),
    ("aes256gcm16-prfsha384-x25519", "aes256gcm16", "aes-gcm-256", 36),
    ("aes128gcm16-prfsha256-x25519", "aes256gcm16-esn", "aes-gcm-256", 36),
    ("aes256-sha256-modp2048", "aes128-sha256", "aes-cbc-128", 16),
    ("aes128-sha512-ecp384", "aes256-sha384", "aes-cbc-256", 32),
    ("aes256gcm16-prfsha512-ecp521", "aes128gcm16", "aes-gcm-128", 20),
])
def test_psk_ike_sa_and_first_child(ike, esp, cipher, key_len):
    #   Initiator                              Responder
    #   HDR, SAi1, KEi, Ni, N(NAT_D*)     -->
    #                                    <--  HDR, SAr1, KEr, Nr, N(NAT_D*)
    #   HDR, SK{IDi, IDr, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr}  -->
    #                                    <--  HDR, SK{IDr, AUTH, SAr2, TSi, TSr}
    icfg, rcfg = configs(proposals=[ike], children=[ChildConfig(proposals=[esp])])
    p = established(icfg, rcfg)
    assert _exchanges(p) == [("i->r", "IKE_SA_INIT", False), ("r->i", "IKE_SA_INIT", True),
                             ("i->r", "IKE_AUTH", False), ("r->i", "IKE_AUTH", True)]
    (iup,), (rup,) = _ups(p.i_events, IkeSaUp), _ups(p.r_events, IkeSaUp)
    assert iup.spi_i == rup.spi_i and iup.spi_r == rup.spi_r
    assert iup.remote_id == "r.example" and rup.remote_id == "i.example"
    assert parse_proposal(iup.proposal).transforms == parse_proposal(ike).transforms
    (ic,), (rc,) = _ups(p.i_events, ChildSaUp), _ups(p.r_events, ChildSaUp)
    ic, rc = ic.child, rc.child
    assert ic.cipher == rc.cipher == cipher
    assert len(ic.key_out) == key_len
    assert ic.spi_out == rc.spi_in and ic.spi_in == rc.spi_out
    assert ic.key_out == rc.key_in and ic.key_in == rc.key_out
    assert ic.key_in != ic.key_out
    assert ic.integrity_key_out == rc.integrity_key_in
    assert ic.esn == rc.esn == esp.endswith("-esn")
    assert not ic.udp_encap


def test_child_sa_up_to_sa_specs_pair_up():
    p = established(*configs())
    ic = _ups(p.i_events, ChildSaUp)[0]
    rc = _ups(p.r_events, ChildSaUp)[0]
    i_out, i_in = ic.to_sa_specs(I_ADDR[0], R_ADDR[0])
    r_out, r_in = rc.to_sa_specs(R_ADDR[0], I_ADDR[0])
    assert isinstance(i_out, SaSpec)
    # What the initiator sends is exactly what the responder expects, and vice versa.
    assert (i_out.spi, i_out.key, i_out.tunnel_src, i_out.tunnel_dst) == \
        (r_in.spi, r_in.key, r_in.tunnel_src, r_in.tunnel_dst)
    assert (r_out.spi, r_out.key) == (i_in.spi, i_in.key)
    assert i_out.cipher == "aes-gcm-128" and len(i_out.key) == 20


def test_cbc_child_to_sa_specs_carry_integrity():
    icfg, rcfg = configs(children=[ChildConfig(proposals=["aes256-sha256"])])
    p = established(icfg, rcfg)
    out, inb = _ups(p.i_events, ChildSaUp)[0].to_sa_specs(I_ADDR[0], R_ADDR[0])
    assert out.integrity == "hmac-sha256-128" and len(out.integrity_key) == 32
    assert out.integrity_key != inb.integrity_key


def test_wrong_psk_fails_authentication_on_both_sides():
    #   HDR, SK{IDi, AUTH(wrong key), ...}  -->
    #                                    <--  HDR, SK{N(AUTHENTICATION_FAILED)}
    icfg, rcfg = configs(i_psk=b"not the right key")
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.i.state == p.r.state == "closed"
    (idown,), (rdown,) = _ups(p.i_events, IkeSaDown), _ups(p.r_events, IkeSaDown)
    assert idown.error.notify_hint == NotifyType.AUTHENTICATION_FAILED
    assert rdown.error.notify_hint == NotifyType.AUTHENTICATION_FAILED
    assert not _ups(p.i_events, ChildSaUp) and not _ups(p.r_events, IkeSaUp)


def test_unexpected_peer_identity_is_rejected():
    icfg, rcfg = configs()
    from inline_ipsec.ike import Identity
    rcfg.remote_id = Identity.parse("@someone-else.example")
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.i.state == p.r.state == "closed"
    assert _ups(p.r_events, IkeSaDown)[0].error.notify_hint == \
        NotifyType.AUTHENTICATION_FAILED


def test_no_proposal_chosen():
    #   HDR, SAi1(aes128gcm16-...-ecp256), KEi, Ni  -->
    #                                    <--  HDR, N(NO_PROPOSAL_CHOSEN)
    icfg, rcfg = configs(i_proposals=["aes128gcm16-prfsha256-ecp256"],
                         r_proposals=["aes256-sha512-modp2048"])
    p = make_pair(icfg, rcfg)
    p.run()
    assert _ups(p.i_events, IkeSaDown)[0].error.notify_hint == NotifyType.NO_PROPOSAL_CHOSEN
    assert p.i.state == "closed"


def test_invalid_ke_payload_retry_with_requested_group():
    #   HDR, SAi1(ecp256 | x25519), KEi(ecp256), Ni  -->
    #                                    <--  HDR, N(INVALID_KE_PAYLOAD, 31)
    #   HDR, SAi1(ecp256 | x25519), KEi(x25519), Ni  -->
    #                                    <--  HDR, SAr1(x25519), KEr, Nr
    icfg, rcfg = configs(i_proposals=["aes128gcm16-prfsha256-ecp256",
                                      "aes128gcm16-prfsha256-x25519"],
                         r_proposals=["aes128gcm16-prfsha256-x25519"])
    p = established(icfg, rcfg)
    init = [decode_message(d) for direction, d, _ in p.log if d[18] == 34]
    assert len(init) == 4
    assert init[1].first(NotifyPayload).notify_type == NotifyType.INVALID_KE_PAYLOAD
    assert init[1].first(NotifyPayload).data == (31).to_bytes(2, "big")
    assert all(m.header.message_id == 0 for m in init)
    assert _ups(p.i_events, IkeSaUp)[0].proposal == "aes128gcm16-prfsha256-x25519"


def test_cookie_round_trip():
    #   HDR(A,0), SAi1, KEi, Ni           -->
    #                                    <--  HDR(A,0), N(COOKIE)
    #   HDR(A,0), N(COOKIE), SAi1, KEi, Ni  -->
    #                                    <--  HDR(A,B), SAr1, KEr, Nr
    icfg, rcfg = configs(r_require_cookie=True)
    p = established(icfg, rcfg)
    init = [decode_message(d) for direction, d, _ in p.log if d[18] == 34]
    assert len(init) == 4
    cookie = init[1].payloads[0]
    assert cookie.notify_type == NotifyType.COOKIE and init[1].header.spi_r == bytes(8)
    assert init[2].payloads[0] == cookie  # §2.6: COOKIE first, echoed verbatim
    assert init[3].header.spi_r != bytes(8)


def test_nat_detected_floats_to_4500_and_encapsulates():
    #   HDR, SAi1, KEi, Ni, N(NAT_D_SRC(i)), N(NAT_D_DST(r))  --> (NAT rewrites src)
    #                                    <--  HDR, SAr1, KEr, Nr, N(NAT_D*)
    #   [non-ESP marker] HDR, SK{IDi, AUTH, ...}  --> (port 4500)
    #                                    <--  [non-ESP marker] HDR, SK{IDr, AUTH, ...}
    icfg, rcfg = configs()
    p = make_pair(icfg, rcfg, i_seen=("203.0.113.7", 61000))
    p.run()
    assert p.i.state == p.r.state == "established"
    assert p.i.local_nat and not p.i.remote_nat
    assert p.r.remote_nat and not p.r.local_nat
    marked = [d.startswith(b"\0\0\0\0") for _, d, _ in p.log]
    assert marked == [False, False, True, True]
    assert p.i.remote_addr == (R_ADDR[0], 4500)
    assert p.r.remote_addr == ("203.0.113.7", 61001)
    ic, rc = _ups(p.i_events, ChildSaUp)[0].child, _ups(p.r_events, ChildSaUp)[0].child
    assert ic.udp_encap and rc.udp_encap
    assert rc.remote_port == 61001
    out, _ = _ups(p.r_events, ChildSaUp)[0].to_sa_specs(R_ADDR[0], "203.0.113.7")
    assert out.udp_encap and out.udp_dport == 61001 and out.udp_sport == 4500


def test_force_encap_without_nat():
    icfg, rcfg = configs(i_force_encap=True)
    p = established(icfg, rcfg)
    assert p.i.local_nat and p.r.remote_nat
    assert _ups(p.r_events, ChildSaUp)[0].child.udp_encap


def test_lost_response_is_retransmitted_and_answered_from_cache():
    #   HDR, SK{IDi, AUTH, ...}  -->
    #                             X <--  response lost
    #   (4 s later) same request  -->
    #                                <--  cached response (no second child SA)
    icfg, rcfg = configs()
    p = make_pair(icfg, rcfg)
    dropped = []

    def drop(direction, d):
        if direction == "r->i" and d[18] == 35 and not dropped:
            dropped.append(d)
            return True
        return False
    p.run(drop)
    assert p.r.state == "established" and p.i.state == "auth"
    assert p.i.get_timer() == pytest.approx(4.0)
    p.advance(4.0)
    assert p.i.state == "established"
    auth_resps = [d for direction, d, _ in p.log if direction == "r->i" and d[18] == 35]
    assert len(auth_resps) == 2 and auth_resps[0] == auth_resps[1] == dropped[0]
    assert len(_ups(p.r_events, ChildSaUp)) == 1 and len(_ups(p.i_events, ChildSaUp)) == 1


def test_retransmission_backoff_then_give_up():
    icfg, rcfg = configs(retransmit_timeout=2.0, retransmit_base=2.0, retransmit_tries=3)
    p = make_pair(icfg, rcfg)
    p.i.datagrams_to_send(0.0)  # the responder never hears anything
    deadlines = []
    now = 0.0
    while p.i.state != "closed":
        now = p.i.get_timer()
        deadlines.append(now)
        p.i.handle_timer(now)
        p.i.datagrams_to_send(now)
    assert deadlines == [2.0, 2.0 + 4.0, 6.0 + 8.0, 14.0 + 16.0]
    down = p.i.next_event()
    assert isinstance(down, IkeSaDown) and down.reason == "retransmit timeout"


def test_traffic_selectors_are_narrowed_by_the_responder():
    icfg, rcfg = configs(
        i_children=[ChildConfig(local_ts=["10.1.0.0/16"], remote_ts=["0.0.0.0/0"])],
        r_children=[ChildConfig(local_ts=["10.2.0.0/24"], remote_ts=["10.1.5.0/24"])])
    p = established(icfg, rcfg)
    ic = _ups(p.i_events, ChildSaUp)[0].child
    rc = _ups(p.r_events, ChildSaUp)[0].child
    assert [str(t) for t in ic.local_ts] == ["10.1.5.0/24"]
    assert [str(t) for t in ic.remote_ts] == ["10.2.0.0/24"]
    assert rc.local_ts == ic.remote_ts and rc.remote_ts == ic.local_ts


def test_child_failure_keeps_ike_sa():
    #   HDR, SK{..., SAi2(aes128gcm16), TSi, TSr}  -->
    #                                <--  HDR, SK{IDr, AUTH, N(NO_PROPOSAL_CHOSEN)}
    icfg, rcfg = configs(i_children=[ChildConfig(proposals=["aes128gcm16"])],
                         r_children=[ChildConfig(proposals=["aes256-sha256"])])
    p = established(icfg, rcfg)
    assert _ups(p.i_events, IkeSaUp) and _ups(p.r_events, IkeSaUp)
    assert not _ups(p.i_events, ChildSaUp) and not _ups(p.r_events, ChildSaUp)
    assert p.i.errors[-1].notify_hint == NotifyType.NO_PROPOSAL_CHOSEN


def test_tampered_message_is_dropped_silently():
    icfg, rcfg = configs()
    p = make_pair(icfg, rcfg)

    def corrupt(direction, d):
        if direction == "i->r" and d[18] == 35:
            bad = bytearray(d)
            bad[-1] ^= 0xFF
            p.r.receive_datagram(bytes(bad), I_ADDR, p.now)
            return True
        return False
    p.step()          # IKE_SA_INIT
    p.step(corrupt)   # IKE_AUTH request arrives corrupted
    assert p.r.state == "init" and p.r.ike.peer_mid == 1
    assert not p.r.datagrams_to_send(0.0)
    p.advance(4.0)    # retransmission gets through
    assert p.r.state == "established"


def test_ipv6_endpoints_and_selectors():
    from inline_ipsec.ike import IkeV2Session
    icfg, rcfg = configs(i_children=[ChildConfig(local_ts=["2001:db8:1::/48"],
                                                 remote_ts=["2001:db8:2::/48"])],
                         r_children=[ChildConfig(local_ts=["2001:db8:2::/48"],
                                                 remote_ts=["2001:db8::/32"])])
    a, b = ("2001:db8::1", 500), ("2001:db8::2", 500)
    i = IkeV2Session(icfg, initiator=True, local_addr=a, remote_addr=b)
    r = IkeV2Session(rcfg, initiator=False, local_addr=b, remote_addr=a)
    i.connect(0.0)
    for _ in range(3):
        for d, _ in i.datagrams_to_send(0.0):
            r.receive_datagram(d, a, 0.0)
        for d, _ in r.datagrams_to_send(0.0):
            i.receive_datagram(d, b, 0.0)
    assert i.state == r.state == "established" and not i.nat_detected
    ev = [e for e in iter(i.next_event, None) if isinstance(e, ChildSaUp)][0]
    assert [str(t) for t in ev.child.local_ts] == ["2001:db8:1::/48"]
    out, inb = ev.to_sa_specs(a[0], b[0])
    assert out.outer_ipv6 and out.tunnel_dst == "2001:db8::2"


def test_requests_outside_the_window_are_dropped():
    # RFC 7296 §2.3: with window size 1 only message ID peer_mid is processed; an old ID
    # that is not the cached one, or a future ID, gets no answer.
    from inline_ipsec.ike.message import IkeHeader
    from inline_ipsec.ike.constants import HeaderFlag
    p = established(*configs())
    i = p.i.ike
    for mid in (5, 0):
        hdr = IkeHeader(i.spi_i, i.spi_r, 0, ExchangeType.INFORMATIONAL, HeaderFlag.INITIATOR,
                        mid)
        p.r.receive_datagram(i.sk_out.seal(hdr, []), I_ADDR, 1.0)
        assert p.r.datagrams_to_send(1.0) == []
    assert p.r.ike.peer_mid == 2
    hdr = IkeHeader(i.spi_i, i.spi_r, 0, ExchangeType.INFORMATIONAL, HeaderFlag.INITIATOR, 2)
    p.r.receive_datagram(i.sk_out.seal(hdr, []), I_ADDR, 1.0)
    assert len(p.r.datagrams_to_send(1.0)) == 1 and p.r.ike.peer_mid == 3


def test_half_open_responder_times_out():
    #   HDR, SAi1, KEi, Ni  -->
    #                      <--  HDR, SAr1, KEr, Nr
    #   (no IKE_AUTH ever arrives)
    icfg, rcfg = configs(r_half_open_timeout=30.0)
    p = make_pair(icfg, rcfg)
    p.step(drop=lambda direction, d: d[18] == 35)   # IKE_AUTH lost for good
    assert p.r.state == "init" and p.r.get_timer() == pytest.approx(30.0)
    p.r.handle_timer(29.0)
    assert p.r.state == "init"
    p.r.handle_timer(30.0)
    down = p.r.next_event()
    assert p.r.state == "closed" and down.reason == "half-open timeout"


def test_ike_spis_never_look_like_the_non_esp_marker():
    # RFC 3948 §2.2: a datagram on 4500 starting with four zero bytes is IKE; our SPIi must
    # therefore never start with them, even if the random source produces them.
    from inline_ipsec.ike.v2.natt import new_ike_spi
    draws = iter([bytes(8), bytes(4) + b"\x01\x02\x03\x04", b"\x00\x00\x00\x01" + bytes(4)])
    assert new_ike_spi(lambda n: next(draws)) == b"\x00\x00\x00\x01" + bytes(4)
