"""Dead peer detection as Junos `dead-peer-detection [optimized | probe-idle-tunnel |
always-send] interval I threshold N` does it, with RFC 7296 §2.4 liveness checks (an empty
INFORMATIONAL request) as the probes, on an injected clock.

    t0: last sign of life from the peer (IKE message, or inbound child SA traffic)
    t0 + I         probe 1 (when the mode wants one)  HDR, SK{}  -->   (no answer)
    t0 + 2I        probe 2 (the same request again, §2.1)        -->   (no answer)
    ...
    t0 + N*I       probe N                                       -->   (no answer)
    t0 + (N+1)*I   peer dead: IKE SA and child SAs cleared, IkeSaDown("dead peer")
"""
from __future__ import annotations

import pytest
from ike_helpers import configs, established

from inline_ipsec.ike import IkeSaDown
from inline_ipsec.ike.constants import ExchangeType


def _informational(data: bytes) -> bool:
    raw = data[4:] if data[:4] == bytes(4) else data
    return raw[18] == ExchangeType.INFORMATIONAL and not raw[19] & 0x20


def _silence(p) -> None:
    """The responder vanishes: whatever the initiator sends is lost."""
    p.r = None


def _run_alone(p, until: float, traffic=None) -> list[float]:
    """Drive the initiator alone up to `until`; returns when it sent liveness requests.
    `traffic(now)` is called at each timer and may report child SA traffic."""
    sent: list[float] = []
    while True:
        t = p.i.get_timer()
        if t is None or t > until:
            return sent
        if traffic is not None:
            traffic(t)
        p.i.handle_timer(t)
        sent += [t for d, _ in p.i.datagrams_to_send(t) if _informational(d)]


def _down(p) -> IkeSaDown:
    events = list(p.i_events)
    while (e := p.i.next_event()) is not None:
        events.append(e)
    (down,) = [e for e in events if isinstance(e, IkeSaDown)]
    return down


def _pair(mode: str, interval: float = 10.0, threshold: int = 3):
    p = established(*configs(i_dpd_interval=interval, i_dpd_threshold=threshold,
                             i_dpd_mode=mode))
    assert p.now == 0.0 and p.i.state == "established"
    return p


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_probe_idle_tunnel_probes_every_interval_and_declares_the_peer_dead(threshold) -> None:
    p = _pair("probe-idle-tunnel", 10.0, threshold)
    p.advance(10.0)                               # idle: probed and answered
    assert p.i.dpd_probes == 1 and p.i.state == "established"
    _silence(p)
    sent = _run_alone(p, 1000.0)
    assert sent == [10.0 + 10.0 * k for k in range(1, threshold + 1)]
    down = _down(p)
    assert down.reason == "dead peer" and down.children and p.i.state == "closed"
    assert p.i.dpd_probes == 1 + threshold


def test_junos_example_interval_10_threshold_3_clears_after_40_seconds() -> None:
    """`dpd interval 10 threshold 3`: about interval x (threshold + 1) after the peer fell
    silent, not the ~175 s of the ordinary retransmission back-off."""
    p = _pair("always-send", 10.0, 3)
    last_heard = p.i.last_heard
    _silence(p)
    _run_alone(p, 1000.0)
    assert p.i.state == "closed" and p.i.now == last_heard + 40.0
    assert _down(p).reason == "dead peer"


def test_optimized_probes_only_when_traffic_went_out_and_none_came_back() -> None:
    p = _pair("optimized")
    _silence(p)
    assert _run_alone(p, 200.0) == []            # idle tunnel: no probe, however long
    assert p.i.state == "established"
    # the peer answers traffic: inbound keeps it alive, no probe either
    assert _run_alone(p, 400.0, lambda t: p.i.note_traffic(t, inbound=True, outbound=True)) \
        == []
    # traffic goes out, nothing comes back: probe at the next check, dead 3 probes later
    p.i.note_traffic(405.0, outbound=True)
    sent = _run_alone(p, 1000.0)
    assert sent and sent[0] <= 405.0 + 10.0 + 10.0
    assert sent == [sent[0] + 10.0 * k for k in range(3)]
    assert p.i.state == "closed" and p.i.now == sent[0] + 30.0


def test_probe_idle_tunnel_stays_quiet_while_traffic_comes_in() -> None:
    p = _pair("probe-idle-tunnel")
    _silence(p)
    assert _run_alone(p, 300.0, lambda t: p.i.note_traffic(t, inbound=True)) == []
    assert p.i.state == "established"
    sent = _run_alone(p, 1000.0)                 # traffic stops: probes, then dead
    assert sent[:3] == [sent[0], sent[0] + 10.0, sent[0] + 20.0]
    assert p.i.state == "closed"


def test_always_send_probes_whatever_the_traffic() -> None:
    p = _pair("always-send")
    probes = []
    for t in range(1, 61):
        p.i.note_traffic(float(t), inbound=True, outbound=True)
        before = len(p.log)
        p.advance(1.0)
        probes += [p.now for tag, d, _ in p.log[before:] if tag == "i->r" and _informational(d)]
    assert probes == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert p.i.state == "established"


def test_an_unanswered_rekey_also_ends_after_threshold_intervals() -> None:
    """With DPD on, any request of ours on the established IKE SA counts: a child rekey the
    peer never answers clears the IKE SA after N x I seconds, not after the back-off."""
    p = _pair("optimized", 10.0, 3)
    _silence(p)
    p.i.rekey_child(next(iter(p.i.children)), 5.0)
    p.i.datagrams_to_send(5.0)
    _run_alone(p, 1000.0)
    assert p.i.state == "closed" and p.i.now == 35.0
    assert _down(p).reason == "dead peer"


def test_without_dpd_the_ordinary_back_off_applies() -> None:
    p = established(*configs())
    _silence(p)
    p.i.rekey_child(next(iter(p.i.children)), 5.0)
    p.i.datagrams_to_send(5.0)
    _run_alone(p, 10_000.0)
    assert p.i.state == "closed" and p.i.now > 150.0
    assert _down(p).reason == "retransmit timeout"


def test_bad_dpd_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="dpd_mode"):
        configs(dpd_mode="sometimes")
    with pytest.raises(ValueError, match="dpd_threshold"):
        configs(dpd_threshold=0)
