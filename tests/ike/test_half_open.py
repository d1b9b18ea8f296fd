"""Half-open IKE SAs under a flood (RFC 7296 §2.6): an `IkeManager` responder counts the IKE
SAs that answered IKE_SA_INIT but never saw IKE_AUTH; past `cookie_threshold` it answers new
IKE_SA_INIT requests statelessly with HDR, N(COOKIE) and keeps state only for requests that
return a valid cookie; past `max_half_open` it drops them; half-open SAs time out.

    Initiator (spoofed)                    Responder
    ---------------------------------------------------------------------------
    HDR(A,0), SAi1, KEi, Ni  -->
                             <--  HDR(A,0), N(COOKIE)           (no state kept)
    HDR(A,0), N(COOKIE), SAi1, KEi, Ni  -->   (only from a peer that receives)
                             <--  HDR(A,B), SAr1, KEr, Nr, [CERTREQ]
"""
from __future__ import annotations

import pytest
from ike_helpers import configs

from inline_ipsec.ike import ChildSaUp, IkeSaUp, IkeV2Session
from inline_ipsec.ike.constants import (NON_ESP_MARKER, ExchangeType, HeaderFlag, NotifyType,
                                        PayloadType)
from inline_ipsec.ike.manager import IkeManager
from inline_ipsec.ike.message import IkeHeader, decode_message, encode_message
from inline_ipsec.ike.payloads import NotifyPayload, SaPayload, notify

R = ("198.51.100.1", 500)
LEGIT = ("192.0.2.1", 500)
IKE = ("aes128gcm16-prfsha256-x25519",)       # cheap DH: the flood is what is under test


def _cfgs(**kw):
    return configs(proposals=IKE, **kw)


def _responder(**kw) -> tuple[IkeManager, object]:
    icfg, rcfg = _cfgs(r_half_open_timeout=30.0)
    m = IkeManager(R, 4500, **kw)
    m.add_peer("0.0.0.0/0", rcfg)
    return m, icfg


def _template(icfg) -> bytes:
    """A genuine IKE_SA_INIT request, replayed by the flood with other SPIs and addresses."""
    s = IkeV2Session(icfg, initiator=True, local_addr=LEGIT, remote_addr=R)
    s.connect(0.0)
    [(data, _)] = s.datagrams_to_send(0.0)
    return data


def _spoof(template: bytes, n: int) -> tuple[bytes, tuple]:
    spi = (0x5A00_0000_0000_0000 + n).to_bytes(8, "big")
    return spi + template[8:], (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 500)


def _with_cookie(request: bytes, cookie: bytes) -> bytes:
    """§2.6: the same request again, with N(COOKIE) as its first payload."""
    msg = decode_message(request)
    h = msg.header
    hdr = IkeHeader(h.spi_i, h.spi_r, 0, h.exchange, h.flags, h.message_id)
    return encode_message(hdr, [notify(NotifyType.COOKIE, cookie)] + msg.payloads)


def _cookie_of(reply: bytes) -> bytes | None:
    """The cookie of a stateless HDR, N(COOKIE) answer, checked per §2.6; None otherwise."""
    msg = decode_message(reply)
    if any(isinstance(p, SaPayload) for p in msg.payloads):
        return None
    h = msg.header
    assert h.exchange == ExchangeType.IKE_SA_INIT and h.flags & HeaderFlag.RESPONSE
    assert h.spi_r == bytes(8) and h.message_id == 0
    [n] = msg.payloads
    assert isinstance(n, NotifyPayload) and n.notify_type == NotifyType.COOKIE
    assert msg.header.next_payload == PayloadType.NOTIFY
    assert 1 <= len(n.data) <= 64 and n.data[:3] == b"\0\0\0"    # version ID of secret
    return n.data


def _send(m: IkeManager, data: bytes, addr: tuple, now: float = 0.0) -> list[bytes]:
    """One datagram in; the answers to that address out (all others are discarded)."""
    m.receive_datagram(data, addr, now)
    return [d for d, a in m.datagrams_to_send(now) if tuple(a) == tuple(addr)]


def test_defaults() -> None:
    m = IkeManager(R, 4500)
    assert (m.cookie_threshold, m.max_half_open) == (100, 1000)
    assert m.counters() == {"sessions": 0, "half_open": 0, "cookies_sent": 0,
                            "bad_cookies": 0, "dropped_half_open": 0, "unknown_spi": 0,
                            "dropped_stateless": 0}


