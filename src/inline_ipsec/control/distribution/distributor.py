"""SA distribution: install each tunnel's SAs on the engine `place()` chose, and keep them there.

This file owns the life of a tunnel's SAs on the engines: install (PFE slot choice within the
chassis limits, fallback to the CPU), make-before-break rekey, removal, DF-bit / DSCP-copy
changes, and the per-tunnel event history that `show security ipsec security-associations
detail` prints under `Tunnel events:`. It never encrypts a packet and never talks IKE.

Engines implement `inline_ipsec.engine.Engine` completely (install, update, remove, sequence
numbers, events, counters): nothing here probes for a method. A full PFE raises
`CapacityError`.

Rekey, make-before-break (RFC 7296 §2.8; strongSwan `child_rekey.c` installs the new inbound SA
first and switches outbound after):
  1. the new inbound SA is installed (the peer may already send with it);
  2. the new outbound SA is installed and traffic switches to it; the old outbound SA goes;
  3. the old inbound SA stays to drain packets still in flight, and is removed when its drain
     time has passed (`expire_drained`) or at once with `finish_drain`.

DF bit and DSCP copy (docs/design.md §2): on an active *offloaded* tunnel a change is pending until
the next rekey, whose new SAs carry it (Junos); on a CPU tunnel it is applied at once, through
the engine's `update(handle, spec)`, which keeps sequence numbers and anti-replay windows.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence, TypeVar

from ...config.model import License
from ...errors import CapacityError, UnsupportedSaError
from ...engine import Engine
from ...sa import DF_BIT_MODES, SaSpec
from .placement import PFE_SA_LIMIT, PFE_TUNNEL_LIMIT, Placement, Settings, Tunnel, place

__all__ = [
    "Distributor",
    "Engine",
    "SaPair",
    "TunnelEvent",
    "TunnelRecord",
    "FIRST_TUNNEL_ID",
]

#: Junos 25.x numbers tunnels from about 500000 (docs/junos-formats.md §4.1).
FIRST_TUNNEL_ID = 500001
#: `Tunnel events:` kept per tunnel, the most recent ones (a tunnel rekeyed every hour for a
#: year must not keep every event it ever had)
MAX_TUNNEL_EVENTS = 64


@dataclass(frozen=True)
class TunnelEvent:
    """One `Tunnel events:` line; consecutive identical events are counted, as Junos does."""

    time: _dt.datetime
    text: str
    count: int = 1

    def render(self) -> str:
        """`Sun Sep 14 2025 09:34:29: IPsec SA negotiation succeeds (1 times)`."""
        return f"{self.time:%a %b %d %Y %H:%M:%S}: {self.text} ({self.count} times)"


@dataclass
class SaPair:
    """One child SA pair: the outbound and inbound SA (specs and engine handles)."""

    outbound: SaSpec
    inbound: SaSpec
    outbound_handle: int
    inbound_handle: int
    #: when the pair was installed (from the distributor's clock): lifetimes count from here
    installed_at: Optional[_dt.datetime] = None


@dataclass
class _Draining:
    spec: SaSpec
    handle: int
    deadline: _dt.datetime


@dataclass
class TunnelRecord:
    """Everything the distributor knows about one tunnel."""

    name: str
    tunnel_id: int
    tunnel: Tunnel
    placement: Placement
    engine: Engine = field(repr=False)
    #: index into the distributor's PFE list, None on the CPU
    pfe_index: Optional[int]
    #: `Location:` of the detail output: "FPC 0, PIC 0" on a PFE, "CPU" otherwise
    location: str
    pairs: list[SaPair]
    df_bit: str
    copy_outer_dscp: bool
    pending_df_bit: Optional[str] = None
    pending_copy_outer_dscp: Optional[bool] = None
    draining: list[_Draining] = field(default_factory=list)
    events: list[TunnelEvent] = field(default_factory=list)
    rekeys: int = 0

    @property
    def offloaded(self) -> bool:
        """`Hardware Offloaded: Yes`."""
        return self.placement.offloaded

    @property
    def sa_count(self) -> int:
        """SAs installed for this tunnel, draining ones included."""
        return 2 * len(self.pairs) + len(self.draining)

    @property
    def handles(self) -> list[int]:
        out = []
        for pair in self.pairs:
            out += [pair.outbound_handle, pair.inbound_handle]
        return out + [d.handle for d in self.draining]

    def event_lines(self) -> list[str]:
        return [e.render() for e in self.events]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


_F = TypeVar("_F", bound=Callable[..., Any])


def _mutates(method: _F) -> _F:
    """Keep the distributor's cached PFE usage right across `method`: a method that changes
    one named tunnel (its first argument) adjusts the cache by that tunnel's share before and
    after (thousands of tunnels come up one by one); any other change drops the cache."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kw: Any) -> Any:
        name = args[0] if args and isinstance(args[0], str) else None
        if name is None:
            self._usage_cache = self._load_cache = None
            try:
                return method(self, *args, **kw)
            finally:
                self._usage_cache = self._load_cache = None
        cache = self._usage()               # what the method's placement sees
        load = self._pfe_load()
        before = self._share(name)
        pfe_before = self._pfe_of(name)
        try:
            result = method(self, *args, **kw)
        except BaseException:
            self._usage_cache = self._load_cache = None
            raise
        after = self._share(name)
        pfe_after = self._pfe_of(name)
        self._usage_cache = (cache[0] - before[0] + after[0], cache[1] - before[1] + after[1])
        load = list(load)
        if pfe_before is not None:
            load[pfe_before] -= 1
        if pfe_after is not None:
            load[pfe_after] += 1
        self._load_cache = load
        return result
    return wrapper  # type: ignore[return-value]


