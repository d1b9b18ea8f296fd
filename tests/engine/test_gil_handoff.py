"""Burst calls of several threads hand the GIL over without sleeping on it (gil_handoff.h):
the hand-over changes when a thread takes the GIL back, never what a burst computes, and
every thread gives its slot back when it ends."""
from __future__ import annotations

import threading
import time

import pytest
from _pfe_core import table

from inline_ipsec.benchmark import PfeWorkload
from inline_ipsec.perf.suite import measure_threads


@pytest.fixture
def handoff():
    before = table.gil_handoff()
    yield
    table.set_gil_handoff(before)


@pytest.mark.parametrize("on", [True, False])
def test_threads_deliver_every_packet_either_way(handoff, on: bool) -> None:
    table.set_gil_handoff(on)
    assert table.gil_handoff() is on
    pps, counts = measure_threads(2, "openssl", 128, 64, 8, 0.2)
    assert pps > 0 and all(n > 0 and n % 16 == 0 for n in counts)


def test_each_thread_returns_its_slot(handoff) -> None:
    table.set_gil_handoff(True)
    w = PfeWorkload(128, 64, 4, name="slots")
    enc, dec, out = w.pfe.encrypt_burst, w.pfe.decrypt_burst, w.out
    results = []

    def one_burst() -> None:
        w.burst.sa.fill(out)
        results.append((enc(w.burst), dec(w.burst)))

    before, slots = table.gil_handoff_threads()     # other tests' live threads may hold some
    for _ in range(slots + 20):             # more threads than slots, one after another
        t = threading.Thread(target=one_burst)
        t.start()
        t.join()
    assert results == [(4, 4)] * (slots + 20)
    # A thread gives its slot back as the OS thread ends, a moment after join() returns.
    deadline = time.monotonic() + 5
    while table.gil_handoff_threads()[0] > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert table.gil_handoff_threads()[0] <= before     # every thread gave its slot back


_ALONE = r"""
import threading
from _pfe_core import table
from inline_ipsec.benchmark import PfeWorkload

w = PfeWorkload(128, 64, 4, name="alone")
w.burst.sa.fill(w.out)
seen = [table.burst_releases_gil(), w.pfe.encrypt_burst(w.burst), w.pfe.decrypt_burst(w.burst)]
stop = threading.Event()
t = threading.Thread(target=stop.wait)
t.start()
w.burst.sa.fill(w.out)
seen += [table.burst_releases_gil(), w.pfe.encrypt_burst(w.burst), w.pfe.decrypt_burst(w.burst)]
stop.set()
t.join()
import time                 # the thread unlists itself as it ends, by join() or a moment after
deadline = time.monotonic() + 5
while table.burst_releases_gil() and time.monotonic() < deadline:
    time.sleep(0.01)
seen.append(table.burst_releases_gil())
table.set_keep_gil_alone(False)
seen.append(table.burst_releases_gil())
print(seen)
"""


def test_a_thread_alone_keeps_the_gil_and_releases_it_once_another_exists() -> None:
    """A burst of the process's only Python thread keeps the GIL (nobody could use it); once a
    second thread exists, bursts release it again, and the switch can be turned off. Run in a
    fresh interpreter: pytest's own process may have threads of earlier tests alive."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _ALONE], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[False, 4, 4, True, 4, 4, False, True]"


_SUBINTERPRETER = r"""
try:
    import _interpreters as interpreters          # CPython 3.13
except ImportError:
    import _xxsubinterpreters as interpreters     # CPython 3.9-3.12
from _pfe_core import table

seen = [table.burst_releases_gil()]
iid = interpreters.create()
seen.append(table.burst_releases_gil())
interpreters.destroy(iid)
seen.append(table.burst_releases_gil())
print(seen)
"""


def test_a_second_interpreter_counts_as_another_thread() -> None:
    """While a subinterpreter exists (which may run threads of its own under the shared GIL),
    a burst of the main interpreter's only thread releases the GIL; once it is gone, bursts
    keep it again. A fresh process, as above."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SUBINTERPRETER], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "[False, True, False]"
