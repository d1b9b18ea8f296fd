"""IKE events drive the gateway: ChildSaUp installs, ChildSaRekeyed rekeys make-before-break,
ChildSaDown removes (the objects are the IKE package's own event classes)."""
from __future__ import annotations

from inline_ipsec.config import License
from inline_ipsec.gateway import Gateway, WireLink
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.ike.events import (ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown,
                                     IkeSaUp, NegotiatedChildSa)
from inline_ipsec.ike.payloads import TrafficSelector

A, B = "192.0.2.1", "198.51.100.1"


def child(spi_a: int, spi_b: int, cipher: str = "aes-gcm-128", side: str = "a", **kw
          ) -> NegotiatedChildSa:
    """The child SA as side `side` sees it (spi_a: the SPI a receives on)."""
    n = 20 if cipher == "aes-gcm-128" else 32
    ka, kb = bytes([spi_a & 0xFF]) * n, bytes([spi_b & 0xFF]) * n
    if cipher != "aes-gcm-128":
        kw.update(integrity="hmac-sha256-128")
        kw.setdefault("integrity_key_in", bytes(32) if side == "a" else bytes([1]) * 32)
        kw.setdefault("integrity_key_out", bytes([1]) * 32 if side == "a" else bytes(32))
    net_a, net_b = TrafficSelector.from_network("10.1.0.0/16"), \
        TrafficSelector.from_network("10.2.0.0/16")
    if side == "a":
        return NegotiatedChildSa("c", spi_in=spi_a, spi_out=spi_b, cipher=cipher, key_in=ka,
                                 key_out=kb, local_ts=[net_a], remote_ts=[net_b], **kw)
    return NegotiatedChildSa("c", spi_in=spi_b, spi_out=spi_a, cipher=cipher, key_in=kb,
                             key_out=ka, local_ts=[net_b], remote_ts=[net_a], **kw)


def test_child_sa_up_rekey_down() -> None:
    a = Gateway(name="a", license=License())
    b = Gateway(name="b", license=License())
    link = WireLink(a, b)
    assert a.handle_ike_event("t", IkeSaUp(b"i", b"r", True, "a", "b", "x"), A, B) is False
    assert a.handle_ike_event("t", ChildSaUp(child(0x1001, 0x2001)), A, B)
    assert b.handle_ike_event("t", ChildSaUp(child(0x1001, 0x2001, side="b")), B, A)
    assert a.tunnel("t").offloaded
    pkt = udp_packet("10.1.0.1", "10.2.0.1", b"via IKE")
    assert link.send(a, [pkt]).delivered == [pkt]
    old_wire = a.outbound([pkt]).wire
    # rekey: new SPIs 0x1002/0x2002; the old inbound SA drains
    assert b.handle_ike_event("t", ChildSaRekeyed(0x2001, 0x1001,
                                                  child(0x1002, 0x2002, side="b")), B, A)
    assert a.handle_ike_event("t", ChildSaRekeyed(0x1001, 0x2001, child(0x1002, 0x2002)), A, B)
    assert b.inbound(old_wire).delivered == [pkt]
    assert link.send(a, [pkt]).delivered == [pkt]
    assert a.tunnel("t").pairs[0].outbound.spi == 0x2002
    # the old SA's delete, then the tunnel's
    b.handle_ike_event("t", ChildSaDown(0x2001, 0x1001), B, A)
    assert b.inbound(old_wire).dropped == 1
    b.handle_ike_event("t", ChildSaDown(0x2002, 0x1002, reason="expired"), B, A)
    assert b.tunnel_names() == []
    assert b.inbound(a.outbound([pkt]).wire).dropped == 1


def test_second_child_then_delete_one() -> None:
    a = Gateway(name="a", license=License())
    a.handle_ike_event("t", ChildSaUp(child(0x1001, 0x2001, "aes-cbc-256")), A, B)
    a.handle_ike_event("t", ChildSaUp(child(0x1003, 0x2003, "aes-cbc-256")), A, B)
    assert len(a.tunnel("t").pairs) == 2 and not a.tunnel("t").offloaded
    a.handle_ike_event("t", ChildSaDown(0x1001, 0x2001), A, B)
    assert [p.inbound.spi for p in a.tunnel("t").pairs] == [0x1003]
    assert a.selectors("t")[0].remote[0].with_prefixlen == "10.2.0.0/16"
    assert any("received DEL notification" in e for e in a.distributor.events("t"))