def test_flood_turns_on_cookies_and_keeps_state_bounded() -> None:
    m, icfg = _responder(cookie_threshold=20, max_half_open=50)
    template = _template(icfg)
    answers = {"sa": 0, "cookie": 0}
    for n in range(300):
        data, addr = _spoof(template, n)
        [reply] = _send(m, data, addr)
        cookie = _cookie_of(reply)
        answers["cookie" if cookie else "sa"] += 1
        assert len(m.sessions) == m.half_open <= 20          # state stays bounded
    assert answers == {"sa": 20, "cookie": 280}
    assert m.counters() == {"sessions": 20, "half_open": 20, "cookies_sent": 280,
                            "bad_cookies": 0, "dropped_half_open": 0, "unknown_spi": 0,
                            "dropped_stateless": 0}
    # a retransmission of a request that already has state is answered by its session
    data, addr = _spoof(template, 3)
    [reply] = _send(m, data, addr)
    assert _cookie_of(reply) is None and m.cookies_sent == 280
    # a request from an address other than the one the cookie was made for gets a new one
    data, addr = _spoof(template, 299)
    [reply] = _send(m, data, addr)
    cookie = _cookie_of(reply)
    [again] = _send(m, _with_cookie(data, cookie), ("203.0.113.9", 500))
    assert _cookie_of(again) not in (None, cookie) and m.bad_cookies == 1
    assert len(m.sessions) == 20


def test_legitimate_initiator_completes_while_the_flood_continues() -> None:
    m, icfg = _responder(cookie_threshold=20, max_half_open=50)
    template = _template(icfg)
    flood = iter(range(10**6))
    for _ in range(40):                                         # the flood is on
        _send(m, *_spoof(template, next(flood)))
    assert m.cookies_required and m.half_open == 20
    peer = IkeManager(LEGIT, 4500)
    s = peer.connect(icfg, R, 0.0)
    saw_cookie = False
    for _ in range(10):
        for d, _addr in peer.datagrams_to_send(0.0):
            for _ in range(5):                                  # ... and goes on
                _send(m, *_spoof(template, next(flood)))
            for reply in _send(m, d, LEGIT):
                if decode_message(reply).header.exchange == ExchangeType.IKE_SA_INIT:
                    saw_cookie = saw_cookie or _cookie_of(reply) is not None
                peer.receive_datagram(reply, R, 0.0)
        if s.state == "established":
            break
    assert saw_cookie and s.state == "established"
    events = list(iter(peer.next_event, None))
    assert any(isinstance(e, IkeSaUp) for _, e in events)
    assert any(isinstance(e, ChildSaUp) for _, e in events)
    # the established SA is no longer half-open; the flood left only its first 20
    assert m.half_open == 20 and len(m.sessions) == 21
    [ours] = [x for x in m.sessions if x.state == "established"]
    assert ours.remote_addr == LEGIT


def test_hard_limit_drops_and_the_timeout_brings_the_counters_back() -> None:
    m, icfg = _responder(cookie_threshold=10, max_half_open=30)
    template = _template(icfg)
    replies = 0
    for n in range(100):                  # peers that do return cookies, never IKE_AUTH
        data, addr = _spoof(template, n)
        answer = _send(m, data, addr)
        if answer and (cookie := _cookie_of(answer[0])) is not None:
            answer = _send(m, _with_cookie(data, cookie), addr)
            assert answer and _cookie_of(answer[0]) is None           # state created
        replies += bool(answer)
        assert m.half_open <= 30 and len(m.sessions) <= 30
    assert replies == 30
    assert m.counters() == {"sessions": 30, "half_open": 30, "cookies_sent": 20,
                            "bad_cookies": 0, "dropped_half_open": 70,
                            "unknown_spi": 0, "dropped_stateless": 0}
    # a valid cookie does not get past the hard limit either
    data, addr = _spoof(template, 1000)
    assert _send(m, data, addr) == [] and m.dropped_half_open == 71
    # half-open SAs still time out (half_open_timeout = 30 s after their last message)
    assert m.get_timer() == pytest.approx(30.0)
    m.handle_timer(30.0)
    m.datagrams_to_send(30.0)
    assert m.half_open == 0 and m.sessions == [] and not m.cookies_required
    data, addr = _spoof(template, 2000)
    [reply] = _send(m, data, addr, 31.0)                         # no cookie needed again
    assert _cookie_of(reply) is None and m.half_open == 1
    assert m.counters()["dropped_half_open"] == 71               # totals stay totals


