"""Hypothesis: spokes join, leave, restart and send in any order; the hub's state always
matches the spokes that are up (one tunnel each, one NHTB entry each, routes only to live
tunnels) and nothing else grows."""
from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from hub_helpers import HUB, SPOKES, Net, flow, hub_config, make_pki, spoke_config

_PKI = make_pki()
_CREDS = {i: _PKI.issue(f"s{i}", f"spoke{i}.spokes.example") for i in (1, 2, 3, 4)}
_HUB_CREDS = _PKI.issue("hub", "hub.example")


class HubSpokes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = Net()
        self.hub = self.net.add("hub", hub_config(limit=3), HUB, _HUB_CREDS, _PKI.ca,
                                suggest_holddown=5.0)
        self.spokes: dict[int, object] = {}

    @rule(i=st.integers(1, 4))
    def join(self, i: int) -> None:
        if i in self.spokes:
            return
        node = self.net.add(f"s{i}", spoke_config(i, idle_time=60), SPOKES[i - 1][0],
                            _CREDS[i], _PKI.ca)
        node.ctl.start(self.net.now)
        self.spokes[i] = node
        self.net.pump()

    @precondition(lambda self: self.spokes)
    @rule(data=st.data())
    def leave(self, data) -> None:
        i = data.draw(st.sampled_from(sorted(self.spokes)))
        node = self.spokes.pop(i)
        t = node.ctl.tunnels.get("to-hub")
        if t is not None:
            t.session.close(self.net.now)
        self.net.pump()
        self.net.remove(node)

    @precondition(lambda self: self.spokes)
    @rule(data=st.data())
    def vanish(self, data) -> None:
        """A spoke disappears without a word and comes back (INITIAL_CONTACT)."""
        i = data.draw(st.sampled_from(sorted(self.spokes)))
        self.net.remove(self.spokes.pop(i))
        self.join(i)

    @precondition(lambda self: len(self.spokes) >= 2)
    @rule(data=st.data(), n=st.integers(1, 5))
    def send(self, data, n: int) -> None:
        a, b = data.draw(st.permutations(sorted(self.spokes)))[:2]
        self.net.send(self.spokes[a], flow(a, b, n))
        self.net.pump()

    @rule(seconds=st.sampled_from([1.0, 30.0, 90.0]))
    def wait(self, seconds: float) -> None:
        self.net.advance(seconds, step=10.0)

    @invariant()
    def hub_matches_spokes(self) -> None:
        ctl = self.hub.ctl
        up = {f"hub@{SPOKES[i - 1][0]}" for i, node in self.spokes.items()
              if "to-hub" in node.ctl.tunnels and node.gw.tunnel_names()}
        assert set(ctl.tunnels) <= {f"hub@{s[0]}" for s in SPOKES}
        assert len(ctl.tunnels) <= 3                               # connections-limit 3
        assert set(self.hub.gw.tunnel_names()) == set(ctl.tunnels)
        assert up <= set(ctl.tunnels) | set()
        auto = [e for e in ctl.nhtb.entries() if e.source != "static"]
        assert {e.tunnel for e in auto} <= set(ctl.tunnels)
        assert len(auto) == len({e.address for e in auto}) <= len(ctl.tunnels)
        for _prefix, names in ctl.routes():
            assert set(names) <= set(ctl.tunnels)
        assert len(ctl.manager.sessions) <= 2 * len(SPOKES) + 2
        assert len(ctl._cp_assigned) <= len(ctl.manager.sessions)
        for node in self.spokes.values():
            assert len(node.ctl.shortcuts()) <= 3
            for _prefix, names in node.ctl.routes():     # live tunnels, or the VPN to the hub
                assert set(names) <= set(node.ctl.tunnels) | {"to-hub"}


HubSpokes.TestCase.settings = settings(max_examples=8, stateful_step_count=10,
                                       deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_hub_and_spokes_state_machine = HubSpokes.TestCase
