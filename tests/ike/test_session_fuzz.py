"""A session must survive anything on the wire: `receive_datagram` never raises, whatever the
bytes (malformed input becomes a dropped datagram or an error notify, RFC 7296 §2.21)."""
import struct

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inline_ipsec.ike import IkeV2Session
from inline_ipsec.ike.constants import ExchangeType, HeaderFlag, NotifyType, ProtocolId
from inline_ipsec.ike.message import IkeHeader, encode_message, parse_header
from inline_ipsec.ike.payloads import (AuthPayload, DeletePayload, IdiPayload, KePayload,
                                       NoncePayload, NotifyPayload, Proposal, SaPayload,
                                       Transform, TrafficSelector, TsiPayload, TsrPayload,
                                       UnknownPayload)

from ike_helpers import I_ADDR, R_ADDR, configs, established, make_pair

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _first_init_request():
    p = make_pair(*configs())
    return p.i.datagrams_to_send(0.0)[0][0]


INIT = _first_init_request()


@SETTINGS
@given(st.data())
def test_fresh_responder_survives_mutated_ike_sa_init(data):
    wire = bytearray(INIT)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(28, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        wire = wire[:data.draw(st.integers(0, len(wire)))]
        if len(wire) >= 28:
            struct.pack_into("!I", wire, 24, len(wire))
    _, rcfg = configs()
    r = IkeV2Session(rcfg, initiator=False, local_addr=R_ADDR, remote_addr=I_ADDR)
    r.receive_datagram(bytes(wire), I_ADDR, 0.0)
    event(_assert_dropped_or_answered(bytes(wire), r.datagrams_to_send(0.0)))


def _assert_dropped_or_answered(request: bytes, out: list) -> str:
    """What a responder may do with an IKE_SA_INIT request: drop it (no datagram), or send
    exactly one IKE_SA_INIT response (RFC 7296 §2.21: the reply to a bad one is an error
    notify) with the request's message ID and initiator SPI, to the sender."""
    assert len(out) <= 1
    if not out:
        return "dropped"
    [(reply, to)] = out
    h = parse_header(reply)
    assert h.is_response and not h.is_initiator
    assert h.exchange == ExchangeType.IKE_SA_INIT and h.message_id == 0
    assert h.spi_i == request[:8]
    assert to == I_ADDR
    return "answered"


def test_fresh_responder_answers_the_unmutated_request():
    """The mutation test's baseline: the same request unmutated gets one proper response."""
    _, rcfg = configs()
    r = IkeV2Session(rcfg, initiator=False, local_addr=R_ADDR, remote_addr=I_ADDR)
    r.receive_datagram(INIT, I_ADDR, 0.0)
    out = r.datagrams_to_send(0.0)
    assert _assert_dropped_or_answered(INIT, out) == "answered"


@SETTINGS
@given(st.binary(max_size=400))
def test_established_session_survives_random_datagrams(blob):
    p = established(*configs())
    spi = p.r.ike.spi_i + p.r.ike.spi_r
    for data in (blob, spi + blob, b"\0\0\0\0" + spi + blob):
        p.r.receive_datagram(data, I_ADDR, 1.0)
        p.i.receive_datagram(data, R_ADDR, 1.0)
    assert p.r.state == p.i.state == "established"


_ts = TrafficSelector.from_network("10.0.0.0/8")
_payload = st.one_of(
    st.builds(lambda b: UnknownPayload(type=200, body=b), st.binary(max_size=20)),
    st.builds(lambda t, d: NotifyPayload(t, d), st.sampled_from(list(NotifyType)),
              st.binary(max_size=12)),
    st.builds(lambda spis: DeletePayload(ProtocolId.ESP, spis),
              st.lists(st.binary(min_size=4, max_size=4), max_size=3)),
    st.just(DeletePayload(ProtocolId.IKE, [])),
    st.builds(lambda n: NoncePayload(n), st.binary(min_size=16, max_size=40)),
    st.builds(lambda g, d: KePayload(g, d), st.sampled_from([14, 19, 31, 7]),
              st.binary(max_size=70)),
    st.builds(lambda d: IdiPayload(2, d), st.binary(max_size=10)),
    st.builds(lambda m, d: AuthPayload(m, d), st.integers(0, 20), st.binary(max_size=40)),
    st.builds(lambda spi, tt, tid: SaPayload([Proposal(1, ProtocolId.ESP, spi,
                                                       [Transform(tt, tid, 128)])]),
              st.binary(max_size=8), st.integers(1, 5), st.integers(0, 40)),
    st.just(TsiPayload([_ts])), st.just(TsrPayload([_ts])),
)


@SETTINGS
@given(st.lists(_payload, max_size=6),
       st.sampled_from([ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL,
                        ExchangeType.IKE_AUTH]), st.booleans())
def test_authenticated_garbage_requests_and_responses(payloads, exchange, as_response):
    """Properly protected messages with nonsense inside: the session answers or drops, never
    raises; the IKE SA survives unless the peer deletes it."""
    p = established(*configs())
    i = p.i.ike
    if as_response:   # a response to a request the initiator has in flight
        p.i.send_dpd(0.0)
        p.i.datagrams_to_send(0.0)
        mid, flags = i.pending.mid, HeaderFlag.RESPONSE
        exchange = ExchangeType.INFORMATIONAL
        target, sealer = p.i, p.r.ike.sk_out
    else:
        mid, flags = i.next_mid, HeaderFlag.INITIATOR
        target, sealer = p.r, i.sk_out
    hdr = IkeHeader(i.spi_i, i.spi_r, 0, exchange, flags, mid)
    target.receive_datagram(sealer.seal(hdr, payloads), I_ADDR, 1.0)
    target.datagrams_to_send(1.0)
    deleted = any(isinstance(x, DeletePayload) and x.protocol == ProtocolId.IKE
                  for x in payloads)
    assert target.state in (("established", "closed") if deleted else ("established",))


def test_plain_ike_sa_init_garbage_gets_error_notify_not_exception():
    hdr = IkeHeader(b"\x01" * 8, bytes(8), 0, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0)
    wire = encode_message(hdr, [NoncePayload(b"n" * 16)])   # no SA, no KE
    _, rcfg = configs()
    r = IkeV2Session(rcfg, initiator=False, local_addr=R_ADDR, remote_addr=I_ADDR)
    r.receive_datagram(wire, I_ADDR, 0.0)
    (resp, _), = r.datagrams_to_send(0.0)
    assert resp[19] & HeaderFlag.RESPONSE
    assert NotifyType.INVALID_SYNTAX.to_bytes(2, "big") in resp


@SETTINGS
@given(st.lists(_payload, max_size=6), st.integers(120, 300), st.randoms())
def test_fragmented_garbage_in_any_order(payloads, size, rnd):
    """RFC 7383 fragments of nonsense, delivered shuffled and with duplicates: answered or
    dropped once complete, never an exception."""
    p = established(*configs())
    assert p.r.frag_ok
    i = p.i.ike
    hdr = IkeHeader(i.spi_i, i.spi_r, 0, ExchangeType.INFORMATIONAL, HeaderFlag.INITIATOR,
                    i.next_mid)
    frags = i.sk_out.seal_fragments(hdr, payloads, size)
    order = frags + frags[: rnd.randint(0, len(frags))]
    rnd.shuffle(order)
    for d in order:
        p.r.receive_datagram(d, I_ADDR, 1.0)
    assert len(p.r.datagrams_to_send(1.0)) >= 1   # the request was reassembled and answered
    assert len(p.r.ike.fragments) == 0


@SETTINGS
@given(st.binary(max_size=200), st.integers(0, 255), st.booleans())
def test_authentic_messages_with_garbage_plaintext(plain, first_type, as_response):
    """Correctly encrypted and authenticated, but the decrypted payload chain is nonsense:
    a request gets an answer (INVALID_SYNTAX, §3.10.1), a response fails its exchange; no
    exception, and the IKE SA stays up."""
    from inline_ipsec.ike.payloads import UnknownPayload as Raw

    class Blob(Raw):   # lets the sealer emit arbitrary plaintext with a chosen first type
        def encode_body(self):
            return plain
    p = established(*configs())
    i = p.i.ike
    if as_response:
        p.i.send_dpd(0.0)
        p.i.datagrams_to_send(0.0)
        hdr = IkeHeader(i.spi_i, i.spi_r, 0, ExchangeType.INFORMATIONAL,
                        HeaderFlag.RESPONSE, i.pending.mid)
        sealer, target = p.r.ike.sk_out, p.i
    else:
        hdr = IkeHeader(i.spi_i, i.spi_r, 0, ExchangeType.INFORMATIONAL,
                        HeaderFlag.INITIATOR, i.next_mid)
        sealer, target = i.sk_out, p.r
    wire = bytearray(sealer.seal(hdr, [Blob(type=first_type)]))
    target.receive_datagram(bytes(wire), I_ADDR, 1.0)
    out = target.datagrams_to_send(1.0)
    if not as_response:
        assert len(out) == 1
    else:
        assert target.ike.pending is None or target.ike.pending.mid != hdr.message_id
    assert target.state == "established"
