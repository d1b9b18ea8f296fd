"""`CpuEngine`: the SRX CPU path (PowerMode IPsec / QAT style), "Hardware Offloaded: No".

Same engine protocol as `Pfe` (inline_ipsec.engine): same `SaSpec`, same per-packet `Status`
codes from the burst calls, same typed errors from the single-packet calls. It carries what
the PFE cannot (docs/design.md Table 1): every ESP cipher of `CIPHER_KEY_MATERIAL`, AH, transport
mode, anti-replay windows of any size, any number of SAs and several child SAs per tunnel,
and lifetimes in seconds, kilobytes and packets.

With PowerMode IPsec on (`pmi=True`, `set security flow power-mode-ipsec`) bursts are processed
as vectors (cpu/pmi.py): outer headers parsed for the whole burst, packets grouped by SA, one
anti-replay decision per vector, AEAD in place; with it off, packet by packet through the full
per-packet path. Both give the same bytes, statuses and counters.
"""
from __future__ import annotations

import struct
import threading
import time
from array import array
from collections import deque
from typing import Any, Callable, Optional, Union

from ..engine import EngineCounters, SaCounters, SinglePacketCalls, Status
from ..errors import CapacityError, UnknownSaError, UnsupportedSaError
from ..packet.burst import Burst
from ..packet.ip import PROTO_AH, PROTO_ESP, PROTO_UDP, ipv6_walk, ones_sum
from ..sa import SaSpec
from .ah import AhIn, AhOut
from .esp import EspIn, EspOut
from .lifetimes import SaEvent
from .pmi import (
    PmiCounters,
    _store,
    decrypt_burst,
    decrypt_eligible,
    encrypt_eligible,
    encrypt_vector,
)
from .qat import QatCounters, QatDevice
from .state import INBOUND, OUTBOUND

__all__ = ["CpuEngine"]

_H = struct.Struct("!H")
_L = struct.Struct("!L")
MALFORMED = int(Status.MALFORMED)
UNKNOWN_SPI = int(Status.UNKNOWN_SPI)
NO_SA = int(Status.NO_SA)
NOT_ESP = int(Status.NOT_ESP)
KEEPALIVE = int(Status.KEEPALIVE)
DUMMY = int(Status.DUMMY)
InState = Union[EspIn, AhIn]
OutState = Union[EspOut, AhOut]


