"""The forwarding pipeline holds a PFE table's lock around its kernel calls, as the table's own
burst calls do: a burst waits for a thread that holds the lock (an install, a removal), and
leaves the lock free when it returns, on both the outbound and the inbound side."""
from __future__ import annotations

import threading

from inline_ipsec.dataplane.bench import GatewayPairWorkload
from inline_ipsec.pfe import Verdict


def _wait_for(lock, call) -> None:
    """`call()` in a thread while this thread holds `lock`: it must not finish before the
    lock is released, and must finish after."""
    done = threading.Event()

    def run() -> None:
        call()
        done.set()

    with lock:
        worker = threading.Thread(target=run)
        worker.start()
        assert not done.wait(0.3), "the burst ran while another thread held the table's lock"
    worker.join(10)
    assert done.is_set()
    with lock:                      # the burst call released it
        pass


def test_pipeline_bursts_take_the_table_lock() -> None:
    w = GatewayPairWorkload(burst=8, bursts=1)
    burst = w.bursts[0]
    _wait_for(w.a.pfes[0].lock, lambda: w.a.outbound_burst(burst))
    assert (burst.verdict[:burst.count] == Verdict.WIRE).all()
    _wait_for(w.b.pfes[0].lock, lambda: w.b.inbound_burst(burst, Verdict.WIRE))
    assert (burst.verdict[:burst.count] == Verdict.DELIVER).all()
    assert w.b.pfes[0].counters(w.b.pfes[0].lookup_inbound(0x1000)).packets == burst.count


def test_pipeline_calls_refuse_none_arrays() -> None:
    """A missing burst view is a TypeError, never a dereference of None in C."""
    import pytest
    from _pfe_core import pipeline as P

    from inline_ipsec.config import License
    from inline_ipsec.gateway import Gateway
    gw = Gateway(name="g", license=License(), pfes=1)
    pl = gw._pipeline
    with pytest.raises(TypeError):
        pl.outbound(None, 1)
    with pytest.raises(TypeError):
        pl.inbound(None, 1)
    with pytest.raises(TypeError):
        P.run_pair(pl, pl, None, 1)
