"""SaTable.time_kernel: the burst kernel timed inside C, for the cost split."""
from __future__ import annotations

import pytest

from inline_ipsec.benchmark import EngineBursts
from inline_ipsec.packet import Burst
from inline_ipsec.pfe import PFE_BACKENDS


@pytest.mark.parametrize("backend", PFE_BACKENDS)
@pytest.mark.parametrize("direction", ["encrypt", "decrypt"])
def test_every_pass_processes_every_packet(backend, direction):
    e = EngineBursts("pfe", backend, 128, 64, 8, bursts=3)
    bursts = [g[0] for g in e.replicas]
    e.prepare(direction)
    pristine = [b.copy() for b in bursts]
    table = e.engine._table
    ns, timer_ns, calls, good = table.time_kernel(direction == "encrypt", bursts, pristine, 4)
    assert calls == 12 and good == 12 * 8 and ns > 0 and timer_ns >= 0
    # the table is unlocked and usable afterwards: a normal call on a restored burst works
    bursts[0].restore_from(pristine[0])
    run = e.engine.encrypt_burst if direction == "encrypt" else e.engine.decrypt_burst
    if direction == "decrypt":      # the window of the last pass holds these numbers now
        e.prepare("decrypt")
    assert run(bursts[0]) == 8


def test_bad_arguments_are_refused_and_leave_the_table_unlocked():
    e = EngineBursts("pfe", "openssl", 128, 64, 4, bursts=1)
    b = e.replicas[0][0]
    table = e.engine._table
    with pytest.raises(ValueError):
        table.time_kernel(True, [b], [], 1)
    with pytest.raises(ValueError):
        table.time_kernel(True, [b] * 65, [b.copy()] * 65, 1)
    small = Burst(4, slot_size=512)
    small.count = 4
    with pytest.raises(ValueError):
        table.time_kernel(True, [small], [b.copy()], 1)    # slot sizes differ
    liar = b.copy()
    liar.offset[0] = liar.slot_size - 10                      # a packet past its slot
    with pytest.raises(ValueError):
        table.time_kernel(True, [b], [liar], 1)
    with table.lock:        # not left locked by a refused call
        pass
    e.prepare("encrypt")
    assert e.engine.encrypt_burst(b) == 4
