"""Interop with strongSwan after IKE_AUTH: CREATE_CHILD_SA rekeys (child and IKE SA, both
directions), INFORMATIONAL deletes and liveness checks (RFC 7296 §1.3, §1.4, §2.4, §2.8, §2.18).
"""
import asyncio
import re

import pytest

from inline_ipsec.ike import (ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown, IkeSaRekeyed,
                              IkeSaUp)
from inline_ipsec.ike.udp import IkeUdpEndpoint
from test_strongswan_psk import US, _check_keys, our_config, swanctl_conf

pytestmark = pytest.mark.interop
IKE, ESP = "aes128gcm16-prfsha256-ecp256", "aes128gcm16-x25519"   # ESP with PFS


def child_states(sas: str) -> dict[str, str]:
    """SPI (8 hex digits) -> CHILD_SA state, from `swanctl --list-sas`."""
    states, state = {}, None
    for line in sas.splitlines():
        m = re.match(r"\s+\S+: #\d+, reqid \d+, (\w+),", line)
        if m:
            state = m.group(1)
        m = re.match(r"\s+(?:in|out)\s+([0-9a-f]{8})", line)
        if m and state:
            states[m.group(1)] = state
    return states


async def _wait(ep, cls, timeout=15.0):
    while True:
        _, event = await ep.next_event(timeout)
        if isinstance(event, cls):
            return event


async def _swanctl(charon, *args):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: charon.swanctl(*args))


async def _connect(charon, extra=""):
    ep = await IkeUdpEndpoint.create(US, 0, 0)
    charon.load(swanctl_conf(ep.natt_port, IKE, ESP, extra))
    s = ep.connect(our_config(charon, IKE, ESP), ("127.0.0.1", charon.port_nat_t))
    await _wait(ep, IkeSaUp)
    up = await _wait(ep, ChildSaUp)
    return ep, s, up.child


def _run(charon, coro):
    try:
        return asyncio.run(coro)
    except asyncio.TimeoutError:
        pytest.fail("timed out waiting for charon:\n" + charon.logs())


def test_we_rekey_child_then_charon_sees_new_spis(charon):
    async def main():
        ep, s, child = await _connect(charon)
        try:
            s.rekey_child(child.spi_in, ep.now())
            ep.flush()
            rekeyed = await _wait(ep, ChildSaRekeyed)
            down = await _wait(ep, ChildSaDown)
            return child, rekeyed, down, await _swanctl(charon, "--list-sas")
        finally:
            ep.close()
    child, rekeyed, down, sas = _run(charon, main())
    assert (down.spi_in, down.spi_out) == (child.spi_in, child.spi_out)
    states = child_states(sas)
    assert states[f"{rekeyed.new.spi_in:08x}"] == "INSTALLED"
    assert states.get(f"{child.spi_in:08x}", "DELETED") == "DELETED"  # kept briefly by charon
    _check_keys(charon, rekeyed.new)   # PFS KEYMAT with x25519 agrees with charon


def test_charon_rekeys_child(charon):
    async def main():
        ep, s, child = await _connect(charon)
        try:
            await _swanctl(charon, "--rekey", "--child", "net")
            rekeyed = await _wait(ep, ChildSaRekeyed)
            down = await _wait(ep, ChildSaDown)
            return child, rekeyed, down, s
        finally:
            ep.close()
    child, rekeyed, down, s = _run(charon, main())
    assert rekeyed.old_spi_in == child.spi_in and not rekeyed.new.initiator
    assert down.spi_in == child.spi_in
    assert list(s.children) == [rekeyed.new.spi_in]
    _check_keys(charon, rekeyed.new)


@pytest.mark.parametrize("who", ["we", "charon"])
def test_ike_rekey(charon, who):
    async def main():
        ep, s, child = await _connect(charon)
        try:
            old = (s.ike.spi_i, s.ike.spi_r)
            if who == "we":
                s.rekey_ike(ep.now())
                ep.flush()
            else:
                await _swanctl(charon, "--rekey", "--ike", "pyike")
            ev = await _wait(ep, IkeSaRekeyed)
            await asyncio.sleep(0.5)     # let the old IKE SA's delete finish
            # The new IKE SA carries on: rekey the child over it.
            s.rekey_child(child.spi_in, ep.now())
            ep.flush()
            rekeyed = await _wait(ep, ChildSaRekeyed)
            return old, ev, rekeyed, s, await _swanctl(charon, "--list-sas")
        finally:
            ep.close()
    old, ev, rekeyed, s, sas = _run(charon, main())
    assert (ev.old_spi_i, ev.old_spi_r) == old and ev.spi_i != old[0]
    assert ev.spi_i.hex() in sas and old[0].hex() not in sas
    assert not s.old_ike
    _check_keys(charon, rekeyed.new)


