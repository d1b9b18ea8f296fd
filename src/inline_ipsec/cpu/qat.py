"""A QAT-style crypto accelerator model for the CPU path (`set security flow
power-mode-ipsec-qat`).

An Intel QuickAssist device sits beside the cores: the data path writes cipher requests into
a request ring, rings a doorbell, and later polls a response ring for completions; the device
works through the requests on its own engines meanwhile. What matters for throughput is how
many requests can be in flight (the ring depth), how many go per doorbell (the batch) and how
often the data path has to wait for completions. This model keeps exactly that shape:

  - `submit` writes a request (an AEAD call on views of a burst slot: encrypt or decrypt in
    place, RFC 4106) into the ring; when `ring_depth` requests are in flight the caller polls
    until a slot frees (counted as ring-full);
  - requests are handed to the device `batch_size` at a time (one doorbell per batch), and all
    that are left at `drain`;
  - the device is a worker thread (`threaded=True`) that works through the request ring a
    batch at a time, posting one response per request; with `threaded=False` it runs inside
    the poll, which makes tests deterministic. Under CPython's global interpreter lock the
    device thread and the data path cannot compute at once (the AEAD calls keep the lock), so
    the device is woken when the data path polls an empty response ring and waits: the two
    take turns, and a turn costs a thread hand-off. That is what ring depth and batching
    amortise here, as interrupts and PCIe round trips are amortised on the real device;
  - `drain` waits for every request in flight and returns the ordinals (since the previous
    drain) whose ICV did not verify.

Everything is bounded: at most `ring_depth` requests in flight, responses at most that many.
The PMI vector loops (cpu/pmi.py) use it for the AEAD call; nothing else changes, so bytes and
decisions are the same with and without the device (tests/cpu/test_qat.py).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, fields
from typing import Any, Callable

from cryptography.exceptions import InvalidTag

__all__ = ["QatCounters", "QatDevice", "MAX_RING_DEPTH", "MAX_BATCH"]

MAX_RING_DEPTH = 4096
MAX_BATCH = 256


@dataclass
class QatCounters:
    """The device's counters (`show security flow pmi statistics`)."""

    requests: int = 0         # requests written to the request ring
    responses: int = 0        # responses taken from the response ring
    doorbells: int = 0        # batches handed to the device
    ring_full: int = 0        # submissions that found the ring full and polled first
    polls: int = 0            # response-ring polls
    empty_polls: int = 0      # polls that found no response and waited
    errors: int = 0           # error responses: an ICV that did not verify, a refused request
    max_in_flight: int = 0    # the most requests in flight at once

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class QatDevice:
    """Request/response rings between the CPU path and a modelled crypto device."""

    def __init__(self, ring_depth: int = 64, batch_size: int = 16, threaded: bool = True,
                 name: str = "qat0") -> None:
        if not 1 <= ring_depth <= MAX_RING_DEPTH:
            raise ValueError(f"ring depth is 1..{MAX_RING_DEPTH}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size is 1..{MAX_BATCH}")
        self.name = name
        self.ring_depth = ring_depth
        self.batch_size = batch_size
        self.threaded = threaded
        self.counters = QatCounters()
        self._pending: list[tuple] = []          # written, doorbell not rung yet
        self._requests: deque[tuple] = deque()   # the device's side of the request ring
        self._responses: deque[tuple[int, bool]] = deque()
        self._failed: list[int] = []
        self._in_flight = 0
        self._next = 0                           # ordinal of the next request since drain
        self._cv = threading.Condition()
        self._stop = False
        self._worker: threading.Thread | None = None
        if threaded:
            self._worker = threading.Thread(target=self._device_loop, name=f"{name}-device",
                                            daemon=True)
            self._worker.start()

    def __repr__(self) -> str:
        return (f"QatDevice({self.name!r}, ring_depth={self.ring_depth}, "
                f"batch_size={self.batch_size}, threaded={self.threaded})")

    # -- the CPU side --------------------------------------------------------------------------

    def submitter(self, fn: Callable[..., Any]) -> Callable[[Any, Any, Any, Any], None]:
        """A drop-in for an AEAD `encrypt_into` / `decrypt_into` that queues the call."""
        submit = self.submit

        def queued(nonce: Any, data: Any, aad: Any, buf: Any) -> None:
            submit(fn, nonce, data, aad, buf)
        return queued

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Queue `fn(*args)`; returns its ordinal since the last `drain`."""
        c = self.counters
        while self._in_flight >= self.ring_depth:
            c.ring_full += 1
            self._poll()
        ordinal = self._next
        self._next += 1
        self._pending.append((ordinal, fn, args))
        self._in_flight += 1
        c.requests += 1
        if self._in_flight > c.max_in_flight:
            c.max_in_flight = self._in_flight
        if len(self._pending) >= self.batch_size:
            self._doorbell()
        return ordinal

    def drain(self) -> list[int]:
        """Wait for every request in flight; the ordinals that failed since the last drain,
        in order. Ordinals start again at 0."""
        if self._pending:
            self._doorbell()
        while self._in_flight:
            self._poll()
        failed = sorted(self._failed)
        self._failed = []
        self._next = 0
        return failed

    def close(self) -> None:
        """Stop the device thread (requests in flight are completed first)."""
        self.drain()
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5)

    def _worker_alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _doorbell(self) -> None:
        with self._cv:
            self._requests.extend(self._pending)
        self._pending = []
        self.counters.doorbells += 1

    def _poll(self) -> None:
        """Take every response there is; wait for one when there is none."""
        if self._pending:
            self._doorbell()
        c = self.counters
        c.polls += 1
        with self._cv:
            if not self._responses:
                c.empty_polls += 1
                if self.threaded:
                    self._cv.notify_all()        # wake the device, then wait for it
                    while not self._responses:
                        if not self._cv.wait(timeout=1.0) and not self._worker_alive():
                            raise RuntimeError(f"{self.name}: the device thread is gone")
            got = list(self._responses)
            self._responses.clear()
        if not got and not self.threaded:        # the device runs inside the poll
            got = self._run(self._take())
        for ordinal, ok in got:
            self._in_flight -= 1
            c.responses += 1
            if not ok:
                self._failed.append(ordinal)
                c.errors += 1

    # -- the device side -----------------------------------------------------------------------

    def _take(self) -> list[tuple]:
        with self._cv:
            batch = [self._requests.popleft()
                     for _ in range(min(self.batch_size, len(self._requests)))]
        return batch

    @staticmethod
    def _run(batch: list[tuple]) -> list[tuple[int, bool]]:
        out = []
        for ordinal, fn, args in batch:
            try:
                fn(*args)
                out.append((ordinal, True))
            except (InvalidTag, ValueError, TypeError):
                # a failed ICV, or a request the device refuses: an error response, never
                # a dead device thread and a caller waiting for ever
                out.append((ordinal, False))
        return out

    def _device_loop(self) -> None:
        cv = self._cv
        while True:
            with cv:
                while not self._requests and not self._stop:
                    cv.wait()
                if self._stop and not self._requests:
                    return
            while True:                         # the whole ring, a batch at a time
                batch = self._take()
                if not batch:
                    break
                results = self._run(batch)
                with cv:
                    self._responses.extend(results)
                    cv.notify_all()