class Distributor:
    """Installs tunnels on the PFEs of one chassis or on the CPU engine (docs/design.md §1 stage ③).

    `pfes` are the PFE engines (FPC/PIC slots); `slots` names them, (fpc, pic) per PFE,
    default (i, 0). Offloaded tunnels are spread over the PFEs (the one with the fewest tunnels
    first) within the chassis limits `sa_limit`/`tunnel_limit`. `clock` is injected and only
    used to stamp events, to read the license date and to time drains.
    """

    def __init__(self, pfes: Sequence[Engine], cpu: Engine, *,
                 license: Optional[License] = None, hw_offload_disable: bool = False,
                 sa_limit: int = PFE_SA_LIMIT, tunnel_limit: int = PFE_TUNNEL_LIMIT,
                 slots: Optional[Sequence[tuple[int, int]]] = None,
                 clock: Callable[[], _dt.datetime] = _utcnow,
                 drain_seconds: float = 10.0) -> None:
        if slots is not None and len(slots) != len(pfes):
            raise ValueError("slots must name every PFE")
        self.pfes = list(pfes)
        self.cpu = cpu
        self.license = license
        self.hw_offload_disable = hw_offload_disable
        self.sa_limit = sa_limit
        self.tunnel_limit = tunnel_limit
        self.slots = list(slots) if slots is not None else [(i, 0) for i in range(len(pfes))]
        self.clock = clock
        self.drain_seconds = drain_seconds
        self._tunnels: dict[str, TunnelRecord] = {}
        self._next_id = FIRST_TUNNEL_ID
        # The one SPI/SA index of the chassis: inbound SPI -> (tunnel, child SA pair index or
        # None for an SA draining after a rekey, handle). The data plane mirrors it through
        # `listeners`, never keeps a copy of its own.
        self._by_spi: dict[int, tuple[str, Optional[int], int]] = {}
        # (PFE tunnels, PFE SAs) and tunnels per PFE, kept right by `_mutates`; None: recount
        self._usage_cache: Optional[tuple[int, int]] = None
        self._load_cache: Optional[list[int]] = None
        self._spis_of: dict[str, set[int]] = {}
        #: Called as `listener(name, record or None when removed, SPIs no longer installed)`
        #: after every change to a tunnel's SAs.
        self.listeners: list[Callable[[str, Optional[TunnelRecord], frozenset[int]], None]] = []

    # -- queries ---------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._tunnels

    def __len__(self) -> int:
        return len(self._tunnels)

    def tunnel(self, name: str) -> TunnelRecord:
        try:
            return self._tunnels[name]
        except KeyError:
            raise KeyError(f"no tunnel named {name!r}") from None

    def tunnels(self) -> list[TunnelRecord]:
        """Every tunnel, in installation order."""
        return list(self._tunnels.values())

    def lookup_spi(self, spi: int) -> Optional[tuple[TunnelRecord, Optional[int], int]]:
        """The inbound SA with this SPI (RFC 4301 §4.1): (tunnel, child SA pair index or None
        for an SA draining after a rekey, engine handle), or None."""
        hit = self._by_spi.get(spi)
        if hit is None:
            return None
        return self._tunnels[hit[0]], hit[1], hit[2]

    def _reindex(self, name: str) -> None:
        """Refresh the SPI index entries of one tunnel and tell the listeners."""
        old = self._spis_of.pop(name, set())
        for spi in old:
            self._by_spi.pop(spi, None)
        rec = self._tunnels.get(name)
        now: set[int] = set()
        if rec is not None:
            for i, p in enumerate(rec.pairs):
                self._by_spi[p.inbound.spi] = (name, i, p.inbound_handle)
                now.add(p.inbound.spi)
            for d in rec.draining:
                self._by_spi[d.spec.spi] = (name, None, d.handle)
                now.add(d.spec.spi)
            self._spis_of[name] = now
        gone = frozenset(old - now)
        for listener in self.listeners:
            listener(name, rec, gone)

    def events(self, name: str) -> list[str]:
        """The tunnel's event history, rendered as in `Tunnel events:`."""
        return self.tunnel(name).event_lines()

    def _usage(self) -> tuple[int, int]:
        """(PFE tunnels, PFE SAs) in use, cached until the next change (`_mutates`): placing
        2000 tunnels one by one would otherwise count them all each time."""
        cached = self._usage_cache
        if cached is None:
            off = [t for t in self._tunnels.values() if t.offloaded]
            cached = self._usage_cache = (len(off), sum(t.sa_count for t in off))
        return cached

    def _pfe_of(self, name: str) -> Optional[int]:
        rec = self._tunnels.get(name)
        return rec.pfe_index if rec is not None else None

    def _pfe_load(self) -> list[int]:
        """Tunnels per PFE, cached as the PFE usage (`_mutates`)."""
        cached = self._load_cache
        if cached is None:
            cached = [0] * len(self.pfes)
            for rec in self._tunnels.values():
                if rec.pfe_index is not None:
                    cached[rec.pfe_index] += 1
            self._load_cache = cached
        return cached

    def _share(self, name: str) -> tuple[int, int]:
        """(PFE tunnels, PFE SAs) tunnel `name` takes (0, 0 when absent or on the CPU)."""
        rec = self._tunnels.get(name)
        if rec is None or not rec.offloaded:
            return 0, 0
        return 1, rec.sa_count

    @property
    def pfe_tunnels_in_use(self) -> int:
        return self._usage()[0]

    @property
    def pfe_sas_in_use(self) -> int:
        return self._usage()[1]

    def settings(self) -> Settings:
        """The chassis-wide inputs of the next placement."""
        return Settings(today=self.clock().date(), license=self.license,
                        hw_offload_disable=self.hw_offload_disable,
                        pfe_sas_in_use=self.pfe_sas_in_use,
                        pfe_tunnels_in_use=self.pfe_tunnels_in_use,
                        pfe_sa_limit=self.sa_limit, pfe_tunnel_limit=self.tunnel_limit)

    def counters(self, name: str) -> list[tuple[str, int, Any]]:
        """(direction, SPI, engine counters) of every installed SA of the tunnel."""
        rec = self.tunnel(name)
        out: list[tuple[str, int, Any]] = []
        for pair in rec.pairs:
            out.append(("inbound", pair.inbound.spi, rec.engine.counters(pair.inbound_handle)))
            out.append(("outbound", pair.outbound.spi,
                        rec.engine.counters(pair.outbound_handle)))
        for d in rec.draining:
            out.append(("inbound", d.spec.spi, rec.engine.counters(d.handle)))
        return out

    # -- install / remove ------------------------------------------------------------------

    @_mutates
    def install(self, name: str, tunnel: Tunnel, outbound: SaSpec, inbound: SaSpec
                ) -> TunnelRecord:
        """Place a newly negotiated tunnel and install its first SA pair (inbound first).

        The specs' `df_bit`/`copy_outer_dscp` become the tunnel's settings. If every PFE
        refuses the SAs (`CapacityError`) the tunnel goes to the CPU with that reason added.
        """
        if name in self._tunnels:
            raise ValueError(f"tunnel {name!r} is already installed; use rekey()")
        _check_pair(outbound, inbound)
        inbound = _with(inbound, outbound.df_bit, outbound.copy_outer_dscp)
        placement = place(tunnel, self.settings())
        pair: Optional[SaPair] = None
        engine: Engine = self.cpu
        pfe_index: Optional[int] = None
        if placement.offloaded:
            refusal = "no PFE available"
            for index in self._pfe_order():
                try:
                    pair = _install_pair(self.pfes[index], outbound, inbound, self.clock())
                except CapacityError:
                    refusal = "no free entry in any PFE SA table"
                    continue
                except UnsupportedSaError as exc:
                    refusal = f"PFE refused the SA: {exc}"
                    continue
                engine, pfe_index = self.pfes[index], index
                break
            else:
                placement = Placement("cpu", (refusal,))
        if pair is None:
            pair = _install_pair(self.cpu, outbound, inbound, self.clock())
        if pfe_index is None:
            location = "CPU"
        else:
            fpc, pic = self.slots[pfe_index]
            location = f"FPC {fpc}, PIC {pic}"
        rec = TunnelRecord(
            name=name, tunnel_id=self._next_id, tunnel=tunnel, placement=placement,
            engine=engine, pfe_index=pfe_index, location=location, pairs=[pair],
            df_bit=outbound.df_bit, copy_outer_dscp=outbound.copy_outer_dscp)
        self._next_id += 1
        self._tunnels[name] = rec
        self._event(rec, "IPsec SA negotiation succeeds")
        if placement.offloaded:
            self._event(rec, f"IPsec SA offloaded to hardware ({location})")
        else:
            self._event(rec, "IPsec SA not offloaded to hardware: " + "; ".join(placement.reasons))
        self._reindex(name)
        return rec

    @_mutates
    def add_child(self, name: str, outbound: SaSpec, inbound: SaSpec) -> SaPair:
        """Install one more child SA pair in an existing tunnel (on the tunnel's engine)."""
        rec = self.tunnel(name)
        _check_pair(outbound, inbound)
        pair = _install_pair(rec.engine, self._stamp(rec, outbound), self._stamp(rec, inbound),
                             self.clock())
        rec.pairs.append(pair)
        self._event(rec, "IPsec SA negotiation succeeds")
        self._reindex(name)
        return pair

    @_mutates
    def remove(self, name: str, reason: str = "the tunnel was removed") -> TunnelRecord:
        """Remove every SA of a tunnel (outbound first, so nothing is sent on a half-removed
        tunnel) and forget it. Returns the final record."""
        rec = self.tunnel(name)
        for pair in rec.pairs:
            rec.engine.remove(pair.outbound_handle)
        for pair in rec.pairs:
            rec.engine.remove(pair.inbound_handle)
        for d in rec.draining:
            rec.engine.remove(d.handle)
        rec.pairs, rec.draining = [], []
        self._event(rec, f"IPSec SA is deleted because {reason}")
        del self._tunnels[name]
        self._reindex(name)
        return rec

    @_mutates
    def remove_child(self, name: str, pair_index: int,
                     reason: str = "received DEL notification from peer") -> SaPair:
        """Remove one child SA pair of a tunnel that keeps others (RFC 7296 §1.4.1: a DELETE
        of one CHILD_SA). Outbound first. The last pair goes with `remove()` instead."""
        rec = self.tunnel(name)
        if len(rec.pairs) < 2:
            raise ValueError(f"tunnel {name!r} has one SA pair left; use remove()")
        pair = rec.pairs.pop(pair_index)
        rec.engine.remove(pair.outbound_handle)
        rec.engine.remove(pair.inbound_handle)
        self._event(rec, f"IPSec SA is deleted because {reason}")
        self._reindex(name)
        return pair

    # -- rekey -----------------------------------------------------------------------------

    @_mutates
    def rekey(self, name: str, outbound: SaSpec, inbound: SaSpec, *, pair_index: int = 0,
              reason: Optional[str] = None) -> SaPair:
        """Replace one SA pair, make-before-break (module docstring). Pending DF-bit and DSCP
        changes are applied to the new SAs. `reason`, e.g. "soft life timer expired", adds the
        Junos `IPSEC SA rekey initiated because ...` event."""
        rec = self.tunnel(name)
        _check_pair(outbound, inbound)
        old = rec.pairs[pair_index]
        if reason:
            self._event(rec, f"IPSEC SA rekey initiated because {reason}")
        # the new SAs carry pending changes; the tunnel adopts them once the rekey worked
        df_bit = rec.pending_df_bit if rec.pending_df_bit is not None else rec.df_bit
        dscp = (rec.pending_copy_outer_dscp if rec.pending_copy_outer_dscp is not None
                else rec.copy_outer_dscp)
        new_out, new_in = _with(outbound, df_bit, dscp), _with(inbound, df_bit, dscp)
        try:
            # 1. new inbound first: the peer may switch to it as soon as it has the new SA
            new_in_handle = rec.engine.add_inbound(new_in)
            # 2. new outbound, then switch traffic to it
            try:
                new_out_handle = rec.engine.add_outbound(new_out)
            except BaseException:
                rec.engine.remove(new_in_handle)
                raise
        except Exception:
            self._event(rec, "IPsec SA rekey fails")
            raise
        applied = []
        if rec.pending_df_bit is not None:
            applied.append(f"DF-bit {df_bit}")
        if rec.pending_copy_outer_dscp is not None:
            applied.append(f"Copy-Outer-DSCP {_enabled(dscp)}")
        rec.df_bit, rec.copy_outer_dscp = df_bit, dscp
        rec.pending_df_bit = rec.pending_copy_outer_dscp = None
        new = SaPair(new_out, new_in, new_out_handle, new_in_handle, self.clock())
        rec.pairs[pair_index] = new
        rec.engine.remove(old.outbound_handle)
        # 3. the old inbound SA drains
        rec.draining.append(_Draining(
            old.inbound, old.inbound_handle,
            self.clock() + _dt.timedelta(seconds=self.drain_seconds)))
        rec.rekeys += 1
        self._event(rec, "IPsec SA rekey succeeds")
        if applied:
            self._event(rec, "Pending change applied at rekey: " + ", ".join(applied))
        self._reindex(name)
        return new

    @_mutates
    def expire_drained(self, now: Optional[_dt.datetime] = None) -> list[tuple[str, int]]:
        """Remove the old inbound SAs whose drain time has passed; returns (tunnel, SPI)."""
        now = self.clock() if now is None else now
        removed = []
        for rec in self._tunnels.values():
            keep = []
            for d in rec.draining:
                if d.deadline <= now:
                    self._drop_drained(rec, d)
                    removed.append((rec.name, d.spec.spi))
                else:
                    keep.append(d)
            rec.draining = keep
        for name in sorted({name for name, _ in removed}):
            self._reindex(name)
        return removed

    @_mutates
    def finish_drain(self, name: str) -> list[int]:
        """Remove the tunnel's draining inbound SAs now; returns their SPIs."""
        rec = self.tunnel(name)
        spis = []
        for d in rec.draining:
            self._drop_drained(rec, d)
            spis.append(d.spec.spi)
        rec.draining = []
        self._reindex(name)
        return spis

    @_mutates
    def _drop_drained(self, rec: TunnelRecord, d: _Draining) -> None:
        rec.engine.remove(d.handle)
        self._event(rec, f"Old inbound IPsec SA 0x{d.spec.spi:08x} deleted after rekey")

    # -- DF bit / DSCP copy ----------------------------------------------------------------

    def set_df_bit(self, name: str, mode: str) -> bool:
        """Change `df-bit` (clear|set|copy). Returns True if in force now, False if pending
        until the next rekey (offloaded tunnel)."""
        if mode not in DF_BIT_MODES:
            raise ValueError(f"df-bit {mode!r}: expected one of {', '.join(DF_BIT_MODES)}")
        rec = self.tunnel(name)
        if rec.offloaded:
            rec.pending_df_bit = None if mode == rec.df_bit else mode
            if rec.pending_df_bit is None:
                return True                 # back to the setting in force: nothing pending
            self._event(rec, f"DF-bit change to {mode} pending until next rekey")
            return False
        if mode != rec.df_bit:
            rec.df_bit = mode
            self._apply_df_bit(rec)
            self._event(rec, f"DF-bit changed to {mode}")
        return True

    def set_copy_outer_dscp(self, name: str, enabled: bool) -> bool:
        """Change `copy-outer-dscp`. Returns True if in force now (CPU tunnel, `update`), False
        if pending until the next rekey (offloaded tunnel)."""
        rec = self.tunnel(name)
        if rec.offloaded:
            rec.pending_copy_outer_dscp = None if enabled == rec.copy_outer_dscp else enabled
            if rec.pending_copy_outer_dscp is None:
                return True                 # back to the setting in force: nothing pending
            self._event(rec, f"Copy-Outer-DSCP change to {_enabled(enabled)} "
                             "pending until next rekey")
            return False
        if enabled != rec.copy_outer_dscp:
            rec.copy_outer_dscp = enabled
            for pair in rec.pairs:
                pair.outbound = self._stamp(rec, pair.outbound)
                pair.inbound = self._stamp(rec, pair.inbound)
                rec.engine.update(pair.outbound_handle, pair.outbound)
                rec.engine.update(pair.inbound_handle, pair.inbound)
            self._event(rec, f"Copy-Outer-DSCP changed to {_enabled(enabled)}")
            self._reindex(name)
        return True

    def _apply_df_bit(self, rec: TunnelRecord) -> None:
        """Apply the tunnel's DF-bit setting to its SAs now (CPU tunnels), in place through
        the engine's `update` (strongSwan's `update_sa`): sequence numbers, anti-replay
        windows and counters stay."""
        for pair in rec.pairs:
            new_out, new_in = self._stamp(rec, pair.outbound), self._stamp(rec, pair.inbound)
            rec.engine.update(pair.outbound_handle, new_out)
            rec.engine.update(pair.inbound_handle, new_in)
            pair.outbound, pair.inbound = new_out, new_in
        self._reindex(rec.name)

    # -- helpers ---------------------------------------------------------------------------

    def _pfe_order(self) -> list[int]:
        load = self._pfe_load()
        return sorted(range(len(self.pfes)), key=lambda i: (load[i], i))

    @staticmethod
    def _stamp(rec: TunnelRecord, spec: SaSpec) -> SaSpec:
        return _with(spec, rec.df_bit, rec.copy_outer_dscp)

    def _event(self, rec: TunnelRecord, text: str) -> None:
        if rec.events and rec.events[-1].text == text:
            last = rec.events[-1]
            rec.events[-1] = dataclasses.replace(last, time=self.clock(), count=last.count + 1)
        else:
            rec.events.append(TunnelEvent(self.clock(), text))
            if len(rec.events) > MAX_TUNNEL_EVENTS:
                del rec.events[0]


def _enabled(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


def _with(spec: SaSpec, df_bit: str, copy_outer_dscp: bool) -> SaSpec:
    """`spec` with the tunnel's DF-bit and DSCP-copy settings."""
    if spec.df_bit == df_bit and spec.copy_outer_dscp == copy_outer_dscp:
        return spec
    return dataclasses.replace(spec, df_bit=df_bit, copy_outer_dscp=copy_outer_dscp)


def _check_pair(outbound: SaSpec, inbound: SaSpec) -> None:
    if outbound.protocol != inbound.protocol:
        raise ValueError("the outbound and inbound SA of a pair use different protocols")


def _install_pair(engine: Engine, outbound: SaSpec, inbound: SaSpec,
                  now: Optional[_dt.datetime] = None) -> SaPair:
    """Inbound first, then outbound; if the outbound install fails the inbound is removed, so
    nothing is half-installed."""
    in_handle = engine.add_inbound(inbound)
    try:
        out_handle = engine.add_outbound(outbound)
    except BaseException:
        engine.remove(in_handle)
        raise
    return SaPair(outbound, inbound, out_handle, in_handle, now)