def test_delete_child_and_ike_sa(charon):
    async def main():
        ep, s, child = await _connect(charon)
        try:
            s.delete_child(child.spi_in, ep.now())
            ep.flush()
            await _wait(ep, ChildSaDown)
            after_child = await _swanctl(charon, "--list-sas")
            s.close(ep.now())
            ep.flush()
            down = await _wait(ep, IkeSaDown)
            await asyncio.sleep(0.2)
            return child, after_child, down, await _swanctl(charon, "--list-sas")
        finally:
            ep.close()
    child, after_child, down, after_ike = _run(charon, main())
    assert "ESTABLISHED" in after_child
    assert child_states(after_child).get(f"{child.spi_in:08x}", "DELETED") == "DELETED"
    assert down.reason == "deleted" and "pyike" not in after_ike


def test_charon_terminates_ike_sa(charon):
    async def main():
        ep, s, _ = await _connect(charon)
        try:
            await _swanctl(charon, "--terminate", "--ike", "pyike")
            return await _wait(ep, IkeSaDown), s
        finally:
            ep.close()
    down, s = _run(charon, main())
    assert down.reason == "deleted by peer" and s.state == "closed"


def test_liveness_both_ways(charon):
    async def main():
        ep, s, _ = await _connect(charon, extra="dpd_delay = 1s")
        try:
            informational = []
            orig = s.receive_datagram

            def spy(data, addr, now):
                raw = data[4:] if data.startswith(b"\0\0\0\0") else data
                if len(raw) > 19 and raw[18] == 37 and not raw[19] & 0x20:
                    informational.append(raw)
                orig(data, addr, now)
            s.receive_datagram = spy
            s.send_dpd(ep.now())
            ep.flush()
            await asyncio.sleep(3.0)    # charon's dpd_delay = 1 s: it probes us meanwhile
            return s, informational
        finally:
            ep.close()
    s, informational = _run(charon, main())
    assert s.state == "established" and s.ike.pending is None   # our DPD was answered
    assert informational, "charon sent no liveness check"
    assert "sending DPD request" in charon.logs() or "liveness" in charon.logs().lower()


NET2 = """
            net2 {
                local_ts = 239.199.3.0/24
                remote_ts = 10.199.4.0/24
                esp_proposals = aes256gcm16-modp2048
                start_action = none
            }
"""


@pytest.mark.parametrize("who", ["we", "charon"])
def test_additional_child_sa_with_pfs_group14(charon, who):
    #   HDR, SK{SA, Ni, KEi(MODP-2048), TSi, TSr}  -->
    #                                        <--  HDR, SK{SA, Nr, KEr, TSi, TSr}
    from inline_ipsec.ike import ChildConfig
    second = ChildConfig(name="second", proposals=["aes256gcm16-modp2048"],
                         local_ts=["10.199.4.0/24"], remote_ts=["239.199.3.0/24"])

    async def main():
        ep = await IkeUdpEndpoint.create(US, 0, 0)
        try:
            charon.load(swanctl_conf(ep.natt_port, IKE, ESP, more_children=NET2))
            cfg = our_config(charon, IKE, ESP)
            cfg.children = [cfg.children[0], second]
            s = ep.connect(cfg, ("127.0.0.1", charon.port_nat_t))
            await _wait(ep, IkeSaUp)
            await _wait(ep, ChildSaUp)
            if who == "we":
                s.create_child(second, ep.now())
                ep.flush()
            else:
                await _swanctl(charon, "--initiate", "--child", "net2")
            up = await _wait(ep, ChildSaUp)
            return up.child, s, await _swanctl(charon, "--list-sas")
        finally:
            ep.close()
    child, s, sas = _run(charon, main())
    assert child.name == "second" and child.initiator == (who == "we")
    assert [str(t) for t in child.remote_ts] == ["239.199.3.0/24"]
    assert len(s.children) == 2
    assert child_states(sas)[f"{child.spi_in:08x}"] == "INSTALLED"
    assert "MODP_2048" in sas
    _check_keys(charon, child)
