"""The gateway's IKE glue keeps nothing per datagram: unauthenticated datagrams aimed at a
running `IkeControl` (forged requests on its IKE SA, unknown SPIs, IKE_SA_INIT from the
peer's address that is refused or answered statelessly, garbage) leave its memory, its
sessions and its histories bounded, and the tunnels working. (The 20,000-datagram floods of
a bare session and manager are in tests/ike/test_bounded_state.py; this one is smaller
because tracemalloc slows the whole gateway path down.)"""
from __future__ import annotations

import gc
import os
import sys
import tracemalloc
from pathlib import Path

from test_shared_ike_gateway import _carries, _up

from inline_ipsec.gateway.ike_control import EVENT_HISTORY, VPN_EVENT_HISTORY
from inline_ipsec.ike import IkeConfig, IkeV2Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ike"))
from test_bounded_state import _forged  # noqa: E402

FLOOD = 5_000
#: before the bounds, each of the 1,000 forged requests alone kept about 2.4 KB
BOUND = 512 * 1024


def _init(proposals: tuple[str, ...]) -> bytes:
    s = IkeV2Session(IkeConfig(proposals=proposals, psk=b"x"), initiator=True,
                     local_addr=("198.51.100.1", 500), remote_addr=("192.0.2.1", 500))
    s.connect(0.0)
    [(data, _)] = s.datagrams_to_send(0.0)
    return data


def test_flood_of_a_running_gateway_leaves_its_ike_state_bounded() -> None:
    a, b, ia, ib, pump = _up()
    session = ia.session_of("vpn-s1")
    peer = ("198.51.100.1", 500)
    refused = _init(("aes256gcm16-prfsha512-ecp521",))         # NO_PROPOSAL_CHOSEN
    wrong_ke = _init(("aes256gcm16-prfsha512-ecp521", "aes128gcm16-prfsha256-ecp256"))
    datagrams = []
    for n in range(FLOOD // 5):
        spi = (0x5A << 56 | n).to_bytes(8, "big")
        datagrams += [_forged(session, n), os.urandom(16) + refused[16:], os.urandom(27),
                      spi + refused[8:], spi + wrong_ke[8:]]
    ia.datagrams_to_send(3.0)

    def flood() -> None:
        for d in datagrams:
            ia.receive(d, peer, 3.0)
        ia.datagrams_to_send(3.0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        flood()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < BOUND, f"{grown} bytes kept for {FLOOD} datagrams"
    assert ia.manager.sessions == [session] and list(ia.info) == [id(session)]
    assert session.errors.counts["integrity check failed"] == FLOOD // 5
    assert ia.manager.counters()["unknown_spi"] == 2 * FLOOD // 5
    assert sum(ia.refused.values()) == FLOOD // 5               # refused IKE_SA_INITs
    assert len(ia.events) <= EVENT_HISTORY
    assert all(len(st.events) <= VPN_EVENT_HISTORY for st in ia.status.values())
    assert ia.up(["vpn-s1", "vpn-s2"])
    _carries(a, b, "vpn-s1", 31)


def test_tunnel_events_of_a_long_lived_tunnel_are_bounded() -> None:
    """Every rekey adds events that never repeat (the drained SPI is in the text); a tunnel
    keeps the last `MAX_TUNNEL_EVENTS`, the newest last."""
    from inline_ipsec.distribution.distributor import MAX_TUNNEL_EVENTS
    a, b, ia, ib, pump = _up()
    session = ia.session_of("vpn-s1")
    for n in range(60):
        spi = next(s for s, c in session.children.items() if c.config.name == "vpn-s1/ts")
        session.rekey_child(spi, 10.0 + n)
        pump.run(10.0 + n)
        a.finish_drain("vpn-s1")
    events = a.distributor.events("vpn-s1")
    assert len(events) == MAX_TUNNEL_EVENTS
    assert events[-1].endswith("deleted after rekey (1 times)")
    assert a.tunnel("vpn-s1").rekeys == 60
    _carries(a, b, "vpn-s1", 31)