class CpuEngine(SinglePacketCalls):
    """The CPU path. Same engine protocol as `Pfe` (see `inline_ipsec.engine`).

    >>> cpu = CpuEngine()
    >>> h = cpu.add_outbound(spec); cpu.add_inbound(spec)
    >>> wire = cpu.encrypt(h, inner_ip_packet)
    >>> inner = cpu.decrypt(wire)
    >>> cpu.next_event()          # lifetime events, polled

    `clock` returns seconds (monotonic by default); tests inject their own. `pmi` selects
    PowerMode IPsec: bursts as vectors (True) or packet by packet (False). `qat`, a
    `QatDevice`, does the vectors' AEAD calls through its request/response rings (and
    implies PMI).
    """

    kind = "cpu"
    capacity = None  # no SA limit

    @property
    def backend(self) -> str:
        """Where the AEAD calls go: the QAT-style device's rings, or `cryptography`."""
        return "qat" if self.qat is not None else "cryptography"

    def __init__(self, name: str = "cpu0", clock: Callable[[], float] = time.monotonic,
                 pmi: bool = True, qat: Optional[QatDevice] = None) -> None:
        self.name = name
        self.clock = clock
        self.pmi = pmi or qat is not None     # the crypto device serves the PMI vectors
        self.qat = qat
        self._pmi = PmiCounters()
        self._out: dict[int, OutState] = {}
        self._in: dict[int, InState] = {}
        self._by_spi: dict[int, InState] = {}
        self._next_handle = 0
        self._events: deque[SaEvent] = deque()
        self._c = dict.fromkeys(EngineCounters.COUNTERS, 0)  # type: ignore[attr-defined]
        # One burst at a time per engine (SA state, CBC chains, windows are not thread-safe);
        # run one engine per thread to use several cores, as with the PFE.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._out) + len(self._in)

    def __repr__(self) -> str:
        return f"CpuEngine({self.name!r}, {len(self)} SAs)"

    # -- install -------------------------------------------------------------------------------

    def add_outbound(self, spec: SaSpec) -> int:
        """Install the sending direction of an SA; returns its handle for `encrypt`."""
        cls = AhOut if spec.protocol == "ah" else EspOut
        with self._lock:
            h = self._new_handle()
            sa = self._out[h] = cls(h, spec, OUTBOUND, self.clock(), self._events.append)
            sa.vector_out = cls is EspOut and encrypt_eligible(sa)
        return h

    def add_inbound(self, spec: SaSpec) -> int:
        """Install the receiving direction of an SA; `decrypt` finds it by SPI. A second
        inbound SA with the same SPI is refused (RFC 4301 §4.1: the SPI names the SA)."""
        cls = AhIn if spec.protocol == "ah" else EspIn
        with self._lock:
            if spec.spi in self._by_spi:
                raise UnsupportedSaError(f"an inbound SA with SPI 0x{spec.spi:08x} is "
                                         "installed already")
            h = self._new_handle()
            sa = cls(h, spec, INBOUND, self.clock(), self._events.append)
            sa.vector_in = cls is EspIn and decrypt_eligible(sa)
            self._in[h] = sa
            self._by_spi[spec.spi] = sa
        return h

    def _new_handle(self) -> int:
        # Handles count up and are never reused, so a handle kept after `remove` never names
        # another SA (the PFE gets the same from a generation per slot). 2^31 installs would
        # overflow `Burst.sa` (int32): at a thousand installs a second, 24 days of nothing else.
        h = self._next_handle
        if h > 0x7FFFFFFF:
            raise CapacityError(f"{self.name}: SA handles exhausted (2^31 installs)")
        self._next_handle += 1
        return h

    def remove(self, handle: int) -> None:
        """Uninstall an SA; its keys go with its transform objects."""
        with self._lock:
            if handle in self._out:
                del self._out[handle]
            elif handle in self._in:
                sa = self._in.pop(handle)
                del self._by_spi[sa.spi]
            else:
                raise UnknownSaError(f"{self.name}: no SA with handle {handle!r}")

    def _sa(self, handle: int) -> InState | OutState:
        sa = self._out.get(handle) or self._in.get(handle)
        if sa is None:
            raise UnknownSaError(f"{self.name}: no SA with handle {handle!r}")
        return sa

    def update(self, handle: int, spec: SaSpec) -> None:
        """Apply a changed DF-bit or DSCP-copy setting to an installed SA at once, keeping its
        sequence numbers, replay window, counters and lifetime (strongSwan's `update_sa`).
        On the CPU path such changes take effect immediately (docs/design.md §2); anything else
        (keys, SPI, addresses, transforms) needs a new SA."""
        state = self._sa(handle)
        changeable = ("df_bit", "copy_outer_dscp")
        fixed = [f for f in state.spec.__dataclass_fields__
                 if f not in changeable and getattr(state.spec, f) != getattr(spec, f)]
        if fixed:
            raise UnsupportedSaError(
                f"update changes only {', '.join(changeable)}; {', '.join(fixed)} "
                "differ: install a new SA (rekey) instead")
        state.spec = spec
        state.df_mode = spec.df_bit
        state.copy_dscp = spec.copy_outer_dscp

    def spec(self, handle: int) -> SaSpec:
        return self._sa(handle).spec

    def handles(self) -> list[int]:
        return sorted([*self._out, *self._in])

    def lookup_inbound(self, spi: int) -> int:
        """The handle of the inbound SA with this SPI, or -1."""
        sa = self._by_spi.get(spi)
        return -1 if sa is None else sa.handle

    # -- packets ---------------------------------------------------------------------------------

    def encrypt_burst(self, burst: Burst) -> int:
        """Encrypt `burst.count` packets in place with the outbound SAs named in `burst.sa`.

        Packets are grouped by SA, each group in one loop; `burst.status` gets a `Status` per
        packet; returns the number of packets encrypted. Never raises per packet."""
        with self._lock:
            return self._encrypt_burst(burst)

    def _encrypt_burst(self, burst: Burst) -> int:
        n = _count(burst)
        if n == 0:
            return 0
        slot = burst.slot_size
        mv, v_off, v_len, v_sa, v_status = burst.cpu_view
        offs = v_off[:n].tolist()
        lens = v_len[:n].tolist()
        handles = v_sa[:n].tolist()
        status = [0] * n
        now = self.clock()
        pmi = self._pmi
        if not self.pmi:              # the regular path: each packet on its own
            for i, h in enumerate(handles):
                sa = self._out.get(h)
                if sa is None:
                    status[i] = NO_SA
                    self._c["no_sa"] += 1
                else:
                    sa.encrypt_group(mv, slot, (i,), offs, lens, status, now)
            pmi.regular_encrypt += n
        else:
            groups: dict[int, Any]
            if handles.count(handles[0]) == n:
                groups = {handles[0]: range(n)}
            else:
                groups = {}
                for i, h in enumerate(handles):
                    g = groups.get(h)
                    if g is None:
                        groups[h] = [i]
                    else:
                        g.append(i)
            pmi.vectors += 1
            vector = 0
            for h, idx in groups.items():
                sa = self._out.get(h)
                if sa is None:
                    for i in idx:
                        status[i] = NO_SA
                    self._c["no_sa"] += len(idx)
                elif sa.vector_out:
                    vector += encrypt_vector(sa, burst, idx, offs, lens, status, now,
                                             self.qat)
                else:
                    sa.encrypt_group(mv, slot, idx, offs, lens, status, now)
            pmi.vector_encrypt += vector
            pmi.regular_encrypt += n - vector
        v_off[:n] = array("I", offs)
        v_len[:n] = array("I", lens)
        v_status[:n] = bytes(status)
        return status.count(0)

    def decrypt_burst(self, burst: Burst) -> int:
        """Decrypt `burst.count` outer packets in place, finding each SA by SPI.

        `burst.sa` gets the inbound SA handle per packet (-1 if none), `burst.status` a
        `Status`; returns the number of packets decrypted. Never raises per packet."""
        with self._lock:
            return self._decrypt_burst(burst)

    def _decrypt_burst(self, burst: Burst) -> int:
        n = _count(burst)
        if n == 0:
            return 0
        if self.pmi:
            return decrypt_burst(self, burst, n)
        slot = burst.slot_size
        mv, v_off, v_len = burst.cpu_view[:3]
        offs = v_off[:n].tolist()
        lens = v_len[:n].tolist()
        status = [0] * n
        sa_out = [-1] * n
        now = self.clock()
        for i in range(n):            # the regular path: each packet on its own
            self._decrypt_one(mv, slot, i, offs, lens, status, sa_out, now)
        self._pmi.regular_decrypt += n
        return _store(burst, n, offs, lens, sa_out, status)

    def _decrypt_one(self, mv, slot: int, i: int, offs: list, lens: list, status: list,
                     sa_out: list, now: float) -> None:
        """The per-packet path of packet `i`: full outer-header parse, SA by SPI, the SA's
        per-packet decapsulation."""
        found = self._inbound_sa(mv, slot, i, offs, lens, status, sa_out)
        if found is not None:
            found[0].decrypt_group(mv, slot, [found[1]], offs, lens, status, now)

    def _inbound_sa(self, mv, slot: int, i: int, offs: list, lens: list, status: list,
                    sa_out: list) -> Optional[tuple[Any, tuple]]:
        """Packet `i`'s outer header parsed and its SA found by SPI (RFC 4303 §3.4.1-3.4.2):
        (SA, the item its `decrypt_group` takes), or None with the drop status set and
        counted."""
        item = self._classify(mv, slot, i, offs[i], lens[i])
        if type(item) is int:
            status[i] = item
            return None
        sa = self._by_spi.get(item[8])
        if sa is None or sa.proto_in != item[9]:
            status[i] = UNKNOWN_SPI
            self._c["unknown_spi"] += 1
            return None
        sa_out[i] = sa.handle
        return sa, item[:8]

    def _classify(self, mv, slot: int, i: int, off: int, ln: int):
        """Parse the outer header of packet `i` (RFC 4303 §3.4.1, RFC 3948 §2, RFC 4302 §3.4):
        a tuple (i, p, ln, l4, nh_field, e, len, outer_tos, spi, proto) or a drop status."""
        c = self._c
        if off > slot or ln > slot - off or ln == 0:
            c["malformed"] += 1
            return MALFORMED
        p = i * slot + off
        b0 = mv[p]
        if b0 >> 4 == 4:
            if ln < 20:
                c["malformed"] += 1
                return MALFORMED
            ihl = (b0 & 0x0F) * 4
            total = _H.unpack_from(mv, p + 2)[0]
            if ihl < 20 or total < ihl or total > ln:
                c["malformed"] += 1
                return MALFORMED
            if ones_sum(mv[p:p + ihl]) != 0xFFFF:   # RFC 791 header checksum (RFC 1122)
                c["malformed"] += 1
                return MALFORMED
            ln = total                    # ignore link-layer padding beyond the IP packet
            if _H.unpack_from(mv, p + 6)[0] & 0x3FFF:   # a fragment: no reassembly here
                c["malformed"] += 1
                return MALFORMED
            proto = mv[p + 9]
            l4, nhf = ihl, p + 9
            tos = mv[p + 1]
        elif b0 >> 4 == 6:
            if ln < 40 or 40 + _H.unpack_from(mv, p + 4)[0] > ln:
                c["malformed"] += 1
                return MALFORMED
            ln = 40 + _H.unpack_from(mv, p + 4)[0]
            try:
                proto, pos, nhf = ipv6_walk(mv, p, p + ln)
            except ValueError:
                c["malformed"] += 1
                return MALFORMED
            l4 = pos - p
            tos = ((b0 & 0x0F) << 4) | (mv[p + 1] >> 4)
        else:
            c["malformed"] += 1
            return MALFORMED
        if proto == PROTO_UDP:            # RFC 3948 §2: UDP-encapsulated ESP, IKE, keepalive
            if ln - l4 < 8:
                c["malformed"] += 1
                return MALFORMED
            ulen = _H.unpack_from(mv, p + l4 + 4)[0]
            if ulen < 8 or ulen > ln - l4:
                c["malformed"] += 1
                return MALFORMED
            if b0 >> 4 == 6 and not _udp6_ok(mv, p, p + l4, ulen):
                c["malformed"] += 1        # RFC 8200 §8.1: mandatory, and never zero
                return MALFORMED
            e = p + l4 + 8
            elen = ulen - 8
            if elen == 1 and mv[e] == 0xFF:
                c["keepalive"] += 1
                return KEEPALIVE
            if elen >= 4 and _L.unpack_from(mv, e)[0] == 0:
                c["not_esp"] += 1
                return NOT_ESP
            ipsec = PROTO_ESP
            min_len = 8
        elif proto == PROTO_ESP:
            e = p + l4
            elen = ln - l4
            ipsec = PROTO_ESP
            min_len = 8
        elif proto == PROTO_AH:
            e = p + l4
            elen = ln - l4
            ipsec = PROTO_AH
            min_len = 12
        else:                             # PROTO_FRAGMENT and anything else
            c["malformed"] += 1
            return MALFORMED
        if elen < min_len:
            c["malformed"] += 1
            return MALFORMED
        spi = _L.unpack_from(mv, e + (4 if ipsec == PROTO_AH else 0))[0]
        return (i, p, ln, l4, nhf, e, elen, tos, spi, ipsec)

    # -- state -----------------------------------------------------------------------------------

    def counters(self, handle: int) -> SaCounters:
        return self._sa(handle).counters()

    def engine_counters(self) -> EngineCounters:
        return EngineCounters.from_mapping(self._c)

    def pmi_counters(self) -> PmiCounters:
        """How many packets took the PMI vector loops and how many the per-packet path."""
        return PmiCounters(**self._pmi.as_dict())

    def qat_counters(self) -> Optional[QatCounters]:
        """The crypto device's counters, or None without one."""
        return None if self.qat is None else QatCounters(**self.qat.counters.as_dict())

    def rekey_needed(self, handle: int) -> bool:
        """True once an outbound SA used its last sequence number (RFC 4303 §3.3.3), or once
        any SA crossed a soft or hard lifetime (RFC 4301 §4.4.2.1)."""
        sa = self._sa(handle)
        if not sa.unlimited:
            sa.life.check_time(self.clock())
        return sa.rekey or sa.life.soft_done

    def expired(self, handle: int) -> bool:
        """True once the SA crossed a hard lifetime and carries no more traffic."""
        sa = self._sa(handle)
        if not sa.unlimited:
            sa.life.check_time(self.clock())
        return sa.life.expired

    def sequence(self, handle: int) -> int:
        """Outbound: the last sequence number sent; inbound: the highest accepted."""
        sa = self._sa(handle)
        return sa.seq if handle in self._out else sa.replay.top

    def set_sequence(self, handle: int, last_sent: int) -> None:
        """Outbound: make `last_sent` the last sequence number sent. Inbound: make it the
        highest one received, with an empty window below it (as `Pfe.set_sequence`). For tests
        of the 2^32 limit and of ESN (RFC 4303 §3.3.3, Appendix A) and SAs moved between
        engines."""
        sa = self._sa(handle)
        if last_sent < 0 or last_sent > sa.max_seq:
            raise ValueError("without ESN the sequence number is 32-bit" if not sa.esn
                             else "the sequence number is 64-bit")
        with self._lock:
            if handle in self._out:
                sa.seq = last_sent
                sa.rekey = False
            else:
                sa.replay.reset(last_sent)

    def check_lifetimes(self) -> None:
        """Apply the time-based lifetimes of every SA now (also done per burst and by
        `next_event`), so an idle SA still expires."""
        now = self.clock()
        for sa in (*self._out.values(), *self._in.values()):
            if not sa.unlimited:
                sa.life.check_time(now)

    def next_event(self) -> SaEvent | None:
        """The oldest pending lifetime event (`SaEvent`), or None."""
        if not self._events:
            self.check_lifetimes()
        return self._events.popleft() if self._events else None


def _udp6_ok(mv, ip: int, udp: int, ulen: int) -> bool:
    """The UDP checksum of an IPv6 datagram verifies (RFC 8200 §8.1); zero is invalid."""
    if mv[udp + 6] == 0 and mv[udp + 7] == 0:
        return False
    acc = ones_sum(mv[ip + 8:ip + 40]) + ulen + PROTO_UDP + ones_sum(mv[udp:udp + ulen])
    return acc % 0xFFFF == 0  # a correct checksum makes the ones'-complement sum all ones


def _count(burst: Burst) -> int:
    n = burst.count
    if n < 0 or n > burst.capacity:
        raise ValueError(f"burst of {n} packets does not fit its {burst.capacity} slots")
    return n
