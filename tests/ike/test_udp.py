"""The asyncio adapter (`ike/udp.py`) on real loopback sockets, our code on both ends."""
import asyncio

from inline_ipsec.ike import ChildSaUp, IkeSaDown, IkeSaUp
from inline_ipsec.ike.udp import IkeUdpEndpoint

from ike_helpers import configs


async def _pair(icfg, rcfg, keepalive=20.0):
    resp = await IkeUdpEndpoint.create("127.0.0.1", 0, 0)
    resp.manager.add_peer("127.0.0.0/8", rcfg)
    init = await IkeUdpEndpoint.create("127.0.0.1", 0, 0, keepalive_interval=keepalive)
    icfg.natt_port = resp.natt_port
    return init, resp, icfg


async def _events(ep, n):
    return [(await ep.next_event(5))[1] for _ in range(n)]


def test_udp_endpoints_establish_and_delete():
    async def main():
        init, resp, icfg = await _pair(*configs(), keepalive=0.05)
        try:
            s = init.connect(icfg, ("127.0.0.1", resp.ike_port))
            ev_i = await _events(init, 2)
            ev_r = await _events(resp, 2)
            await asyncio.sleep(0.2)
            s.close(init.now())
            init.flush()
            down_i = await _events(init, 1)
            down_r = await _events(resp, 1)
            return ev_i, ev_r, down_i, down_r, s, resp
        finally:
            init.close()
            resp.close()
    ev_i, ev_r, down_i, down_r, s, resp = asyncio.run(main())
    assert [type(e) for e in ev_i] == [IkeSaUp, ChildSaUp] == [type(e) for e in ev_r]
    assert ev_i[1].child.key_out == ev_r[1].child.key_in
    assert isinstance(down_i[0], IkeSaDown) and isinstance(down_r[0], IkeSaDown)
    assert len(resp.sessions) == 0 and not s.natt   # closed sessions are forgotten
    assert resp.keepalives_received == 0            # no NAT, no keepalives


def test_udp_nat_t_socket_and_stateless_cookie():
    async def main():
        icfg, rcfg = configs(i_force_encap=True, r_require_cookie=True)
        init, resp, icfg = await _pair(icfg, rcfg, keepalive=0.05)
        try:
            s = init.connect(icfg, ("127.0.0.1", resp.ike_port))
            ev_i = await _events(init, 2)
            await _events(resp, 2)
            await asyncio.sleep(0.3)
            return ev_i, s, resp
        finally:
            init.close()
            resp.close()
    ev_i, s, resp = asyncio.run(main())
    child = ev_i[1].child
    assert s.natt and child.udp_encap and child.remote_port == resp.natt_port
    assert len(resp.sessions) == 1      # the COOKIE round left no half-open session behind
    assert resp.keepalives_received >= 2   # RFC 3948 §2.3 keepalives from behind the "NAT"