def test_ike_sa_down_removes_its_children() -> None:
    # An IKE SA that goes down (Delete, DPD, INITIAL_CONTACT) emits only IkeSaDown(children);
    # handle_ike_event alone must remove every listed pair, including a draining old SA.
    a = Gateway(name="a", license=License())
    a.handle_ike_event("t", ChildSaUp(child(0x1001, 0x2001, "aes-cbc-256")), A, B)
    a.handle_ike_event("t", ChildSaUp(child(0x1003, 0x2003, "aes-cbc-256")), A, B)
    a.handle_ike_event("t", ChildSaRekeyed(0x1001, 0x2001,
                                           child(0x1002, 0x2002, "aes-cbc-256")), A, B)
    a.handle_ike_event("t", ChildSaUp(child(0x1005, 0x2005, "aes-cbc-256")), A, B)
    assert a.handle_ike_event("u", ChildSaUp(child(0x1009, 0x2009)), A, B)
    assert [d.spec.spi for d in a.tunnel("t").draining] == [0x1001]
    down = IkeSaDown("dead peer", None, [(0x1002, 0x2002), (0x1003, 0x2003)])
    assert a.handle_ike_event("t", down, A, B) is True
    assert [p.inbound.spi for p in a.tunnel("t").pairs] == [0x1005]
    assert any("dead peer" in e for e in a.distributor.events("t"))
    # the session's list may still name the old SA (its delete was pending): no error, and
    # replaying the same event (or a ChildSaDown for a pair already gone) changes nothing
    down = IkeSaDown("deleted by peer", None,
                     [(0x1001, 0x2001), (0x1002, 0x2002), (0x1005, 0x2005)])
    assert a.handle_ike_event("t", down, A, B) is True
    assert "t" not in a.tunnel_names() and a.tunnel_names() == ["u"]
    assert a.handle_ike_event("t", down, A, B) is False
    assert a.handle_ike_event("t", ChildSaDown(0x1005, 0x2005), A, B) is False
    assert a.handle_ike_event("u", IkeSaDown("failed"), A, B) is False
    assert [p.inbound.spi for p in a.tunnel("u").pairs] == [0x1009]


def test_a_rekey_of_a_pair_already_gone_installs_the_new_pair() -> None:
    # The old pair's delete (or its hard lifetime) came first: the rekey's new pair is a
    # child SA of its own, and traffic flows on it.
    a = Gateway(name="a", license=License())
    b = Gateway(name="b", license=License())
    link = WireLink(a, b)
    for gw, side, (src, dst) in ((a, "a", (A, B)), (b, "b", (B, A))):
        assert gw.handle_ike_event("t", ChildSaUp(child(0x1001, 0x2001, side=side)), src, dst)
    assert b.handle_ike_event("t", ChildSaDown(0x2001, 0x1001), B, A)
    assert a.handle_ike_event("t", ChildSaDown(0x1001, 0x2001), A, B)
    assert a.tunnel_names() == [] and b.tunnel_names() == []
    assert b.handle_ike_event("t", ChildSaRekeyed(0x2001, 0x1001,
                                                  child(0x1002, 0x2002, side="b")), B, A)
    assert a.handle_ike_event("t", ChildSaRekeyed(0x1001, 0x2001, child(0x1002, 0x2002)), A, B)
    assert [p.inbound.spi for p in a.tunnel("t").pairs] == [0x1002]
    pkt = udp_packet("10.1.0.1", "10.2.0.1", b"after a crossed rekey")
    assert link.send(a, [pkt]).delivered == [pkt]


def test_events_that_are_not_ike_events_change_nothing() -> None:
    # Matched by type, not by name: a look-alike with the same fields is not applied.
    class ChildSaUp:  # noqa: N801 - the name an IKE event has
        def __init__(self, c: NegotiatedChildSa) -> None:
            self.child = c

    a = Gateway(name="a", license=License())
    assert a.handle_ike_event("t", ChildSaUp(child(0x1001, 0x2001)), A, B) is False
    assert a.tunnel_names() == []
