"""`Burst`: numpy-backed packet slots, the unit of work of every engine's burst call.

Each packet lives in its own fixed-size slot (one row of `data`), starting at `offset[i]` and
`length[i]` bytes long. The slot has headroom before the packet and tailroom after it, so an
engine encrypts and decrypts in place: ESP encapsulation writes the outer header into the
headroom and the trailer and ICV into the tailroom, and decapsulation just moves `offset` and
`length` to the inner packet (DPDK's mbuf `data_off`). Nothing is allocated per packet.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np

DEFAULT_SLOT_SIZE = 2048
#: Room for the largest outer header we build: IPv6 (40) + UDP (8) + ESP (8) + IV (8) = 64,
#: rounded up so that CPU-path headers (AH with long ICVs, CBC IVs) fit too.
DEFAULT_HEADROOM = 128
#: The slots start on a cache line, as DPDK's mbufs do: where a packet's headers fall among
#: the cache lines is then the same from run to run, for the PFE and its raw reference alike
#: (numpy's own alignment is 16 bytes, so that layout would otherwise vary between processes).
SLOT_ALIGN = 64


class Burst:
    """A batch of packet slots.

    Attributes (all numpy arrays of `capacity` rows):
      data    uint8 [capacity, slot_size]  the slots
      offset  uint32 [capacity]            where each packet starts in its slot
      length  uint32 [capacity]            each packet's length
      sa      int32  [capacity]            per packet: the outbound SA handle to encrypt with
                                           (set by the caller), or the inbound SA that
                                           decrypted it (set by the engine, -1 if none)
      status  uint8  [capacity]            per packet result code (`Status`), set by the engine
      verdict uint8  [capacity]            per packet: what a gateway's forwarding pipeline did
                                           with it (`Verdict`: sent, delivered, dropped, punted)
      tunnel  int32  [capacity]            per packet: the pipeline's tunnel id, -1 if none
    `count` is the number of packets in use (slots 0..count-1).
    """

    # Slots, not an instance dict: the PFE's burst calls read `count` and their cached view
    # from fixed places in the object instead of through attribute lookups (about 35 ns of
    # every call; _pfe_core/burst_slots.h).
    __slots__ = ("capacity", "slot_size", "headroom", "data", "offset", "length", "sa",
                 "status", "verdict", "tunnel", "count", "_flat", "cpu_view", "cpu_slices",
                 "kernel_view", "pipeline_view", "__weakref__")

    def __init__(self, capacity: int, slot_size: int = DEFAULT_SLOT_SIZE,
                 headroom: int = DEFAULT_HEADROOM) -> None:
        if capacity < 1:
            raise ValueError("a burst needs at least one slot")
        if not 0 <= headroom < slot_size:
            raise ValueError("headroom must lie inside the slot")
        self.capacity = capacity
        self.slot_size = slot_size
        self.headroom = headroom
        self.data = _aligned_slots(capacity, slot_size)
        self.offset = np.full(capacity, headroom, dtype=np.uint32)
        self.length = np.zeros(capacity, dtype=np.uint32)
        self.sa = np.full(capacity, -1, dtype=np.int32)
        self.status = np.zeros(capacity, dtype=np.uint8)
        self.verdict = np.zeros(capacity, dtype=np.uint8)
        self.tunnel = np.full(capacity, -1, dtype=np.int32)
        self.count = 0
        # One flat byte view of all slots: copying a packet in or out through it costs a
        # fraction of a numpy slice assignment (this is the per-packet cost of list APIs).
        self._flat = memoryview(self.data).cast("B")
        self._set_cpu_view()
        #: An engine's cached view of the arrays (engines set it; the arrays never change
        #: identity: `load`, `set` and `restore_from` write into them).
        self.kernel_view: object = None
        #: The forwarding pipeline's cached view (with `verdict` and `tunnel`).
        self.pipeline_view: object = None

    @property
    def max_packet(self) -> int:
        """The longest packet `set` accepts (the rest of the slot is head- and tailroom)."""
        return self.slot_size - self.headroom - 64

    @classmethod
    def from_packets(cls, packets: Sequence[bytes], sa: Union[int, Sequence[int]] = -1,
                     slot_size: Optional[int] = None,
                     headroom: int = DEFAULT_HEADROOM) -> "Burst":
        """A burst holding `packets`, sized to fit the longest one."""
        longest = max((len(p) for p in packets), default=0)
        if slot_size is None:
            slot_size = max(DEFAULT_SLOT_SIZE, headroom + longest + 64)
        burst = cls(max(1, len(packets)), slot_size, headroom)
        burst.load(packets, sa)
        return burst

    @classmethod
    def single(cls, packet: bytes, sa: int = -1) -> "Burst":
        """A burst of one packet, with room for any engine's headers and trailer."""
        return cls.from_packets([packet], sa,
                                slot_size=max(DEFAULT_SLOT_SIZE,
                                              DEFAULT_HEADROOM + len(packet) + 128))

    def load(self, packets: Iterable[bytes], sa: Union[int, Sequence[int]] = -1) -> None:
        """Put `packets` into slots 0..n-1 (at the headroom) and set `count` to n."""
        packets = list(packets)
        n = len(packets)
        if n > self.capacity:
            raise ValueError(f"{n} packets do not fit a burst of {self.capacity}")
        if not isinstance(sa, int) and len(sa) != n:
            raise ValueError("one SA handle per packet, or one for all")
        flat, slot, head, limit = self._flat, self.slot_size, self.headroom, self.max_packet
        lengths = [len(p) for p in packets]
        if lengths and max(lengths) > limit:
            self._too_big(max(lengths))
        for i, pkt in enumerate(packets):
            start = i * slot + head
            flat[start:start + lengths[i]] = pkt
        self.offset[:n] = head
        self.length[:n] = lengths
        self.sa[:n] = sa
        self.status[:n] = 0
        self.count = n

    def set(self, i: int, packet: bytes, sa: int = -1) -> None:
        """Put one packet into slot `i` at the headroom."""
        if len(packet) > self.max_packet:
            self._too_big(len(packet))
        start = i * self.slot_size + self.headroom
        self._flat[start:start + len(packet)] = packet
        self.offset[i] = self.headroom
        self.length[i] = len(packet)
        self.sa[i] = sa
        self.status[i] = 0

    def _too_big(self, n: int) -> None:
        raise ValueError(f"a {n}-byte packet does not fit a {self.slot_size}-byte slot with "
                         f"{self.headroom} bytes of headroom")

    def packet(self, i: int) -> bytes:
        """The bytes of packet `i` as they are now (after an engine call: its result)."""
        start = i * self.slot_size + int(self.offset[i])
        return bytes(self._flat[start:start + int(self.length[i])])

    def packets(self) -> list[bytes]:
        return self._extract(range(self.count))

    def packets_at(self, indices: Iterable[int]) -> list[bytes]:
        """The bytes of the packets at `indices`, as `packet` gives them, read in one pass
        (the per-slot arrays converted once, not read element by element)."""
        return self._extract(indices)

    def ok_packets(self) -> list[bytes]:
        """The packets whose status is OK, in order."""
        return self._extract(np.flatnonzero(self.status[:self.count] == 0).tolist())

    def _extract(self, indices: Iterable[int]) -> list[bytes]:
        flat, slot = self._flat, self.slot_size
        offsets, lengths = self.offset.tolist(), self.length.tolist()
        out = []
        for i in indices:
            start = i * slot + offsets[i]
            out.append(bytes(flat[start:start + lengths[i]]))
        return out

    def copy(self) -> "Burst":
        """A deep copy (benchmarks restore a burst from one before every round)."""
        other = Burst.__new__(Burst)
        for name in ("capacity", "slot_size", "headroom", "count"):
            setattr(other, name, getattr(self, name))
        other.data = _aligned_slots(self.capacity, self.slot_size)
        np.copyto(other.data, self.data)
        for name in ("offset", "length", "sa", "status", "verdict", "tunnel"):
            setattr(other, name, getattr(self, name).copy())
        other._flat = memoryview(other.data).cast("B")
        other._set_cpu_view()
        other.kernel_view = None
        other.pipeline_view = None
        return other

    def _set_cpu_view(self) -> None:
        #: The CPU engine's views: flat bytes, offset, length, sa, status as memoryviews
        #: (made once: a Python loop reads and writes them cheaper than the numpy arrays).
        self.cpu_view = (self._flat, memoryview(self.offset), memoryview(self.length),
                         memoryview(self.sa), memoryview(self.status))
        #: The CPU engine's per-slot views of a packet layout (offset, length) it met in this
        #: burst before: slicing a view costs more than the rest of a packet's bookkeeping.
        self.cpu_slices: dict = {}

    def restore_packets_from(self, other: "Burst") -> None:
        """`restore_from` for packet processing: of the slots' bytes, only the columns that
        hold `other`'s packets (from the lowest offset to the highest end) are copied, with
        offsets, lengths, handles and verdicts. An engine reads nothing else of a slot; its
        head- and tailroom are scratch. Benchmarks restore their bursts so between windows:
        at 64 B that copies 64 of each slot's 2048 bytes, and leaves the caches as the
        engine left them instead of full of slot bytes nothing reads."""
        n = other.count
        if n:
            lo = int(other.offset[:n].min())
            hi = int((other.offset[:n] + other.length[:n]).max())
            if hi > lo:
                np.copyto(self.data[:n, lo:hi], other.data[:n, lo:hi])
        self._restore_metadata(other)

    def restore_from(self, other: "Burst") -> None:
        """Copy `other`'s slots, offsets, lengths and handles into this burst, in place."""
        np.copyto(self.data, other.data)
        self._restore_metadata(other)

    def _restore_metadata(self, other: "Burst") -> None:
        np.copyto(self.offset, other.offset)
        np.copyto(self.length, other.length)
        np.copyto(self.sa, other.sa)
        np.copyto(self.verdict, other.verdict)
        self.count = other.count


def _aligned_slots(capacity: int, slot_size: int) -> np.ndarray:
    """A zeroed (capacity, slot_size) uint8 array whose first byte is SLOT_ALIGN-aligned."""
    raw = np.zeros(capacity * slot_size + SLOT_ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % SLOT_ALIGN
    return raw[skip:skip + capacity * slot_size].reshape(capacity, slot_size)
