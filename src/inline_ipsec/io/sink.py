"""A writer thread per output: the TUN and the outer sockets.

Writing a packet into the TUN or onto a veth/physical link makes the kernel forward or deliver
it inside that very syscall (netif_rx and the softirq that follows run in the writer's
context). Done from the daemon's one thread, that kernel work and the gateway's Python work
take turns; handed to a thread of its own, the kernel work runs on another core while the
daemon's thread encrypts or decrypts the next burst (the syscalls release the GIL).

A `Sink` takes whole bursts (`put`) and calls `write(burst)` in its thread, in order. It is
bounded: past `depth` bursts waiting, new bursts are dropped and counted (`dropped`), as an
interface drops on a full transmit queue; nothing waits on a slow consumer.
"""
from __future__ import annotations

import collections
import threading
from typing import Callable, Sequence

__all__ = ["Sink"]


class Sink:
    def __init__(self, name: str, write: Callable[[Sequence[bytes]], object],
                 depth: int = 256) -> None:
        self.name = name
        self._write = write
        self.depth = depth
        self._q: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.bursts = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=f"inline-ipsec {name}",
                                        daemon=True)
        self._thread.start()

    def put(self, burst: Sequence[bytes]) -> None:
        with self._cv:
            if len(self._q) >= self.depth:
                self.dropped += len(burst)
                return
            self._q.append(burst)
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._q and not self._closed:
                    self._cv.wait()
                if not self._q:
                    return
                burst = self._q.popleft()
            try:
                self._write(burst)
            except OSError:
                self.errors += 1        # the writer counts per packet; never kill the thread
            self.bursts += 1

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (up to `timeout` seconds), then stop the thread."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout)