def test_require_cookie_config_is_answered_by_the_manager_without_a_session() -> None:
    icfg, rcfg = _cfgs(r_require_cookie=True)
    m = IkeManager(R, 4500)
    m.add_peer("0.0.0.0/0", rcfg)
    data, addr = _spoof(_template(icfg), 7)
    m.receive_datagram(data, addr, 0.0)
    assert m.sessions == []                                      # nothing, not even briefly
    [(reply, to)] = m.datagrams_to_send(0.0)
    assert tuple(to) == addr and _cookie_of(reply) is not None and m.cookies_sent == 1
    # on the NAT-T port the answer keeps the non-ESP marker (RFC 3948 §2.2)
    natt = (addr[0], 4500)
    m.receive_datagram(NON_ESP_MARKER + data, natt, 0.0)
    [(reply, to)] = m.datagrams_to_send(0.0)
    assert tuple(to) == natt and reply.startswith(NON_ESP_MARKER)
    assert _cookie_of(reply[4:]) is not None and m.sessions == []
    [answer] = _send(m, _with_cookie(data, _cookie_of(reply[4:])), addr)
    assert _cookie_of(answer) is None and m.half_open == 1


def test_thresholds_can_be_switched_off() -> None:
    m, icfg = _responder(cookie_threshold=None, max_half_open=None)
    template = _template(icfg)
    for n in range(60):
        [reply] = _send(m, *_spoof(template, n))
        assert _cookie_of(reply) is None
    assert m.half_open == 60 and m.cookies_sent == m.dropped_half_open == 0


def test_cookie_secret_rotates_and_cookies_of_the_previous_secret_still_pass() -> None:
    """§2.6: <VersionIDofSecret> names the secret; after a rotation a cookie of the previous
    secret is accepted once more, one of an older secret is refused with a fresh cookie."""
    from inline_ipsec.ike.cookies import ROTATION_PERIOD
    m, icfg = _responder(cookie_threshold=0)            # cookies for every new request
    template = _template(icfg)
    first, a1 = _spoof(template, 1)
    [reply] = _send(m, first, a1, now=0.0)
    c1 = _cookie_of(reply)
    assert c1[:4] == b"\0\0\0\1"
    t = ROTATION_PERIOD + 1.0                           # one rotation later
    second, a2 = _spoof(template, 2)
    [reply] = _send(m, second, a2, now=t)
    c2 = _cookie_of(reply)
    assert c2[:4] == b"\0\0\0\2"                        # the new secret's version ID
    [ok] = _send(m, _with_cookie(first, c1), a1, now=t)  # the previous secret: accepted
    assert _cookie_of(ok) is None and len(m.sessions) == 1
    t += ROTATION_PERIOD                                # a second rotation: c1 is too old
    third, a3 = _spoof(template, 3)
    [reply] = _send(m, third, a3, now=t)
    c3 = _cookie_of(reply)
    assert c3[:4] == b"\0\0\0\3"
    [again] = _send(m, _with_cookie(third, c1[:4] + c3[4:]), a3, now=t)   # forged version
    assert _cookie_of(again) is not None and m.bad_cookies == 1
    [ok] = _send(m, _with_cookie(second, c2), a2, now=t)   # c2 is the previous now
    assert _cookie_of(ok) is None and len(m.sessions) == 2
    # after two quiet periods neither secret of before survives
    t += 2 * ROTATION_PERIOD + 1.0
    [reply] = _send(m, _with_cookie(third, c3), a3, now=t)
    assert _cookie_of(reply) is not None and m.bad_cookies == 2 and len(m.sessions) == 2


def test_cookie_secrets_unit() -> None:
    from inline_ipsec.ike.cookies import CookieSecrets
    s = CookieSecrets(period=10.0)
    c = s.make("192.0.2.1", b"n" * 16, b"s" * 8, now=0.0)
    assert len(c) == 36 and s.check(c, "192.0.2.1", b"n" * 16, b"s" * 8, now=5.0)
    assert not s.check(c, "192.0.2.2", b"n" * 16, b"s" * 8, now=5.0)   # another address
    assert not s.check(c[:-1], "192.0.2.1", b"n" * 16, b"s" * 8, now=5.0)
    assert s.check(c, "192.0.2.1", b"n" * 16, b"s" * 8, now=12.0) and s.rotations == 1
    assert not s.check(c, "192.0.2.1", b"n" * 16, b"s" * 8, now=23.0) and s.rotations == 2
    with pytest.raises(ValueError):
        CookieSecrets(period=0)
