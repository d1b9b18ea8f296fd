"""An established IKEv2 SA exported and restored on another node: the peer notices nothing
(DPD, child SA rekey and IKE SA rekey continue with the message IDs it expects)."""
from __future__ import annotations

import json

import pytest

from inline_ipsec.ike import ChildConfig
from inline_ipsec.ike.events import ChildSaRekeyed
from inline_ipsec.ike.v2.ha_state import (HaStateError, export_session, exportable,
                                          restore_session, state_key)

from ike_helpers import R_ADDR, configs, established


def _configs():
    return configs(
        i_children=[ChildConfig(name="c1", local_ts=["10.1.0.0/24"], remote_ts=["10.2.0.0/24"])],
        r_children=[ChildConfig(name="c1", local_ts=["10.2.0.0/24"], remote_ts=["10.1.0.0/24"])])


@pytest.mark.parametrize("side", ["i", "r"])
def test_restored_session_continues_with_the_peer(side: str) -> None:
    icfg, rcfg = _configs()
    p = established(icfg, rcfg)
    assert p.i.children and p.r.children
    p.now = 10.0
    p.i.send_dpd(p.now)                      # move the message IDs off their start
    p.run()
    old = getattr(p, side)
    assert exportable(old)
    state = json.loads(json.dumps(export_session(old, p.now)))   # over the wire: JSON
    key_before = state_key(old)
    new = restore_session(rcfg if side == "r" else icfg, state, now=p.now)
    assert state_key(new) == key_before
    assert new.children.keys() == old.children.keys()
    setattr(p, side, new)                    # the old node is gone
    other = p.r if side == "i" else p.i
    # DPD both ways: each answers the other
    for s in (new, other):
        s.send_dpd(p.now)
        p.run()
        assert s.ike.pending is None, s.errors
    assert not new.errors.counts and not other.errors.counts
    # a child SA rekey started by the restored side, then one by the peer
    spi = next(iter(new.children))
    new.rekey_child(spi, p.now)
    p.run()
    assert any(isinstance(e, ChildSaRekeyed) for e in (p.i_events if side == "i" else p.r_events))
    spi2 = next(c.spi_in for c in other.children.values() if c.state == "installed")
    other.rekey_child(spi2, p.now)
    p.run()
    # and the IKE SA itself
    new.rekey_ike(p.now)
    p.run()
    assert new.state == "established" and other.state == "established"
    assert new.ike.spi_i != bytes.fromhex(state["spi_i"])


def test_only_an_idle_established_session_exports() -> None:
    icfg, rcfg = _configs()
    p = established(icfg, rcfg)
    p.i.send_dpd(1.0)                        # a request in flight
    with pytest.raises(HaStateError):
        export_session(p.i, 1.0)


@pytest.mark.parametrize("mutate, why", [
    (lambda s: s.update(config="other"), "gateway"),
    (lambda s: s.update(spi_i="00"), "8 bytes"),
    (lambda s: s.update(keys=["zz"] * 7), "not hex"),
    (lambda s: s.update(mids=[-1, 0]), "message ID"),
    (lambda s: s["children"][0].update(config="nope"), "not configured"),
    (lambda s: s["children"][0].update(lts=[["10.0.0.1", "::1", 0, 0, 65535]]), "mixed"),
    (lambda s: s.pop("nonces"), "incomplete"),
])
def test_bad_state_is_a_typed_error(mutate, why: str) -> None:
    icfg, rcfg = _configs()
    p = established(icfg, rcfg)
    state = export_session(p.r, 0.0)
    mutate(state)
    with pytest.raises(HaStateError, match=why):
        restore_session(rcfg, state, 0.0)
